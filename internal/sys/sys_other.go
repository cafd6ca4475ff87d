//go:build !linux

package sys

import (
	"syscall"
	"time"
)

// Errno values the callers test for with errors.Is.
var (
	EAGAIN    error = syscall.EAGAIN
	EEXIST    error = syscall.EEXIST
	ENOENT    error = syscall.ENOENT
	EINTR     error = syscall.EINTR
	ETIMEDOUT error = syscall.ETIMEDOUT
)

// FileID identifies a file: device and inode.
type FileID struct{ Dev, Ino uint64 }

// Stat describes an open file.
type Stat struct {
	ID   FileID
	Size int64
	Mode uint32
	UID  uint32
	GID  uint32
}

func PageSize() int                                      { return syscall.Getpagesize() }
func CreateUnnamed(dir string, perm uint32) (int, error) { return -1, ErrNotSupported }
func Link(fd int, path string) error                     { return ErrNotSupported }
func Open(path string, write bool) (int, error)          { return -1, ErrNotSupported }
func Reopen(fd int, write bool) (int, error)             { return -1, ErrNotSupported }
func Close(fd int) error                                 { return ErrNotSupported }
func Truncate(fd int, size int64) error                  { return ErrNotSupported }
func Fstat(fd int) (Stat, error)                         { return Stat{}, ErrNotSupported }
func Lstat(path string) (Stat, error)                    { return Stat{}, ErrNotSupported }
func Unlink(path string) error                           { return ErrNotSupported }
func Mmap(fd int, length int, write bool) ([]byte, error) {
	return nil, ErrNotSupported
}
func Munmap(b []byte) error                                           { return ErrNotSupported }
func TryLock(fd int, off int64) error                                 { return ErrNotSupported }
func Unlock(fd int, off int64) error                                  { return ErrNotSupported }
func Locked(fd int, off int64) (bool, error)                          { return false, ErrNotSupported }
func FutexWait(addr *uint32, val uint32, timeout time.Duration) error { return ErrNotSupported }
func FutexWake(addr *uint32) error                                    { return ErrNotSupported }
func ClockMonotonic() (int64, error)                                  { return 0, ErrNotSupported }

func Pread(fd int, b []byte, off int64) (int, error) { return 0, ErrNotSupported }

var EPERM error = syscall.EPERM

const (
	SchedOther = 0
	SchedFIFO  = 1
)

func Gettid() int                                     { return 0 }
func SetAffinity(tid int, cpus []int) error           { return ErrNotSupported }
func Affinity(tid int) ([]int, error)                 { return nil, ErrNotSupported }
func SetFIFO(tid, prio int) error                     { return ErrNotSupported }
func SetOther(tid int) error                          { return ErrNotSupported }
func Scheduler(tid int) (policy, prio int, err error) { return 0, 0, ErrNotSupported }
func LockMemory(onFault bool) error                   { return ErrNotSupported }
func UnlockMemory() error                             { return ErrNotSupported }
func Prefault(b []byte, write bool) error             { return ErrNotSupported }
func Kernel() (release, version string)               { return "", "" }

const (
	InCreate    = 0
	InMovedTo   = 0
	InDelete    = 0
	InEventSize = 16
	MsgTrunc    = 0
)

type Cred struct {
	PID, UID, GID int
	Groups        []int
}

func LockDir(path string, timeout time.Duration) (int, error) { return -1, ErrNotSupported }
func UnlockDir(fd int) error                                  { return ErrNotSupported }
func WatchDir(dir string, mask uint32) (int, error)           { return -1, ErrNotSupported }
func InotifyNames(b []byte) []string                          { return nil }
func PeerCred(fd int) (Cred, error)                           { return Cred{}, ErrNotSupported }
func UnixRights(fds ...int) []byte                            { return nil }
func ParseRights(oob []byte) ([]int, error)                   { return nil, ErrNotSupported }

func Dup(fd int) (int, error) { return -1, ErrNotSupported }

func IsTerminal(fd int) bool { return false }

func FutexWakeRaw(addr *uint32) error { return ErrNotSupported }

func SleepUntil(mono int64) error { return ErrNotSupported }

func FutexWaitShort(addr *uint32, val uint32, timeout time.Duration) error { return ErrNotSupported }
func SetTimerSlack(d time.Duration) error                                  { return ErrNotSupported }
func ProcessCPU() (time.Duration, error)                                   { return 0, ErrNotSupported }
