package bus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/sensorbus/sensorbus/internal/sys"
)

// EnvDir names the environment variable that overrides the bus directory.
const EnvDir = "SENSORBUS_DIR"

// MaxTopicLen bounds a topic name. A topic's socket is reached through
// /proc/self/fd/N/TOPIC.sock, which must fit a Unix socket address (108
// bytes) whatever the bus directory's path.
const MaxTopicLen = 64

// lockTimeout bounds the wait for the bus lock, which every holder keeps
// for a few system calls.
const lockTimeout = 5 * time.Second

// Names in the bus directory.
const (
	lockName   = ".lock" // the bus lock (flock), 0600: only the owner can take it
	sockSuffix = ".sock" // a topic's control socket
	pubSuffix  = ".pub"  // a topic's liveness file, 0600: flocked by its publisher for its lifetime
)

// Options locates a bus. The zero value is the calling user's default bus.
type Options struct {
	// Dir is the bus directory, where control sockets live. Empty means
	// $SENSORBUS_DIR, else $XDG_RUNTIME_DIR/sensorbus, else /run/sensorbus
	// for root, else /tmp/sensorbus-UID. A publisher creates it (only its
	// last component) 0700, or 0750 with SharedGID; a directory that is a
	// symbolic link, belongs to another user (but root, or the shared
	// group for a subscriber) or that others may write is refused and
	// never modified. Subscribers and busctl never create it.
	Dir string

	// SharedGID, if not 0, shares the bus with a group: the directory is
	// owned by that group and 0750, sockets are 0660. Its members can
	// reach the topics' sockets and nothing else in the directory; access
	// to a topic is still decided by its publisher's allow lists.
	SharedGID int

	// Logger receives the bus's log lines; nil means none.
	Logger *zap.Logger
}

// DefaultDir returns the bus directory used when Options.Dir is empty.
func DefaultDir() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "sensorbus")
	}
	if os.Geteuid() == 0 {
		return "/run/sensorbus"
	}
	return "/tmp/sensorbus-" + strconv.Itoa(os.Geteuid())
}

// bus is a bus directory, open and checked. Everything in it is reached
// through fd, never through its path again, so the directory cannot be
// swapped for another under us.
type bus struct {
	dir    string // absolute path, for messages
	fd     int
	gid    int
	owner  bool // the directory is this user's: its files may be opened
	logger *zap.Logger
}

// open opens the bus directory. A publisher (create) makes it if it is
// missing; others get ErrNoBus.
func (o Options) open(create bool) (*bus, error) {
	dir := o.Dir
	if dir == "" {
		dir = DefaultDir()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	if o.SharedGID < 0 {
		return nil, fmt.Errorf("bus: negative shared group %d", o.SharedGID)
	}
	made := false
	if create {
		perm := uint32(0o700)
		if o.SharedGID != 0 {
			perm = 0o750
		}
		err := sys.Mkdir(abs, perm)
		switch {
		case err == nil:
			made = true
		case errors.Is(err, os.ErrExist):
		case errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("%w at %s: its parent directory does not exist", ErrNoBus, abs)
		default:
			return nil, fmt.Errorf("bus: create %s: %w", abs, err)
		}
	}
	fd, err := sys.OpenDir(abs)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("%w at %s (no such directory)", ErrNoBus, abs)
		case errors.Is(err, sys.ELOOP):
			return nil, fmt.Errorf("%w: %s is a symbolic link", ErrBadDir, abs)
		case errors.Is(err, sys.ENOTDIR):
			return nil, fmt.Errorf("%w: %s is not a directory", ErrBadDir, abs)
		}
		return nil, fmt.Errorf("bus: %w", err)
	}
	b := &bus{dir: abs, fd: fd, gid: o.SharedGID, logger: o.Logger}
	if b.logger == nil {
		b.logger = zap.NewNop()
	}
	if err := b.check(create, made); err != nil {
		sys.Close(fd)
		return nil, err
	}
	return b, nil
}

