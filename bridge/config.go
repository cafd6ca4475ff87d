package bridge

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/sensorbus/sensorbus/bus"
)

// Config describes a bridge: which local topics it exports to NATS, which
// remote ones it imports, and how it reaches the NATS server.
type Config struct {
	// URL is the NATS server to connect to, or a comma-separated list of
	// servers of one cluster ("nats://10.0.0.1:4222,nats://10.0.0.2:4222").
	URL string

	// Host names this host in subjects (sensorbus.HOST.TOPIC): a NATS
	// subject token, without '.', '*', '>' or white space. Empty means the
	// host name up to its first '.'.
	Host string

	// Exports lists the local topics to publish to NATS; "*" exports every
	// topic on the bus, present and future, except those this bridge
	// imports.
	Exports []string

	// Imports lists remote topics to publish on the local bus, each
	// "HOST/TOPIC" (published locally as TOPIC) or "HOST/TOPIC=LOCAL".
	Imports []string

	// Bus is the local bus. Its Logger is replaced by the bridge's.
	Bus bus.Options

	// AllowUIDs and AllowGIDs admit local subscribers of imported topics
	// besides this process's user and root, as bus.PublisherConfig's do.
	AllowUIDs []int
	AllowGIDs []int

	// JetStream, if not empty, names the JetStream stream exports are
	// stored in and imports read from: outages shorter than the stream's
	// limits lose nothing. The stream is created if absent, with the
	// subjects sensorbus.> and the limits below. Empty uses core NATS:
	// at most once, losses counted.
	JetStream string

	// StreamMaxAge and StreamMaxBytes limit a stream the bridge creates
	// (0: 24h and 1 GiB). The oldest messages are discarded first.
	StreamMaxAge   time.Duration
	StreamMaxBytes int64

	// StreamReplicas is the replica count of a stream the bridge creates
	// in a JetStream cluster (0: 1).
	StreamReplicas int

	// BatchMaxBytes bounds a batch message's body (0: 64 KiB; at most the
	// server's max_payload). A sample larger than this goes alone.
	BatchMaxBytes int

	// BatchMaxDelay is the latency budget: the longest a sample waits in
	// the exporter for others to share its message (0: 1ms). A negative
	// value sends as soon as no further sample is ready.
	BatchMaxDelay time.Duration

	// Auth and TLS secure the NATS connection.
	Auth Auth
	TLS  TLS

	// ConnectTimeout bounds the first connection (0: 5s); it fails with
	// a clear error rather than retrying. After that the bridge reconnects
	// without end, waiting ReconnectWait at first and doubling it up to
	// MaxReconnectWait (0: 50ms and 2s).
	ConnectTimeout   time.Duration
	ReconnectWait    time.Duration
	MaxReconnectWait time.Duration

	// ReconnectBufSize is how many bytes of messages the client keeps
	// while reconnecting, sent once connected again (0: the client's
	// default, 8 MiB). Negative keeps none: with core NATS, what is
	// published while disconnected is counted unsent at once.
	ReconnectBufSize int

	// ScanInterval is how often "*" looks for new topics (0: 1s).
	ScanInterval time.Duration

	// Logger receives the bridge's log lines; nil means none.
	Logger *zap.Logger `json:"-"`
}

// Auth carries NATS credentials; set at most one kind.
type Auth struct {
	CredsFile string // a .creds file (JWT and NKey seed)
	NKeyFile  string // a file holding an NKey seed (SU...)
	User      string // with Password
	Password  string
	Token     string
}

// TLS configures TLS to the NATS server. CAFile alone verifies the server;
// CertFile and KeyFile add a client certificate.
type TLS struct {
	CAFile   string
	CertFile string
	KeyFile  string
}

// Import is one parsed entry of Config.Imports.
type Import struct {
	Host  string // the remote host
	Topic string // the remote topic
	Local string // the local topic
}

// ParseImport parses "HOST/TOPIC[=LOCAL]".
func ParseImport(s string) (Import, error) {
	remote, local, hasLocal := strings.Cut(s, "=")
	host, topic, ok := strings.Cut(remote, "/")
	if !ok {
		return Import{}, fmt.Errorf("bridge: import %q: want HOST/TOPIC[=LOCAL]", s)
	}
	if !hasLocal {
		local = topic
	}
	im := Import{Host: host, Topic: topic, Local: local}
	if err := validToken(host); err != nil {
		return Import{}, fmt.Errorf("bridge: import %q: host: %w", s, err)
	}
	if err := validSubjectTopic(topic); err != nil {
		return Import{}, fmt.Errorf("bridge: import %q: %w", s, err)
	}
	if err := bus.ValidTopic(local); err != nil {
		return Import{}, fmt.Errorf("bridge: import %q: local topic: %w", s, err)
	}
	return im, nil
}

// ValidHost reports why s cannot name a host in subjects (Config.Host,
// the HOST of an import), or nil if it can: one NATS subject token.
func ValidHost(s string) error { return validToken(s) }

