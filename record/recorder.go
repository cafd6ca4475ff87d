package record

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/foxglove/mcap/go/mcap"
	"go.uber.org/zap"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/clock"
	"github.com/sensorbus/sensorbus/ring"
	"github.com/sensorbus/sensorbus/rt"
	"github.com/sensorbus/sensorbus/schema"
)

// EventKind says what an Event reports.
type EventKind int

// Events.
const (
	EventAttached  EventKind = iota + 1 // the recorder attached to Topic (after a restart too)
	EventLoss                           // the recorder lost Lost samples of Topic (overrun or restart)
	EventFile                           // a file is finished: Path (a split, a snapshot, or the last)
	EventTopicDone                      // Topic's publisher is gone (StopWhenGone) and its samples are recorded
)

// Event reports progress to Notify: what tests and programs wait on
// instead of sleeping.
type Event struct {
	Kind  EventKind
	Topic string
	Path  string
	Lost  uint64
}

// TopicStats counts one topic's samples.
type TopicStats struct {
	Messages  uint64 `json:"messages"`  // samples recorded (in memory, for a snapshot)
	Lost      uint64 `json:"lost"`      // samples the recorder lost: ring overrun, publisher restarts
	Before    uint64 `json:"before"`    // samples the ring no longer held when the recorder attached
	Restarts  uint64 `json:"restarts"`  // publisher restarts
	Malformed uint64 `json:"malformed"` // samples that could not be transcoded to JSON (not recorded)
	Bytes     uint64 `json:"bytes"`     // payload bytes recorded
}

// Stats is what a recording did.
type Stats struct {
	Topics   map[string]TopicStats `json:"topics"`
	Files    []string              `json:"files"`
	Messages uint64                `json:"messages"`
	Lost     uint64                `json:"lost"`
	Duration time.Duration         `json:"duration_ns"`
}

// common holds the settings Record and Snapshot share.
type common struct {
	Bus              bus.Options
	Topics           []string
	All              bool
	Encoding         string
	Compression      Compression
	ChunkSize        int
	WaitForPublisher time.Duration
	StopWhenGone     bool
	DiscoverInterval time.Duration
	Thread           rt.Thread
	Registry         *schema.Registry
	Logger           *zap.Logger
	Notify           func(Event)
	Version          string
}

func (c *common) validate() error {
	if len(c.Topics) == 0 && !c.All {
		return errors.New("record: no topics (name some, or All)")
	}
	for _, t := range c.Topics {
		if err := bus.ValidTopic(t); err != nil {
			return fmt.Errorf("record: %w", err)
		}
	}
	switch c.Encoding {
	case "":
		c.Encoding = MessageEncodingMsgpack
	case MessageEncodingMsgpack, MessageEncodingJSON:
	default:
		return fmt.Errorf("record: unknown encoding %q (msgpack or json)", c.Encoding)
	}
	if c.Compression == "" {
		c.Compression = CompressZstd
	}
	if err := c.Compression.validate(); err != nil {
		return err
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = 1 << 20
	}
	if c.ChunkSize > 32<<20 {
		return fmt.Errorf("record: chunk size %d exceeds 32 MiB", c.ChunkSize)
	}
	if c.ChunkSize < 0 || c.WaitForPublisher < 0 || c.DiscoverInterval < 0 {
		return errors.New("record: negative chunk size, wait or discovery interval")
	}
	if c.DiscoverInterval == 0 {
		c.DiscoverInterval = 250 * time.Millisecond
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
	if c.Notify == nil {
		c.Notify = func(Event) {}
	}
	if c.Version == "" {
		c.Version = buildVersion()
	}
	return nil
}

// buildVersion is the module version and VCS revision the program was
// built from, as far as the build recorded them.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
	}
	return v
}

// nap is how long a recorder that has caught up with a fast topic waits
// before reading on (see topic).
const nap = time.Millisecond

type chanKey struct {
	topic string
	fp    uint64
}

