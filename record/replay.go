package record

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/clock"
	"github.com/sensorbus/sensorbus/schema"
)

// ErrUnknownSchema is returned by Replay for a recorded topic whose schema
// the registry does not know (by name and fingerprint), and by Export for
// a JSON message it cannot type.
var ErrUnknownSchema = errors.New("unknown schema")

// ReplayConfig describes a replay.
type ReplayConfig struct {
	// Bus locates the bus.
	Bus bus.Options

	// Files are played one after the other (the parts of a split
	// recording, in order). Files cut short play up to their last
	// complete chunk.
	Files []string

	// Speed scales the recorded intervals: 1 plays at the recorded pace,
	// 2 twice as fast; 0 publishes as fast as possible. Callers that
	// mean "real time" must say 1.
	Speed float64

	// Loop plays the files again and again until ctx ends.
	Loop bool

	// KeepOpen keeps the topics, with their last samples, on the bus
	// after the last sample until ctx ends, instead of closing them.
	KeepOpen bool

	// Topics, if set, are the recorded topics to play; the default is
	// every one. Remap publishes a recorded topic (key) under another
	// name (value).
	Topics []string
	Remap  map[string]string

	// Start skips the first Start of the recording (from its first
	// sample's log time).
	Start time.Duration

	// PausedUntilSubscribed creates the topics, then waits until each has
	// a subscriber before publishing the first sample.
	PausedUntilSubscribed bool

	// Registry knows the schemas to publish with; nil means the built-in
	// ones. A topic of a schema it does not know is refused
	// (ErrUnknownSchema): subscribers check name and fingerprint, which
	// the replayed topic carries exactly as recorded.
	Registry *schema.Registry

	// SlotSize and Slots of the replayed rings; 0 takes each topic's
	// recorded geometry (SlotSize at least its largest sample).
	SlotSize int
	Slots    int

	// Spin is how long before a sample is due the replayer stops sleeping
	// and spins on the clock (default 1.5ms). Go's sleeps wake up to about
	// a millisecond late, so anything shorter misses the recorded
	// intervals by that much; the price is a busy CPU while samples come
	// faster than every Spin.
	Spin time.Duration

	// Logger receives log lines, among them the recorded loss at each
	// gap; default none.
	Logger *zap.Logger
}

// ReplayStats counts what a replay published.
type ReplayStats struct {
	Messages uint64            `json:"messages"`
	Topics   map[string]uint64 `json:"topics"` // by published name
	// Gaps and Lost: markers passed and the samples they count, which
	// were published as skipped (lost to subscribers) where the ring
	// supports it (Skipped).
	Gaps     uint64        `json:"gaps"`
	Lost     uint64        `json:"lost"`
	Skipped  uint64        `json:"skipped"`
	Loops    int           `json:"loops"`
	Duration time.Duration `json:"duration_ns"`
}

