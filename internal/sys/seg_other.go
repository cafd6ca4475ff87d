//go:build !linux

package sys

import (
	"os"
	"syscall"
)

var TermSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

var SnapshotSignal os.Signal = syscall.SIGUSR1

var (
	ECONNREFUSED error = syscall.ECONNREFUSED
	ECONNRESET   error = syscall.ECONNRESET
	EPIPE        error = syscall.EPIPE
	ENOSPC       error = syscall.ENOSPC
	ENOMEM       error = syscall.ENOMEM
	EMFILE       error = syscall.EMFILE
	ENFILE       error = syscall.ENFILE
	ENOPROTOOPT  error = syscall.ENOPROTOOPT
	EWOULDBLOCK  error = syscall.EWOULDBLOCK
	ELOOP        error = syscall.ELOOP
	ENOTDIR      error = syscall.ENOTDIR
)

const (
	SealSeal        = 1
	SealShrink      = 2
	SealGrow        = 4
	SealFutureWrite = 16
)

func MemfdCreate(name string) (int, error) { return -1, ErrNotSupported }
func Fallocate(fd int, size int64) error   { return ErrNotSupported }
func AddSeals(fd int, seals int) error     { return ErrNotSupported }
func Seals(fd int) (int, error)            { return 0, ErrNotSupported }
func RemapAnonymous(b []byte) error        { return ErrNotSupported }
func PeerGroups(fd int) ([]int, error)     { return nil, ErrNotSupported }
func OpenDir(path string) (int, error)     { return -1, ErrNotSupported }
func Mkdir(path string, perm uint32) error { return ErrNotSupported }
func Fchmod(fd int, perm uint32) error     { return ErrNotSupported }
func Fchown(fd, uid, gid int) error        { return ErrNotSupported }
func OpenAt(dirfd int, name string, create, excl bool, perm uint32) (int, error) {
	return -1, ErrNotSupported
}
func Accept(fd int) (int, error)                         { return -1, ErrNotSupported }
func CloseRefused(fd int)                                {}
func Write(fd int, b []byte) (int, error)                { return 0, ErrNotSupported }
func Pwrite(fd int, b []byte, off int64) (int, error)    { return 0, ErrNotSupported }
func RenameAt(dirfd int, oldname, newname string) error  { return ErrNotSupported }
func UnlinkAt(dirfd int, name string) error              { return ErrNotSupported }
func FchmodAt(dirfd int, name string, perm uint32) error { return ErrNotSupported }
func FchownAt(dirfd int, name string, gid int) error     { return ErrNotSupported }
func StatAt(dirfd int, name string) (Stat, error)        { return Stat{}, ErrNotSupported }
func (s Stat) IsDir() bool                               { return false }
func (s Stat) IsRegular() bool                           { return false }
func (s Stat) IsSocket() bool                            { return false }
func (s Stat) Perm() uint32                              { return s.Mode & 0o7777 }
func Flock(fd int, exclusive bool) error                 { return ErrNotSupported }
func DirPath(dirfd int) string                           { return "" }
func MemoryHeadroom() (uint64, string)                   { return 1<<64 - 1, "unknown" }
