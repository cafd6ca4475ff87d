package ctlcmd

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/sensorbus/sensorbus/bridge"
	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/app"
)

// The environment variables that keep secrets off the command line, where
// ps would show them.
const (
	envPassword = "SENSORBUS_NATS_PASSWORD"
	envToken    = "SENSORBUS_NATS_TOKEN"
)

const bridgeLong = `Carries topics between hosts over NATS. An exported topic is read from
this host's bus and published to the subject sensorbus.HOST.TOPIC, its
samples unchanged, several to a message within --batch-max-bytes and
--batch-max-delay; '*' exports every topic, present and future, except
imported ones. An imported topic (HOST/TOPIC, or HOST/TOPIC=LOCAL to rename
it) becomes a topic on this bus, published by the bridge with the remote
schema and ring geometry; busctl list -o wide shows its origin. Samples
lost on the way (on either ring, in NATS, in an outage) reach local
subscribers as lost samples, and a remote publisher's restart as a restart.

With --jetstream STREAM the exports are stored in a JetStream stream
(created if absent, with the --stream-* limits) and the imports read it
through a durable consumer: an outage shorter than what the rings and the
stream hold loses nothing. Without it, core NATS: losses are counted.

Credentials: --creds, --nkey, --user with --password, or --token, one kind
at most. The password and the token may come from $` + envPassword + `
and $` + envToken + ` instead, where ps does not show them.

Every value is checked, and the credential and TLS files read, before the
bridge connects. It runs until SIGINT, SIGTERM or SIGHUP, then prints what
it counted (-o json: one JSON line). It exits 1 if the NATS server cannot be
reached or the TLS handshake fails, 4 if the server refuses the
credentials.`

const bridgeExamples = `  busctl bridge --nats nats://base:4222 --export imu
  busctl bridge --nats nats://base:4222 --name base --import rover1/imu=rover1-imu --stats
  busctl bridge --nats tls://base:4222 --export '*' --jetstream SENSORBUS --creds rover1.creds --tls-ca ca.pem
  SENSORBUS_NATS_PASSWORD=secret busctl bridge --nats nats://base:4222 --user rover1 --export imu -o json`

// bridgeFlags are busctl bridge's flags as given, and what its run keeps.
type bridgeFlags struct {
	url, name                              string
	exports, imports                       []string
	jetstream                              string
	streamMaxAge                           time.Duration
	streamMaxBytes                         int64
	streamReplicas                         int
	batchMaxBytes                          int64
	batchMaxDelay                          time.Duration
	connectTimeout, reconnectWait, maxWait time.Duration
	reconnectBuf                           int64
	scanInterval                           time.Duration
	creds, nkey, user, password, token     string
	tlsCA, tlsCert, tlsKey                 string
	allowUID, allowGID, logLevel           string
	stats                                  bool
	out                                    output

	flags   *pflag.FlagSet
	getenv  func(string) string
	busOpts func() (bus.Options, error)
	stderr  io.Writer

	// Set by config.
	format     string
	exportsAll bool
	logger     *zap.Logger

	// Set by run.
	started, lastAt    time.Time
	connectedTo        string
	lastSent, lastRecv uint64
	statsShown         bool
}