func (c *ReplayConfig) validate() error {
	if len(c.Files) == 0 {
		return errors.New("record: replay: no files")
	}
	if c.Speed < 0 || math.IsNaN(c.Speed) || math.IsInf(c.Speed, 0) {
		return fmt.Errorf("record: replay: speed %v: want 0 (as fast as possible) or more", c.Speed)
	}
	if c.Start < 0 || c.SlotSize < 0 || c.Slots < 0 || c.Spin < 0 {
		return errors.New("record: replay: negative start, slot size, slots or spin")
	}
	if c.Spin == 0 {
		c.Spin = 1500 * time.Microsecond
	}
	for from, to := range c.Remap {
		if err := bus.ValidTopic(to); err != nil {
			return fmt.Errorf("record: replay: remap %s=%s: %w", from, to, err)
		}
	}
	if c.Registry == nil {
		reg, err := schema.NewRegistry()
		if err != nil {
			return err
		}
		c.Registry = reg
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return nil
}

// replayTopic is one recorded topic being replayed.
type replayTopic struct {
	recorded string
	name     string
	schema   *schema.Schema // nil: untyped
	json     bool
	slotSize int
	slots    int
	pub      *bus.Publisher
	sent     uint64
}

// Replay publishes recorded samples on the bus with their original
// schemas, paced at their recorded publish intervals divided by Speed.
// It returns when the files are played (once, or until ctx ends with
// Loop) and closes the topics it created.
func Replay(ctx context.Context, cfg ReplayConfig) (ReplayStats, error) {
	if err := cfg.validate(); err != nil {
		return ReplayStats{}, err
	}
	topics, first, err := scanForReplay(&cfg)
	if err != nil {
		return ReplayStats{}, err
	}
	defer func() {
		for _, t := range topics {
			if t.pub != nil {
				t.pub.Close()
			}
		}
	}()
	for _, t := range topics {
		pub, err := bus.NewPublisher(bus.PublisherConfig{Options: cfg.Bus, Topic: t.name, Schema: t.schema, SlotSize: t.slotSize, Slots: t.slots})
		if err != nil {
			return ReplayStats{}, fmt.Errorf("record: replay %q: %w", t.recorded, err)
		}
		t.pub = pub
	}
	if cfg.PausedUntilSubscribed {
		if err := waitSubscribed(ctx, topics); err != nil {
			return ReplayStats{}, err
		}
	}
	st := ReplayStats{Topics: map[string]uint64{}}
	t0 := time.Now()
	startAt := first + uint64(cfg.Start)
	for {
		err := replayOnce(ctx, &cfg, topics, startAt, &st)
		st.Loops++
		if err != nil || !cfg.Loop || ctx.Err() != nil {
			st.Duration = time.Since(t0)
			if err == nil && cfg.KeepOpen {
				<-ctx.Done()
			}
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				err = nil
			}
			return st, err
		}
	}
}

// scanForReplay reads the files once for their topics and first log time,
// and checks every topic's schema.
func scanForReplay(cfg *ReplayConfig) (map[string]*replayTopic, uint64, error) {
	want := map[string]bool{}
	for _, t := range cfg.Topics {
		want[t] = true
	}
	topics := map[string]*replayTopic{}
	names := map[string]string{}
	var first uint64
	seen := false
	for _, path := range cfg.Files {
		r, err := OpenFile(path)
		if err != nil {
			return nil, 0, err
		}
		for {
			m, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				r.Close()
				return nil, 0, err
			}
			ch := m.Channel
			if m.Marker != nil || len(want) > 0 && !want[ch.Topic] {
				continue
			}
			if !seen || m.LogTime < first {
				first, seen = m.LogTime, true
			}
			t := topics[ch.Topic]
			if t == nil {
				if t, err = newReplayTopic(cfg, ch); err != nil {
					r.Close()
					return nil, 0, err
				}
				if other, ok := names[t.name]; ok {
					r.Close()
					return nil, 0, fmt.Errorf("record: replay: topics %q and %q would both be published as %q", other, ch.Topic, t.name)
				}
				names[t.name] = ch.Topic
				topics[ch.Topic] = t
			} else if t.schema != nil && ch.Fingerprint != t.schema.Fingerprint {
				r.Close()
				return nil, 0, fmt.Errorf("record: replay: topic %q changes schema within the recording (%016x, then %016x); replay it in parts", ch.Topic, t.schema.Fingerprint, ch.Fingerprint)
			}
			if cfg.SlotSize == 0 && len(m.Data) > t.slotSize && !t.json {
				t.slotSize = len(m.Data)
			}
		}
		r.Close()
	}
	for t := range want {
		if topics[t] == nil {
			return nil, 0, fmt.Errorf("record: replay: topic %q is not in the recording", t)
		}
	}
	if len(topics) == 0 {
		return nil, 0, errors.New("record: replay: the recording holds no samples")
	}
	return topics, first, nil
}

