package bus

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/sensorbus/sensorbus/internal/sys"
	"github.com/sensorbus/sensorbus/ring"
	"github.com/sensorbus/sensorbus/schema"
)

// PublisherConfig describes a topic to publish.
type PublisherConfig struct {
	Options

	// Topic names the topic: 1 to MaxTopicLen bytes of letters, digits,
	// '.', '_' and '-', not starting with '.' or '-'.
	Topic string

	// Schema is the type of the samples; nil publishes untyped bytes.
	Schema *schema.Schema

	// SlotSize is the largest sample in bytes (default 256); Slots the
	// number of samples the ring keeps, a power of two (default 4096).
	SlotSize int
	Slots    int

	// AllowUIDs and AllowGIDs admit subscribers besides this process's
	// own user and root. A peer is admitted if its uid is listed or its
	// primary or a supplementary group is.
	AllowUIDs []int
	AllowGIDs []int

	// HeartbeatInterval is how often the publisher shows it is alive even
	// when it publishes nothing (default 100ms).
	HeartbeatInterval time.Duration

	// RequestTimeout is how long a connected client may take to send a
	// request before it is dropped (default 2s).
	RequestTimeout time.Duration
}

func (c *PublisherConfig) validate() error {
	if err := ValidTopic(c.Topic); err != nil {
		return err
	}
	if c.SlotSize == 0 {
		c.SlotSize = 256
	}
	if c.Slots == 0 {
		c.Slots = 4096
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 100 * time.Millisecond
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 2 * time.Second
	}
	if c.HeartbeatInterval < 0 || c.RequestTimeout < 0 {
		return errors.New("bus: negative heartbeat interval or request timeout")
	}
	for _, id := range append(slices.Clone(c.AllowUIDs), c.AllowGIDs...) {
		if id < 0 {
			return fmt.Errorf("bus: negative id %d in an allow list", id)
		}
	}
	return nil
}

// Publisher owns a topic: its ring, which it writes, and its control
// socket, on which it admits subscribers. Publish, Ring and the
// ring.Writer's methods belong to one goroutine; Subscribers, Describe and
// Close may be called from any.
type Publisher struct {
	cfg      PublisherConfig
	bus      *bus
	log      *zap.Logger
	w        *ring.Writer
	ln       *net.UnixListener
	sockPath string
	started  time.Time

	mu       sync.Mutex
	mon      *ring.Reader // the publisher's own view of the ring, for stats; under mu
	rateHz   float64
	peers    map[*net.UnixConn]Peer     // attached subscribers
	conns    map[*net.UnixConn]struct{} // every open connection
	closing  bool
	stopBeat chan struct{}
	wg       sync.WaitGroup
}

// NewPublisher takes the topic and starts serving it. A topic with a live
// publisher gives a *TopicBusyError (errors.Is ErrTopicBusy); a dead
// publisher's leftovers are removed.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	b, err := cfg.open(true)
	if err != nil {
		return nil, err
	}
	p := &Publisher{cfg: cfg, bus: b, log: b.logger.With(zap.String("topic", cfg.Topic)),
		sockPath: b.socketPath(cfg.Topic), peers: map[*net.UnixConn]Peer{}, conns: map[*net.UnixConn]struct{}{}, stopBeat: make(chan struct{}), started: time.Now()}

	unlock, err := b.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()

	mode := os.FileMode(0o600)
	if b.gid != 0 {
		mode = 0o640
	}
	rcfg := ring.Config{Dir: b.shm, Name: b.segment(cfg.Topic), SlotSize: cfg.SlotSize, Slots: cfg.Slots, Mode: mode, HeartbeatInterval: cfg.HeartbeatInterval}
	if cfg.Schema != nil {
		rcfg = cfg.Schema.RingConfig(rcfg)
	}
	p.w, err = ring.Create(rcfg)
	if err != nil {
		var be *ring.BusyError
		if errors.As(err, &be) {
			return nil, &TopicBusyError{Topic: cfg.Topic, PID: be.PID}
		}
		return nil, fmt.Errorf("bus: topic %q: %w", cfg.Topic, err)
	}
	if err := p.listen(); err != nil {
		p.w.Close()
		return nil, err
	}
	rf, wf, err := p.w.ReaderFiles()
	if err == nil {
		p.mon, err = ring.Attach(rf, nil, ring.ReaderConfig{Wait: ring.WaitSpin})
		rf.Close()
		wf.Close()
	}
	if err != nil {
		p.ln.Close()
		os.Remove(p.sockPath)
		p.w.Close()
		return nil, fmt.Errorf("bus: topic %q: %w", cfg.Topic, err)
	}
	p.wg.Add(2)
	go p.accept()
	go p.beat()
	p.log.Info("publishing", zap.String("segment", p.w.Path()), zap.String("socket", p.sockPath),
		zap.Int("slot_size", cfg.SlotSize), zap.Int("slots", cfg.Slots))
	return p, nil
}

