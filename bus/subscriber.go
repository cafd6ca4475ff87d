package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/sensorbus/sensorbus/internal/sys"
	"github.com/sensorbus/sensorbus/ring"
	"github.com/sensorbus/sensorbus/schema"
)

// WaitForever as SubscriberConfig.WaitForPublisher waits for the
// publisher without limit (but the context's).
const WaitForever time.Duration = math.MaxInt64

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
	Start ring.Start // where a Stream subscriber begins (default FromNewest); FromIndex is not accepted
	Wait  ring.Wait  // WaitBlock (default), WaitSpin or WaitAdaptive

	// WaitForPublisher is how long Subscribe waits for the topic's
	// publisher (and its bus directory) to appear; 0 fails at once with
	// ErrNoPublisher, WaitForever waits without limit. A Stream subscriber
	// that had to wait starts at the publisher's first sample, whatever
	// Start says, so that it accounts for every sample.
	WaitForPublisher time.Duration

	// NoReattach makes Next return ring.ErrWriterClosed or
	// ring.ErrWriterDead when the publisher goes, instead of waiting for
	// it to come back and re-attaching.
	NoReattach bool

	// LivenessInterval is how often a waiting subscriber looks at its
	// publisher's state (default ring.DefaultLivenessInterval); the end
	// of the control connection is noticed at once.
	LivenessInterval time.Duration

	// Name is the subscriber's stable name in its reports to the
	// publisher, which busctl info, top and metrics show (default: the
	// program's name, cut to MaxNameLen). 1 to MaxNameLen printable ASCII
	// bytes.
	Name string

	// ReportInterval is how often the subscriber reports its counters to
	// its publisher over the control connection (default
	// DefaultReportInterval; negative: never). It reports once more when
	// it closes.
	ReportInterval time.Duration

	// The counters a report carries are those of the last call of Next
	// that returned a sample or began to wait for one.
	//
	// Latency, if set, gives the publish-to-receipt latency percentiles
	// the caller measures, for the reports. It is called from the
	// goroutine that calls Next, inside Next, about once per
	// ReportInterval, and from Close.
	Latency func() (p50, p99 time.Duration)
}

// DefaultReportInterval is SubscriberConfig.ReportInterval's default.
const DefaultReportInterval = time.Second

// programName is the default subscriber name: the program's base name,
// printable and at most MaxNameLen bytes.
func programName() string {
	b := []byte(filepath.Base(os.Args[0]))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '_'
		}
	}
	if len(b) > MaxNameLen {
		b = b[:MaxNameLen]
	}
	if len(b) == 0 || string(b) == "." || string(b) == "/" {
		return "subscriber"
	}
	return string(b)
}

// validate is the one place a SubscriberConfig is checked.
func (c *SubscriberConfig) validate() error {
	if err := ValidTopic(c.Topic); err != nil {
		return err
	}
	rc := ring.ReaderConfig{Mode: c.Mode, Start: c.Start, Wait: c.Wait, LivenessInterval: c.LivenessInterval}
	switch {
	case c.Start == ring.FromIndex:
		return fmt.Errorf("%w: Start FromIndex is for ring readers; a subscriber starts FromNewest or FromOldest", ErrInvalid)
	case c.WaitForPublisher < 0:
		return fmt.Errorf("%w: negative WaitForPublisher %v", ErrInvalid, c.WaitForPublisher)
	case c.Schema != nil && c.Untyped:
		return fmt.Errorf("%w: both a Schema and Untyped", ErrInvalid)
	case c.SharedGID < 0:
		return fmt.Errorf("%w: negative SharedGID %d", ErrInvalid, c.SharedGID)
	}
	if c.Name == "" {
		c.Name = programName()
	}
	if err := ValidName(c.Name); err != nil {
		return err
	}
	if c.ReportInterval == 0 {
		c.ReportInterval = DefaultReportInterval
	}
	if err := rc.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
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
// For a Stream subscriber, Received + Lost + Lag is every sample published
// since it attached (since the publisher's first, if it waited for it).
type SubscriberStats struct {
	Received  uint64 // samples delivered
	Lost      uint64 // samples lost (Stream) or skipped (Latest), restarts included
	Lag       uint64 // samples published but neither delivered nor counted lost yet
	Damaged   uint64 // samples skipped because their slot was in an impossible state (included in Lost)
	Restarts  uint64 // publisher restarts re-attached across
	Retries   uint64 // torn reads retried
	Reattach  time.Duration
	Attached  bool
	Published uint64 // the current publisher's cursor at the last look
}

// Subscriber receives a topic's samples. Next, Stats, Topic, Header and
// PublisherStatus belong to one goroutine; Close may be called from any,
// also while Next waits (which then returns ErrClosed) and more than once.
// After Close every method returns ErrClosed or the last values.
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
	lastGen      uint64 // the generation last attached to
	lastReattach time.Duration
	pollNote     sync.Once

	// Reports: Next refreshes snap when the reporter marks it due; the
	// reporter sends the latest one.
	snapDue      atomic.Bool
	snapMu       sync.Mutex
	snap         Report
	dirty        bool          // samples delivered since snap was taken; Next's
	reporterDone chan struct{} // closed when the reporter has stopped; nil without one
}