// recorder subscribes to topics and builds chunks; a sink (a file writer
// or the snapshot's memory) takes the chunks it cuts.
type recorder struct {
	cfg        common
	mode       string
	monoOffset int64
	started    time.Time
	maxQueue   int

	mu        sync.Mutex
	cond      *sync.Cond // signalled when the queue shrinks
	cur       *chunk
	queue     []*chunk // cut, not yet taken by the sink
	spare     []*chunk // written chunks to reuse (Record only: a snapshot keeps its chunks)
	kick      chan struct{}
	chans     map[chanKey]*channel
	schemas   map[uint64]*mcap.Schema
	nextID    uint16
	markers   *channel
	markerSeq uint32
	limit     uint64 // 0: none
	count     uint64
	stats     map[string]*TopicStats
	attached  map[string]bool // topics with a running goroutine or that failed
	stop      context.CancelFunc
}

func newRecorder(cfg common, mode string, limit uint64, stop context.CancelFunc) *recorder {
	mono := clock.Mono()
	now := time.Now()
	r := &recorder{cfg: cfg, mode: mode, monoOffset: now.UnixNano() - mono, started: now,
		maxQueue: max(4, (64<<20)/cfg.ChunkSize), kick: make(chan struct{}, 1),
		chans: map[chanKey]*channel{}, schemas: map[uint64]*mcap.Schema{}, limit: limit,
		stats: map[string]*TopicStats{}, attached: map[string]bool{}, stop: stop}
	r.cond = sync.NewCond(&r.mu)
	r.cur = newChunk(cfg.ChunkSize)
	r.nextID = 1
	ms := &mcap.Schema{ID: 1, Name: MarkerSchemaName, Encoding: SchemaEncoding, Data: markerSchema}
	r.markers = &channel{id: 1, topic: MarkerTopic, encoding: MessageEncodingJSON, schema: ms, meta: map[string]string{}}
	r.nextID = 2
	return r
}

// fileMeta is the MetaRecording record of a new file.
func (r *recorder) fileMeta(part int) map[string]string {
	host, _ := os.Hostname()
	m := map[string]string{
		MetaHost: host, MetaVersion: r.cfg.Version, MetaRecorderPID: strconv.Itoa(os.Getpid()),
		MetaStarted: r.started.UTC().Format(time.RFC3339Nano), MetaMonoOffset: strconv.FormatInt(r.monoOffset, 10),
		MetaMode: r.mode, MetaCompression: string(r.cfg.Compression), MetaEncoding: r.cfg.Encoding,
	}
	if part > 0 {
		m[MetaPart] = strconv.Itoa(part)
	}
	return m
}

// channelFor returns the channel of topic as the ring header h describes
// it, making it on first use. The caller holds mu.
func (r *recorder) channelFor(topic string, h ring.Header) (*channel, error) {
	k := chanKey{topic, h.SchemaFingerprint}
	if ch := r.chans[k]; ch != nil {
		return ch, nil
	}
	if r.nextID == 0 {
		return nil, errors.New("record: more than 65534 channels")
	}
	var s *schema.Schema
	if h.SchemaName != "" {
		if known, ok := r.cfg.Registry.ByFingerprint(h.SchemaFingerprint); ok && known.Name == h.SchemaName {
			s = known
		}
	}
	ms := r.schemas[h.SchemaFingerprint]
	if ms == nil && h.SchemaName != "" {
		ms = &mcap.Schema{ID: uint16(len(r.schemas) + 2), Name: h.SchemaName, Encoding: SchemaEncoding,
			Data: jsonSchema(h.SchemaName, h.SchemaFingerprint, s)}
		r.schemas[h.SchemaFingerprint] = ms
	}
	meta := map[string]string{
		ChanGeneration: hex16(h.Generation), ChanPID: strconv.Itoa(h.WriterPID),
		ChanSlotSize: strconv.Itoa(h.SlotSize), ChanSlots: strconv.Itoa(h.Slots),
	}
	enc := r.cfg.Encoding
	if h.SchemaName == "" {
		// Untyped bytes: kept as they are, whatever the encoding asked.
		enc = MessageEncodingUntyped
	} else {
		meta[ChanFingerprint] = hex16(h.SchemaFingerprint)
	}
	if s != nil {
		meta[ChanVersion] = strconv.Itoa(s.Version)
		meta[ChanLayout] = s.Layout
	}
	ch := &channel{id: r.nextID, topic: topic, encoding: enc, meta: meta, schema: ms, known: s}
	r.nextID++
	r.chans[k] = ch
	return ch, nil
}

