package bridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tinylib/msgp/msgp"
	"go.uber.org/zap"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/ring"
	"github.com/sensorbus/sensorbus/schema"
)

// ImportStats counts one imported topic.
type ImportStats struct {
	Host       string `json:"host"`       // the remote host
	Topic      string `json:"topic"`      // the remote topic
	Local      string `json:"local"`      // the local topic
	Live       bool   `json:"live"`       // the local topic is published now
	Generation uint64 `json:"generation"` // of the remote publisher last seen
	Received   uint64 `json:"received"`   // samples published on the local topic
	Lost       uint64 `json:"lost"`       // samples missing from the remote index sequence: lost on the remote ring, in NATS or refused here
	Duplicates uint64 `json:"duplicates"` // samples received again and dropped (JetStream redelivery, an exporter restarted)
	Restarts   uint64 `json:"restarts"`   // remote publisher changes, each a new local publisher
	Messages   uint64 `json:"messages"`   // NATS messages received
	Dropped    uint64 `json:"dropped"`    // messages refused: not from a bridge, malformed, a schema change within a generation
}

// ErrBadMessage wraps the reason a message on a bridge subject is refused.
var ErrBadMessage = errors.New("bridge: bad message")

// meta is a message's headers, parsed.
type meta struct {
	format     string
	gen        uint64
	index      uint64
	count      int
	unixNano   int64
	schemaName string
	fp         uint64
	slotSize   int
	slots      int
}

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadMessage, fmt.Sprintf(format, args...))
}

// parseMeta reads and checks a message's headers.
func parseMeta(h nats.Header) (meta, error) {
	var m meta
	get := func(k string) (string, error) {
		v := h[k]
		if len(v) != 1 {
			return "", badf("header %s: %d values, want 1", k, len(v))
		}
		return v[0], nil
	}
	var err error
	if m.format, err = get(HeaderFormat); err != nil {
		return m, err
	}
	switch m.format {
	case FormatSample, FormatBatch, FormatEnd:
	default:
		return m, badf("format %q not spoken", m.format)
	}
	uint := func(k string, base, bits int) (uint64, error) {
		s, err := get(k)
		if err != nil {
			return 0, err
		}
		v, err := strconv.ParseUint(s, base, bits)
		if err != nil {
			return 0, badf("header %s: %v", k, err)
		}
		return v, nil
	}
	if m.gen, err = uint(HeaderGeneration, 16, 64); err != nil {
		return m, err
	}
	if m.index, err = uint(HeaderIndex, 10, 64); err != nil {
		return m, err
	}
	if m.format == FormatEnd {
		return m, nil
	}
	count, err := uint(HeaderCount, 10, 32)
	if err != nil {
		return m, err
	}
	m.count = int(count)
	if m.format == FormatSample && m.count != 1 || count == 0 || count > MaxBatchSamples {
		return m, badf("count %d for format %s", count, m.format)
	}
	if s, err := get(HeaderTime); err != nil {
		return m, err
	} else if m.unixNano, err = strconv.ParseInt(s, 10, 64); err != nil {
		return m, badf("header %s: %v", HeaderTime, err)
	}
	if m.fp, err = uint(HeaderFingerprint, 16, 64); err != nil {
		return m, err
	}
	if v, ok := h[HeaderSchema]; ok {
		if len(v) != 1 || v[0] == "" || len(v[0]) > schema.MaxNameLen {
			return m, badf("header %s: want one name of 1 to %d bytes", HeaderSchema, schema.MaxNameLen)
		}
		m.schemaName = v[0]
	}
	if (m.schemaName == "") != (m.fp == 0) {
		return m, badf("schema %q with fingerprint %016x: both or neither", m.schemaName, m.fp)
	}
	size, err := uint(HeaderSlotSize, 10, 32)
	if err != nil {
		return m, err
	}
	slots, err := uint(HeaderSlots, 10, 32)
	if err != nil {
		return m, err
	}
	if size < ring.MinSlotSize || size > ring.MaxSlotSize || slots == 0 || slots > ring.MaxSlots || slots&(slots-1) != 0 {
		return m, badf("ring geometry %d slots of %d bytes out of bounds", slots, size)
	}
	m.slotSize, m.slots = int(size), int(slots)
	return m, nil
}

// recentGens is how many ended generations an importer remembers, to
// drop their late messages instead of taking them for a restart.
const recentGens = 8

// importer publishes one remote topic on the local bus. NATS delivers its
// messages to handle one at a time; mu also orders handle with close.
type importer struct {
	b       *Bridge
	spec    Import
	subject string
	log     *zap.Logger

	live       atomic.Bool
	generation atomic.Uint64
	received   atomic.Uint64
	lost       atomic.Uint64
	dups       atomic.Uint64
	restarts   atomic.Uint64
	messages   atomic.Uint64
	dropped    atomic.Uint64

	sub  *nats.Subscription       // core NATS
	cons jetstream.ConsumeContext // JetStream

	mu        sync.Mutex
	closed    bool
	pub       *bus.Publisher // nil between generations, or when it could not be created
	haveGen   bool
	cur       meta // the current generation's first message: schema and geometry
	ended     bool // the current generation ended (end/1 seen)
	next      uint64
	old       [recentGens]uint64
	oldN      int
	createErr time.Time // when creating the local topic last failed
	recs      []Record
}

