package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/sensorbus/sensorbus/internal/sys"
	"github.com/sensorbus/sensorbus/ring"
	"github.com/sensorbus/sensorbus/schema"
)

// SubscriberConfig describes what to subscribe to and how.
type SubscriberConfig struct {
	Options

	Topic string

	// Schema is the type expected; the publisher and the ring header must
	// carry it, else Subscribe fails with ErrSchemaMismatch. Nil with
	// Untyped accepts any schema; nil without Untyped expects an untyped
	// topic.
	Schema  *schema.Schema
	Untyped bool

	Mode  ring.Mode  // Stream (default) or Latest
	Start ring.Start // where a Stream subscriber begins (default FromNewest)
	Wait  ring.Wait  // WaitBlock (default) or WaitSpin

	// WaitForPublisher is how long Subscribe waits for the topic's
	// publisher to appear; 0 fails at once with ErrNoPublisher.
	WaitForPublisher time.Duration

	// NoReattach makes Next return ring.ErrWriterClosed or
	// ring.ErrWriterDead when the publisher goes, instead of waiting for
	// it to come back and re-attaching.
	NoReattach bool

	// LivenessInterval is how often a waiting subscriber checks its
	// publisher's lock (default 100ms); a closed control connection
	// triggers the check at once.
	LivenessInterval time.Duration
}

// Sample is a sample as a subscriber receives it.
type Sample struct {
	ring.Sample
	// Restarted is set on the first sample after the publisher restarted
	// (a new generation of the topic); Lost then includes the samples the
	// new publisher had already overwritten when the subscriber
	// re-attached.
	Restarted bool
}

// SubscriberStats counts what a subscriber saw, across publisher restarts.
type SubscriberStats struct {
	Received  uint64 // samples delivered
	Lost      uint64 // samples lost (Stream) or skipped (Latest), restarts included
	Restarts  uint64 // publisher restarts re-attached across
	Retries   uint64 // torn reads retried
	Reattach  time.Duration
	Attached  bool
	Published uint64 // the current publisher's cursor at the last look
}

// Subscriber receives a topic's samples. Its methods belong to one
// goroutine, except Close, which may end a Next waiting in another.
type Subscriber struct {
	cfg       SubscriberConfig
	bus       *bus
	log       *zap.Logger
	r         *ring.Reader
	conn      *net.UnixConn
	watchDone chan struct{} // closed when the watcher of conn has stopped touching r
	desc      TopicDesc

	connGone  atomic.Bool // the control connection closed
	state     atomic.Uint32
	cur       atomic.Pointer[ring.Reader] // s.r, for Close in another goroutine
	curConn   atomic.Pointer[net.UnixConn]
	closeCtx  context.Context
	closeStop context.CancelFunc

	base         SubscriberStats // totals of earlier generations
	restarted    bool
	restartLost  uint64
	lastReattach time.Duration
}

// Subscribe attaches to a topic, waiting up to cfg.WaitForPublisher for its
// publisher to appear.
func Subscribe(ctx context.Context, cfg SubscriberConfig) (*Subscriber, error) {
	if err := ValidTopic(cfg.Topic); err != nil {
		return nil, err
	}
	if cfg.WaitForPublisher < 0 || cfg.LivenessInterval < 0 {
		return nil, errors.New("bus: negative wait or liveness interval")
	}
	b, err := cfg.open(true)
	if err != nil {
		return nil, err
	}
	s := &Subscriber{cfg: cfg, bus: b, log: b.logger.With(zap.String("topic", cfg.Topic))}
	s.closeCtx, s.closeStop = context.WithCancel(context.Background())
	if err := s.attach(ctx, cfg.WaitForPublisher, cfg.Start); err != nil {
		s.closeStop()
		return nil, err
	}
	return s, nil
}