// Subscribe attaches to a topic, waiting up to cfg.WaitForPublisher for its
// publisher to appear.
func Subscribe(ctx context.Context, cfg SubscriberConfig) (*Subscriber, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	deadline := deadlineAfter(cfg.WaitForPublisher)
	log := cmp.Or(cfg.Logger, zap.NewNop()).With(zap.String("topic", cfg.Topic))
	b, waited, err := openBus(ctx, cfg.Options, deadline, log)
	if err != nil {
		return nil, err
	}
	s := &Subscriber{cfg: cfg, bus: b, log: log, snap: Report{Name: cfg.Name}}
	s.closeCtx, s.closeStop = context.WithCancel(context.Background())
	if err := s.attach(ctx, deadline, waited); err != nil {
		s.closeStop()
		b.close()
		return nil, err
	}
	if cfg.ReportInterval > 0 {
		s.reporterDone = make(chan struct{})
		go s.reporter()
	}
	return s, nil
}

// reporter sends the subscriber's latest counters to its publisher every
// ReportInterval, from the first moment on, and asks Next to refresh them.
func (s *Subscriber) reporter() {
	defer close(s.reporterDone)
	t := time.NewTicker(s.cfg.ReportInterval)
	defer t.Stop()
	for {
		s.snapMu.Lock()
		r := s.snap
		s.snapMu.Unlock()
		s.sendReport(r)
		s.snapDue.Store(true)
		select {
		case <-s.closeCtx.Done():
			return
		case <-t.C:
		}
	}
}

// snapshot refreshes the report, with the caller's latency percentiles if
// latency says so (they may take microseconds to compute); it runs on the
// goroutine that owns Next (or in Close, when no Next can run).
func (s *Subscriber) snapshot(latency bool) Report {
	rs := s.r.Stats()
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	r := s.snap
	r.Received, r.Lost, r.Lag, r.Restarts = s.base.Received+rs.Received, s.base.Lost+rs.Lost, rs.Lag, s.base.Restarts
	if latency && s.cfg.Latency != nil {
		p50, p99 := s.cfg.Latency()
		r.LatencyP50Ns, r.LatencyP99Ns = int64(p50), int64(p99)
	}
	s.snap = r
	return r
}

// Report returns what the subscriber last reported, or is about to: its
// name and its counters as of the last call of Next that returned a
// sample or began to wait. It may be called from any goroutine.
func (s *Subscriber) Report() Report {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	return s.snap
}

// sendReport sends r on the current control connection, without waiting
// for room: a report that does not go out now is replaced by the next.
func (s *Subscriber) sendReport(r Report) {
	c := s.curConn.Load()
	if c == nil {
		return
	}
	b, err := (&Request{Version: ProtocolVersion, Op: OpReport, Report: r}).MarshalMsg(nil)
	if err != nil {
		return
	}
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	c.Write(b) // a gone publisher is the watcher's to notice
}

