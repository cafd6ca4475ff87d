package ring

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// DefaultDir is where segments live unless Config.Dir says otherwise: the
// POSIX shared-memory file system.
const DefaultDir = "/dev/shm"

// MaxNameLen bounds a segment's file name.
const MaxNameLen = 200

// Defaults used where a Config or ReaderConfig leaves a field zero.
const (
	DefaultPerm              os.FileMode   = 0o600
	DefaultHeartbeatInterval time.Duration = 100 * time.Millisecond
	DefaultLivenessInterval  time.Duration = 100 * time.Millisecond
)

// Config describes a ring to create.
//
// A ring is anonymous (Name empty) or named. An anonymous ring lives in
// sealed memory files (memfd) that have no name anywhere: readers get them
// only through Writer.ReaderFiles, nobody can shrink, grow or newly map the
// ring writable, and nothing is left behind when the writer dies. A named
// ring is a pair of files in Dir, for use without a bus: any process that
// may open them can read them, and one that may write the wake file can
// disturb (even crash) the writer.
type Config struct {
	// Dir is the directory of a named ring's files; empty means
	// DefaultDir. It must be on a file system that supports O_TMPFILE
	// (tmpfs, ext4, xfs, btrfs).
	Dir string

	// Name is a named ring's file name in Dir: 1 to MaxNameLen bytes of
	// letters, digits, '.', '_' and '-', not starting with '.' and not
	// ending in WakeSuffix. Empty makes an anonymous ring.
	Name string

	// SlotSize is the largest payload a sample may have, in bytes, from
	// MinSlotSize to MaxSlotSize.
	SlotSize int

	// Slots is the number of samples the ring keeps: a power of two from
	// 1 to MaxSlots. A reader that falls this far behind loses samples.
	Slots int

	// Perm is the permission of a named ring's file; 0 means DefaultPerm.
	// The wake file gets the same bits plus write permission wherever
	// they grant read, since blocking readers must write it. Anonymous
	// rings have no permission: holding a descriptor is the access.
	Perm os.FileMode

	// SchemaName and SchemaFingerprint identify the payload's type for
	// readers (filled by package schema). The name is at most 64 bytes of
	// printable ASCII; a zero fingerprint means untyped.
	SchemaName        string
	SchemaFingerprint uint64

	// HeartbeatInterval is how often Publish refreshes the heartbeat;
	// 0 means DefaultHeartbeatInterval. Between publishes, call
	// Writer.Heartbeat.
	HeartbeatInterval time.Duration
}

func errorf(format string, args ...any) error {
	return fmt.Errorf("ring: "+format, args...)
}

// invalid builds an ErrInvalidConfig that says what is wrong.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// ValidName reports why name cannot name a segment, or nil.
func ValidName(name string) error {
	if name == "" {
		return invalid("empty segment name")
	}
	if len(name) > MaxNameLen {
		return invalid("segment name of %d bytes exceeds %d", len(name), MaxNameLen)
	}
	if name[0] == '.' {
		return invalid("segment name %q starts with '.'", name)
	}
	if strings.HasSuffix(name, WakeSuffix) {
		return invalid("segment name %q ends in %q, which names wake files", name, WakeSuffix)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return invalid("segment name %q: byte %q at %d is not a letter, digit, '.', '_' or '-'", name, c, i)
		}
	}
	return nil
}

// validate checks every field and returns the ring's layout. It is the
// one place a Config is checked; Create calls it before making anything.
func (c *Config) validate(pageSize int) (geometry, error) {
	if c.Name != "" {
		if err := ValidName(c.Name); err != nil {
			return geometry{}, err
		}
	} else if c.Dir != "" {
		return geometry{}, invalid("Dir %q given for an anonymous ring (no Name)", c.Dir)
	}
	if c.Perm&^os.ModePerm != 0 {
		return geometry{}, invalid("Perm %v has bits other than permissions", c.Perm)
	}
	if c.Perm != 0 && c.Perm&0o600 != 0o600 {
		return geometry{}, invalid("Perm %v must let the owner read and write", c.Perm)
	}
	if len(c.SchemaName) > maxSchemaName {
		return geometry{}, invalid("schema name of %d bytes exceeds %d", len(c.SchemaName), maxSchemaName)
	}
	for i := 0; i < len(c.SchemaName); i++ {
		if b := c.SchemaName[i]; b < 0x20 || b > 0x7e {
			return geometry{}, invalid("schema name %q has a non-printable byte at %d", c.SchemaName, i)
		}
	}
	if c.HeartbeatInterval < 0 {
		return geometry{}, invalid("negative heartbeat interval %v", c.HeartbeatInterval)
	}
	g, err := newGeometry(c.SlotSize, c.Slots, pageSize)
	if err != nil {
		return geometry{}, invalid("%v", err)
	}
	return g, nil
}

// CheckGeometry reports why a ring of slots slots of slotSize bytes cannot
// be made, or nil: what Create checks, for callers that validate their
// configuration before creating anything.
func CheckGeometry(slotSize, slots int) error {
	if _, err := newGeometry(slotSize, slots, 4096); err != nil {
		return invalid("%v", err)
	}
	return nil
}

// wakePerm derives the wake file's permission from the ring's.
func wakePerm(m os.FileMode) os.FileMode {
	return m | (m&0o444)>>1 // r-- → rw- for owner, group, other
}