// check makes sure the open directory is safe to use, and for a publisher
// fixes its group and mode on the descriptor if it is the caller's own.
func (b *bus) check(create, made bool) error {
	st, err := sys.Fstat(b.fd)
	if err != nil {
		return fmt.Errorf("bus: %s: %w", b.dir, err)
	}
	euid := os.Geteuid()
	b.owner = int(st.UID) == euid
	perm := st.Perm()
	if perm&0o022 != 0 {
		return fmt.Errorf("%w: %s has mode %o: others may write it (want 0700, or 0750 for a shared bus)", ErrBadDir, b.dir, perm)
	}
	if create {
		// A publisher puts its files in no one else's directory.
		if !b.owner {
			return fmt.Errorf("%w: %s belongs to uid %d, not to this user (uid %d)", ErrBadDir, b.dir, st.UID, euid)
		}
		if b.gid != 0 && int(st.GID) != b.gid {
			if err := sys.Fchown(b.fd, -1, b.gid); err != nil {
				return fmt.Errorf("bus: give %s to group %d: %w", b.dir, b.gid, err)
			}
		}
		want := perm | 0o700
		switch {
		case made && b.gid != 0:
			want = 0o750 // exactly: the umask narrowed it
		case made:
			want = 0o700
		case b.gid != 0:
			want |= 0o050 // a bus becoming shared; an unshared one is left as it is
		}
		if want != perm {
			if err := sys.Fchmod(b.fd, want); err != nil {
				return fmt.Errorf("bus: chmod %s: %w", b.dir, err)
			}
		}
		return nil
	}
	// Ours, or root's; or, for a bus the caller joins as a group member
	// (SharedGID), any owner's if the directory belongs to that group.
	if !b.owner && st.UID != 0 && (b.gid == 0 || int(st.GID) != b.gid) {
		return fmt.Errorf("%w: %s belongs to uid %d, not to this user (uid %d); to join another user's bus, give its group as the shared group", ErrBadDir, b.dir, st.UID, euid)
	}
	return nil
}

func (b *bus) close() { sys.Close(b.fd) }

// addr returns the path through which a name in the bus directory is
// reached by calls that take only paths (bind, connect, inotify).
func (b *bus) addr(name string) string { return sys.DirPath(b.fd) + "/" + name }

// path returns the real path of a name in the bus directory, for messages.
func (b *bus) path(name string) string { return filepath.Join(b.dir, name) }

// lock takes the bus lock: every creation and removal of a topic's files
// happens under it, so a garbage collector never removes what a starting
// publisher is putting in place. The lock file is the owner's alone (0600):
// no member of the bus group, nor anyone holding a descriptor a publisher
// handed out, can take or hold it.
func (b *bus) lock() (unlock func(), err error) {
	fd, err := sys.OpenAt(b.fd, lockName, true, false, 0o600)
	if err != nil {
		return nil, fmt.Errorf("bus: open the bus lock in %s: %w", b.dir, err)
	}
	if err := checkPrivate(fd); err != nil {
		sys.Close(fd)
		return nil, fmt.Errorf("%w: %s: %v", ErrBadDir, b.path(lockName), err)
	}
	deadline := time.Now().Add(lockTimeout)
	for {
		err := sys.Flock(fd, true)
		if err == nil {
			return func() { sys.Close(fd) }, nil
		}
		if !errors.Is(err, sys.EWOULDBLOCK) || time.Now().After(deadline) {
			sys.Close(fd)
			return nil, fmt.Errorf("bus: lock %s (held for more than %v?): %w", b.path(lockName), lockTimeout, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// checkPrivate makes sure fd is a regular file of this user's that nobody
// else may open.
func checkPrivate(fd int) error {
	st, err := sys.Fstat(fd)
	if err != nil {
		return err
	}
	if !st.IsRegular() || int(st.UID) != os.Geteuid() || st.Perm()&0o077 != 0 {
		return fmt.Errorf("not a private regular file of uid %d (mode %o, uid %d)", os.Geteuid(), st.Mode, st.UID)
	}
	return nil
}

// names lists the bus directory's entries.
func (b *bus) names() ([]string, error) {
	fd, err := sys.Dup(b.fd)
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	f := os.NewFile(uintptr(fd), b.dir)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("bus: read %s: %w", b.dir, err)
	}
	return names, nil
}

// ValidTopic reports why name cannot name a topic, or nil. The error wraps
// ErrInvalid.
func ValidTopic(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty topic name", ErrInvalid)
	}
	if len(name) > MaxTopicLen {
		return fmt.Errorf("%w: topic name of %d bytes exceeds %d", ErrInvalid, len(name), MaxTopicLen)
	}
	if name[0] == '.' || name[0] == '-' {
		return fmt.Errorf("%w: topic name %q starts with %q", ErrInvalid, name, name[0])
	}
	for _, suffix := range []string{sockSuffix, pubSuffix} {
		if strings.HasSuffix(name, suffix) {
			return fmt.Errorf("%w: topic name %q ends in %q", ErrInvalid, name, suffix)
		}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: topic name %q: %q at byte %d is not a letter, digit, '.', '_' or '-' (ASCII only)", ErrInvalid, name, c, i)
		}
	}
	return nil
}
