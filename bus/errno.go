package bus

import "syscall"

var errConnRefused error = syscall.ECONNREFUSED
