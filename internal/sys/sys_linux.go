//go:build linux

package sys

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Errno values the callers test for with errors.Is.
var (
	EAGAIN    error = unix.EAGAIN
	EEXIST    error = unix.EEXIST
	ENOENT    error = unix.ENOENT
	EINTR     error = unix.EINTR
	ETIMEDOUT error = unix.ETIMEDOUT
)

// PageSize is the system's memory page size.
func PageSize() int { return unix.Getpagesize() }

// CreateUnnamed creates a regular file with no name in dir (O_TMPFILE),
// opened read-write and close-on-exec, with the given permission bits.
// The file is invisible to others until Link gives it a name, so it can be
// fully initialised and locked first.
func CreateUnnamed(dir string, perm uint32) (int, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, perm)
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) {
			return -1, fmt.Errorf("create in %s: file system has no O_TMPFILE: %w", dir, ErrNotSupported)
		}
		return -1, &os.PathError{Op: "create", Path: dir, Err: err}
	}
	// O_TMPFILE applies the umask; the caller asked for exact bits.
	if err := unix.Fchmod(fd, perm); err != nil {
		unix.Close(fd)
		return -1, &os.PathError{Op: "chmod", Path: dir, Err: err}
	}
	return fd, nil
}

// Link gives the unnamed file fd the name path. It fails with EEXIST if
// path exists: it never replaces a file.
func Link(fd int, path string) error {
	// AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc/self/fd works for anyone.
	err := unix.Linkat(fd, "", unix.AT_FDCWD, path, unix.AT_EMPTY_PATH)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPERM) {
		err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
	}
	if err != nil {
		return &os.LinkError{Op: "link", Old: "fd " + strconv.Itoa(fd), New: path, Err: err}
	}
	return nil
}

// Open opens path without following a final symbolic link, close-on-exec.
// write selects O_RDWR over O_RDONLY.
func Open(path string, write bool) (int, error) {
	flags := unix.O_RDONLY
	if write {
		flags = unix.O_RDWR
	}
	fd, err := unix.Open(path, flags|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

// Reopen opens the file behind fd again, as a new open file description.
// write selects O_RDWR over O_RDONLY.
func Reopen(fd int, write bool) (int, error) {
	flags := unix.O_RDONLY
	if write {
		flags = unix.O_RDWR
	}
	// The /proc link must be followed: no O_NOFOLLOW here.
	p := "/proc/self/fd/" + strconv.Itoa(fd)
	nfd, err := unix.Open(p, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "reopen", Path: p, Err: err}
	}
	return nfd, nil
}

// Close closes fd.
func Close(fd int) error { return unix.Close(fd) }

// Truncate sets the size of the file fd.
func Truncate(fd int, size int64) error { return unix.Ftruncate(fd, size) }

// FileID identifies a file: device and inode.
type FileID struct{ Dev, Ino uint64 }

// Stat describes an open file.
type Stat struct {
	ID   FileID
	Size int64
	Mode uint32 // permission bits and type, as st_mode
	UID  uint32
	GID  uint32
}

// Fstat returns what the kernel says of fd.
func Fstat(fd int) (Stat, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Stat{}, err
	}
	return Stat{ID: FileID{uint64(st.Dev), uint64(st.Ino)}, Size: st.Size, Mode: st.Mode, UID: st.Uid, GID: st.Gid}, nil
}

// Lstat returns what the kernel says of path, not following a final link.
func Lstat(path string) (Stat, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return Stat{}, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	return Stat{ID: FileID{uint64(st.Dev), uint64(st.Ino)}, Size: st.Size, Mode: st.Mode, UID: st.Uid, GID: st.Gid}, nil
}

// Unlink removes the name path.
func Unlink(path string) error {
	if err := unix.Unlink(path); err != nil {
		return &os.PathError{Op: "unlink", Path: path, Err: err}
	}
	return nil
}

// Mmap maps length bytes of fd from offset 0, shared. write selects
// PROT_READ|PROT_WRITE over PROT_READ.
func Mmap(fd int, length int, write bool) ([]byte, error) {
	prot := unix.PROT_READ
	if write {
		prot |= unix.PROT_WRITE
	}
	b, err := unix.Mmap(fd, 0, length, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes: %w", length, err)
	}
	return b, nil
}

// Munmap unmaps a mapping made by Mmap.
func Munmap(b []byte) error { return unix.Munmap(b) }

// Open-file-description (OFD) locks are byte-range locks owned by the open
// file description, not the process: they are released when the last
// descriptor of that description closes (including at process death), they
// survive fork and exec only where the description does, and querying them
// (TestLock) takes no lock, so a prober never disturbs a writer.

// TryLock takes a write lock on the one byte at off, without waiting.
// It returns EAGAIN if another description holds a conflicting lock.
func TryLock(fd int, off int64) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: off, Len: 1}
	err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk)
	if errors.Is(err, unix.EACCES) {
		err = unix.EAGAIN // POSIX allows either for "held"
	}
	return err
}

// Unlock releases a lock taken with TryLock.
func Unlock(fd int, off int64) error {
	lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: 0, Start: off, Len: 1}
	return unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk)
}

