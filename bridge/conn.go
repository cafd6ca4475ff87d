package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// ErrConnect is returned by New when the first connection to NATS fails:
// the server is unreachable, refuses the credentials or the TLS handshake.
// The error says which.
var ErrConnect = errors.New("bridge: cannot connect to NATS")

// connCounters counts the connection's ups and downs.
type connCounters struct {
	disconnects atomic.Uint64
	reconnects  atomic.Uint64
	asyncErrors atomic.Uint64 // slow consumer and other errors the client reports asynchronously
}

// natsOptions turns the settings into nats.go options.
func (s *settings) natsOptions(cc *connCounters, log *zap.Logger) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name("sensorbus-bridge " + s.Host),
		nats.Timeout(s.ConnectTimeout),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(backoff(s.ReconnectWait, s.MaxReconnectWait)),
		// Without randomising, a list of servers is tried in the given order.
		nats.DontRandomize(),
		nats.NoCallbacksAfterClientClose(),
		nats.ReconnectBufSize(s.ReconnectBufSize),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			cc.disconnects.Add(1)
			log.Warn("disconnected from NATS", zap.Error(err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			cc.reconnects.Add(1)
			log.Info("reconnected to NATS", zap.String("server", nc.ConnectedUrlRedacted()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			cc.asyncErrors.Add(1)
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("NATS error", zap.String("subject", subj), zap.Error(err))
		}),
	}
	a := s.Auth
	switch {
	case a.CredsFile != "":
		opts = append(opts, nats.UserCredentials(a.CredsFile))
	case a.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(a.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("bridge: NKey seed %s: %w", a.NKeyFile, err)
		}
		opts = append(opts, o)
	case a.User != "":
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	case a.Token != "":
		opts = append(opts, nats.Token(a.Token))
	}
	if s.TLS.CAFile != "" {
		opts = append(opts, nats.RootCAs(s.TLS.CAFile))
	}
	if s.TLS.CertFile != "" {
		opts = append(opts, nats.ClientCert(s.TLS.CertFile, s.TLS.KeyFile))
	}
	return opts, nil
}

// backoff doubles the wait from first to max with each failed attempt,
// with up to a quarter of jitter so that many bridges do not reconnect in step.
func backoff(first, max time.Duration) nats.ReconnectDelayHandler {
	return func(attempts int) time.Duration {
		d := first
		for i := 1; i < attempts && d < max; i++ {
			d *= 2
		}
		d = min(d, max)
		return d - time.Duration(time.Now().UnixNano()%int64(d/4+1))
	}
}

// connect makes the first connection; it does not retry.
func (s *settings) connect(cc *connCounters, log *zap.Logger) (*nats.Conn, error) {
	opts, err := s.natsOptions(cc, log)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(s.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrConnect, redact(s.URL), err)
	}
	return nc, nil
}

// redact removes user information from a list of URLs, for messages.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		if at := strings.LastIndex(u, "@"); at >= 0 {
			if sch := strings.Index(u, "://"); sch >= 0 && sch < at {
				parts[i] = u[:sch+3] + "***" + u[at:]
			} else {
				parts[i] = "***" + u[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}

// streamSubjects are the subjects of a stream the bridge creates.
var streamSubjects = []string{SubjectPrefix + ".>"}

// ensureStream finds the stream or creates it with the configured limits.
// A stream that exists is used as it is, provided it covers the subjects.
func (s *settings) ensureStream(ctx context.Context, js jetstream.JetStream, log *zap.Logger) error {
	st, err := js.Stream(ctx, s.JetStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        s.JetStream,
			Description: "sensorbus topics across hosts",
			Subjects:    streamSubjects,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      s.StreamMaxAge,
			MaxBytes:    s.StreamMaxBytes,
			Storage:     jetstream.FileStorage,
			Replicas:    s.StreamReplicas,
			Duplicates:  2 * time.Minute,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = js.Stream(ctx, s.JetStream) // another bridge created it meanwhile
		}
		if err == nil {
			log.Info("created JetStream stream", zap.String("stream", s.JetStream),
				zap.Duration("max_age", s.StreamMaxAge), zap.Int64("max_bytes", s.StreamMaxBytes))
		}
	}
	if err != nil {
		return fmt.Errorf("bridge: JetStream stream %q: %w", s.JetStream, err)
	}
	for _, subj := range st.CachedInfo().Config.Subjects {
		if subj == streamSubjects[0] || subj == ">" {
			return nil
		}
	}
	return fmt.Errorf("bridge: JetStream stream %q exists with subjects %v, which do not include %s",
		s.JetStream, st.CachedInfo().Config.Subjects, streamSubjects[0])
}