// ValidExport reports why a topic cannot be exported, or nil if it can:
// a bus topic whose name makes valid subject tokens.
func ValidExport(topic string) error { return validSubjectTopic(topic) }

// Validate checks cfg as New does, without connecting: a nil error means
// that New fails, if it does, only for want of the server, the files named
// in Auth and TLS, or the bus.
func (c Config) Validate() error {
	_, err := c.validate()
	return err
}

// Subject is the NATS subject of a host's topic.
func Subject(host, topic string) string {
	return SubjectPrefix + "." + host + "." + topic
}

// validToken checks that s is one NATS subject token.
func validToken(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if strings.ContainsAny(s, ".*> \t\r\n") {
		return fmt.Errorf("%q has '.', '*', '>' or white space", s)
	}
	return nil
}

// validSubjectTopic checks that a topic is a bus topic whose name makes
// valid subject tokens (the bus allows "a..b"; a subject does not).
func validSubjectTopic(topic string) error {
	if err := bus.ValidTopic(topic); err != nil {
		return err
	}
	for tok := range strings.SplitSeq(topic, ".") {
		if tok == "" {
			return fmt.Errorf("topic %q has an empty subject token", topic)
		}
	}
	return nil
}

// defaultHost is the host name up to its first '.'.
func defaultHost() (string, error) {
	h, err := os.Hostname()
	if err != nil {
		return "", err
	}
	h, _, _ = strings.Cut(h, ".")
	return h, nil
}

// settings is a validated Config with defaults filled in.
type settings struct {
	Config
	exportAll bool
	exports   []string
	imports   []Import
}

func (c Config) validate() (*settings, error) {
	s := &settings{Config: c}
	if strings.TrimSpace(c.URL) == "" {
		return nil, errors.New("bridge: no NATS URL")
	}
	if s.Host == "" {
		h, err := defaultHost()
		if err != nil {
			return nil, fmt.Errorf("bridge: host name: %w", err)
		}
		s.Host = h
	}
	if err := validToken(s.Host); err != nil {
		return nil, fmt.Errorf("bridge: host name: %w", err)
	}
	if len(c.Exports) == 0 && len(c.Imports) == 0 {
		return nil, errors.New("bridge: nothing to export or import")
	}
	seen := map[string]bool{}
	for _, e := range c.Exports {
		if e == "*" {
			s.exportAll = true
			continue
		}
		if err := validSubjectTopic(e); err != nil {
			return nil, fmt.Errorf("bridge: export: %w", err)
		}
		if !seen[e] {
			seen[e] = true
			s.exports = append(s.exports, e)
		}
	}
	locals := map[string]bool{}
	for _, spec := range c.Imports {
		im, err := ParseImport(spec)
		if err != nil {
			return nil, err
		}
		if locals[im.Local] {
			return nil, fmt.Errorf("bridge: import %q: local topic %q imported twice", spec, im.Local)
		}
		if seen[im.Local] {
			return nil, fmt.Errorf("bridge: import %q: local topic %q is also exported", spec, im.Local)
		}
		locals[im.Local] = true
		s.imports = append(s.imports, im)
	}
	if c.JetStream != "" {
		if err := validToken(c.JetStream); err != nil {
			return nil, fmt.Errorf("bridge: stream name: %w", err)
		}
	}
	if c.StreamMaxAge < 0 || c.StreamMaxBytes < 0 || c.StreamReplicas < 0 || c.BatchMaxBytes < 0 ||
		c.ConnectTimeout < 0 || c.ReconnectWait < 0 || c.MaxReconnectWait < 0 || c.ScanInterval < 0 {
		return nil, errors.New("bridge: negative limit, size or interval")
	}
	kinds := 0
	for _, set := range []bool{c.Auth.CredsFile != "", c.Auth.NKeyFile != "", c.Auth.User != "", c.Auth.Token != ""} {
		if set {
			kinds++
		}
	}
	if kinds > 1 {
		return nil, errors.New("bridge: more than one kind of NATS credentials")
	}
	if c.Auth.Password != "" && c.Auth.User == "" {
		return nil, errors.New("bridge: a NATS password without a user")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return nil, errors.New("bridge: a TLS client certificate needs both CertFile and KeyFile")
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&s.StreamMaxAge, 24*time.Hour)
	if s.StreamMaxBytes == 0 {
		s.StreamMaxBytes = 1 << 30
	}
	if s.StreamReplicas == 0 {
		s.StreamReplicas = 1
	}
	if s.BatchMaxBytes == 0 {
		s.BatchMaxBytes = 64 << 10
	}
	def(&s.BatchMaxDelay, time.Millisecond)
	def(&s.ConnectTimeout, 5*time.Second)
	def(&s.ReconnectWait, 50*time.Millisecond)
	def(&s.MaxReconnectWait, 2*time.Second)
	if s.MaxReconnectWait < s.ReconnectWait {
		s.MaxReconnectWait = s.ReconnectWait
	}
	def(&s.ScanInterval, time.Second)
	if s.Logger == nil {
		s.Logger = zap.NewNop()
	}
	return s, nil
}