// add records sample s of ch, preceded by markers ms. It returns false
// once the count limit is reached.
func (r *recorder) add(ch *channel, st *TopicStats, s *bus.Sample, data []byte, ms []*Marker) bool {
	mono := clock.Mono()
	logTime := uint64(mono + r.monoOffset)
	pubTime := uint64(s.PublishedAt + r.monoOffset)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.limit > 0 && r.count >= r.limit {
		return false
	}
	for len(r.queue) >= r.maxQueue {
		r.cond.Wait() // the sink is behind: the ring absorbs the wait, or counts the loss
	}
	for _, m := range ms {
		r.cur.marker(r.markers, ch, m, r.markerSeq, logTime, pubTime, mono)
		r.markerSeq++
		switch m.Kind {
		case MarkerBefore:
			st.Before += m.Lost
		case MarkerRestart:
			st.Restarts++
			st.Lost += m.Lost
		default:
			st.Lost += m.Lost
		}
	}
	r.cur.sample(ch, s.Index, logTime, pubTime, data, mono)
	st.Messages++
	st.Bytes += uint64(len(data))
	r.count++
	if len(r.cur.buf) >= r.cfg.ChunkSize {
		r.cutLocked()
	}
	if r.limit > 0 && r.count >= r.limit {
		r.stop()
	}
	return true
}

