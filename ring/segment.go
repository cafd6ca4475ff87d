package ring

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sensorbus/sensorbus/internal/sys"
)

// WakeSuffix is appended to a ring's file name to name its wake file.
const WakeSuffix = ".wake"

// installAttempts bounds the loop that replaces a stale file; every turn
// of it means another process changed the directory entry meanwhile.
const installAttempts = 64

// newGeneration returns a random non-zero generation id.
func newGeneration() (uint64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("ring: generation: %w", err)
		}
		if g := binary.LittleEndian.Uint64(b[:]); g != 0 {
			return g, nil
		}
	}
}

// processStart returns a process's start time in clock ticks after boot,
// which with the pid identifies a process despite pid reuse. It reads the
// main thread's stat (/proc/PID/task/PID/stat), which carries the same
// start time as /proc/PID/stat but which emulators such as qemu-user pass
// through rather than synthesise per calling thread, and it parses only
// that field, as a 64-bit number on every architecture.
func processStart(pid int) (uint64, error) {
	p := strconv.Itoa(pid)
	b, err := os.ReadFile("/proc/" + p + "/task/" + p + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStartTime(b)
}

// parseStartTime extracts field 22 (starttime) of a /proc stat line. The
// command name (field 2) is in parentheses and may hold spaces or
// parentheses itself, so fields are counted after its last ')'.
func parseStartTime(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat line without a command name: %q", b)
	}
	f := strings.Fields(string(b[i+1:])) // fields 3 onwards
	const starttime = 22 - 3
	if len(f) <= starttime {
		return 0, fmt.Errorf("stat line with %d fields: %q", len(f)+2, b)
	}
	return strconv.ParseUint(f[starttime], 10, 64)
}

// newFile creates an unnamed, locked file of size bytes in dir, with its
// memory reserved, mapped read-write. The caller initialises it and then
// links it with install.
func newFile(dir string, perm os.FileMode, size int) (fd int, mem []byte, err error) {
	if err := checkMemory(size); err != nil {
		return -1, nil, err
	}
	fd, err = sys.CreateUnnamed(dir, uint32(perm.Perm()))
	if err != nil {
		return -1, nil, err
	}
	defer func() {
		if err != nil {
			sys.Close(fd)
		}
	}()
	// Lock before the file has a name: nobody can ever see it unlocked
	// while its creator lives.
	if err := sys.TryLock(fd, lockWriter); err != nil {
		return -1, nil, fmt.Errorf("lock new segment: %w", err)
	}
	if err := reserve(fd, size, "the file system of "+dir); err != nil {
		return -1, nil, err
	}
	mem, err = sys.Mmap(fd, size, true)
	if err != nil {
		return -1, nil, err
	}
	return fd, mem, nil
}

// newMemfd creates an anonymous memory file of size bytes with its memory
// reserved, mapped read-write. The caller initialises it and then seals it.
func newMemfd(name string, size int) (fd int, mem []byte, err error) {
	if err := checkMemory(size); err != nil {
		return -1, nil, err
	}
	fd, err = sys.MemfdCreate(name)
	if err != nil {
		return -1, nil, err
	}
	defer func() {
		if err != nil {
			sys.Close(fd)
		}
	}()
	if err := reserve(fd, size, "this process's memory"); err != nil {
		return -1, nil, err
	}
	mem, err = sys.Mmap(fd, size, true)
	if err != nil {
		return -1, nil, err
	}
	return fd, mem, nil
}

// checkMemory refuses a segment larger than the memory this process may
// still use. Reserving it anyway would not fail inside a memory cgroup: it
// would summon the OOM killer.
func checkMemory(size int) error {
	free, limit := sys.MemoryHeadroom()
	if uint64(size) > free {
		return &MemoryError{Need: uint64(size), Free: free, Limit: limit}
	}
	return nil
}

// reserve sizes the file fd to size bytes and allocates its memory now, so
// that no later touch of the mapping can fault for want of memory (a file
// only truncated to size would SIGBUS at the first store to a page tmpfs
// cannot back).
func reserve(fd, size int, where string) error {
	if err := sys.Truncate(fd, int64(size)); err != nil {
		return fmt.Errorf("size new segment to %d bytes: %w", size, err)
	}
	if err := sys.Fallocate(fd, int64(size)); err != nil {
		if errors.Is(err, sys.ENOSPC) || errors.Is(err, sys.ENOMEM) {
			return &MemoryError{Need: uint64(size), Limit: where, Err: err}
		}
		return fmt.Errorf("reserve %d bytes for a new segment: %w", size, err)
	}
	return nil
}