func newReplayTopic(cfg *ReplayConfig, ch *Channel) (*replayTopic, error) {
	t := &replayTopic{recorded: ch.Topic, name: ch.Topic}
	if to, ok := cfg.Remap[ch.Topic]; ok {
		t.name = to
	}
	if err := bus.ValidTopic(t.name); err != nil {
		return nil, fmt.Errorf("record: replay: recorded topic %q: %w (remap it)", ch.Topic, err)
	}
	switch ch.MessageEncoding {
	case MessageEncodingMsgpack, MessageEncodingJSON:
		s, ok := cfg.Registry.ByFingerprint(ch.Fingerprint)
		if !ok || s.Name != ch.SchemaName {
			return nil, fmt.Errorf("record: replay: topic %q: %w %q (fingerprint %016x): register its type to replay it",
				ch.Topic, ErrUnknownSchema, ch.SchemaName, ch.Fingerprint)
		}
		t.schema = s
		t.json = ch.MessageEncoding == MessageEncodingJSON
	case MessageEncodingUntyped:
	default:
		return nil, fmt.Errorf("record: replay: topic %q: message encoding %q is not one sensorbus writes", ch.Topic, ch.MessageEncoding)
	}
	t.slotSize, t.slots = cfg.SlotSize, cfg.Slots
	if t.slotSize == 0 {
		t.slotSize, _ = strconv.Atoi(ch.Metadata[ChanSlotSize])
	}
	if t.slots == 0 {
		t.slots, _ = strconv.Atoi(ch.Metadata[ChanSlots])
		if t.slots <= 0 || t.slots&(t.slots-1) != 0 {
			t.slots = 0 // the bus's default
		}
	}
	return t, nil
}

// waitSubscribed waits until every topic has a subscriber.
func waitSubscribed(ctx context.Context, topics map[string]*replayTopic) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		all := true
		for _, tp := range topics {
			if tp.pub.Describe().Subscribers == 0 {
				all = false
				break
			}
		}
		if all {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// replayOnce plays the files once.
func replayOnce(ctx context.Context, cfg *ReplayConfig, topics map[string]*replayTopic, startAt uint64, st *ReplayStats) error {
	spinFor := int64(cfg.Spin)
	var t0 int64
	var base uint64
	begun := false
	n := 0
	for _, path := range cfg.Files {
		r, err := OpenFile(path)
		if err != nil {
			return err
		}
		err = func() error {
			defer r.Close()
			for {
				m, err := r.Next()
				if errors.Is(err, io.EOF) {
					if r.Truncated() {
						cfg.Logger.Info("file ends early; played up to its last complete chunk", zap.String("file", path))
					}
					return nil
				}
				if err != nil {
					return err
				}
				if n++; n&255 == 0 && ctx.Err() != nil {
					return ctx.Err()
				}
				if m.Marker != nil || m.LogTime < startAt {
					continue
				}
				t := topics[m.Channel.Topic]
				if t == nil {
					continue
				}
				for _, g := range m.Gaps {
					if g.Kind == MarkerBefore {
						continue
					}
					st.Gaps++
					st.Lost += g.Lost
					cfg.Logger.Warn("recorded loss", zap.String("topic", t.recorded), zap.String("kind", g.Kind),
						zap.Uint64("lost", g.Lost), zap.Uint64("at_index", g.Index))
				}
				// Keep the replayed ring's indices those of the recording
				// where the ring can mark samples lost: a gap in the
				// recording is a gap that subscribers are told about.
				if st.Loops == 0 {
					if p := t.pub.Ring().Published(); m.Index > p {
						if err := t.pub.Skip(m.Index - p); err != nil {
							return fmt.Errorf("record: replay %q: skip: %w", t.name, err)
						}
						st.Skipped += m.Index - p
					}
				}
				if cfg.Speed > 0 && begun {
					due := t0 + int64(float64(int64(m.PublishTime-base))/cfg.Speed)
					if d := due - clock.Mono() - spinFor; d > 0 {
						select {
						case <-time.After(time.Duration(d)):
						case <-ctx.Done():
							return ctx.Err()
						}
					}
					for clock.Mono() < due {
					}
				}
				if err := t.publish(m.Data); err != nil {
					return fmt.Errorf("record: replay %q sample %d: %w", t.name, m.Index, err)
				}
				if !begun {
					// Later samples are due at their recorded offset
					// from this one, whose stamp was taken just now.
					t0, base, begun = clock.Mono(), m.PublishTime, true
				}
				t.sent++
				st.Messages++
				st.Topics[t.name]++
			}
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

func (t *replayTopic) publish(data []byte) error {
	if !t.json {
		return t.pub.Publish(data)
	}
	v, err := t.schema.FromJSON(data)
	if err != nil {
		return err
	}
	return schema.EncodeMessage(t.pub.Ring(), v)
}
