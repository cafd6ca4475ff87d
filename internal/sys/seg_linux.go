//go:build linux

package sys

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// More errno values the callers test for with errors.Is.
var (
	ECONNREFUSED error = unix.ECONNREFUSED
	ECONNRESET   error = unix.ECONNRESET
	EPIPE        error = unix.EPIPE
	ENOSPC       error = unix.ENOSPC
	ENOMEM       error = unix.ENOMEM
	EMFILE       error = unix.EMFILE
	ENFILE       error = unix.ENFILE
	ENOPROTOOPT  error = unix.ENOPROTOOPT
	EWOULDBLOCK  error = unix.EWOULDBLOCK
	ELOOP        error = unix.ELOOP
	ENOTDIR      error = unix.ENOTDIR
)

// Signals that end a program gracefully: Ctrl-C, a polite kill, and the
// end of its terminal or ssh session.
var TermSignals = []os.Signal{os.Interrupt, unix.SIGTERM, unix.SIGHUP}

// SnapshotSignal asks a flight recorder (busctl record --snapshot) to
// write what it holds: SIGUSR1.
var SnapshotSignal os.Signal = unix.SIGUSR1

// File seals (fcntl F_ADD_SEALS, memfd only).
const (
	SealSeal        = unix.F_SEAL_SEAL         // no more seals may be added
	SealShrink      = unix.F_SEAL_SHRINK       // the size may not go down
	SealGrow        = unix.F_SEAL_GROW         // the size may not go up
	SealFutureWrite = unix.F_SEAL_FUTURE_WRITE // no new write(2) or writable mapping; existing mappings keep writing
)

// MemfdCreate creates an anonymous memory file that accepts seals,
// close-on-exec. It has no name in any file system: nobody can open it but
// through a descriptor its creator hands out, and it is gone when the last
// descriptor and mapping are.
func MemfdCreate(name string) (int, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, fmt.Errorf("memfd_create: %w", err)
	}
	return fd, nil
}

// Fallocate reserves the first size bytes of fd: for a memory file it
// allocates the pages now, so that touching them later cannot fail.
func Fallocate(fd int, size int64) error {
	for {
		err := unix.Fallocate(fd, 0, 0, size)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// AddSeals adds seals to the memory file fd.
func AddSeals(fd int, seals int) error {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals)
	return err
}

// Seals returns the seals of fd; a file that cannot be sealed has none.
func Seals(fd int) (int, error) {
	s, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if errors.Is(err, unix.EINVAL) {
		return 0, nil
	}
	return s, err
}

// RemapAnonymous replaces the mapping b in place with private zero pages
// of the same length (mmap MAP_FIXED, one step under the kernel's mapping
// lock): another goroutine still reading or writing b touches harmless
// private memory and never faults. The shared pages it mapped are released.
// The caller unmaps b later with Munmap.
func RemapAnonymous(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	_, err := unix.MmapPtr(-1, 0, unsafe.Pointer(&b[0]), uintptr(len(b)),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED)
	return err
}

// PeerGroups returns the supplementary groups of the process at the other
// end of the Unix socket fd, as the kernel recorded them when it connected
// (SO_PEERGROUPS, Linux 4.13+).
func PeerGroups(fd int) ([]int, error) {
	buf := make([]uint32, 64)
	for {
		n := uint32(len(buf) * 4)
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		if e == unix.ERANGE && int(n) > len(buf)*4 && n <= 1<<20 {
			buf = make([]uint32, n/4)
			continue
		}
		if e != 0 {
			return nil, e
		}
		gids := make([]int, 0, n/4)
		for _, g := range buf[:n/4] {
			gids = append(gids, int(g))
		}
		return gids, nil
	}
}

// Directories by descriptor: a directory opened once with OpenDir and
// checked on its descriptor cannot be swapped for a symbolic link or
// another directory afterwards; everything below goes through *at calls.

// OpenDir opens the directory path, refusing a symbolic link as its last
// component.
func OpenDir(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

// Mkdir creates the directory path with mode perm (less the umask).
func Mkdir(path string, perm uint32) error {
	if err := unix.Mkdir(path, perm); err != nil {
		return &os.PathError{Op: "mkdir", Path: path, Err: err}
	}
	return nil
}

// Fchmod sets fd's permission bits.
func Fchmod(fd int, perm uint32) error { return unix.Fchmod(fd, perm) }

// Fchown sets fd's owner and group (-1 leaves one as it is).
func Fchown(fd, uid, gid int) error { return unix.Fchown(fd, uid, gid) }

// OpenAt opens name in the directory dirfd read-write, never following a
// symbolic link, close-on-exec; create makes it (exclusively with excl)
// with permission perm.
func OpenAt(dirfd int, name string, create, excl bool, perm uint32) (int, error) {
	flags := unix.O_RDWR | unix.O_NOFOLLOW | unix.O_CLOEXEC
	if create {
		flags |= unix.O_CREAT
		if excl {
			flags |= unix.O_EXCL
		}
	}
	fd, err := unix.Openat(dirfd, name, flags, perm)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return fd, nil
}

// Accept takes a connection off the listening socket fd, non-blocking and
// close-on-exec; EAGAIN when there is none.
func Accept(fd int) (int, error) {
	for {
		nfd, _, err := unix.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if !errors.Is(err, unix.EINTR) {
			return nfd, err
		}
	}
}

// CloseRefused closes a connected socket after refusing its peer, so that
// the peer still reads what was sent: a socket closed with unread data in
// its queue resets the connection, which would drop the refusal on the
// peer's side. It stops further data from being queued (SHUT_RD makes the
// peer's sends fail), drops what is queued, then closes.
func CloseRefused(fd int) {
	unix.Shutdown(fd, unix.SHUT_RD)
	var buf [512]byte
	for range 64 {
		if n, err := unix.Read(fd, buf[:]); n <= 0 || err != nil {
			break
		}
	}
	unix.Close(fd)
}

// Write writes b to fd once.
func Write(fd int, b []byte) (int, error) { return unix.Write(fd, b) }

// Pwrite writes b to fd at off.
func Pwrite(fd int, b []byte, off int64) (int, error) { return unix.Pwrite(fd, b, off) }

// RenameAt renames oldname to newname in the directory dirfd, replacing
// what newname named.
func RenameAt(dirfd int, oldname, newname string) error {
	if err := unix.Renameat(dirfd, oldname, dirfd, newname); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	return nil
}

// UnlinkAt removes the name in the directory dirfd.
func UnlinkAt(dirfd int, name string) error {
	if err := unix.Unlinkat(dirfd, name, 0); err != nil {
		return &os.PathError{Op: "unlink", Path: name, Err: err}
	}
	return nil
}

// FchmodAt sets the permission bits of name in the directory dirfd.
func FchmodAt(dirfd int, name string, perm uint32) error {
	if err := unix.Fchmodat(dirfd, name, perm, 0); err != nil {
		return &os.PathError{Op: "chmod", Path: name, Err: err}
	}
	return nil
}

// FchownAt sets the group of name in the directory dirfd, not following a
// symbolic link.
func FchownAt(dirfd int, name string, gid int) error {
	if err := unix.Fchownat(dirfd, name, -1, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "chown", Path: name, Err: err}
	}
	return nil
}

// StatAt returns what the kernel says of name in the directory dirfd, not
// following a symbolic link.
func StatAt(dirfd int, name string) (Stat, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return Stat{}, &os.PathError{Op: "stat", Path: name, Err: err}
	}
	return Stat{ID: FileID{uint64(st.Dev), uint64(st.Ino)}, Size: st.Size, Mode: st.Mode, UID: st.Uid, GID: st.Gid}, nil
}

