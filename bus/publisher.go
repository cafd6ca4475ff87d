package bus

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/sensorbus/sensorbus/internal/sys"
	"github.com/sensorbus/sensorbus/ring"
	"github.com/sensorbus/sensorbus/schema"
)

// MaxOriginLen bounds PublisherConfig.Origin.
const MaxOriginLen = 128

// Defaults used where a PublisherConfig leaves a field zero.
const (
	DefaultSlotSize       = 256
	DefaultSlots          = 4096
	DefaultRequestTimeout = 2 * time.Second
	DefaultMaxConns       = 1024
	DefaultMaxConnsPerUID = 64
)

// PublisherConfig describes a topic to publish.
type PublisherConfig struct {
	Options

	// Topic names the topic: 1 to MaxTopicLen bytes of ASCII letters,
	// digits, '.', '_' and '-', not starting with '.' or '-'.
	Topic string

	// Schema is the type of the samples; nil publishes untyped bytes.
	Schema *schema.Schema

	// SlotSize is the largest sample in bytes (default DefaultSlotSize);
	// Slots the number of samples the ring keeps, a power of two (default
	// DefaultSlots). See ring.Config.
	SlotSize int
	Slots    int

	// AllowUIDs and AllowGIDs admit subscribers besides this process's
	// own user and root. A peer is admitted if its uid is listed or its
	// primary or a supplementary group is, as the kernel recorded them
	// when it connected (SO_PEERCRED, SO_PEERGROUPS).
	AllowUIDs []int
	AllowGIDs []int

	// HeartbeatInterval is how often the publisher shows it is alive even
	// when it publishes nothing (default ring.DefaultHeartbeatInterval).
	HeartbeatInterval time.Duration

	// RequestTimeout is how long an admitted client may take, from its
	// connection, to attach or finish its requests (default
	// DefaultRequestTimeout). Nothing a client sends extends it.
	RequestTimeout time.Duration

	// Origin says where the samples come from when the publisher relays
	// them (a bridge importing a remote host's topic names the host); it
	// is shown by List and Info. At most MaxOriginLen printable bytes.
	Origin string

	// MaxConns and MaxConnsPerUID bound the open control connections, in
	// all and per uid (defaults DefaultMaxConns, DefaultMaxConnsPerUID).
	// A connection beyond either is refused at once.
	MaxConns       int
	MaxConnsPerUID int
}

// validate is the one place a PublisherConfig is checked: it fills in the
// defaults and checks every field before anything is created.
func (c *PublisherConfig) validate() error {
	if err := ValidTopic(c.Topic); err != nil {
		return err
	}
	c.SlotSize = cmp.Or(c.SlotSize, DefaultSlotSize)
	c.Slots = cmp.Or(c.Slots, DefaultSlots)
	c.HeartbeatInterval = cmp.Or(c.HeartbeatInterval, ring.DefaultHeartbeatInterval)
	c.RequestTimeout = cmp.Or(c.RequestTimeout, DefaultRequestTimeout)
	c.MaxConns = cmp.Or(c.MaxConns, DefaultMaxConns)
	c.MaxConnsPerUID = cmp.Or(c.MaxConnsPerUID, DefaultMaxConnsPerUID)
	if err := ring.CheckGeometry(c.SlotSize, c.Slots); err != nil {
		return fmt.Errorf("%w: topic %q: %v", ErrInvalid, c.Topic, err)
	}
	switch {
	case c.HeartbeatInterval < 0:
		return fmt.Errorf("%w: negative HeartbeatInterval %v", ErrInvalid, c.HeartbeatInterval)
	case c.RequestTimeout < 0:
		return fmt.Errorf("%w: negative RequestTimeout %v", ErrInvalid, c.RequestTimeout)
	case c.MaxConns < 0 || c.MaxConnsPerUID < 0:
		return fmt.Errorf("%w: negative MaxConns %d or MaxConnsPerUID %d", ErrInvalid, c.MaxConns, c.MaxConnsPerUID)
	case c.SharedGID < 0:
		return fmt.Errorf("%w: negative SharedGID %d", ErrInvalid, c.SharedGID)
	case len(c.Origin) > MaxOriginLen:
		return fmt.Errorf("%w: Origin of %d bytes exceeds %d", ErrInvalid, len(c.Origin), MaxOriginLen)
	}
	for i := 0; i < len(c.Origin); i++ {
		if b := c.Origin[i]; b < 0x20 || b > 0x7e {
			return fmt.Errorf("%w: Origin %q has a non-printable byte at %d", ErrInvalid, c.Origin, i)
		}
	}
	for _, id := range append(slices.Clone(c.AllowUIDs), c.AllowGIDs...) {
		if id < 0 {
			return fmt.Errorf("%w: negative id %d in an allow list", ErrInvalid, id)
		}
	}
	return nil
}