func newImporter(b *Bridge, spec Import) *importer {
	return &importer{b: b, spec: spec, subject: Subject(spec.Host, spec.Topic),
		log: b.log.With(zap.String("import", spec.Host+"/"+spec.Topic), zap.String("local", spec.Local))}
}

func (im *importer) stats() ImportStats {
	return ImportStats{Host: im.spec.Host, Topic: im.spec.Topic, Local: im.spec.Local, Live: im.live.Load(),
		Generation: im.generation.Load(), Received: im.received.Load(), Lost: im.lost.Load(), Duplicates: im.dups.Load(),
		Restarts: im.restarts.Load(), Messages: im.messages.Load(), Dropped: im.dropped.Load()}
}

// durableName is the JetStream consumer of this import by this host.
func (im *importer) durableName() string {
	return "sensorbus_" + im.b.s.Host + "_" + im.spec.Host + "_" + strings.ReplaceAll(im.spec.Topic, ".", "_")
}

// start subscribes to the remote topic.
func (im *importer) start(ctx context.Context) error {
	if im.b.js == nil {
		sub, err := im.b.nc.Subscribe(im.subject, func(m *nats.Msg) { im.handle(m.Header, m.Data) })
		if err != nil {
			return fmt.Errorf("bridge: subscribe to %s: %w", im.subject, err)
		}
		// Slow-consumer drops show as index gaps: counted as lost.
		if err := sub.SetPendingLimits(1<<16, 256<<20); err != nil {
			sub.Unsubscribe()
			return err
		}
		im.sub = sub
		return nil
	}
	cons, err := im.b.js.CreateOrUpdateConsumer(ctx, im.b.s.JetStream, jetstream.ConsumerConfig{
		Durable:       im.durableName(),
		Description:   "sensorbus bridge " + im.b.s.Host + " importing " + im.spec.Host + "/" + im.spec.Topic,
		FilterSubject: im.subject,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: 1 << 14,
	})
	if err != nil {
		return fmt.Errorf("bridge: JetStream consumer %s on stream %q: %w", im.durableName(), im.b.s.JetStream, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		im.handle(m.Headers(), m.Data())
		if err := m.Ack(); err != nil {
			im.log.Debug("ack", zap.Error(err)) // redelivered later, then dropped as a duplicate
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		im.log.Debug("JetStream consumer", zap.Error(err))
	}))
	if err != nil {
		return fmt.Errorf("bridge: consume %s: %w", im.durableName(), err)
	}
	im.cons = cc
	return nil
}