// Locked reports whether any open file description other than fd's holds a
// lock on the byte at off. It takes no lock. fd may be read-only.
func Locked(fd int, off int64) (bool, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: off, Len: 1}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, &lk); err != nil {
		return false, err
	}
	return lk.Type != unix.F_UNLCK, nil
}

// Futex operations (linux/futex.h). Deliberately without
// FUTEX_PRIVATE_FLAG: a private futex is keyed by the process's address
// space, so a wake from another process would never reach it.
const (
	futexWait = 0
	futexWake = 1
)

// FutexWait sleeps while *addr == val, for at most timeout (forever if
// timeout < 0). addr must lie in a MAP_SHARED mapping; the futex is
// process-shared (no FUTEX_PRIVATE_FLAG), so a wake from another process
// reaches it. It returns nil when woken (possibly spuriously), EAGAIN if
// *addr != val on entry, EINTR on a signal, ETIMEDOUT on timeout.
func FutexWait(addr *uint32, val uint32, timeout time.Duration) error {
	var tsp *unix.Timespec
	if timeout >= 0 {
		ts := unix.NsecToTimespec(int64(timeout))
		tsp = &ts
	}
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWait, uintptr(val), uintptr(unsafe.Pointer(tsp)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// FutexWake wakes every process sleeping on addr in FutexWait.
func FutexWake(addr *uint32) error {
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWake, uintptr(1<<31-1), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// ClockMonotonic reads CLOCK_MONOTONIC through the system call. It is the
// reference the fast clock in internal/clock is tested against.
func ClockMonotonic() (int64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, err
	}
	return ts.Nano(), nil
}

// Pread reads from fd at off without moving its file offset.
func Pread(fd int, b []byte, off int64) (int, error) { return unix.Pread(fd, b, off) }

// EPERM is the errno for an operation not permitted.
var EPERM error = unix.EPERM

// Gettid returns the calling OS thread's id. Meaningful only while the
// goroutine is locked to its thread.
func Gettid() int { return unix.Gettid() }

// SetAffinity pins thread tid (0: the calling thread) to cpus.
func SetAffinity(tid int, cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	return unix.SchedSetaffinity(tid, &set)
}

// Affinity returns the CPUs thread tid (0: the calling thread) may run on.
func Affinity(tid int) ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(tid, &set); err != nil {
		return nil, err
	}
	var cpus []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// Scheduling policies (linux/sched.h).
const (
	SchedOther = unix.SCHED_NORMAL
	SchedFIFO  = unix.SCHED_FIFO
)

// SetFIFO puts thread tid under SCHED_FIFO at priority prio, with
// reset-on-fork so that children do not inherit it.
func SetFIFO(tid, prio int) error {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(prio), Flags: unix.SCHED_FLAG_RESET_ON_FORK}
	return unix.SchedSetAttr(tid, &attr, 0)
}

// SetOther puts thread tid back under SCHED_OTHER at nice 0.
func SetOther(tid int) error {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}
	return unix.SchedSetAttr(tid, &attr, 0)
}

// Scheduler returns thread tid's policy and real-time priority.
func Scheduler(tid int) (policy, prio int, err error) {
	attr, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		return 0, 0, err
	}
	return int(attr.Policy), int(attr.Priority), nil
}

// LockMemory locks the process's current and future pages in RAM
// (mlockall). onFault locks pages as they are first touched instead of
// all at once (MCL_ONFAULT, Linux 4.4+).
func LockMemory(onFault bool) error {
	flags := unix.MCL_CURRENT | unix.MCL_FUTURE
	if onFault {
		flags |= unix.MCL_ONFAULT
	}
	return unix.Mlockall(flags)
}

// UnlockMemory undoes LockMemory.
func UnlockMemory() error { return unix.Munlockall() }

// Prefault faults in every page of the mapping b: MADV_POPULATE_READ or
// _WRITE where the kernel has them (5.14+), else a read of each page.
func Prefault(b []byte, write bool) error {
	if len(b) == 0 {
		return nil
	}
	advice := unix.MADV_POPULATE_READ
	if write {
		advice = unix.MADV_POPULATE_WRITE
	}
	err := unix.Madvise(b, advice)
	if !errors.Is(err, unix.EINVAL) {
		return err
	}
	page := unix.Getpagesize()
	for off := 0; off < len(b); off += page {
		// An atomic load: never optimised away, and allowed on memory
		// another process writes.
		atomic.LoadUint32((*uint32)(unsafe.Pointer(&b[off])))
	}
	return nil
}

// Kernel returns the kernel's release and version strings (uname -r, -v).
func Kernel() (release, version string) {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "", ""
	}
	return unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Version[:])
}

// LockDir takes an exclusive flock on directory path, waiting at most
// timeout. It returns the descriptor to pass to UnlockDir. The lock is the
// kernel's: it goes when the process dies.
func LockDir(path string, timeout time.Duration) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	deadline := time.Now().Add(timeout)
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return fd, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			unix.Close(fd)
			return -1, &os.PathError{Op: "flock", Path: path, Err: err}
		}
		if time.Now().After(deadline) {
			unix.Close(fd)
			return -1, &os.PathError{Op: "flock", Path: path, Err: unix.ETIMEDOUT}
		}
		time.Sleep(time.Millisecond)
	}
}

