package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/clock"
)

// ErrClosed is os.ErrClosed: the bridge was closed or has run already.
var ErrClosed = bus.ErrClosed

// ackTimeout bounds the wait for a JetStream acknowledgement before the
// exporter sends the message again (with the same ID).
const ackTimeout = 2 * time.Second

// Bridge connects a local bus to NATS. New connects and starts the
// imports; Run adds the exports and runs until its context is done.
// Stats may be called from any goroutine.
type Bridge struct {
	s   *settings
	log *zap.Logger
	nc  *nats.Conn
	js  jetstream.JetStream // nil with core NATS
	cc  connCounters

	imports []*importer
	exports exportSet

	mu      sync.Mutex
	running bool
	closed  bool
	cancel  context.CancelFunc // ends Run
	done    chan struct{}      // closed when Run has returned
}

// Stats is what a bridge counted.
type Stats struct {
	Host        string        `json:"host"`
	Connected   bool          `json:"connected"`
	Server      string        `json:"server"`      // the server connected to, credentials removed
	Disconnects uint64        `json:"disconnects"` // connection losses
	Reconnects  uint64        `json:"reconnects"`
	AsyncErrors uint64        `json:"async_errors"` // errors the NATS client reported asynchronously (slow consumer, permissions)
	Exports     []ExportStats `json:"exports"`
	Imports     []ImportStats `json:"imports"`
}

// Run is New followed by Bridge.Run.
func Run(ctx context.Context, cfg Config) error {
	b, err := New(cfg)
	if err != nil {
		return err
	}
	return b.Run(ctx)
}

// New validates cfg, connects to NATS (a server that cannot be reached or
// refuses the credentials gives an error wrapping ErrConnect), finds or
// creates the JetStream stream, and subscribes to the imported topics: when
// New returns, messages published to them from then on are received. Local
// topics are created as the first sample of each arrives.
func New(cfg Config) (*Bridge, error) {
	s, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	b := &Bridge{s: s, log: s.Logger.With(zap.String("host", s.Host)), done: make(chan struct{})}
	s.Bus.Logger = s.Logger
	b.nc, err = s.connect(&b.cc, b.log)
	if err != nil {
		return nil, err
	}
	if b.nc.MaxPayload() < 2*headerRoom {
		b.nc.Close()
		return nil, fmt.Errorf("bridge: the server's max_payload %d is too small", b.nc.MaxPayload())
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.ConnectTimeout)
	defer cancel()
	if s.JetStream != "" {
		if b.js, err = jetstream.New(b.nc); err == nil {
			err = s.ensureStream(ctx, b.js, b.log)
		}
		if err != nil {
			b.nc.Close()
			return nil, err
		}
	}
	for _, spec := range s.imports {
		im := newImporter(b, spec)
		if err := im.start(ctx); err != nil {
			b.stopImports()
			b.nc.Close()
			return nil, err
		}
		b.imports = append(b.imports, im)
	}
	// The server has the subscriptions once it answers a ping.
	if err := b.nc.FlushWithContext(ctx); err != nil {
		b.stopImports()
		b.nc.Close()
		return nil, fmt.Errorf("%w: %w", ErrConnect, err)
	}
	b.log.Info("bridge connected", zap.String("server", b.nc.ConnectedUrlRedacted()),
		zap.Strings("exports", s.Exports), zap.Strings("imports", s.Imports), zap.String("jetstream", s.JetStream))
	return b, nil
}

// Run exports the configured topics and keeps the imports going until
// ctx is done, then closes the bridge: the exports send what they have
// read, the imported topics close, the connection drains. It returns nil
// then; ErrClosed if the bridge was closed or Run called before.
func (b *Bridge) Run(ctx context.Context) error {
	b.mu.Lock()
	if b.closed || b.running {
		b.mu.Unlock()
		return ErrClosed
	}
	b.running = true
	ctx, b.cancel = context.WithCancel(ctx)
	b.mu.Unlock()
	defer close(b.done)
	defer b.shutdown()

	for _, t := range b.s.exports {
		b.exports.start(ctx, b, t)
	}
	if !b.s.exportAll {
		<-ctx.Done()
		return nil
	}
	imported := map[string]bool{}
	for _, im := range b.s.imports {
		imported[im.Local] = true
	}
	refused := map[string]bool{}
	t := time.NewTicker(b.s.ScanInterval)
	defer t.Stop()
	for {
		b.scan(ctx, imported, refused)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// scan exports the live topics of the bus not yet exported, except the
// bridge's own imports and topics relayed from elsewhere (any bridge's
// imports carry their origin), so that two hosts exporting '*' to each
// other do not loop. The bus directory is polled: watching it would take
// system calls that only package internal/sys may make.
func (b *Bridge) scan(ctx context.Context, imported, refused map[string]bool) {
	topics, err := bus.List(b.s.Bus)
	if err != nil {
		b.log.Warn("list the bus", zap.Error(err))
		return
	}
	for _, t := range topics {
		if t.State != bus.StateLive || t.Origin != "" || imported[t.Topic] || refused[t.Topic] {
			continue
		}
		if err := validSubjectTopic(t.Topic); err != nil {
			refused[t.Topic] = true
			b.log.Warn("topic not exported", zap.Error(err))
			continue
		}
		b.exports.start(ctx, b, t.Topic)
	}
}

// Close stops a running bridge and waits for Run to return, or releases
// a bridge that never ran.
func (b *Bridge) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	running := b.running
	b.mu.Unlock()
	if running {
		b.cancel()
		<-b.done
		return nil
	}
	b.stopImports()
	b.nc.Close()
	return nil
}

func (b *Bridge) shutdown() {
	b.exports.wg.Wait()
	b.stopImports()
	if err := b.nc.FlushTimeout(ackTimeout); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		b.log.Warn("flush on close", zap.Error(err))
	}
	b.nc.Close()
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.log.Info("bridge closed")
}

func (b *Bridge) stopImports() {
	for _, im := range b.imports {
		im.stop()
	}
}

// Stats returns what the bridge counted so far.
func (b *Bridge) Stats() Stats {
	st := Stats{Host: b.s.Host, Connected: b.nc.IsConnected(), Server: b.nc.ConnectedUrlRedacted(),
		Disconnects: b.cc.disconnects.Load(), Reconnects: b.cc.reconnects.Load(), AsyncErrors: b.cc.asyncErrors.Load(),
		Exports: b.exports.stats()}
	for _, im := range b.imports {
		st.Imports = append(st.Imports, im.stats())
	}
	return st
}

// batchMaxBytes is the configured bound, within the server's max_payload.
func (b *Bridge) batchMaxBytes() int {
	return int(min(int64(b.s.BatchMaxBytes), b.nc.MaxPayload()-headerRoom))
}

func (b *Bridge) ackTimeout() time.Duration { return ackTimeout }

// unixOffset converts a CLOCK_MONOTONIC publish time to Unix time.
func unixOffset() int64 { return time.Now().UnixNano() - clock.Mono() }