// listen binds the topic's socket. The caller holds the bus lock and owns
// the topic (its ring's writer lock), so a socket file already there is a
// dead publisher's.
func (p *Publisher) listen() error {
	if err := os.Remove(p.sockPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("bus: remove stale socket: %w", err)
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: p.sockPath, Net: "unixpacket"})
	if err != nil {
		return fmt.Errorf("bus: listen on %s: %w", p.sockPath, err)
	}
	ln.SetUnlinkOnClose(false) // removed under the bus lock in Close
	mode := os.FileMode(0o600)
	if p.bus.gid != 0 {
		mode = 0o660
		os.Chown(p.sockPath, -1, p.bus.gid)
	}
	if err := os.Chmod(p.sockPath, mode); err != nil {
		ln.Close()
		os.Remove(p.sockPath)
		return fmt.Errorf("bus: chmod %s: %w", p.sockPath, err)
	}
	p.ln = ln
	return nil
}

// Ring returns the topic's ring writer, for schema.NewWriter or
// Reserve/Commit. It belongs to the goroutine that publishes.
func (p *Publisher) Ring() *ring.Writer { return p.w }

// Publish publishes one sample of raw bytes.
func (p *Publisher) Publish(b []byte) error { return p.w.Publish(b) }

// Topic returns the topic's name.
func (p *Publisher) Topic() string { return p.cfg.Topic }

func (p *Publisher) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.AcceptUnix()
		if err != nil {
			p.mu.Lock()
			closing := p.closing
			p.mu.Unlock()
			if closing {
				return
			}
			p.log.Warn("accept", zap.Error(err))
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.mu.Lock()
		if p.closing {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(c)
	}
}

// beat keeps the heartbeat fresh while nothing is published and updates
// the rate once a second.
func (p *Publisher) beat() {
	defer p.wg.Done()
	t := time.NewTicker(p.cfg.HeartbeatInterval)
	defer t.Stop()
	lastAt, last := time.Now(), uint64(0)
	for {
		select {
		case <-p.stopBeat:
			return
		case now := <-t.C:
			p.w.Heartbeat()
			if d := now.Sub(lastAt); d >= time.Second {
				p.mu.Lock()
				st, err := p.mon.Status()
				if err == nil {
					p.rateHz = float64(st.Published-last) / d.Seconds()
					last = st.Published
				}
				p.mu.Unlock()
				lastAt = now
			}
		}
	}
}

