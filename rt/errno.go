package rt

import "syscall"

func errNoMem() error { return syscall.ENOMEM }