// stop unsubscribes and closes the local topic.
func (im *importer) stop() {
	if im.sub != nil {
		im.sub.Unsubscribe()
	}
	if im.cons != nil {
		im.cons.Stop()
		<-im.cons.Closed()
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	im.closed = true
	im.closeLocal()
}

// drop counts a refused message and logs why.
func (im *importer) drop(err error) {
	im.dropped.Add(1)
	im.log.Warn("dropped a message", zap.Error(err))
}

// handle takes one message from NATS.
func (im *importer) handle(h nats.Header, data []byte) {
	im.messages.Add(1)
	m, err := parseMeta(h)
	if err != nil {
		im.drop(err)
		return
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.closed {
		return
	}
	if m.format == FormatEnd {
		im.endGeneration(m)
		return
	}
	recs, err := im.records(m, data)
	if err != nil {
		im.drop(err)
		return
	}
	switch {
	case !im.haveGen || m.gen != im.gen():
		if im.isOld(m.gen) {
			im.dups.Add(uint64(len(recs)))
			return
		}
		im.newGeneration(m)
	case im.ended:
		im.dups.Add(uint64(len(recs)))
		return
	case m.schemaName != im.cur.schemaName || m.fp != im.cur.fp || m.slotSize != im.cur.slotSize || m.slots != im.cur.slots:
		im.drop(badf("schema %s (%016x), %d slots of %d bytes within generation %016x of %s (%016x), %d slots of %d bytes",
			m.schemaName, m.fp, m.slots, m.slotSize, m.gen, im.cur.schemaName, im.cur.fp, im.cur.slots, im.cur.slotSize))
		return
	}
	if im.pub == nil && !im.createLocal() {
		im.dropped.Add(1) // its samples count as lost once the topic exists
		return
	}
	for _, r := range recs {
		if r.Index < im.next {
			im.dups.Add(1)
			continue
		}
		// The local ring mirrors the remote one's index: a gap, or what
		// came before the first sample seen, is lost here too.
		im.skip(r.Index - im.next)
		if err := im.pub.Publish(r.Data); err != nil {
			im.log.Error("local publish", zap.Error(err))
			im.skip(1)
		} else {
			im.received.Add(1)
		}
		im.next = r.Index + 1
	}
}

func (im *importer) gen() uint64 { return im.cur.gen }

// records decodes and checks a message's samples.
func (im *importer) records(m meta, data []byte) ([]Record, error) {
	recs := im.recs[:0]
	if m.format == FormatSample {
		recs = append(recs, Record{Index: m.index, PublishedUnixNano: m.unixNano, Data: data})
	} else {
		var err error
		if recs, err = DecodeBatch(data, recs); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
		}
		if len(recs) != m.count || recs[0].Index != m.index {
			return nil, badf("batch of %d samples from %d, headers say %d from %d", len(recs), recs[0].Index, m.count, m.index)
		}
	}
	im.recs = recs
	for _, r := range recs {
		if len(r.Data) > m.slotSize {
			return nil, badf("sample %d of %d bytes exceeds the slot size %d", r.Index, len(r.Data), m.slotSize)
		}
		if m.fp != 0 {
			// A typed sample is one whole MessagePack value: a truncated
			// or forged one is refused here, not handed to subscribers.
			if rest, err := msgp.Skip(r.Data); err != nil || len(rest) != 0 {
				return nil, badf("sample %d is not one MessagePack value (%v, %d bytes left)", r.Index, err, len(rest))
			}
		}
	}
	return recs, nil
}

// newGeneration starts mirroring a new remote publisher: a restart locally.
func (im *importer) newGeneration(m meta) {
	if im.haveGen {
		im.restarts.Add(1)
		im.log.Info("remote publisher restarted", zap.String("generation", hex16(m.gen)))
		if !im.ended {
			im.remember(im.cur.gen)
		}
	}
	im.closeLocal()
	im.cur, im.haveGen, im.ended, im.next = m, true, false, 0
	im.generation.Store(m.gen)
	im.createErr = time.Time{}
}

// endGeneration handles the remote publisher's end: samples it published
// that never came are lost, and the local topic closes.
func (im *importer) endGeneration(m meta) {
	if !im.haveGen || m.gen != im.cur.gen || im.ended {
		return // of a generation not mirrored, or told twice
	}
	if m.index > im.next {
		im.skip(m.index - im.next)
		im.next = m.index
	}
	im.log.Info("remote publisher gone", zap.Uint64("samples", m.index))
	im.ended = true
	im.remember(m.gen)
	im.closeLocal()
}

func (im *importer) remember(gen uint64) {
	im.old[im.oldN%recentGens] = gen
	im.oldN++
}

func (im *importer) isOld(gen uint64) bool {
	for i := range min(im.oldN, recentGens) {
		if im.old[i] == gen {
			return true
		}
	}
	return false
}

// skip counts n samples lost and marks them lost on the local topic.
func (im *importer) skip(n uint64) {
	if n == 0 {
		return
	}
	im.lost.Add(n)
	if im.pub != nil {
		if err := im.pub.Skip(n); err != nil {
			im.log.Error("mark samples lost on the local topic", zap.Error(err))
		}
	}
}

// createLocal creates the local topic for the current generation, with
// its schema and ring geometry. Failures are logged and retried at most
// once a second.
func (im *importer) createLocal() bool {
	if !im.createErr.IsZero() && time.Since(im.createErr) < time.Second {
		return false
	}
	var sch *schema.Schema
	if im.cur.fp != 0 {
		// The bridge does not know the type, only its identity; that is
		// all a publisher needs (bus.PublisherConfig uses the name and
		// fingerprint), and subscribers check both.
		var err error
		if sch, err = schema.Opaque(im.cur.schemaName, im.cur.fp); err != nil {
			im.createErr = time.Now()
			im.log.Error("cannot create the local topic", zap.Error(err))
			return false
		}
	}
	pub, err := bus.NewPublisher(bus.PublisherConfig{Options: im.b.s.Bus, Topic: im.spec.Local, Schema: sch, Origin: im.spec.Host + "/" + im.spec.Topic,
		SlotSize: im.cur.slotSize, Slots: im.cur.slots, AllowUIDs: im.b.s.AllowUIDs, AllowGIDs: im.b.s.AllowGIDs})
	if err != nil {
		im.createErr = time.Now()
		im.log.Error("cannot create the local topic", zap.Error(err))
		return false
	}
	im.pub = pub
	im.live.Store(true)
	return true
}

func (im *importer) closeLocal() {
	if im.pub == nil {
		return
	}
	if err := im.pub.Close(); err != nil {
		im.log.Warn("close the local topic", zap.Error(err))
	}
	im.pub = nil
	im.live.Store(false)
}