// Publisher owns a topic: its ring, which it writes, and its control
// socket, on which it admits subscribers.
//
// Publish and Ring (and the ring.Writer's publishing methods) belong to
// one goroutine. Describe, Subscribers, Topic and Close may be called from
// any goroutine, also while another publishes: a Publish running during
// Close completes harmlessly, and every later one returns ErrClosed.
//
// What others can do to a publisher: a peer it does not admit is closed
// at once, before it is read from, and costs one accept; an admitted one
// gets read-only access to the ring and a wake area it may scribble on
// (late or spurious wake-ups, nothing else), holds at most
// MaxConnsPerUID connections for at most RequestTimeout each until it
// attaches, and can make no dead publisher look alive: liveness is an OFD
// lock on a file only the publisher's uid can open.
type Publisher struct {
	cfg     PublisherConfig
	bus     *bus
	log     *zap.Logger
	w       *ring.Writer
	ln      *net.UnixListener
	lnFile  *os.File // the listening socket again, for accept: a listener's own raw descriptor cannot wait
	liveFD  int      // TOPIC.pub, locked for the publisher's life
	started time.Time
	refused limiter // warnings about refused peers

	bytes       atomic.Uint64 // payload bytes published through Publish and PublishMessage
	lastPublish atomic.Int64  // Unix ns when beat last saw the cursor move
	dropped     atomic.Uint64 // messages from attached peers dropped: malformed, not a report, or over the rate limit
	skipped     atomic.Uint64 // samples accounted lost by Skip

	mu       sync.Mutex
	rateHz   float64
	peers    map[*net.UnixConn]Peer     // attached subscribers
	conns    map[*net.UnixConn]sys.Cred // every open connection
	perUID   map[int]int
	closing  bool
	stopBeat chan struct{}
	wg       sync.WaitGroup
}

// NewPublisher takes the topic and starts serving it. A topic with a live
// publisher gives a *TopicBusyError (errors.Is ErrTopicBusy); a dead
// publisher's leftovers are replaced. A ring the memory limits cannot hold
// fails here with a *ring.MemoryError (errors.Is ring.ErrNoMemory).
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	b, err := cfg.open(true)
	if err != nil {
		return nil, err
	}
	p := &Publisher{cfg: cfg, bus: b, log: b.logger.With(zap.String("topic", cfg.Topic)), liveFD: -1,
		peers: map[*net.UnixConn]Peer{}, conns: map[*net.UnixConn]sys.Cred{}, perUID: map[int]int{},
		stopBeat: make(chan struct{}), started: time.Now()}
	if err := p.start(); err != nil {
		if p.liveFD >= 0 {
			sys.Close(p.liveFD)
		}
		b.close()
		return nil, err
	}
	p.wg.Add(2)
	go p.accept()
	go p.beat()
	p.log.Info("publishing", zap.String("socket", b.path(cfg.Topic+sockSuffix)),
		zap.Int("slot_size", cfg.SlotSize), zap.Int("slots", cfg.Slots))
	return p, nil
}