func bridgeCmd(b func() (bus.Options, error), stderr io.Writer) *cobra.Command {
	f := &bridgeFlags{busOpts: b, stderr: stderr, getenv: os.Getenv}
	c := &cobra.Command{
		Use:     "bridge --nats URL [--name HOST] [--export TOPIC]... [--import HOST/TOPIC[=LOCAL]]...",
		Short:   "Carry topics between hosts over NATS, losses counted end to end",
		Long:    bridgeLong,
		Example: bridgeExamples,
		Args:    app.ExactArgs(0),
	}
	fs := c.Flags()
	fs.SortFlags = false
	f.flags = fs
	fs.StringVar(&f.url, "nats", "", "the NATS server's `URL`, or a comma-separated list of one cluster's (required; nats://, tls://, ws://, wss://)")
	fs.StringVar(&f.name, "name", "", "this `HOST`'s name in subjects, without '.', '*', '>' or spaces (default: the host name up to its first '.')")
	fs.StringArrayVar(&f.exports, "export", nil, "a local `TOPIC` to publish to NATS, or '*' for every topic (repeatable)")
	fs.StringArrayVar(&f.imports, "import", nil, "a remote topic to publish on this bus: `HOST/TOPIC[=LOCAL]` (repeatable)")
	fs.StringVar(&f.jetstream, "jetstream", "", "store exports in, and read imports from, this JetStream `STREAM` (created if absent)")
	app.DurationVar(fs, &f.streamMaxAge, "stream-max-age", 24*time.Hour, false, "with --jetstream, the age after which a stream it creates drops messages")
	sizeVar(fs, &f.streamMaxBytes, "stream-max-bytes", 1<<30, "with --jetstream, the size of a stream it creates (oldest messages dropped first)")
	fs.IntVar(&f.streamReplicas, "stream-replicas", 1, "with --jetstream, the replicas of a stream it creates in a JetStream cluster (1 to 5)")
	sizeVar(fs, &f.batchMaxBytes, "batch-max-bytes", 64<<10, "the most sample bytes in one NATS message (within the server's max_payload)")
	app.DurationVar(fs, &f.batchMaxDelay, "batch-max-delay", time.Millisecond, false, "the longest a sample waits for others to share its message (0: sent as soon as the ring is drained)")
	app.DurationVar(fs, &f.connectTimeout, "connect-timeout", 5*time.Second, false, "how long the first connection may take; it is not retried")
	app.DurationVar(fs, &f.reconnectWait, "reconnect-wait", 50*time.Millisecond, false, "the first wait before reconnecting, doubled after each failure")
	app.DurationVar(fs, &f.maxWait, "max-reconnect-wait", 2*time.Second, false, "the longest wait between reconnection attempts")
	sizeVar(fs, &f.reconnectBuf, "reconnect-buf-size", 8<<20, "messages kept while reconnecting (0: none; core NATS counts them unsent at once)")
	app.DurationVar(fs, &f.scanInterval, "scan-interval", time.Second, false, "with --export '*', how often to look for new topics")
	fs.StringVar(&f.creds, "creds", "", "a NATS credentials `FILE` (user JWT and NKey seed)")
	fs.StringVar(&f.nkey, "nkey", "", "a `FILE` holding a user NKey seed (SU...)")
	fs.StringVar(&f.user, "user", "", "the NATS user name, with --password")
	fs.StringVar(&f.password, "password", "", "the NATS user's password (default $"+envPassword+")")
	fs.StringVar(&f.token, "token", "", "a NATS authentication token (default $"+envToken+")")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "PEM `FILE` of the CA that verifies the server's certificate")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM `FILE` of a client certificate, with --tls-key")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM `FILE` of the client certificate's key")
	fs.StringVar(&f.allowUID, "allow-uid", "", "comma-separated `USERS` (names or uids) admitted to imported topics besides this user and root")
	fs.StringVar(&f.allowGID, "allow-gid", "", "comma-separated `GROUPS` (names or gids) whose members are admitted to imported topics")
	fs.BoolVar(&f.stats, "stats", false, "print what was sent, received and lost on stderr once a second")
	f.out.register(fs, "text", "json")
	fs.StringVar(&f.logLevel, "log-level", "warn", "debug, info, warn or error")
	for _, name := range []string{"creds", "nkey", "tls-ca", "tls-cert", "tls-key"} {
		c.MarkFlagFilename(name)
	}
	fixed := func(values ...string) cobra.CompletionFunc {
		return cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)
	}
	c.RegisterFlagCompletionFunc("output", fixed("text", "json"))
	c.RegisterFlagCompletionFunc("log-level", fixed("debug", "info", "warn", "error"))
	c.RegisterFlagCompletionFunc("export", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		names := []string{"*"}
		if opts, err := b(); err == nil {
			topics, _ := bus.List(opts)
			for _, t := range topics {
				if t.State == bus.StateLive && t.Origin == "" {
					names = append(names, t.Topic)
				}
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	})
	c.RunE = func(c *cobra.Command, _ []string) error {
		cfg, err := f.config()
		if err != nil {
			return err
		}
		return f.run(cfg, c.OutOrStdout())
	}
	return c
}

