// Package sys is the only package in sensorbus that makes system calls
// through golang.org/x/sys/unix. It offers the few calls the rest of the
// module needs: unnamed file creation and linking, open-file-description
// locks, mmap, cross-process futexes, and (as the bus and rt packages land)
// descriptor passing, peer credentials and scheduling.
//
// On Linux every function is implemented; elsewhere every function returns
// ErrNotSupported so that the module still builds for other systems.
//
// All functions are safe for concurrent use; they hold no state.
package sys