// deadlineAfter returns the time d from now; zero time for WaitForever.
func deadlineAfter(d time.Duration) time.Time {
	if d == WaitForever {
		return time.Time{}
	}
	return time.Now().Add(d)
}

// openBus opens the bus directory, waiting until deadline (zero: forever)
// for a publisher to create it; waited says whether it had to.
func openBus(ctx context.Context, o Options, deadline time.Time, log *zap.Logger) (b *bus, waited bool, err error) {
	for {
		b, err := o.open(false)
		if err == nil || !errors.Is(err, ErrNoBus) {
			return b, waited, err
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return nil, waited, fmt.Errorf("%w: %w", ErrNoPublisher, err)
		}
		if !waited {
			log.Info("waiting for the publisher", zap.Error(err))
			waited = true
		}
		select {
		case <-ctx.Done():
			return nil, waited, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// attach connects to the publisher, waiting until deadline (zero: forever)
// for it, and maps the ring it hands over. A Stream subscriber that waits,
// or waited already (waited), starts at the new publisher's first sample.
func (s *Subscriber) attach(ctx context.Context, deadline time.Time, waited bool) error {
	for {
		err := s.attachOnce(ctx, waited)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrNoPublisher) {
			return err
		}
		if !waited {
			s.log.Info("waiting for the publisher", zap.Error(err))
		}
		waited = true
		left := time.Until(deadline)
		if deadline.IsZero() {
			left = time.Hour
		} else if left <= 0 {
			return fmt.Errorf("%w for topic %q after %v (%s)", ErrNoPublisher, s.cfg.Topic, s.cfg.WaitForPublisher, s.bus.dir)
		}
		if err := s.waitForSocket(ctx, left); err != nil && !errors.Is(err, ErrNoPublisher) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// attachOnce attaches to the publisher there now. fromFirst starts a
// Stream subscriber at the publisher's first sample. Re-attaching to the
// generation it last read resumes right after what it delivered.
func (s *Subscriber) attachOnce(ctx context.Context, fromFirst bool) error {
	conn, err := dial(ctx, s.bus, s.cfg.Topic)
	if err != nil {
		return err
	}
	req := Request{Op: OpAttach, Untyped: s.cfg.Untyped, Mode: uint8(s.cfg.Mode)}
	if s.cfg.Schema != nil {
		req.Schema, req.Fingerprint = s.cfg.Schema.Name, s.cfg.Schema.Fingerprint
	}
	resp, fds, err := roundTrip(conn, req, 2, requestTimeout)
	if err != nil {
		conn.Close()
		if errors.Is(err, io.EOF) || errors.Is(err, sys.ECONNRESET) || errors.Is(err, sys.EPIPE) {
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
	rcfg := ring.ReaderConfig{Mode: s.cfg.Mode, Start: s.cfg.Start, Wait: s.cfg.Wait, LivenessInterval: s.cfg.LivenessInterval}
	if s.cfg.Mode == ring.Stream {
		switch {
		case s.r != nil && resp.Topic.Generation == s.lastGen:
			rcfg.Start, rcfg.Index = ring.FromIndex, s.r.Position()
		case fromFirst:
			rcfg.Start, rcfg.Index = ring.FromIndex, 0
		}
	}
	rf := os.NewFile(uintptr(fds[0]), s.cfg.Topic)
	wf := os.NewFile(uintptr(fds[1]), s.cfg.Topic+".wake")
	r, err := ring.Attach(rf, wf, rcfg)
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
	// mapped until now.
	oldR, oldConn, oldDone := s.r, s.conn, s.watchDone
	s.restarted = oldR != nil && h.Generation != s.lastGen
	s.r, s.conn, s.desc, s.watchDone, s.lastGen = r, conn, resp.Topic, make(chan struct{}), h.Generation
	s.cur.Store(r)
	s.curConn.Store(conn)
	s.connGone.Store(false)
	if s.state.Load()&stateClosed != 0 {
		// Close ran meanwhile and may have canceled the old reader only.
		r.Cancel()
		conn.Close()
	}
	if oldR != nil {
		closeGeneration(oldR, oldConn, oldDone)
	}
	go s.watch(conn, r, s.watchDone)
	s.log.Info("attached", zap.Int32("publisher_pid", resp.Topic.WriterPID), zap.Uint64("generation", h.Generation),
		zap.String("schema", h.SchemaName), zap.Uint64("from", r.Position()))
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
			// The publisher closed or died: the ring holds what it
			// published, and nothing more will come.
			s.connGone.Store(true)
			r.WriterGone()
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
		// The report's counters are refreshed when the reporter asks
		// (snapDue) and before Next waits with samples delivered since
		// the last refresh (dirty): an idle subscriber reports all it got.
		rs, ok, err := s.r.TryNext()
		if err == nil && !ok {
			if s.dirty && s.reporterDone != nil {
				s.dirty = false
				s.snapshot(false)
			}
			rs, err = s.r.Next(ctx)
		}
		if err == nil {
			s.dirty = true
			if s.snapDue.Load() {
				s.snapDue.Store(false)
				s.dirty = false
				s.snapshot(true)
			}
			out := Sample{Sample: rs}
			if s.restarted {
				out.Restarted = true
				s.restarted = false
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

// reattach waits, without limit but ctx and Close, for the topic's next
// publisher and attaches to it from its first sample.
func (s *Subscriber) reattach(ctx context.Context) error {
	t0 := time.Now()
	old := s.r.Stats() // folded into the totals once the new generation replaced it
	// Merge the caller's context with Close.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.closeCtx, cancel)
	defer stop()
	for {
		err := s.attach(wctx, time.Time{}, true)
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
	s.base.Damaged += old.Damaged
	s.base.Retries += old.Retries
	if s.restarted {
		s.base.Restarts++
	}
	s.lastReattach = time.Since(t0)
	s.log.Info("re-attached", zap.Bool("publisher_restarted", s.restarted), zap.Uint64("lost_before_first", s.r.Stats().Lost), zap.Duration("took", s.lastReattach))
	return nil
}

// Stats returns what the subscriber counted, across restarts.
func (s *Subscriber) Stats() SubscriberStats {
	st := s.base
	rs := s.r.Stats()
	st.Received += rs.Received
	st.Lost += rs.Lost
	st.Damaged += rs.Damaged
	st.Retries += rs.Retries
	st.Lag = rs.Lag
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
			s.finalReport(st&stateRunning == 0)
			if c := s.curConn.Load(); c != nil {
				c.Close()
			}
			if r := s.cur.Load(); r != nil {
				r.Cancel() // safe even if Next released it meanwhile
			}
			if st&stateRunning == 0 {
				s.release()
			}
			return nil
		}
	}
}

// finalReport stops the reporter and sends the last report: with fresh
// counters if no Next can run (fresh), else the latest Next took.
func (s *Subscriber) finalReport(fresh bool) {
	if s.reporterDone == nil {
		return
	}
	<-s.reporterDone
	var r Report
	if fresh {
		r = s.snapshot(true)
	} else {
		s.snapMu.Lock()
		r = s.snap
		s.snapMu.Unlock()
	}
	r.Final = true
	s.sendReport(r)
}

// release unmaps the ring and closes the connection; called once, by
// whichever of Close and Next ends last.
func (s *Subscriber) release() {
	closeGeneration(s.r, s.conn, s.watchDone)
	s.closeStop()
	s.bus.close()
}

// closeGeneration ends one attachment: the connection first, then, once
// its watcher can no longer interrupt the reader, the reader's mapping.
func closeGeneration(r *ring.Reader, conn *net.UnixConn, watchDone chan struct{}) {
	conn.Close()
	<-watchDone
	r.Close()
}

// requestTimeout bounds a request's round trip to a publisher.
const requestTimeout = 5 * time.Second

// dial connects to a topic's socket; a missing or dead one is
// ErrNoPublisher, and so is one whose publisher accepts nothing (hung, or
// its backlog full).
func dial(ctx context.Context, b *bus, topic string) (*net.UnixConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unixpacket", b.addr(topic+sockSuffix))
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist) || errors.Is(err, sys.ECONNREFUSED):
			return nil, ErrNoPublisher
		case errors.Is(err, sys.EAGAIN):
			return nil, fmt.Errorf("%w: %w", ErrNoPublisher, errNotAccepting)
		}
		return nil, fmt.Errorf("bus: connect to %s: %w", b.path(topic+sockSuffix), err)
	}
	return c.(*net.UnixConn), nil
}

// errNotAccepting: the socket exists and the publisher holds it, but
// accepts no connection.
var errNotAccepting = errors.New("its publisher accepts no connections")

// roundTrip sends req and reads one response with up to maxFDs
// descriptors, within timeout. A publisher that refused the connection
// may have answered and closed before the request went out: its answer is
// read all the same.
func roundTrip(c *net.UnixConn, req Request, maxFDs int, timeout time.Duration) (Response, []int, error) {
	req.Version = ProtocolVersion
	b, err := req.MarshalMsg(nil)
	if err != nil {
		return Response{}, nil, err
	}
	c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	_, werr := c.Write(b)
	if werr != nil && !errors.Is(werr, sys.EPIPE) && !errors.Is(werr, sys.ECONNRESET) {
		return Response{}, nil, fmt.Errorf("bus: send request: %w", werr)
	}
	buf := make([]byte, MaxMessage+1)
	oob := make([]byte, 64+16*maxFDs)
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	if err == nil && n == 0 && oobn == 0 {
		err = io.EOF
	}
	if err != nil {
		if werr != nil {
			return Response{}, nil, fmt.Errorf("bus: send request: %w", werr)
		}
		return Response{}, nil, fmt.Errorf("bus: read response: %w", err)
	}
	fds, _ := sys.ParseRights(oob[:oobn])
	if len(fds) > maxFDs {
		closeFDs(fds)
		return Response{}, nil, fmt.Errorf("%w: response carried %d descriptors, want at most %d", ErrProtocol, len(fds), maxFDs)
	}
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
	case CodeLimit:
		return fmt.Errorf("%w: topic %q: %s", ErrLimit, topic, r.Error)
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
// Without inotify (its per-user limits reached) it polls.
func (s *Subscriber) waitForSocket(ctx context.Context, d time.Duration) error {
	const staleRetry = 50 * time.Millisecond
	name := s.cfg.Topic + sockSuffix
	fd, err := sys.WatchDir(s.bus.addr(""), sys.InCreate|sys.InMovedTo)
	if err != nil {
		if !errors.Is(err, sys.EMFILE) && !errors.Is(err, sys.ENFILE) && !errors.Is(err, sys.ENOSPC) {
			return fmt.Errorf("bus: watch %s: %w", s.bus.dir, err)
		}
		s.pollNote.Do(func() {
			s.log.Info("inotify unavailable (per-user limit reached); polling the bus directory instead", zap.Error(err))
		})
		return s.pollForSocket(ctx, min(d, staleRetry))
	}
	f := os.NewFile(uintptr(fd), "inotify")
	defer f.Close()
	if _, err := sys.StatAt(s.bus.fd, name); err == nil {
		d = min(d, staleRetry)
	}
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
	defer stop()
	f.SetReadDeadline(time.Now().Add(d))
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
		for _, got := range sys.InotifyNames(buf[:n]) {
			if got == name {
				return nil
			}
		}
	}
}

// pollForSocket waits d, or less if ctx ends; the caller dials again.
func (s *Subscriber) pollForSocket(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return ErrNoPublisher
	}
}