// config checks every flag and builds the bridge's configuration; nothing
// is connected or created.
func (f *bridgeFlags) config() (bridge.Config, error) {
	var cfg bridge.Config
	format, err := f.out.get()
	if err != nil {
		return cfg, err
	}
	f.format = format
	if err := checkNATSURL(f.url); err != nil {
		return cfg, err
	}
	cfg.URL = f.url
	if f.name != "" {
		if err := bridge.ValidHost(f.name); err != nil {
			return cfg, app.Usagef("--name %q: %v", f.name, err)
		}
	}
	cfg.Host = f.name
	if len(f.exports) == 0 && len(f.imports) == 0 {
		return cfg, app.Usagef("nothing to do: give --export TOPIC or --import HOST/TOPIC (usage: busctl bridge --nats URL [--export TOPIC]... [--import HOST/TOPIC[=LOCAL]]...)")
	}
	exported := map[string]bool{}
	for _, e := range f.exports {
		if e == "*" {
			f.exportsAll = true
			continue
		}
		if err := app.CheckTopic("export", e); err != nil {
			return cfg, err
		}
		if err := bridge.ValidExport(e); err != nil {
			return cfg, app.Usagef("--export %q: %v", e, err)
		}
		exported[e] = true
	}
	cfg.Exports = f.exports
	locals := map[string]bool{}
	for _, spec := range f.imports {
		im, err := bridge.ParseImport(spec)
		if err != nil {
			return cfg, app.Usagef("--import %q: %s", spec, strings.TrimPrefix(err.Error(), fmt.Sprintf("bridge: import %q: ", spec)))
		}
		switch {
		case locals[im.Local]:
			return cfg, app.Usagef("--import %q: local topic %q is imported twice (rename one with =LOCAL)", spec, im.Local)
		case exported[im.Local]:
			return cfg, app.Usagef("--import %q: local topic %q is also exported (--export)", spec, im.Local)
		}
		locals[im.Local] = true
	}
	cfg.Imports = f.imports
	if err := f.checkLimits(&cfg); err != nil {
		return cfg, err
	}
	if err := f.auth(&cfg); err != nil {
		return cfg, err
	}
	if err := f.tls(&cfg); err != nil {
		return cfg, err
	}
	if f.allowUID != "" || f.allowGID != "" {
		if len(f.imports) == 0 {
			return cfg, app.Usagef("--allow-uid and --allow-gid apply to imported topics (--import)")
		}
		if cfg.AllowUIDs, err = app.ParseIDs("allow-uid", f.allowUID, false); err != nil {
			return cfg, err
		}
		if cfg.AllowGIDs, err = app.ParseIDs("allow-gid", f.allowGID, true); err != nil {
			return cfg, err
		}
	}
	if cfg.Bus, err = f.busOpts(); err != nil {
		return cfg, err
	}
	if f.logger, _, err = app.Logger(f.logLevel, f.stderr); err != nil {
		return cfg, err
	}
	cfg.Logger = f.logger
	// What the flags cannot say wrong, the bridge's own check might (the
	// host name when --name is not given).
	if err := cfg.Validate(); err != nil {
		msg := strings.TrimPrefix(err.Error(), "bridge: ")
		if f.name == "" && strings.HasPrefix(msg, "host name") {
			return cfg, app.Usagef("%s; name this host with --name", msg)
		}
		return cfg, app.Usagef("%s", msg)
	}
	return cfg, nil
}

