package app

import (
	"fmt"
	"math"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/ring"
)

// Forever is the --wait-for-publisher of "forever".
const Forever = 100 * 365 * 24 * time.Hour

const durationWant = "want a duration such as 500ms, 10s, 1m30s or 2h (0 for none)"

// durationValue is a time.Duration flag that refuses negative values and
// names the accepted format; forever allows the word "forever".
type durationValue struct {
	d       *time.Duration
	forever bool
}

func (v durationValue) String() string {
	switch {
	case *v.d == 0:
		return "0"
	case v.forever && *v.d == Forever:
		return "forever"
	}
	return v.d.String()
}

func (v durationValue) Type() string { return "duration" }

func (v durationValue) Set(s string) error {
	if v.forever && s == "forever" {
		*v.d = Forever
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		if v.forever {
			return Usagef("%s, or forever", durationWant)
		}
		return Usagef("%s", durationWant)
	}
	*v.d = d
	return nil
}

// DurationVar defines a duration flag; allowForever accepts "forever".
func DurationVar(fs *pflag.FlagSet, p *time.Duration, name string, def time.Duration, allowForever bool, usage string) {
	*p = def
	fs.Var(durationValue{d: p, forever: allowForever}, name, usage)
}

// Rate limits: a pacer interval of at least 100 ns, at most 1000 s.
const (
	MinRate = 0.001
	MaxRate = 10_000_000
)

// CheckRate checks a samples-per-second flag: finite, 0 (flat out) or
// within what the pacer can do.
func CheckRate(flag string, r float64) error {
	if math.IsNaN(r) || math.IsInf(r, 0) || r < 0 || r > 0 && (r < MinRate || r > MaxRate) {
		return Usagef("--%s %v: want 0 (as fast as possible) or %g to %g samples per second", flag, r, float64(MinRate), float64(MaxRate))
	}
	return nil
}

// CheckTopic checks a topic name, saying which character is wrong. Its
// length is bounded by bus.MaxTopicLen whatever the bus directory: a
// topic's socket is reached through the directory's descriptor.
func CheckTopic(flag, topic string) error {
	if topic == "" {
		return Usagef("--%s is required", flag)
	}
	for i, r := range topic {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '_' || r == '-') {
			if r == utf8.RuneError {
				return Usagef("--%s %q: byte %d is not valid UTF-8; use letters, digits, '.', '_' or '-'", flag, topic, i)
			}
			return Usagef("--%s %q: %q at byte %d is not allowed; use ASCII letters, digits, '.', '_' or '-'", flag, topic, r, i)
		}
	}
	if topic[0] == '.' || topic[0] == '-' {
		return Usagef("--%s %q: must not start with %q", flag, topic, topic[0])
	}
	if len(topic) > bus.MaxTopicLen {
		return Usagef("--%s: a topic name of %d bytes is longer than %d, the most a topic may have", flag, len(topic), bus.MaxTopicLen)
	}
	if err := bus.ValidTopic(topic); err != nil {
		return Usagef("--%s: %v", flag, err)
	}
	return nil
}

// Bus is the --bus-dir and --group flags.
type Bus struct {
	Dir   string
	Group string
}

// EnvGroup names the environment variable that --group defaults to.
const EnvGroup = "SENSORBUS_GROUP"

// Register adds the flags to fs.
func (b *Bus) Register(fs *pflag.FlagSet) {
	fs.StringVar(&b.Dir, "bus-dir", "", "bus directory (default $SENSORBUS_DIR, else $XDG_RUNTIME_DIR/sensorbus, else /run/sensorbus for root, else /tmp/sensorbus-UID)")
	fs.StringVar(&b.Group, "group", "", "share the bus with this group, a name or gid (default $SENSORBUS_GROUP)")
}

// Options resolves the flags into bus options.
func (b *Bus) Options() (bus.Options, error) {
	o := bus.Options{Dir: b.Dir}
	if o.Dir == "" {
		o.Dir = bus.DefaultDir()
	}
	group, flag := b.Group, "--group"
	if group == "" {
		group, flag = os.Getenv(EnvGroup), EnvGroup
	}
	if group != "" {
		gid, err := LookupGID(group)
		if err != nil {
			return o, Usagef("%s %q: %v", flag, group, err)
		}
		o.SharedGID = gid
	}
	return o, nil
}

// LookupGID resolves a group name or number.
func LookupGID(s string) (int, error) {
	if id, err := strconv.Atoi(s); err == nil {
		if id < 0 {
			return 0, fmt.Errorf("a gid is 0 or more")
		}
		return id, nil
	}
	g, err := user.LookupGroup(s)
	if err != nil {
		return 0, fmt.Errorf("no such group")
	}
	return strconv.Atoi(g.Gid)
}

// LookupUID resolves a user name or number.
func LookupUID(s string) (int, error) {
	if id, err := strconv.Atoi(s); err == nil {
		if id < 0 {
			return 0, fmt.Errorf("a uid is 0 or more")
		}
		return id, nil
	}
	u, err := user.Lookup(s)
	if err != nil {
		return 0, fmt.Errorf("no such user")
	}
	return strconv.Atoi(u.Uid)
}

// ParseIDs parses a comma-separated list of user (or, with groups, group)
// names and numbers.
func ParseIDs(flag, s string, groups bool) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var ids []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		var id int
		var err error
		if groups {
			id, err = LookupGID(f)
		} else {
			id, err = LookupUID(f)
		}
		if err != nil {
			return nil, Usagef("--%s %q: %v", flag, f, err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// CheckGeometry checks --slots and --slot-size against the ring's limits.
func CheckGeometry(slots, slotSize int) error {
	if slots < 1 || slots > ring.MaxSlots || slots&(slots-1) != 0 {
		return Usagef("--slots %d: want a power of two from 1 to %d", slots, ring.MaxSlots)
	}
	if slotSize < ring.MinSlotSize || slotSize > ring.MaxSlotSize {
		return Usagef("--slot-size %d: want %d to %d bytes", slotSize, ring.MinSlotSize, ring.MaxSlotSize)
	}
	// Each slot also holds a small header; 64 bytes bounds it.
	if int64(slots)*int64(slotSize+64) > ring.MaxSegmentSize {
		return Usagef("--slots %d with --slot-size %d: a ring of %d MiB is larger than the %d MiB allowed", slots, slotSize, int64(slots)*int64(slotSize)>>20, ring.MaxSegmentSize>>20)
	}
	return nil
}