// UnlockDir releases a lock taken with LockDir.
func UnlockDir(fd int) error { return unix.Close(fd) }

// Inotify events used by the bus.
const (
	InCreate    = unix.IN_CREATE
	InMovedTo   = unix.IN_MOVED_TO
	InDelete    = unix.IN_DELETE
	InEventSize = unix.SizeofInotifyEvent
)

// WatchDir returns a non-blocking inotify descriptor watching dir for the
// events in mask. Read it through os.NewFile so reads honour deadlines.
func WatchDir(dir string, mask uint32) (int, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return -1, err
	}
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return -1, &os.PathError{Op: "inotify_add_watch", Path: dir, Err: err}
	}
	return fd, nil
}

// InotifyNames parses a buffer of inotify events into the names they
// carry.
func InotifyNames(b []byte) []string {
	var names []string
	for len(b) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		n := int(ev.Len)
		end := unix.SizeofInotifyEvent + n
		if end > len(b) {
			break
		}
		names = append(names, unix.ByteSliceToString(b[unix.SizeofInotifyEvent:end]))
		b = b[end:]
	}
	return names
}

// Cred is a peer's credentials.
type Cred struct {
	PID, UID, GID int
	Groups        []int // supplementary groups; nil where the kernel cannot tell (SO_PEERGROUPS)
}

// PeerCred returns the credentials and groups of the process at the other
// end of the Unix socket fd, as they were when it connected (SO_PEERCRED,
// SO_PEERGROUPS): a peer cannot change them afterwards, and no pid reuse
// can confuse them.
func PeerCred(fd int) (Cred, error) {
	u, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return Cred{}, err
	}
	groups, _ := PeerGroups(fd) // an emulator may not know the option: primary group only
	return Cred{PID: int(u.Pid), UID: int(u.Uid), GID: int(u.Gid), Groups: groups}, nil
}

// UnixRights encodes descriptors as an SCM_RIGHTS control message.
func UnixRights(fds ...int) []byte { return unix.UnixRights(fds...) }

// ParseRights returns the descriptors in the SCM_RIGHTS messages of oob.
func ParseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for i := range msgs {
		got, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			continue
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

// MsgTrunc is the recvmsg flag for a message cut short.
const MsgTrunc = unix.MSG_TRUNC

// Dup duplicates fd (close-on-exec). The copy shares the open file
// description, and so its access mode: no permission check on any path.
func Dup(fd int) (int, error) { return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0) }

// IsTerminal reports whether fd is a terminal.
func IsTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// FutexWakeRaw is FutexWake without the Go runtime's system-call
// bookkeeping (entersyscall and exitsyscall, which let the scheduler hand
// the thread's P to another thread while a call blocks). FUTEX_WAKE never
// blocks, so there is nothing to hand over, and the waker saves that work
// on the path to the sleeper.
func FutexWakeRaw(addr *uint32) error {
	_, _, e := unix.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWake, uintptr(1<<31-1), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// FutexWaitShort is FutexWait for a short, bounded sleep, made without
// the Go runtime's system-call bookkeeping. The scheduler then takes the
// caller for a running goroutine: its P stays with it, no other goroutine
// runs on that P, and a stop-the-world (garbage collection) waits for the
// call to end. So timeout must be short (callers keep it to a fraction of
// a millisecond) and positive, and the program should have another P
// (GOMAXPROCS >= 2) for its other goroutines.
//
// What it saves: a goroutine that sleeps through the runtime's path every
// 100 µs has its P retaken by sysmon and handed to another thread, so
// that each wake-up wakes two or three threads (Go 1.26; on the 2-vCPU VM
// 26 µs of CPU a wake-up instead of 7).
func FutexWaitShort(addr *uint32, val uint32, timeout time.Duration) error {
	ts := unix.NsecToTimespec(int64(max(timeout, 1)))
	_, _, e := unix.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWait, uintptr(val), uintptr(unsafe.Pointer(&ts)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// SleepUntil sleeps until CLOCK_MONOTONIC (internal/clock's Mono) reads
// at least mono, or a signal interrupts it (EINTR: the caller looks at the
// clock again). Unlike a Go timer, whose wake-up can come up to a
// millisecond late, it ends within the thread's timer slack (see
// SetTimerSlack) and the kernel's wake-up latency.
func SleepUntil(mono int64) error {
	ts := unix.NsecToTimespec(mono)
	return unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil)
}

// SetTimerSlack sets the calling thread's timer slack (PR_SET_TIMERSLACK):
// how much later than asked the kernel may end its timed waits, to batch
// wake-ups. The default is 50 µs; 0 restores the thread's default. It
// applies to whichever thread runs the caller at the time.
func SetTimerSlack(d time.Duration) error {
	_, _, e := unix.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_TIMERSLACK, uintptr(d), 0, 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// ProcessCPU returns the CPU time, user and system, that the calling
// process has used (getrusage RUSAGE_SELF).
func ProcessCPU() (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
