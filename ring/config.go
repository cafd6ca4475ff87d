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

// Config describes a ring to create.
type Config struct {
	// Dir is the directory of the segment files; empty means DefaultDir.
	// It must be on a file system that supports O_TMPFILE (tmpfs, ext4,
	// xfs, btrfs).
	Dir string

	// Name is the segment's file name in Dir: 1 to MaxNameLen bytes of
	// letters, digits, '.', '_' and '-', not starting with '.' and not
	// ending in WakeSuffix.
	Name string

	// SlotSize is the largest payload a sample may have, in bytes, from
	// MinSlotSize to MaxSlotSize.
	SlotSize int

	// Slots is the number of samples the ring keeps: a power of two from
	// 1 to MaxSlots. A reader that falls this far behind loses samples.
	Slots int

	// Mode is the permission of the ring file; 0 means 0600. The wake file
	// gets the same bits plus write permission wherever they grant read,
	// since blocking readers must write it.
	Mode os.FileMode

	// SchemaName and SchemaFingerprint identify the payload's type for
	// readers (filled by package schema). The name is at most 64 bytes of
	// printable ASCII; a zero fingerprint means untyped.
	SchemaName        string
	SchemaFingerprint uint64

	// HeartbeatInterval is how often Publish refreshes the heartbeat;
	// 0 means 100ms. Between publishes, call Writer.Heartbeat.
	HeartbeatInterval time.Duration
}

func errorf(format string, args ...any) error {
	return fmt.Errorf("ring: "+format, args...)
}

// ValidName reports why name cannot name a segment, or nil.
func ValidName(name string) error {
	if name == "" {
		return errorf("empty segment name")
	}
	if len(name) > MaxNameLen {
		return errorf("segment name of %d bytes exceeds %d", len(name), MaxNameLen)
	}
	if name[0] == '.' {
		return errorf("segment name %q starts with '.'", name)
	}
	if strings.HasSuffix(name, WakeSuffix) {
		return errorf("segment name %q ends in %q, which names wake files", name, WakeSuffix)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return errorf("segment name %q: byte %q at %d is not a letter, digit, '.', '_' or '-'", name, c, i)
		}
	}
	return nil
}

func (c *Config) validate(pageSize int) (geometry, error) {
	if err := ValidName(c.Name); err != nil {
		return geometry{}, err
	}
	if c.Mode&^os.ModePerm != 0 {
		return geometry{}, errorf("mode %v has bits other than permissions", c.Mode)
	}
	if c.Mode != 0 && c.Mode&0o600 != 0o600 {
		return geometry{}, errorf("mode %v must let the owner read and write", c.Mode)
	}
	if len(c.SchemaName) > maxSchemaName {
		return geometry{}, errorf("schema name of %d bytes exceeds %d", len(c.SchemaName), maxSchemaName)
	}
	for i := 0; i < len(c.SchemaName); i++ {
		if b := c.SchemaName[i]; b < 0x20 || b > 0x7e {
			return geometry{}, errorf("schema name %q has a non-printable byte at %d", c.SchemaName, i)
		}
	}
	if c.HeartbeatInterval < 0 {
		return geometry{}, errorf("negative heartbeat interval %v", c.HeartbeatInterval)
	}
	g, err := newGeometry(c.SlotSize, c.Slots, pageSize)
	if err != nil {
		return geometry{}, errorf("%v", err)
	}
	return g, nil
}

// wakeMode derives the wake file's permission from the ring's.
func wakeMode(m os.FileMode) os.FileMode {
	return m | (m&0o444)>>1 // r-- → rw- for owner, group, other
}