// serve answers one client's requests until it leaves.
func (p *Publisher) serve(c *net.UnixConn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.peers, c)
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	cred, err := peerCred(c)
	if err != nil {
		p.log.Warn("peer credentials", zap.Error(err))
		return
	}
	log := p.log.With(zap.Int("peer_pid", cred.PID), zap.Int("peer_uid", cred.UID))
	buf := make([]byte, MaxMessage+1)
	oob := make([]byte, 256)
	attached := false
	for {
		if !attached {
			// A client that connects and says nothing is dropped.
			c.SetReadDeadline(time.Now().Add(p.cfg.RequestTimeout))
		}
		n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
		closeReceivedFDs(oob[:oobn]) // a peer's descriptors are never kept
		if err != nil {
			if attached {
				log.Info("subscriber left")
			} else if !errors.Is(err, os.ErrDeadlineExceeded) {
				log.Debug("client left", zap.Error(err))
			} else {
				log.Warn("client sent no request in time; dropped", zap.Duration("timeout", p.cfg.RequestTimeout))
			}
			return
		}
		if n == 0 && oobn == 0 {
			return // orderly shutdown of the peer
		}
		var req Request
		switch {
		case n > MaxMessage || flags&sys.MsgTrunc != 0:
			p.refuse(c, log, CodeBadRequest, fmt.Sprintf("message exceeds %d bytes", MaxMessage))
			continue
		default:
			if rest, err := req.UnmarshalMsg(buf[:n]); err != nil || len(rest) != 0 {
				p.refuse(c, log, CodeBadRequest, "malformed request: "+describeDecodeErr(err, len(rest)))
				continue
			}
		}
		if req.Version != ProtocolVersion {
			p.refuse(c, log, CodeVersion, fmt.Sprintf("protocol version %d not spoken (this publisher speaks %d)", req.Version, ProtocolVersion))
			continue
		}
		if reason := p.admit(cred); reason != "" {
			log.Warn("refused", zap.String("reason", reason))
			p.refuse(c, log, CodePermission, reason)
			return
		}
		switch req.Op {
		case OpDescribe:
			p.reply(c, log, Response{Code: CodeOK, Topic: p.Describe()}, nil)
		case OpStats:
			d := p.Describe()
			live := TopicDesc{Topic: d.Topic, Published: d.Published, RateHz: d.RateHz, Subscribers: d.Subscribers, Peers: d.Peers}
			p.reply(c, log, Response{Code: CodeOK, Topic: live}, nil)
		case OpAttach:
			if attached {
				p.refuse(c, log, CodeBadRequest, "already attached on this connection")
				continue
			}
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
	groups := append([]int{cred.GID}, supplementaryGroups(cred.PID)...)
	for _, g := range groups {
		if slices.Contains(p.cfg.AllowGIDs, g) {
			return ""
		}
	}
	return fmt.Sprintf("uid %d (groups %v) is not allowed: the publisher admits its own uid %d, root, uids %v and gids %v",
		cred.UID, groups, os.Geteuid(), p.cfg.AllowUIDs, p.cfg.AllowGIDs)
}

// supplementaryGroups reads a process's groups from /proc. A process that
// is gone has none.
func supplementaryGroups(pid int) []int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Groups:"); ok {
			var gids []int
			for _, f := range strings.Fields(rest) {
				if g, err := strconv.Atoi(f); err == nil {
					gids = append(gids, g)
				}
			}
			return gids
		}
	}
	return nil
}

func (p *Publisher) refuse(c *net.UnixConn, log *zap.Logger, code uint8, msg string) {
	if code != CodeSchema && code != CodePermission {
		log.Warn("bad request", zap.String("reason", msg))
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
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mon != nil {
		if st, err := p.mon.Status(); err == nil {
			d.Published = st.Published
		}
	}
	d.RateHz = p.rateHz
	d.Subscribers = uint32(len(p.peers))
	for _, peer := range p.peers {
		if len(d.Peers) == maxListedPeers {
			break
		}
		d.Peers = append(d.Peers, peer)
	}
	slices.SortFunc(d.Peers, func(a, b Peer) int { return int(a.PID - b.PID) })
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
// ring and see ring.ErrWriterClosed), and removes the topic's socket and
// segment.
func (p *Publisher) Close() error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return ErrClosed
	}
	p.closing = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	close(p.stopBeat)
	p.ln.Close()
	p.wg.Wait()

	unlock, err := p.bus.lock()
	if err != nil {
		p.log.Warn("closing without the bus lock", zap.Error(err))
	} else {
		defer unlock()
	}
	os.Remove(p.sockPath)
	p.mon.Close()
	err = p.w.Close()
	p.log.Info("closed")
	return err
}

// peerCred reads the credentials of the process at the other end of c.
func peerCred(c *net.UnixConn) (sys.Cred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return sys.Cred{}, err
	}
	var cred sys.Cred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = sys.PeerCred(int(fd)) }); err != nil {
		return sys.Cred{}, err
	}
	return cred, cerr
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