// install links the unnamed file fd at path. A file already there is
// replaced only if its writer is dead; if it is alive, install returns a
// *BusyError.
func install(fd int, path string) error {
	for range installAttempts {
		err := sys.Link(fd, path)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sys.EEXIST) {
			return err
		}
		if _, err := removeStale(path, true); err != nil {
			return err
		}
		// Removed, or gone meanwhile: try to link again.
	}
	return fmt.Errorf("ring: %s keeps changing; gave up after %d attempts", path, installAttempts)
}

// removeStale removes path if it is a sensorbus file whose writer is dead.
// It reports whether it removed it. A live writer's file gives a
// *BusyError; a file that vanished meanwhile gives (false, nil). Removal
// follows a protocol every remover shares: hold the file's janitor lock,
// take its writer lock (proving the writer dead), check that path still
// names this very file, then unlink. A writer holds its writer lock from
// before its file has a name until after it unlinks it, so a live writer's
// file can never be removed, and no remover unlinks a newer file that
// replaced the one it checked.
//
// wait says whether to wait (briefly) for another remover's janitor lock.
func removeStale(path string, wait bool) (bool, error) {
	fd, err := sys.Open(path, true)
	if err != nil {
		if errors.Is(err, sys.ENOENT) {
			return false, nil
		}
		return false, err
	}
	defer sys.Close(fd)

	if err := checkOurs(fd, path); err != nil {
		return false, err
	}
	deadline := time.Now().Add(time.Second)
	for {
		err := sys.TryLock(fd, lockJanitor)
		if err == nil {
			break
		}
		if !errors.Is(err, sys.EAGAIN) {
			return false, fmt.Errorf("lock %s: %w", path, err)
		}
		if !wait || time.Now().After(deadline) {
			return false, fmt.Errorf("ring: %s is being removed by another process", path)
		}
		// Another remover holds it for a few system calls.
		time.Sleep(time.Millisecond)
	}
	if err := sys.TryLock(fd, lockWriter); err != nil {
		if errors.Is(err, sys.EAGAIN) {
			return false, &BusyError{Path: path, PID: recordedPID(fd)}
		}
		return false, fmt.Errorf("lock %s: %w", path, err)
	}
	if !sameFile(fd, path) {
		return false, nil
	}
	if err := sys.Unlink(path); err != nil {
		if errors.Is(err, sys.ENOENT) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// sameFile reports whether path names the file open as fd.
func sameFile(fd int, path string) bool {
	a, err := sys.Fstat(fd)
	if err != nil {
		return false
	}
	b, err := sys.Lstat(path)
	return err == nil && a.ID == b.ID
}

// checkOurs refuses to touch a file that is not a ring or wake file.
func checkOurs(fd int, path string) error {
	var b [8]byte
	n, _ := sys.Pread(fd, b[:], 0)
	n = max(n, 0)
	if m := string(b[:n]); m != magic && m != wakeMagic {
		return fmt.Errorf("ring: %s is not a sensorbus segment (magic %q); not touching it", path, m)
	}
	return nil
}

// pidOf reads the writer pid from the ring file at path, or 0.
func pidOf(path string) int {
	fd, err := sys.Open(path, false)
	if err != nil {
		return 0
	}
	defer sys.Close(fd)
	return recordedPID(fd)
}

// recordedPID reads the writer pid from a ring file's header, or 0.
func recordedPID(fd int) int {
	var b [offWriterPID + 4]byte
	if n, _ := sys.Pread(fd, b[:], 0); n < len(b) || string(b[:len(magic)]) != magic {
		return 0
	}
	return int(binary.LittleEndian.Uint32(b[offWriterPID:]))
}

// RemoveStale removes the ring named name in dir and its wake file if their
// writer is dead (killed without Close). It returns the paths it removed.
// A live writer's files give a *BusyError (errors.Is ErrBusy); missing
// files are not an error. It never removes a file that is not a sensorbus
// segment.
func RemoveStale(dir, name string) ([]string, error) {
	var removed []string
	for _, p := range []string{filepath.Join(dir, name), filepath.Join(dir, name+WakeSuffix)} {
		ok, err := removeStale(p, true)
		if err != nil {
			return removed, err
		}
		if ok {
			removed = append(removed, p)
		}
	}
	return removed, nil
}