// attach connects to the publisher, waiting up to wait for it, and maps the
// ring it hands over.
func (s *Subscriber) attach(ctx context.Context, wait time.Duration, start ring.Start) error {
	deadline := time.Now().Add(wait)
	for {
		err := s.attachOnce(ctx, start)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrNoPublisher) {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%w for topic %q after %v (%s)", ErrNoPublisher, s.cfg.Topic, wait, s.bus.dir)
		}
		if err := waitForSocket(ctx, s.bus, s.cfg.Topic, left); err != nil && !errors.Is(err, ErrNoPublisher) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func (s *Subscriber) attachOnce(ctx context.Context, start ring.Start) error {
	conn, err := dial(ctx, s.bus, s.cfg.Topic)
	if err != nil {
		return err
	}
	req := Request{Op: OpAttach, Untyped: s.cfg.Untyped, Mode: uint8(s.cfg.Mode)}
	if s.cfg.Schema != nil {
		req.Schema, req.Fingerprint = s.cfg.Schema.Name, s.cfg.Schema.Fingerprint
	}
	resp, fds, err := roundTrip(conn, req, 2)
	if err != nil {
		conn.Close()
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
			// The publisher closed or died while we attached: as good as
			// not there yet.
			return fmt.Errorf("%w: publisher went away during attach (%v)", ErrNoPublisher, err)
		}
		return err
	}
	if err := responseError(s.cfg.Topic, resp); err != nil {
		closeFDs(fds)
		conn.Close()
		return err
	}
	if len(fds) != 2 {
		closeFDs(fds)
		conn.Close()
		return fmt.Errorf("%w: attach answer carried %d descriptors, want 2", ErrProtocol, len(fds))
	}
	rf := os.NewFile(uintptr(fds[0]), s.cfg.Topic)
	wf := os.NewFile(uintptr(fds[1]), s.cfg.Topic+ring.WakeSuffix)
	r, err := ring.Attach(rf, wf, ring.ReaderConfig{Mode: s.cfg.Mode, Start: start, Wait: s.cfg.Wait, LivenessInterval: s.cfg.LivenessInterval})
	rf.Close()
	wf.Close()
	if err != nil {
		conn.Close()
		return fmt.Errorf("bus: topic %q: %w", s.cfg.Topic, err)
	}
	// Trust the ring, not the message: both must agree.
	h := r.Header()
	if h.Generation != resp.Topic.Generation {
		r.Close()
		conn.Close()
		return fmt.Errorf("%w: ring generation %x, publisher said %x", ErrProtocol, h.Generation, resp.Topic.Generation)
	}
	if s.cfg.Schema != nil && !s.cfg.Untyped {
		if err := s.cfg.Schema.Check(h); err != nil {
			r.Close()
			conn.Close()
			return err
		}
	}
	// Swap in the new generation; the old one (after a restart) stays
	// mapped until now, so a concurrent Close never cancels an unmapped
	// reader.
	oldR, oldConn, oldDone := s.r, s.conn, s.watchDone
	s.r, s.conn, s.desc, s.watchDone = r, conn, resp.Topic, make(chan struct{})
	s.cur.Store(r)
	s.curConn.Store(conn)
	s.connGone.Store(false)
	if oldR != nil {
		closeGeneration(oldR, oldConn, oldDone)
	}
	go s.watch(conn, r, s.watchDone)
	s.log.Info("attached", zap.Int32("publisher_pid", resp.Topic.WriterPID), zap.Uint64("generation", h.Generation),
		zap.String("schema", h.SchemaName))
	return nil
}

// watch waits for the control connection to end (the publisher died or
// closed) and makes the reader notice at once.
func (s *Subscriber) watch(conn *net.UnixConn, r *ring.Reader, done chan struct{}) {
	defer close(done)
	buf := make([]byte, MaxMessage)
	oob := make([]byte, 128)
	for {
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		closeReceivedFDs(oob[:oobn])
		if err != nil {
			s.connGone.Store(true)
			r.Interrupt()
			return
		}
	}
}

// Topic returns what the publisher said of the topic when the subscriber
// last attached.
func (s *Subscriber) Topic() TopicDesc { return s.desc }

// Header returns the current ring's header.
func (s *Subscriber) Header() ring.Header { return s.r.Header() }

// Subscriber state bits: Next running, Close called. Whichever of Next and
// Close ends last releases the ring mapping, so Close from another
// goroutine never unmaps under a running Next.
const (
	stateRunning = 1 << iota
	stateClosed
)

