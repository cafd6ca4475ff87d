package bridge

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/ring"
)

// headerRoom is what a batch leaves of the server's max_payload for headers.
const headerRoom = 1024

// ExportStats counts one exported topic.
type ExportStats struct {
	Topic       string `json:"topic"`
	Attached    bool   `json:"attached"`    // subscribed to a live publisher now
	Generation  uint64 `json:"generation"`  // of the publisher last attached to
	Generations uint64 `json:"generations"` // publishers attached to so far
	Samples     uint64 `json:"samples"`     // samples sent (core NATS: handed to the client; JetStream: stored, acknowledged)
	Messages    uint64 `json:"messages"`    // NATS messages sent
	Bytes       uint64 `json:"bytes"`       // message bodies sent
	Unsent      uint64 `json:"unsent"`      // samples that could not be sent: NATS buffer full while disconnected, too large, refused
	RingLost    uint64 `json:"ring_lost"`   // samples the local ring overwrote before the exporter read them
	Retries     uint64 `json:"retries"`     // JetStream publishes retried after a failure or timeout
}

// exporter publishes one local topic to NATS. Its run loop owns the
// subscription and the batch; the counters are read from any goroutine.
type exporter struct {
	b       *Bridge
	topic   string
	subject string
	log     *zap.Logger

	attached    atomic.Bool
	generation  atomic.Uint64
	generations atomic.Uint64
	samples     atomic.Uint64
	messages    atomic.Uint64
	bytes       atomic.Uint64
	unsent      atomic.Uint64
	ringLost    atomic.Uint64
	retries     atomic.Uint64

	// Owned by run.
	batch    batchWriter
	msg      *nats.Msg   // the message being sent
	common   nats.Header // this generation's headers, copied into msg.Header
	gen      uint64
	next     uint64 // index after the last sample read in this generation
	off      int64  // Unix time minus CLOCK_MONOTONIC, read once a batch
	failing  bool   // the last send failed; logged once until one succeeds
	failedAt uint64 // unsent count when the failure began
}

func newExporter(b *Bridge, topic string) *exporter {
	return &exporter{b: b, topic: topic, subject: Subject(b.s.Host, topic),
		log: b.log.With(zap.String("export", topic))}
}

func (e *exporter) stats() ExportStats {
	return ExportStats{Topic: e.topic, Attached: e.attached.Load(), Generation: e.generation.Load(),
		Generations: e.generations.Load(), Samples: e.samples.Load(), Messages: e.messages.Load(),
		Bytes: e.bytes.Load(), Unsent: e.unsent.Load(), RingLost: e.ringLost.Load(), Retries: e.retries.Load()}
}

// ExportName is the name an exporter reports to the publisher of the
// topic it exports: busctl info and busctl metrics show what it received
// (and so sent on) and what it lost under it.
const ExportName = "bridge-export"

// run exports the topic until ctx is done: it attaches to each publisher
// of the topic in turn, from its first sample.
func (e *exporter) run(ctx context.Context) {
	wait := time.Duration(0)
	for ctx.Err() == nil {
		sub, err := bus.Subscribe(ctx, bus.SubscriberConfig{Options: e.b.s.Bus, Topic: e.topic, Untyped: true, Name: ExportName,
			Start: ring.FromOldest, WaitForPublisher: time.Hour, NoReattach: true})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !errors.Is(err, bus.ErrNoPublisher) {
				// Permission, protocol: the publisher may change its mind
				// or be replaced; try again, slowly.
				e.log.Error("cannot subscribe to the local topic", zap.Error(err))
				wait = min(max(2*wait, 100*time.Millisecond), 5*time.Second)
				sleep(ctx, wait)
			}
			continue
		}
		wait = 0
		e.serve(ctx, sub)
		sub.Close()
	}
}