// checkLimits checks the JetStream, batching and connection flags.
func (f *bridgeFlags) checkLimits(cfg *bridge.Config) error {
	if f.jetstream != "" {
		if err := bridge.ValidHost(f.jetstream); err != nil {
			return app.Usagef("--jetstream %q: a stream name is one NATS subject token: %v", f.jetstream, err)
		}
	} else {
		for _, name := range []string{"stream-max-age", "stream-max-bytes", "stream-replicas"} {
			if f.flags.Changed(name) {
				return app.Usagef("--%s applies to --jetstream", name)
			}
		}
	}
	cfg.JetStream = f.jetstream
	positive := []struct {
		name string
		bad  bool
	}{
		{"stream-max-age", f.streamMaxAge <= 0},
		{"stream-max-bytes", f.streamMaxBytes <= 0},
		{"batch-max-bytes", f.batchMaxBytes <= 0},
		{"connect-timeout", f.connectTimeout <= 0},
		{"reconnect-wait", f.reconnectWait <= 0},
		{"max-reconnect-wait", f.maxWait <= 0},
		{"scan-interval", f.scanInterval <= 0},
	}
	for _, p := range positive {
		if p.bad {
			return app.Usagef("--%s %s: want more than 0", p.name, f.flags.Lookup(p.name).Value)
		}
	}
	if f.streamReplicas < 1 || f.streamReplicas > 5 {
		return app.Usagef("--stream-replicas %d: want 1 to 5", f.streamReplicas)
	}
	// NATS refuses a message over 64 MiB whatever the server's setting.
	if f.batchMaxBytes > 64<<20 {
		return app.Usagef("--batch-max-bytes %s: want at most 64MiB", f.flags.Lookup("batch-max-bytes").Value)
	}
	if f.reconnectBuf > math.MaxInt32 {
		return app.Usagef("--reconnect-buf-size %s: want less than 2GiB", f.flags.Lookup("reconnect-buf-size").Value)
	}
	if f.maxWait < f.reconnectWait {
		return app.Usagef("--max-reconnect-wait %v is shorter than --reconnect-wait %v", f.maxWait, f.reconnectWait)
	}
	if !f.exportsAll && f.flags.Changed("scan-interval") {
		return app.Usagef("--scan-interval applies to --export '*'")
	}
	cfg.StreamMaxAge, cfg.StreamMaxBytes, cfg.StreamReplicas = f.streamMaxAge, f.streamMaxBytes, f.streamReplicas
	cfg.BatchMaxBytes, cfg.BatchMaxDelay = int(f.batchMaxBytes), f.batchMaxDelay
	if cfg.BatchMaxDelay == 0 {
		cfg.BatchMaxDelay = -1 // the bridge's "no budget"
	}
	cfg.ConnectTimeout, cfg.ReconnectWait, cfg.MaxReconnectWait = f.connectTimeout, f.reconnectWait, f.maxWait
	cfg.ReconnectBufSize = int(f.reconnectBuf)
	if cfg.ReconnectBufSize == 0 {
		cfg.ReconnectBufSize = -1 // the bridge's "none"
	}
	cfg.ScanInterval = f.scanInterval
	return nil
}

// auth checks the credential flags and reads their files.
func (f *bridgeFlags) auth(cfg *bridge.Config) error {
	a := bridge.Auth{CredsFile: f.creds, NKeyFile: f.nkey, User: f.user, Password: f.password, Token: f.token}
	var given []string
	for _, k := range []struct {
		flag string
		set  bool
	}{{"--creds", a.CredsFile != ""}, {"--nkey", a.NKeyFile != ""}, {"--user", a.User != ""}, {"--token", a.Token != ""}} {
		if k.set {
			given = append(given, k.flag)
		}
	}
	if len(given) > 1 {
		return app.Usagef("%s: give one kind of NATS credentials", strings.Join(given, " and "))
	}
	if a.Password != "" && a.User == "" {
		return app.Usagef("--password needs --user")
	}
	if a.User != "" && a.Password == "" {
		a.Password = f.getenv(envPassword)
	}
	if len(given) == 0 {
		a.Token = f.getenv(envToken)
	}
	if a.CredsFile != "" {
		b, err := os.ReadFile(a.CredsFile)
		if err != nil {
			return app.Usagef("--creds %q: %v", a.CredsFile, pathErr(err))
		}
		jwt, jerr := nkeys.ParseDecoratedJWT(b)
		_, kerr := nkeys.ParseDecoratedUserNKey(b)
		clear(b)
		if jerr != nil || kerr != nil || jwt == "" || strings.Contains(jwt, "\n") {
			return app.Usagef("--creds %q: not a NATS credentials file (a user JWT and NKey seed)", a.CredsFile)
		}
	}
	if a.NKeyFile != "" {
		b, err := os.ReadFile(a.NKeyFile)
		if err != nil {
			return app.Usagef("--nkey %q: %v", a.NKeyFile, pathErr(err))
		}
		kp, err := nkeys.ParseDecoratedUserNKey(b)
		clear(b)
		if err != nil {
			return app.Usagef("--nkey %q: not a user NKey seed (SU...): %v", a.NKeyFile, err)
		}
		kp.Wipe()
	}
	cfg.Auth = a
	return nil
}

// tls checks the TLS flags and loads the files.
func (f *bridgeFlags) tls(cfg *bridge.Config) error {
	t := bridge.TLS{CAFile: f.tlsCA, CertFile: f.tlsCert, KeyFile: f.tlsKey}
	if t.CAFile != "" {
		b, err := os.ReadFile(t.CAFile)
		if err != nil {
			return app.Usagef("--tls-ca %q: %v", t.CAFile, pathErr(err))
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			return app.Usagef("--tls-ca %q: no PEM certificate in it", t.CAFile)
		}
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		return app.Usagef("--tls-cert needs --tls-key")
	case t.KeyFile != "" && t.CertFile == "":
		return app.Usagef("--tls-key needs --tls-cert")
	case t.CertFile != "":
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			return app.Usagef("--tls-cert %q with --tls-key %q: %v", t.CertFile, t.KeyFile, pathErr(err))
		}
	}
	cfg.TLS = t
	return nil
}