// Next returns the next sample. When the publisher goes, Next delivers what
// is left in the ring and then waits for a new publisher and re-attaches
// (unless NoReattach), marking the first sample after it Restarted. It
// returns ctx.Err() when ctx is done and ErrClosed once Close was called.
func (s *Subscriber) Next(ctx context.Context) (Sample, error) {
	for {
		st := s.state.Load()
		if st&stateClosed != 0 {
			return Sample{}, ErrClosed
		}
		if s.state.CompareAndSwap(st, st|stateRunning) {
			break
		}
	}
	defer func() {
		for {
			st := s.state.Load()
			if s.state.CompareAndSwap(st, st&^stateRunning) {
				if st&stateClosed != 0 {
					s.release()
				}
				return
			}
		}
	}()
	for {
		rs, err := s.r.Next(ctx)
		if err == nil {
			out := Sample{Sample: rs}
			if s.restarted {
				out.Restarted = true
				out.Lost += s.restartLost
				s.restarted, s.restartLost = false, 0
			}
			return out, nil
		}
		if errors.Is(err, ring.ErrCanceled) {
			return Sample{}, ErrClosed
		}
		if !errors.Is(err, ring.ErrWriterClosed) && !errors.Is(err, ring.ErrWriterDead) {
			return Sample{}, err
		}
		s.log.Info("publisher gone", zap.Error(err))
		if s.cfg.NoReattach {
			return Sample{}, err
		}
		if err := s.reattach(ctx); err != nil {
			return Sample{}, err
		}
	}
}

// reattach drops the old generation and waits, without limit but ctx, for
// the next one.
func (s *Subscriber) reattach(ctx context.Context) error {
	t0 := time.Now()
	old := s.r.Stats() // folded into the totals once the new generation replaced it
	// Merge the caller's context with Close.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.closeCtx, cancel)
	defer stop()
	for {
		err := s.attach(wctx, time.Hour, ring.FromOldest)
		if err == nil {
			break
		}
		if s.state.Load()&stateClosed != 0 {
			return ErrClosed
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, ErrNoPublisher) {
			return err
		}
	}
	s.base.Received += old.Received
	s.base.Lost += old.Lost
	s.base.Retries += old.Retries
	// Everything the new publisher published before the oldest sample
	// still in its ring is lost across the restart.
	s.restarted = true
	s.restartLost = s.r.Position()
	s.base.Restarts++
	s.base.Lost += s.restartLost
	s.lastReattach = time.Since(t0)
	s.log.Info("re-attached after a publisher restart", zap.Uint64("lost_across_restart", s.restartLost), zap.Duration("took", s.lastReattach))
	return nil
}

// Stats returns what the subscriber counted, across restarts.
func (s *Subscriber) Stats() SubscriberStats {
	st := s.base
	rs := s.r.Stats()
	st.Received += rs.Received
	st.Lost += rs.Lost
	st.Retries += rs.Retries
	st.Reattach = s.lastReattach
	st.Attached = !s.connGone.Load()
	if status, err := s.r.Status(); err == nil {
		st.Published = status.Published
	}
	return st
}

// PublisherStatus reports the current publisher's state, including its
// heartbeat age: a live publisher whose heartbeat is much older than its
// interval (100ms by default) is hung or stopped.
func (s *Subscriber) PublisherStatus() (ring.Status, error) { return s.r.Status() }

// Close detaches. A Next waiting in another goroutine returns ErrClosed.
func (s *Subscriber) Close() error {
	for {
		st := s.state.Load()
		if st&stateClosed != 0 {
			return ErrClosed
		}
		if s.state.CompareAndSwap(st, st|stateClosed) {
			s.closeStop()
			if c := s.curConn.Load(); c != nil {
				c.Close()
			}
			if r := s.cur.Load(); r != nil {
				r.Cancel()
			}
			if st&stateRunning == 0 {
				s.release()
			}
			return nil
		}
	}
}

// release unmaps the ring and closes the connection; called once, by
// whichever of Close and Next ends last.
func (s *Subscriber) release() {
	closeGeneration(s.r, s.conn, s.watchDone)
	s.closeStop()
}