// serve exports one generation of the topic until its publisher goes or
// ctx is done.
func (e *exporter) serve(ctx context.Context, sub *bus.Subscriber) {
	h := sub.Header()
	e.gen, e.next = h.Generation, 0
	e.generation.Store(h.Generation)
	e.generations.Add(1)
	e.attached.Store(true)
	defer e.attached.Store(false)
	e.common = nats.Header{
		HeaderGeneration:  {hex16(h.Generation)},
		HeaderFingerprint: {hex16(h.SchemaFingerprint)},
		HeaderSlotSize:    {strconv.Itoa(h.SlotSize)},
		HeaderSlots:       {strconv.Itoa(h.Slots)},
	}
	if h.SchemaName != "" {
		e.common[HeaderSchema] = []string{h.SchemaName}
	}
	e.log.Info("exporting", zap.String("subject", e.subject), zap.String("generation", hex16(h.Generation)),
		zap.String("schema", h.SchemaName))

	maxBytes := e.b.batchMaxBytes()
	// A context that is done: Next with it returns a sample that is ready,
	// without waiting.
	now, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cancel()
	budget := e.b.s.BatchMaxDelay
	for {
		s, err := sub.Next(ctx)
		if err != nil {
			e.end(ctx, err)
			return
		}
		e.off = unixOffset()
		e.batch.reset()
		e.add(s)
		// Let the budget pass, then take what the ring gathered meanwhile:
		// one wake-up a batch, not one a sample. The ring is the buffer
		// (4096 slots by default: 4 ms at 1 MHz). A batch that fills is
		// sent at once, and samples that keep coming faster than they are
		// read go out at the latest a budget after their time.
		var due time.Time
		if budget > 0 {
			sleep(ctx, budget)
			due = time.Now().Add(budget)
		}
		for i := 0; ; i++ {
			s, err = sub.Next(now)
			if err != nil {
				break
			}
			if e.batch.sizeWith(len(s.Data)) > maxBytes || e.batch.count == MaxBatchSamples ||
				i&63 == 63 && budget > 0 && time.Now().After(due) {
				e.send(ctx)
				e.batch.reset()
				due = time.Now().Add(budget)
			}
			e.add(s)
		}
		switch {
		case ctx.Err() != nil:
			// The bridge stops: a last try to send what was read.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.b.ackTimeout())
			e.send(fctx)
			cancel()
			return
		case errors.Is(err, context.Canceled):
			e.send(ctx) // nothing more is ready
		default:
			e.send(ctx)
			e.end(ctx, err)
			return
		}
	}
}

func (e *exporter) add(s bus.Sample) {
	if s.Lost > 0 && e.next > 0 {
		// The first sample's Lost is what the ring no longer held when we
		// attached: its index says so to the importer already. Later
		// ones are samples this exporter was too slow for.
		e.ringLost.Add(s.Lost)
	}
	e.batch.add(s.Index, s.PublishedAt+e.off, s.Data)
	e.next = s.Index + 1
}

// end reports the end of the generation to importers when its publisher
// is gone; other errors (ctx done, the bridge closing) end quietly.
func (e *exporter) end(ctx context.Context, err error) {
	if !errors.Is(err, ring.ErrWriterClosed) && !errors.Is(err, ring.ErrWriterDead) {
		if ctx.Err() == nil {
			e.log.Error("reading the local topic", zap.Error(err))
		}
		return
	}
	e.log.Info("local publisher gone", zap.Error(err), zap.Uint64("next_index", e.next))
	e.msg = &nats.Msg{Subject: e.subject, Header: e.header(FormatEnd, e.next, 0, 0)}
	if e.b.js != nil {
		e.msg.Header[HeaderMsgID] = []string{e.b.s.Host + "." + e.topic + "." + hex16(e.gen) + ".end"}
	}
	e.publish(ctx, 0)
}

func (e *exporter) header(format string, index uint64, count int, t int64) nats.Header {
	h := make(nats.Header, len(e.common)+5)
	for k, v := range e.common {
		h[k] = v
	}
	h[HeaderFormat] = []string{format}
	h[HeaderIndex] = []string{strconv.FormatUint(index, 10)}
	h[HeaderCount] = []string{strconv.Itoa(count)}
	if count > 0 {
		h[HeaderTime] = []string{strconv.FormatInt(t, 10)}
	}
	return h
}