// pathErr drops the path an *os.PathError repeats: the message names it.
func pathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkNATSURL checks --nats: one URL or a comma-separated list, each
// nats://, tls://, ws:// or wss:// (or HOST:PORT, which NATS reads as
// nats://). Messages leave out any user information in the URL.
func checkNATSURL(list string) error {
	if strings.TrimSpace(list) == "" {
		return app.Usagef("--nats is required: the NATS server's URL, such as nats://base:4222")
	}
	for _, u := range strings.Split(list, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			return app.Usagef("--nats %q: an empty URL in the list", redactURL(list))
		}
		s := u
		if !strings.Contains(s, "://") {
			s = "nats://" + s
		}
		p, err := url.Parse(s)
		if err != nil {
			return app.Usagef("--nats %q: not a URL such as nats://base:4222", redactURL(u))
		}
		switch p.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return app.Usagef("--nats %q: scheme %q: want nats://, tls://, ws:// or wss://", p.Redacted(), p.Scheme)
		}
		if p.Hostname() == "" {
			return app.Usagef("--nats %q: no host", p.Redacted())
		}
		if port := p.Port(); port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return app.Usagef("--nats %q: port %q: want 1 to 65535", p.Redacted(), port)
			}
		}
	}
	return nil
}

// redactURL hides the user information of a URL that may not parse.
func redactURL(s string) string {
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return s
	}
	start := 0
	if i := strings.Index(s, "://"); i >= 0 && i < at {
		start = i + 3
	}
	return s[:start] + "***" + s[at:]
}

// refusedError is a connection error whose cause is the server refusing
// the credentials: exit 4, as a permission denied.
type refusedError struct{ err error }

func (e refusedError) Error() string   { return e.err.Error() }
func (e refusedError) Unwrap() []error { return []error{e.err, os.ErrPermission} }

// connectError gives refused credentials the permission exit code.
func connectError(err error) error {
	for _, auth := range []error{nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked, nats.ErrAccountAuthExpired} {
		if errors.Is(err, auth) {
			return refusedError{err}
		}
	}
	return err
}

// bridgeReport is the final statistics, and a --stats line with -o json.
type bridgeReport struct {
	bridge.Stats
	DurationS float64 `json:"duration_s"`
}

func (f *bridgeFlags) run(cfg bridge.Config, stdout io.Writer) error {
	defer f.logger.Sync()
	ctx, stop := app.SignalContext()
	defer stop()
	b, err := bridge.New(cfg)
	if err != nil {
		return connectError(err)
	}
	f.started, f.lastAt = time.Now(), time.Now()
	f.connectedTo = b.Stats().Server
	f.announce(b.Stats(), cfg)
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var tick <-chan time.Time
	if f.stats {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case err = <-done:
		case now := <-tick:
			f.printStats(b.Stats(), now)
			continue
		}
		break
	}
	if f.statsShown && f.format == "text" && app.IsTerminal(f.stderr) {
		fmt.Fprintln(f.stderr)
	}
	if err != nil {
		return err
	}
	st := b.Stats()
	if st.Server == "" {
		st.Server = f.connectedTo
	}
	rep := bridgeReport{Stats: st, DurationS: time.Since(f.started).Seconds()}
	if f.format == "json" {
		if rep.Exports == nil {
			rep.Exports = []bridge.ExportStats{}
		}
		if rep.Imports == nil {
			rep.Imports = []bridge.ImportStats{}
		}
		printJSONLine(stdout, rep)
		return nil
	}
	return writeBridgeText(stdout, rep)
}

// announce says, in one line, that the bridge is up: on a terminal; the
// bridge logs it at level info.
func (f *bridgeFlags) announce(st bridge.Stats, cfg bridge.Config) {
	if !app.IsTerminal(f.stderr) {
		return
	}
	var what []string
	if len(cfg.Exports) > 0 {
		what = append(what, "exporting "+strings.Join(cfg.Exports, ", "))
	}
	if len(cfg.Imports) > 0 {
		what = append(what, "importing "+strings.Join(cfg.Imports, ", "))
	}
	dir := cfg.Bus.Dir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	fmt.Fprintf(f.stderr, "busctl bridge: host %s connected to %s: %s; bus %s\n", st.Host, st.Server, strings.Join(what, "; "), dir)
}