// closeGeneration ends one attachment: the connection first, then, once
// its watcher can no longer interrupt the reader, the reader's mapping.
func closeGeneration(r *ring.Reader, conn *net.UnixConn, watchDone chan struct{}) {
	conn.Close()
	<-watchDone
	r.Close()
}

// dial connects to a topic's socket; a missing or dead one is
// ErrNoPublisher.
func dial(ctx context.Context, b *bus, topic string) (*net.UnixConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unixpacket", b.socketPath(topic))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, errConnRefused) {
			return nil, ErrNoPublisher
		}
		return nil, fmt.Errorf("bus: connect to %s: %w", b.socketPath(topic), err)
	}
	return c.(*net.UnixConn), nil
}

// roundTrip sends req and reads one response with up to maxFDs descriptors.
func roundTrip(c *net.UnixConn, req Request, maxFDs int) (Response, []int, error) {
	req.Version = ProtocolVersion
	b, err := req.MarshalMsg(nil)
	if err != nil {
		return Response{}, nil, err
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(b); err != nil {
		return Response{}, nil, fmt.Errorf("bus: send request: %w", err)
	}
	buf := make([]byte, MaxMessage+1)
	oob := make([]byte, 64+16*maxFDs)
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return Response{}, nil, fmt.Errorf("bus: read response: %w", err)
	}
	fds, _ := sys.ParseRights(oob[:oobn])
	if n > MaxMessage || flags&sys.MsgTrunc != 0 {
		closeFDs(fds)
		return Response{}, nil, fmt.Errorf("%w: response exceeds %d bytes", ErrProtocol, MaxMessage)
	}
	var resp Response
	if rest, err := resp.UnmarshalMsg(buf[:n]); err != nil || len(rest) != 0 {
		closeFDs(fds)
		return Response{}, nil, fmt.Errorf("%w: malformed response: %s", ErrProtocol, describeDecodeErr(err, len(rest)))
	}
	if resp.Version != ProtocolVersion {
		closeFDs(fds)
		return Response{}, nil, fmt.Errorf("%w: publisher speaks version %d, this build %d", ErrProtocol, resp.Version, ProtocolVersion)
	}
	return resp, fds, nil
}

// responseError turns a refusal into the matching error.
func responseError(topic string, r Response) error {
	switch r.Code {
	case CodeOK:
		return nil
	case CodePermission:
		return &PermissionError{Topic: topic, Reason: r.Error}
	case CodeSchema:
		return fmt.Errorf("bus: topic %q: %w: %s", topic, ErrSchemaMismatch, r.Error)
	default:
		return fmt.Errorf("%w: topic %q: publisher answered code %d: %s", ErrProtocol, topic, r.Code, r.Error)
	}
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		sys.Close(fd)
	}
}

// waitForSocket waits until the topic's socket may be worth dialling
// again, at most d. With no socket file, that is when one is created
// (inotify). A socket file already there is most likely a dead
// publisher's (the dial that led here was refused): the wait then ends at
// a new one or after staleRetry, whichever comes first, so a subscriber
// neither spins on refused dials nor misses a socket replaced in between.
func waitForSocket(ctx context.Context, b *bus, topic string, d time.Duration) error {
	const staleRetry = 50 * time.Millisecond
	path := b.socketPath(topic)
	fd, err := sys.WatchDir(b.dir, sys.InCreate|sys.InMovedTo)
	if err != nil {
		return fmt.Errorf("bus: watch %s: %w", b.dir, err)
	}
	f := os.NewFile(uintptr(fd), "inotify")
	defer f.Close()
	if _, err := os.Lstat(path); err == nil {
		d = min(d, staleRetry)
	}
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
	defer stop()
	f.SetReadDeadline(time.Now().Add(d))
	want := filepath.Base(path)
	buf := make([]byte, 64*(sys.InEventSize+256))
	for {
		n, err := f.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return ErrNoPublisher
			}
			return err
		}
		for _, name := range sys.InotifyNames(buf[:n]) {
			if name == want {
				return nil
			}
		}
	}
}