// IsDir, IsRegular and IsSocket test a Stat's file type.
func (s Stat) IsDir() bool     { return s.Mode&unix.S_IFMT == unix.S_IFDIR }
func (s Stat) IsRegular() bool { return s.Mode&unix.S_IFMT == unix.S_IFREG }
func (s Stat) IsSocket() bool  { return s.Mode&unix.S_IFMT == unix.S_IFSOCK }

// Perm returns a Stat's permission bits.
func (s Stat) Perm() uint32 { return s.Mode & 0o7777 }

// Flock takes an flock on fd: exclusive or shared, without waiting
// (EWOULDBLOCK while another description holds a conflicting one).
func Flock(fd int, exclusive bool) error {
	how := unix.LOCK_SH | unix.LOCK_NB
	if exclusive {
		how = unix.LOCK_EX | unix.LOCK_NB
	}
	for {
		err := unix.Flock(fd, how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// DirPath returns a path that names the directory open as dirfd, for calls
// that take only paths (bind and connect of Unix sockets): it goes through
// the descriptor, so no rename or symbolic link can redirect it.
func DirPath(dirfd int) string { return "/proc/self/fd/" + strconv.Itoa(dirfd) }

// MemoryHeadroom returns how many bytes of memory this process can still
// allocate without reaching its memory cgroup's limit (v1 or v2, every
// ancestor included) or the host's available memory, whichever is least,
// and a description of that limit.
func MemoryHeadroom() (uint64, string) {
	best, what := meminfoAvailable()
	for _, l := range cgroupLimits() {
		if l.free < best {
			best, what = l.free, l.what
		}
	}
	return best, what
}

type memLimit struct {
	free uint64
	what string
}

func meminfoAvailable() (uint64, string) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 1<<64 - 1, "no /proc/meminfo"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return kb * 1024, "MemAvailable in /proc/meminfo"
			}
		}
	}
	return 1<<64 - 1, "no MemAvailable in /proc/meminfo"
}

// cgroupLimits reads the memory limits of this process's cgroup and its
// ancestors.
func cgroupLimits() []memLimit {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil
	}
	var out []memLimit
	for _, line := range bytes.Split(b, []byte("\n")) {
		f := strings.SplitN(string(line), ":", 3)
		if len(f) != 3 {
			continue
		}
		switch {
		case f[0] == "0" && f[1] == "": // v2
			out = append(out, walkLimits("/sys/fs/cgroup", f[2], "memory.max", "memory.current")...)
		case strings.Contains(","+f[1]+",", ",memory,"): // v1
			out = append(out, walkLimits("/sys/fs/cgroup/memory", f[2], "memory.limit_in_bytes", "memory.usage_in_bytes")...)
		}
	}
	return out
}

func walkLimits(root, rel, maxFile, curFile string) []memLimit {
	var out []memLimit
	for p := filepath.Clean("/" + rel); ; p = filepath.Dir(p) {
		dir := filepath.Join(root, p)
		limit, err1 := readUint(filepath.Join(dir, maxFile))
		used, err2 := readUint(filepath.Join(dir, curFile))
		if err1 == nil && err2 == nil && limit < 1<<62 {
			free := uint64(0)
			if limit > used {
				free = limit - used
			}
			out = append(out, memLimit{free, fmt.Sprintf("memory cgroup %s (limit %d, in use %d)", dir, limit, used)})
		}
		if p == "/" {
			return out
		}
	}
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 1<<64 - 1, nil
	}
	return strconv.ParseUint(s, 10, 64)
}