// start takes the topic, creates its ring and binds its socket, under the
// bus lock.
func (p *Publisher) start() error {
	unlock, err := p.bus.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := p.takeTopic(); err != nil {
		return err
	}
	rcfg := ring.Config{SlotSize: p.cfg.SlotSize, Slots: p.cfg.Slots, HeartbeatInterval: p.cfg.HeartbeatInterval}
	if p.cfg.Schema != nil {
		rcfg = p.cfg.Schema.RingConfig(rcfg)
	}
	if p.w, err = ring.Create(rcfg); err != nil {
		p.dropTopic()
		return fmt.Errorf("bus: topic %q: %w", p.cfg.Topic, err)
	}
	if err := p.listen(); err != nil {
		p.w.Close()
		p.dropTopic()
		return err
	}
	return nil
}

// takeTopic locks the topic's liveness file, creating it if need be. The
// caller holds the bus lock. A live publisher holds the lock: the topic is
// busy. A file there unlocked is a dead publisher's, and now ours.
func (p *Publisher) takeTopic() error {
	name := p.cfg.Topic + pubSuffix
	fd, err := sys.OpenAt(p.bus.fd, name, true, false, 0o600)
	if err != nil {
		return fmt.Errorf("bus: open %s: %w", p.bus.path(name), err)
	}
	if err := checkPrivate(fd); err != nil {
		sys.Close(fd)
		return fmt.Errorf("%w: %s: %v", ErrBadDir, p.bus.path(name), err)
	}
	if err := sys.TryLock(fd, 0); err != nil {
		pid := readPID(fd)
		sys.Close(fd)
		if errors.Is(err, sys.EAGAIN) {
			return &TopicBusyError{Topic: p.cfg.Topic, PID: pid}
		}
		return fmt.Errorf("bus: lock %s: %w", p.bus.path(name), err)
	}
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := sys.Truncate(fd, 0); err == nil {
		sys.Pwrite(fd, pid, 0) // for messages only
	}
	p.liveFD = fd
	return nil
}

// dropTopic removes the liveness file and releases its lock. The caller
// holds the bus lock.
func (p *Publisher) dropTopic() {
	sys.UnlinkAt(p.bus.fd, p.cfg.Topic+pubSuffix)
	sys.Close(p.liveFD)
	p.liveFD = -1
}

// readPID reads the pid a liveness file records, or 0.
func readPID(fd int) int {
	var b [16]byte
	n, _ := sys.Pread(fd, b[:], 0)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:max(n, 0)])))
	return pid
}

// listen binds the topic's socket. The caller holds the bus lock and owns
// the topic, so a socket file already there is a dead publisher's.
func (p *Publisher) listen() error {
	name, tmp := p.cfg.Topic+sockSuffix, tmpSocket(p.cfg.Topic)
	for _, n := range []string{name, tmp} {
		if err := sys.UnlinkAt(p.bus.fd, n); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("bus: remove stale socket: %w", err)
		}
	}
	// Bound under a name no subscriber looks for, given its group and
	// mode, then renamed into place: nobody ever finds the socket with
	// the umask's mode (a subscriber of the group would be refused).
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: p.bus.addr(tmp), Net: "unixpacket"})
	if err != nil {
		return fmt.Errorf("bus: listen on %s: %w", p.bus.path(name), err)
	}
	ln.SetUnlinkOnClose(false) // removed under the bus lock in Close
	perm := uint32(0o600)
	if p.bus.gid != 0 {
		perm = 0o660
		err = sys.FchownAt(p.bus.fd, tmp, p.bus.gid)
	}
	if err == nil {
		err = sys.FchmodAt(p.bus.fd, tmp, perm)
	}
	if err == nil {
		err = p.openListener(ln)
	}
	if err == nil {
		err = sys.RenameAt(p.bus.fd, tmp, name)
	}
	if err != nil {
		ln.Close()
		if p.lnFile != nil {
			p.lnFile.Close()
		}
		sys.UnlinkAt(p.bus.fd, tmp)
		return fmt.Errorf("bus: set up %s: %w", p.bus.path(name), err)
	}
	p.ln = ln
	return nil
}

// tmpSocket names a topic's socket while it is set up.
func tmpSocket(topic string) string { return "." + topic + sockSuffix + ".new" }