// cutLocked queues the current chunk for the sink. The caller holds mu.
func (r *recorder) cutLocked() {
	if r.cur.empty() {
		return
	}
	r.queue = append(r.queue, r.cur)
	if n := len(r.spare); n > 0 {
		r.cur, r.spare = r.spare[n-1], r.spare[:n-1]
	} else {
		r.cur = newChunk(r.cfg.ChunkSize)
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// recycle hands written chunks back for reuse.
func (r *recorder) recycle(cs []*chunk) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range cs {
		if len(r.spare) < 4 {
			c.reset()
			r.spare = append(r.spare, c)
		}
	}
}

// take returns the queued chunks, first cutting the current one if cut.
func (r *recorder) take(cut bool) []*chunk {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cut {
		r.cutLocked()
	}
	q := r.queue
	r.queue = nil
	r.cond.Broadcast()
	return q
}

func (r *recorder) statsLocked() map[string]TopicStats {
	out := make(map[string]TopicStats, len(r.stats))
	for t, st := range r.stats {
		out[t] = *st
	}
	return out
}

// run subscribes to the configured topics (and, with All, to every topic
// that appears) until ctx ends or, with StopWhenGone, every topic's
// publisher is gone. It returns the first error that ended it.
func (r *recorder) run(ctx context.Context) error {
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
		r.stop()
	}
	start := func(topic string, wait time.Duration, named bool) {
		r.mu.Lock()
		if r.attached[topic] {
			r.mu.Unlock()
			return
		}
		r.attached[topic] = true
		r.stats[topic] = &TopicStats{}
		r.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if r.cfg.Thread.Priority > 0 || len(r.cfg.Thread.CPUs) > 0 {
				err = rt.Run(r.cfg.Thread, func(int) error { return r.topic(ctx, topic, wait) })
			} else {
				err = r.topic(ctx, topic, wait)
			}
			if err != nil && ctx.Err() == nil {
				if named {
					fail(err)
					return
				}
				r.cfg.Logger.Warn("topic not recorded", zap.String("topic", topic), zap.Error(err))
			}
		}()
	}
	wait := r.cfg.WaitForPublisher
	if wait == 0 {
		wait = 100 * 365 * 24 * time.Hour
	}
	for _, t := range r.cfg.Topics {
		start(t, wait, true)
	}
	if r.cfg.All {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(r.cfg.DiscoverInterval)
			defer t.Stop()
			for {
				topics, err := bus.List(r.cfg.Bus)
				if err != nil {
					fail(fmt.Errorf("record: list topics: %w", err))
					return
				}
				for _, ti := range topics {
					if ti.State == "live" {
						start(ti.Topic, 0, false)
					}
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// topic records one topic until ctx ends or, with StopWhenGone, its
// publisher is gone.
func (r *recorder) topic(ctx context.Context, topic string, wait time.Duration) error {
	sub, err := bus.Subscribe(ctx, bus.SubscriberConfig{Options: r.cfg.Bus, Topic: topic, Untyped: true,
		Start: ring.FromOldest, WaitForPublisher: wait, NoReattach: r.cfg.StopWhenGone})
	if err != nil {
		return fmt.Errorf("record: topic %q: %w", topic, err)
	}
	defer sub.Close()
	log := r.cfg.Logger.With(zap.String("topic", topic))
	r.mu.Lock()
	ch, err := r.channelFor(topic, sub.Header())
	r.mu.Unlock()
	if err != nil {
		return err
	}
	r.mu.Lock()
	st := r.stats[topic]
	r.mu.Unlock()
	slots := uint64(sub.Header().Slots)
	r.cfg.Notify(Event{Kind: EventAttached, Topic: topic})
	first := true
	napper := time.NewTimer(nap)
	napper.Stop()
	defer napper.Stop()
	var lastPub, interval int64 // publish stamp of the last sample; smoothed interval between samples
	for {
		s, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, ring.ErrWriterClosed) || errors.Is(err, ring.ErrWriterDead) {
				log.Info("publisher gone; topic recorded", zap.Error(err))
				r.cfg.Notify(Event{Kind: EventTopicDone, Topic: topic})
				return nil
			}
			return fmt.Errorf("record: topic %q: %w", topic, err)
		}
		var ms []*Marker
		switch {
		case s.Restarted:
			h := sub.Header()
			slots = uint64(h.Slots)
			r.mu.Lock()
			ch, err = r.channelFor(topic, h)
			r.mu.Unlock()
			if err != nil {
				return err
			}
			ms = []*Marker{{Kind: MarkerRestart, Topic: topic, Lost: s.Lost, Index: s.Index,
				Generation: hex16(h.Generation), PublisherPID: h.WriterPID}}
			log.Info("publisher restarted", zap.Uint64("lost", s.Lost), zap.Int("pid", h.WriterPID))
			r.cfg.Notify(Event{Kind: EventAttached, Topic: topic})
		default:
			// The subscriber starts at the oldest sample its ring held
			// when it attached: what came before is missing, but not lost
			// by the recorder; Lost counts what it lost from there.
			if first && s.Index > s.Lost {
				ms = append(ms, &Marker{Kind: MarkerBefore, Topic: topic, Lost: s.Index - s.Lost, Index: s.Index})
			}
			if s.Lost > 0 {
				ms = append(ms, &Marker{Kind: MarkerLoss, Topic: topic, Lost: s.Lost, Index: s.Index})
				log.Warn("samples lost", zap.Uint64("lost", s.Lost), zap.Uint64("at_index", s.Index))
			}
		}
		first = false
		data := s.Data
		if ch.encoding == MessageEncodingJSON {
			data, err = r.toJSON(ch, data)
			if err != nil {
				r.mu.Lock()
				st.Malformed++
				r.mu.Unlock()
				log.Warn("sample not recorded: cannot transcode to JSON", zap.Uint64("index", s.Index), zap.Error(err))
				continue
			}
		}
		if !r.add(ch, st, &s, data, ms) {
			return nil
		}
		// Nap once caught up, so that a fast topic is read in batches
		// rather than with a futex wake-up per sample (which costs the
		// publisher a system call too), as long as the ring holds at
		// least four naps' worth of samples.
		if lastPub != 0 && s.PublishedAt > lastPub {
			interval += (s.PublishedAt - lastPub - interval) / 16
		}
		lastPub = s.PublishedAt
		if interval > 0 && interval*int64(slots) >= 4*int64(nap) && clock.Since(s.PublishedAt) < time.Duration(interval) {
			napper.Reset(nap)
			select {
			case <-napper.C:
			case <-ctx.Done():
			}
		}
		for _, m := range ms {
			if m.Kind != MarkerBefore && m.Lost > 0 {
				r.cfg.Notify(Event{Kind: EventLoss, Topic: topic, Lost: m.Lost})
			}
		}
	}
}

// toJSON transcodes one sample; a schema this build does not know renders
// as MessagePack's generic JSON form (a tuple becomes an array).
func (r *recorder) toJSON(ch *channel, data []byte) ([]byte, error) {
	if ch.known != nil {
		return ch.known.ToJSON(data)
	}
	return schema.AnyToJSON(data)
}