// send publishes the batch gathered so far.
func (e *exporter) send(ctx context.Context) {
	w := &e.batch
	if w.count == 0 {
		return
	}
	format, body := FormatBatch, w.body()
	if w.count == 1 {
		format, body = FormatSample, w.single()
	}
	if int64(len(body)) > e.b.nc.MaxPayload()-headerRoom {
		e.log.Error("sample larger than the server's max_payload; not sent", zap.Int("bytes", len(body)),
			zap.Uint64("index", w.first.Index))
		e.unsent.Add(uint64(w.count))
		return
	}
	e.msg = &nats.Msg{Subject: e.subject, Data: body, Header: e.header(format, w.first.Index, w.count, w.first.PublishedUnixNano)}
	if e.b.js != nil {
		e.msg.Header[HeaderMsgID] = []string{e.b.s.Host + "." + e.topic + "." + hex16(e.gen) + "." + strconv.FormatUint(w.first.Index, 10)}
	}
	e.publish(ctx, w.count)
}

// publish sends e.msg, carrying count samples. Core NATS: once; while
// disconnected the client buffers it, and a full buffer counts it unsent.
// JetStream: until the stream acknowledges it (the same message ID, so a
// retry of a message that was stored is dropped as a duplicate), or ctx
// is done. Meanwhile the local ring holds what the publisher goes on
// publishing.
func (e *exporter) publish(ctx context.Context, count int) {
	if e.b.js == nil {
		if err := e.b.nc.PublishMsg(e.msg); err != nil {
			e.failed(count, err)
			return
		}
		e.sent(count)
		return
	}
	wait := e.b.s.ReconnectWait
	for {
		actx, cancel := context.WithTimeout(ctx, e.b.ackTimeout())
		_, err := e.b.js.PublishMsg(actx, e.msg, jetstream.WithRetryAttempts(0))
		cancel()
		if err == nil {
			e.sent(count)
			return
		}
		if ctx.Err() != nil {
			e.failed(count, err)
			return
		}
		if !e.failing {
			e.log.Warn("JetStream publish failed; retrying until stored", zap.Error(err))
			e.failing, e.failedAt = true, e.unsent.Load()
		}
		e.retries.Add(1)
		sleep(ctx, wait)
		wait = min(2*wait, e.b.s.MaxReconnectWait)
	}
}

func (e *exporter) sent(count int) {
	if e.failing {
		e.log.Info("sending again", zap.Uint64("unsent_meanwhile", e.unsent.Load()-e.failedAt))
		e.failing = false
	}
	e.samples.Add(uint64(count))
	e.messages.Add(1)
	e.bytes.Add(uint64(len(e.msg.Data)))
}

func (e *exporter) failed(count int, err error) {
	e.unsent.Add(uint64(count))
	if !e.failing {
		e.log.Warn("cannot send; counting unsent samples until sending works again", zap.Error(err))
		e.failing, e.failedAt = true, e.unsent.Load()-uint64(count)
	}
}

// exportSet runs exporters, one per topic.
type exportSet struct {
	mu   sync.Mutex
	byT  map[string]*exporter
	list []*exporter
	wg   sync.WaitGroup
}

// start runs an exporter of topic unless one runs already.
func (s *exportSet) start(ctx context.Context, b *Bridge, topic string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byT == nil {
		s.byT = map[string]*exporter{}
	}
	if s.byT[topic] != nil {
		return
	}
	e := newExporter(b, topic)
	s.byT[topic] = e
	s.list = append(s.list, e)
	s.wg.Go(func() { e.run(ctx) })
}

func (s *exportSet) stats() []ExportStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ExportStats, len(s.list))
	for i, e := range s.list {
		out[i] = e.stats()
	}
	return out
}

func hex16(v uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b[:])
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
