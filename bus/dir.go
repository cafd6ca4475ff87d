package bus

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/sensorbus/sensorbus/internal/sys"
	"github.com/sensorbus/sensorbus/ring"
)

// EnvDir names the environment variable that overrides the bus directory.
const EnvDir = "SENSORBUS_DIR"

// MaxTopicLen bounds a topic name.
const MaxTopicLen = 100

// lockTimeout bounds the wait for the bus lock, which every holder keeps
// for a few system calls.
const lockTimeout = 5 * time.Second

// Options locates a bus. The zero value is the calling user's default bus.
type Options struct {
	// Dir is the bus directory, where control sockets live. Empty means
	// $SENSORBUS_DIR, else $XDG_RUNTIME_DIR/sensorbus, else /run/sensorbus
	// for root, else /tmp/sensorbus-UID. It is created 0700 (0750 with
	// SharedGID) and refused if another user owns it or others may write it.
	Dir string

	// ShmDir is where ring segments live; empty means /dev/shm. A bus's
	// segments are named sensorbus-ID-TOPIC, ID derived from Dir, so two
	// buses never collide.
	ShmDir string

	// SharedGID, if not 0, shares the bus with a group: the directory is
	// created 0750 and owned by that group, sockets and segments are made
	// group-accessible. Access is still decided by each publisher's allow
	// lists.
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

// bus is a resolved, checked bus directory.
type bus struct {
	dir    string
	shm    string
	id     string
	gid    int
	logger *zap.Logger
}

func (o Options) open(create bool) (*bus, error) {
	dir := o.Dir
	if dir == "" {
		dir = DefaultDir()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := checkDir(abs, o.SharedGID, create); err != nil {
		return nil, err
	}
	shm := o.ShmDir
	if shm == "" {
		shm = ring.DefaultDir
	}
	h := fnv.New32a()
	h.Write([]byte(abs))
	b := &bus{dir: abs, shm: shm, id: fmt.Sprintf("%08x", h.Sum32()), gid: o.SharedGID, logger: o.Logger}
	if b.logger == nil {
		b.logger = zap.NewNop()
	}
	return b, nil
}

// checkDir makes sure dir exists (creating it if asked) and is safe: a
// real directory, owned by this user, writable by nobody else.
func checkDir(dir string, gid int, create bool) error {
	st, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) && create {
		mode := os.FileMode(0o700)
		if gid != 0 {
			mode = 0o750
		}
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return fmt.Errorf("bus: create %s: %w", filepath.Dir(dir), err)
		}
		if err := os.Mkdir(dir, mode); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("bus: create %s: %w", dir, err)
		}
		if gid != 0 {
			if err := os.Chown(dir, -1, gid); err != nil {
				return fmt.Errorf("bus: give %s to group %d: %w", dir, gid, err)
			}
		}
		os.Chmod(dir, mode) // the umask may have narrowed it
		st, err = os.Lstat(dir)
	}
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%w: %s is a symbolic link", ErrBadDir, dir)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrBadDir, dir)
	}
	// Ours, or root's; or, for a bus the caller joins as a group member
	// (SharedGID), any owner's if the directory belongs to that group.
	if owner, group, ok := ownerOf(st); ok && owner != os.Geteuid() && owner != 0 && (gid == 0 || group != gid) {
		return fmt.Errorf("%w: %s belongs to uid %d, not to this user (uid %d); to join another user's bus, set its group as the shared group", ErrBadDir, dir, owner, os.Geteuid())
	}
	if perm := st.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%w: %s has mode %v: others may write it (want 0700, or 0750 for a shared bus)", ErrBadDir, dir, perm)
	}
	return nil
}

func (b *bus) socketPath(topic string) string { return filepath.Join(b.dir, topic+".sock") }
func (b *bus) segment(topic string) string    { return "sensorbus-" + b.id + "-" + topic }
func (b *bus) segmentPrefix() string          { return "sensorbus-" + b.id + "-" }

// lock takes the bus lock: every creation and removal of a topic's files
// happens under it, so a garbage collector never removes what a starting
// publisher is putting in place.
func (b *bus) lock() (unlock func(), err error) {
	fd, err := sys.LockDir(b.dir, lockTimeout)
	if err != nil {
		return nil, fmt.Errorf("bus: lock %s (another process holds it for more than %v): %w", b.dir, lockTimeout, err)
	}
	return func() { sys.UnlockDir(fd) }, nil
}

// ValidTopic reports why name cannot name a topic, or nil.
func ValidTopic(name string) error {
	if name == "" {
		return errors.New("bus: empty topic name")
	}
	if len(name) > MaxTopicLen {
		return fmt.Errorf("bus: topic name of %d bytes exceeds %d", len(name), MaxTopicLen)
	}
	if name[0] == '.' || name[0] == '-' {
		return fmt.Errorf("bus: topic name %q starts with %q", name, name[0])
	}
	if strings.HasSuffix(name, ring.WakeSuffix) {
		return fmt.Errorf("bus: topic name %q ends in %q", name, ring.WakeSuffix)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("bus: topic name %q: %q at %d is not a letter, digit, '.', '_' or '-'", name, c, i)
		}
	}
	return nil
}