// openListener duplicates ln's descriptor into an *os.File, which (unlike
// a listener) lets accept wait for connections and take them itself.
func (p *Publisher) openListener(ln *net.UnixListener) error {
	rc, err := ln.SyscallConn()
	if err != nil {
		return err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(lfd uintptr) { fd, derr = sys.Dup(int(lfd)) }); err != nil {
		return err
	}
	if derr != nil {
		return derr
	}
	p.lnFile = os.NewFile(uintptr(fd), "listener") // non-blocking, like ln: Go's poller waits on it
	return nil
}

// Ring returns the topic's ring writer, for schema.NewWriter or
// Reserve/Commit. It belongs to the goroutine that publishes.
func (p *Publisher) Ring() *ring.Writer { return p.w }

// Publish publishes one sample of raw bytes.
func (p *Publisher) Publish(b []byte) error {
	if err := p.w.Publish(b); err != nil {
		return err
	}
	// The publishing goroutine's own cache line: an uncontended add,
	// read by Describe at most a few times a second.
	p.bytes.Add(uint64(len(b)))
	return nil
}

// Skip accounts the next n samples as lost without publishing them (see
// ring.Writer.Skip), for a relay that knows they never reached it (a
// bridge's import, a replay of a recording with a gap). They are counted
// in TopicDesc.Skipped. Like Publish, it belongs to the publishing
// goroutine.
func (p *Publisher) Skip(n uint64) error {
	if err := p.w.Skip(n); err != nil {
		return err
	}
	p.skipped.Add(n)
	return nil
}

// PublishMessage encodes m straight into the next slot and publishes it,
// as schema.EncodeMessage does, counting its bytes. A message that may not
// fit the slot is refused with schema.ErrTooLarge before anything is
// written.
func (p *Publisher) PublishMessage(m schema.Message) error {
	if m.Msgsize() > p.w.SlotSize() {
		return schema.ErrTooLarge
	}
	buf, err := p.w.Reserve()
	if err != nil {
		return err
	}
	out, err := m.MarshalMsg(buf[:0])
	if err != nil {
		p.w.Abort()
		return fmt.Errorf("bus: encode: %w", err)
	}
	if len(out) > len(buf) || len(out) > 0 && &out[0] != &buf[0] {
		p.w.Abort() // msgp grew the buffer: the message did not fit after all
		return schema.ErrTooLarge
	}
	if err := p.w.Commit(len(out)); err != nil {
		return err
	}
	p.bytes.Add(uint64(len(out)))
	return nil
}

// Topic returns the topic's name.
func (p *Publisher) Topic() string { return p.cfg.Topic }