// totals adds up the exports' and imports' counters.
type totals struct{ sent, unsent, ringLost, received, lost, dropped uint64 }

func sum(st bridge.Stats) totals {
	var t totals
	for _, e := range st.Exports {
		t.sent += e.Samples
		t.unsent += e.Unsent
		t.ringLost += e.RingLost
	}
	for _, i := range st.Imports {
		t.received += i.Received
		t.lost += i.Lost
		t.dropped += i.Dropped
	}
	return t
}

// printStats prints the --stats line: rates since the last line and
// totals; rewritten in place on a terminal. With -o json it is the report
// so far, one JSON line.
func (f *bridgeFlags) printStats(st bridge.Stats, now time.Time) {
	f.statsShown = true
	if f.format == "json" {
		printJSONLine(f.stderr, bridgeReport{Stats: st, DurationS: now.Sub(f.started).Seconds()})
		return
	}
	t := sum(st)
	secs := now.Sub(f.lastAt).Seconds()
	var parts []string
	if len(st.Exports) > 0 || f.exportsAll || len(f.exports) > 0 {
		parts = append(parts, fmt.Sprintf("sent %.0f/s  unsent %d  ring lost %d", float64(t.sent-f.lastSent)/secs, t.unsent, t.ringLost))
	}
	if len(st.Imports) > 0 {
		parts = append(parts, fmt.Sprintf("received %.0f/s  lost %d  dropped %d", float64(t.received-f.lastRecv)/secs, t.lost, t.dropped))
	}
	conn := "connected"
	if !st.Connected {
		conn = "disconnected"
	}
	parts = append(parts, fmt.Sprintf("%s  reconnects %d", conn, st.Reconnects))
	line := strings.Join(parts, "  |  ")
	if app.IsTerminal(f.stderr) {
		fmt.Fprintf(f.stderr, "\r%s   ", line)
	} else {
		fmt.Fprintf(f.stderr, "busctl bridge: stats: %s\n", line)
	}
	f.lastSent, f.lastRecv, f.lastAt = t.sent, t.received, now
}

// writeBridgeText prints the final statistics, a line for the connection
// and one for each export and import.
func writeBridgeText(w io.Writer, r bridgeReport) error {
	fmt.Fprintf(w, "bridge %s via %s: %.1fs; disconnects %d, reconnects %d, NATS errors %d\n",
		r.Host, r.Server, r.DurationS, r.Disconnects, r.Reconnects, r.AsyncErrors)
	for _, e := range r.Exports {
		fmt.Fprintf(w, "export %s: %d samples sent in %d messages (%d bytes); unsent %d, lost on the ring %d, retries %d, publishers %d\n",
			e.Topic, e.Samples, e.Messages, e.Bytes, e.Unsent, e.RingLost, e.Retries, e.Generations)
	}
	for _, i := range r.Imports {
		_, err := fmt.Fprintf(w, "import %s/%s as %s: %d samples received in %d messages; lost %d, duplicates %d, restarts %d, dropped %d\n",
			i.Host, i.Topic, i.Local, i.Received, i.Messages, i.Lost, i.Duplicates, i.Restarts, i.Dropped)
		if err != nil {
			return err
		}
	}
	return nil
}

// sizeValue is a byte-count flag: a whole number of bytes, or one with a
// KiB, MiB, GiB or TiB suffix.
type sizeValue struct{ p *int64 }

var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

func sizeVar(fs *pflag.FlagSet, p *int64, name string, def int64, usage string) {
	*p = def
	fs.Var(sizeValue{p}, name, usage)
}

func (v sizeValue) Set(s string) error {
	num, shift := s, uint(0)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, shift = strings.TrimSpace(n), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64>>shift {
		return app.Usagef("want a size in bytes such as 65536, 64KiB, 512MiB or 1GiB")
	}
	*v.p = n << shift
	return nil
}

func (v sizeValue) String() string {
	n := *v.p
	for _, u := range sizeUnits {
		if u.shift > 0 && n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func (v sizeValue) Type() string { return "size" }