// accept takes connections in batches straight off the listening socket
// and checks each before anything else is done with it: a refused peer
// costs a few system calls and never reaches Go's poller, so a flood of
// them keeps the backlog short for honest subscribers.
func (p *Publisher) accept() {
	defer p.wg.Done()
	rc, err := p.lnFile.SyscallConn()
	if err != nil {
		p.log.Error("listener", zap.Error(err))
		return
	}
	fds := make([]int, 0, 64)
	for {
		var aerr error
		fds = fds[:0]
		err := rc.Read(func(lfd uintptr) bool {
			for len(fds) < cap(fds) {
				fd, err := sys.Accept(int(lfd))
				if err != nil {
					if !errors.Is(err, sys.EAGAIN) {
						aerr = err
					}
					return len(fds) > 0 || aerr != nil
				}
				fds = append(fds, fd)
			}
			return true
		})
		if err != nil {
			p.mu.Lock()
			closing := p.closing
			p.mu.Unlock()
			if !closing {
				p.log.Error("listener", zap.Error(err))
			}
			return
		}
		now := time.Now()
		for _, fd := range fds {
			p.admitConn(fd, now)
		}
		if aerr != nil {
			// Out of descriptors, most likely: keep serving those we have.
			p.refused.warn(p.log, "accept failed", zap.Error(aerr))
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// admitConn checks a new connection fd before anything is read from it:
// the peer's credentials against the allow lists, then the connection
// limits. A refused peer is told why and closed at once.
func (p *Publisher) admitConn(fd int, at time.Time) {
	cred, err := sys.PeerCred(fd)
	if err != nil {
		p.refused.warn(p.log, "peer credentials", zap.Error(err))
		sys.Close(fd)
		return
	}
	if reason := p.admit(cred); reason != "" {
		p.refused.warn(p.log, "refused", zap.Int("peer_pid", cred.PID), zap.Int("peer_uid", cred.UID), zap.String("reason", reason))
		tell(fd, Response{Code: CodePermission, Error: reason})
		return
	}
	p.mu.Lock()
	var limit string
	switch {
	case p.closing:
		limit = "the publisher is closing"
	case len(p.conns) >= p.cfg.MaxConns:
		limit = fmt.Sprintf("the publisher has %d connections, its limit", len(p.conns))
	case p.perUID[cred.UID] >= p.cfg.MaxConnsPerUID:
		limit = fmt.Sprintf("uid %d has %d connections, the limit per uid", cred.UID, p.perUID[cred.UID])
	}
	if limit != "" {
		p.mu.Unlock()
		p.refused.warn(p.log, "connection refused", zap.Int("peer_pid", cred.PID), zap.Int("peer_uid", cred.UID), zap.String("reason", limit))
		tell(fd, Response{Code: CodeLimit, Error: limit})
		return
	}
	// Counted now, so that connections accepted in one batch cannot
	// pass the limits together.
	p.perUID[cred.UID]++
	p.wg.Add(1)
	p.mu.Unlock()
	f := os.NewFile(uintptr(fd), "control")
	nc, err := net.FileConn(f) // a duplicate of fd
	f.Close()
	if err != nil {
		p.log.Warn("control connection", zap.Error(err))
		p.forget(nil, cred)
		return
	}
	c := nc.(*net.UnixConn)
	p.mu.Lock()
	p.conns[c] = cred
	closing := p.closing // Close may have closed the others already
	p.mu.Unlock()
	if closing {
		c.Close()
	}
	go p.serve(c, cred, at)
}

// forget drops a connection from the counts; c may be nil.
func (p *Publisher) forget(c *net.UnixConn, cred sys.Cred) {
	p.mu.Lock()
	delete(p.peers, c)
	delete(p.conns, c)
	if p.perUID[cred.UID]--; p.perUID[cred.UID] <= 0 {
		delete(p.perUID, cred.UID)
	}
	p.mu.Unlock()
	p.wg.Done()
}

// tell sends a refusal on the new connection fd, without waiting (the
// socket is non-blocking and its buffer empty), and closes it.
func tell(fd int, r Response) {
	r.Version = ProtocolVersion
	if b, err := r.MarshalMsg(nil); err == nil && len(b) <= MaxMessage {
		sys.Write(fd, b)
	}
	sys.CloseRefused(fd)
}

// beat keeps the heartbeat fresh while nothing is published and updates
// the rate once a second.
func (p *Publisher) beat() {
	defer p.wg.Done()
	t := time.NewTicker(p.cfg.HeartbeatInterval)
	defer t.Stop()
	lastAt, last, seen := time.Now(), uint64(0), uint64(0)
	for {
		select {
		case <-p.stopBeat:
			return
		case now := <-t.C:
			p.w.Heartbeat()
			if pub := p.w.Status().Published; pub != seen {
				seen = pub
				p.lastPublish.Store(now.UnixNano())
			}
			if d := now.Sub(lastAt); d >= time.Second {
				pub := p.w.Status().Published
				p.mu.Lock()
				p.rateHz = float64(pub-last) / d.Seconds()
				p.mu.Unlock()
				last, lastAt = pub, now
			}
		}
	}
}

// serve answers one admitted client's requests until it leaves.
func (p *Publisher) serve(c *net.UnixConn, cred sys.Cred, at time.Time) {
	defer p.forget(c, cred)
	defer c.Close()
	log := p.log.With(zap.Int("peer_pid", cred.PID), zap.Int("peer_uid", cred.UID))
	// One deadline from the connection on: no request, good or bad,
	// extends it. Attaching lifts it.
	c.SetReadDeadline(at.Add(p.cfg.RequestTimeout))
	buf := make([]byte, MaxMessage+1)
	oob := make([]byte, 256)
	attached := false
	var reports reportLimiter
	for {
		n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
		closeReceivedFDs(oob[:oobn]) // a peer's descriptors are never kept
		if err != nil {
			switch {
			case attached:
				log.Info("subscriber left")
			case errors.Is(err, os.ErrDeadlineExceeded):
				p.refused.warn(log, "client did not finish in time; dropped", zap.Duration("timeout", p.cfg.RequestTimeout))
			default:
				log.Debug("client left", zap.Error(err))
			}
			return
		}
		if n == 0 && oobn == 0 {
			return // orderly shutdown of the peer
		}
		if attached {
			p.takeReport(c, log, buf[:n], flags, &reports)
			continue
		}
		var req Request
		if n > MaxMessage || flags&sys.MsgTrunc != 0 {
			p.refuse(c, log, CodeBadRequest, fmt.Sprintf("message exceeds %d bytes", MaxMessage))
			continue
		}
		if rest, err := req.UnmarshalMsg(buf[:n]); err != nil || len(rest) != 0 {
			p.refuse(c, log, CodeBadRequest, "malformed request: "+describeDecodeErr(err, len(rest)))
			continue
		}
		if req.Version != ProtocolVersion {
			p.refuse(c, log, CodeVersion, fmt.Sprintf("protocol version %d not spoken (this publisher speaks %d)", req.Version, ProtocolVersion))
			continue
		}
		switch req.Op {
		case OpDescribe:
			p.reply(c, log, Response{Code: CodeOK, Topic: p.Describe()}, nil)
		case OpStats:
			d := p.Describe()
			live := TopicDesc{Topic: d.Topic, Published: d.Published, RateHz: d.RateHz, Subscribers: d.Subscribers, Peers: d.Peers}
			p.reply(c, log, Response{Code: CodeOK, Topic: live}, nil)
		case OpAttach:
			if msg := p.checkSchema(req); msg != "" {
				log.Info("schema mismatch", zap.String("reason", msg))
				p.refuse(c, log, CodeSchema, msg)
				continue
			}
			if p.attach(c, log, cred, req.Mode) {
				attached = true
				c.SetReadDeadline(time.Time{})
			}
		default:
			p.refuse(c, log, CodeBadRequest, fmt.Sprintf("unknown operation %d", req.Op))
		}
	}
}

// Reports: a subscriber sends one a second and one as it leaves; the
// bucket holds a few more for re-attaches and clock skew.
const (
	reportBurst = 5
	reportEvery = 500 * time.Millisecond // one token per
)

// reportLimiter is one connection's token bucket for reports.
type reportLimiter struct {
	tokens float64
	last   time.Time
}

// take spends a token, or returns how long until one is there.
func (l *reportLimiter) take(now time.Time) time.Duration {
	if l.last.IsZero() {
		l.tokens = reportBurst
	} else {
		l.tokens = min(reportBurst, l.tokens+float64(now.Sub(l.last))/float64(reportEvery))
	}
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return 0
	}
	return time.Duration((1 - l.tokens) * float64(reportEvery))
}

// takeReport handles one message from an attached subscriber: a valid
// report within the rate limit replaces what the peer said before;
// anything else is counted and dropped. A peer over its limit is not read
// again until it has a token: however fast it sends, it costs the
// publisher a few decodes a second, and its own socket fills up.
func (p *Publisher) takeReport(c *net.UnixConn, log *zap.Logger, msg []byte, flags int, l *reportLimiter) {
	now := time.Now()
	if wait := l.take(now); wait > 0 {
		p.dropped.Add(1)
		p.refused.warn(log, "subscriber reports too often; dropped", zap.Duration("limit", reportEvery))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-p.stopBeat:
			t.Stop()
		}
		return
	}
	var req Request
	var why string
	if flags&sys.MsgTrunc != 0 || len(msg) > MaxMessage {
		why = fmt.Sprintf("message exceeds %d bytes", MaxMessage)
	} else if rest, err := req.UnmarshalMsg(msg); err != nil || len(rest) != 0 {
		why = "malformed report: " + describeDecodeErr(err, len(rest))
	} else if req.Version != ProtocolVersion {
		why = fmt.Sprintf("protocol version %d not spoken", req.Version)
	} else if req.Op != OpReport {
		why = fmt.Sprintf("operation %d from an attached subscriber", req.Op)
	} else if err := ValidName(req.Report.Name); err != nil {
		why = err.Error()
	}
	if why != "" {
		p.dropped.Add(1)
		p.refused.warn(log, "bad message from a subscriber; dropped", zap.String("reason", why))
		return
	}
	r := req.Report
	p.mu.Lock()
	if peer, ok := p.peers[c]; ok {
		peer.Name, peer.Received, peer.Lost, peer.Lag, peer.Restarts = r.Name, r.Received, r.Lost, r.Lag, r.Restarts
		peer.LatencyP50Ns, peer.LatencyP99Ns, peer.ReportUnixNano = max(r.LatencyP50Ns, 0), max(r.LatencyP99Ns, 0), now.UnixNano()
		p.peers[c] = peer
	}
	p.mu.Unlock()
	if r.Final {
		log.Debug("subscriber's last report", zap.String("name", r.Name), zap.Uint64("received", r.Received), zap.Uint64("lost", r.Lost))
	}
}

func describeDecodeErr(err error, rest int) string {
	if err != nil {
		return err.Error()
	}
	return strconv.Itoa(rest) + " bytes after the request"
}

// attach hands the ring's descriptors to the peer.
func (p *Publisher) attach(c *net.UnixConn, log *zap.Logger, cred sys.Cred, mode uint8) bool {
	rf, wf, err := p.w.ReaderFiles()
	if err != nil {
		p.refuse(c, log, CodeInternal, "cannot open the ring: "+err.Error())
		return false
	}
	defer rf.Close()
	defer wf.Close()
	// Counted before the answer goes out: once Subscribe returns, the
	// publisher lists the subscriber.
	p.mu.Lock()
	p.peers[c] = Peer{PID: int32(cred.PID), UID: uint32(cred.UID), AttachedUnixNano: time.Now().UnixNano(), Mode: mode}
	n := len(p.peers)
	p.mu.Unlock()
	if !p.reply(c, log, Response{Code: CodeOK, Topic: p.Describe()}, sys.UnixRights(int(rf.Fd()), int(wf.Fd()))) {
		p.mu.Lock()
		delete(p.peers, c)
		p.mu.Unlock()
		return false
	}
	log.Info("subscriber attached", zap.Int("subscribers", n))
	return true
}

func (p *Publisher) checkSchema(req Request) string {
	if req.Untyped {
		return ""
	}
	var name string
	var fp uint64
	if p.cfg.Schema != nil {
		name, fp = p.cfg.Schema.Name, p.cfg.Schema.Fingerprint
	}
	if req.Schema == name && req.Fingerprint == fp {
		return ""
	}
	return (&schema.MismatchError{WantName: req.Schema, WantFingerprint: req.Fingerprint, GotName: name, GotFingerprint: fp}).Error()
}

// admit returns why the peer may not use the topic, or "".
func (p *Publisher) admit(cred sys.Cred) string {
	if cred.UID == 0 || cred.UID == os.Geteuid() || slices.Contains(p.cfg.AllowUIDs, cred.UID) {
		return ""
	}
	groups := append([]int{cred.GID}, cred.Groups...)
	for _, g := range groups {
		if slices.Contains(p.cfg.AllowGIDs, g) {
			return ""
		}
	}
	return fmt.Sprintf("uid %d (groups %v) is not allowed: the publisher admits its own uid %d, root, uids %v and gids %v",
		cred.UID, groups, os.Geteuid(), p.cfg.AllowUIDs, p.cfg.AllowGIDs)
}

func (p *Publisher) refuse(c *net.UnixConn, log *zap.Logger, code uint8, msg string) {
	if code != CodeSchema {
		p.refused.warn(log, "bad request", zap.String("reason", msg))
	}
	p.reply(c, log, Response{Code: code, Error: msg}, nil)
}

func (p *Publisher) reply(c *net.UnixConn, log *zap.Logger, r Response, oob []byte) bool {
	r.Version = ProtocolVersion
	b, err := r.MarshalMsg(make([]byte, 0, 512))
	if err == nil && len(b) > MaxMessage {
		err = fmt.Errorf("response of %d bytes exceeds %d", len(b), MaxMessage)
	}
	if err != nil {
		log.Error("encode response", zap.Error(err))
		return false
	}
	c.SetWriteDeadline(time.Now().Add(p.cfg.RequestTimeout))
	if _, _, err := c.WriteMsgUnix(b, oob, nil); err != nil {
		log.Debug("reply", zap.Error(err))
		return false
	}
	return true
}

// Describe returns the topic as the publisher sees it now.
func (p *Publisher) Describe() TopicDesc {
	h := p.w.Header()
	d := TopicDesc{
		Topic: p.cfg.Topic, Schema: h.SchemaName, Fingerprint: h.SchemaFingerprint,
		SlotSize: uint32(h.SlotSize), Slots: uint32(h.Slots), Generation: h.Generation,
		WriterPID: int32(h.WriterPID), StartedUnixNano: p.started.UnixNano(),
		Published: p.w.Status().Published, Origin: p.cfg.Origin,
		BytesPublished: p.bytes.Load(), LastPublishUnixNano: p.lastPublish.Load(), ReportsDropped: p.dropped.Load(), Skipped: p.skipped.Load(),
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	d.RateHz = p.rateHz
	d.Subscribers = uint32(len(p.peers))
	for _, peer := range p.peers {
		d.Peers = append(d.Peers, peer)
	}
	slices.SortFunc(d.Peers, func(a, b Peer) int { return cmp.Compare(a.PID, b.PID) })
	d.Peers = d.Peers[:min(len(d.Peers), maxListedPeers)]
	// Long names and origins: list fewer, so that the answer fits.
	for len(d.Peers) > 0 && (&Response{Topic: d}).Msgsize() > MaxMessage {
		d.Peers = d.Peers[:len(d.Peers)-1]
	}
	return d
}

// Subscribers returns the attached subscribers.
func (p *Publisher) Subscribers() []Peer {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Peer, 0, len(p.peers))
	for _, peer := range p.peers {
		out = append(out, peer)
	}
	return out
}

// Close stops serving, tells subscribers the topic closed (they drain the
// ring and see ring.ErrWriterClosed), and removes the topic's files. It
// may be called from any goroutine.
func (p *Publisher) Close() error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return ErrClosed
	}
	p.closing = true
	p.mu.Unlock()
	p.ln.Close()
	p.lnFile.Close() // ends accept's wait
	// The closed flag first, then the connections' end: a subscriber
	// that sees its connection end finds the flag and knows the topic
	// closed rather than died.
	err := p.w.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	close(p.stopBeat)
	p.wg.Wait()

	unlock, lerr := p.bus.lock()
	if lerr != nil {
		p.log.Warn("closing without the bus lock", zap.Error(lerr))
	} else {
		defer unlock()
	}
	sys.UnlinkAt(p.bus.fd, p.cfg.Topic+sockSuffix)
	p.dropTopic()
	p.bus.close()
	p.log.Info("closed")
	return err
}

// closeReceivedFDs closes any descriptors a peer sent.
func closeReceivedFDs(oob []byte) {
	if len(oob) == 0 {
		return
	}
	fds, _ := sys.ParseRights(oob)
	for _, fd := range fds {
		sys.Close(fd)
	}
}

// limiter lets through one warning a second and counts the rest, so that a
// flood of bad peers cannot flood the log.
type limiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (l *limiter) warn(log *zap.Logger, msg string, fields ...zap.Field) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.last) < time.Second {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	if n > 0 {
		fields = append(fields, zap.Int("similar_warnings_suppressed", n))
	}
	log.Warn(msg, fields...)
}
