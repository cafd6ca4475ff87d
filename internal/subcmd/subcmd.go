// Package subcmd is the subscriber program: it shows, logs or checks a
// topic's samples and reports what it received, lost and how late. busctl
// echo uses it too.
package subcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/app"
	"github.com/sensorbus/sensorbus/internal/clock"
	"github.com/sensorbus/sensorbus/internal/sdnotify"
	"github.com/sensorbus/sensorbus/ring"
	"github.com/sensorbus/sensorbus/rt"
	"github.com/sensorbus/sensorbus/schema"
)

const prog = "subscriber"

type config struct {
	topic, mode, wait, from, format, fields, expectType, logLevel, name string
	verify, stats, statsJSON                                            bool
	count                                                               uint64
	duration, waitForPublisher, interval                                time.Duration
	bus                                                                 app.Bus
	rt                                                                  app.RT
	busOpts                                                             *bus.Options // set by Echo instead of bus
}

// Latency is the latency part of Stats, in nanoseconds.
type Latency struct {
	P50  int64 `json:"p50"`
	P90  int64 `json:"p90"`
	P99  int64 `json:"p99"`
	P999 int64 `json:"p999"`
	Max  int64 `json:"max"`
}

// Stats is what --stats-json prints.
type Stats struct {
	Received  uint64  `json:"received"`
	Lost      uint64  `json:"lost"`
	Corrupt   uint64  `json:"corrupt"`
	Restarts  uint64  `json:"publisher_restarts"`
	DurationS float64 `json:"duration_s"`
	RateHz    float64 `json:"rate_hz"`
	Latency   Latency `json:"latency_ns"`
}

const long = `Receives a sensorbus topic's samples and shows, logs or checks them.

Output (--format): text, json (one object per sample), csv (a header line,
then one row per sample) or none; --fields picks fields by name (meta
fields topic, seq, published_ns, latency_ns, lost, restarted, type, and the
sample's own, nested ones dotted: accel.x). Lines are flushed at once on a
terminal and at least every 100 ms otherwise.

--verify checks synthetic samples (publisher --source synthetic) against
their sequence number: a topic whose first sample is not synthetic is
refused (exit 2), and a run that saw a corrupt sample exits 7.

Latency percentiles count only samples published after the subscriber
attached (not a --from oldest history).`

const examples = `  subscriber --topic imu
  subscriber --topic imu --format csv --fields seq,accel.x,accel.y,accel.z > imu.csv
  subscriber --topic imu --verify --format none --stats --stats-json --duration 60s
  subscriber --topic gps --mode latest --interval 500ms --wait-for-publisher forever`

// Command returns the subscriber's command.
func Command(stdout, stderr io.Writer) *cobra.Command {
	var c config
	cmd := app.NewRoot("subscriber --topic NAME [flags]", "Receive a sensorbus topic and show, log or check its samples", long, examples)
	cmd.Args = app.ExactArgs(0)
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVar(&c.topic, "topic", "", "topic to subscribe to (required)")
	fs.StringVar(&c.format, "format", "text", "text, json, csv or none")
	fs.StringVar(&c.fields, "fields", "", "comma-separated fields to print (text, json, csv)")
	fs.StringVar(&c.mode, "mode", "stream", "stream (every sample, losses counted) or latest (newest only)")
	fs.StringVar(&c.wait, "wait", "block", "block (sleep until woken), spin (poll: lowest latency, a busy CPU) or adaptive (sleep until a periodic topic's next sample is nearly due, then poll)")
	fs.StringVar(&c.from, "from", "newest", "newest (samples from now on) or oldest (the ring's history first; samples it no longer holds count as lost)")
	fs.BoolVar(&c.verify, "verify", false, "check synthetic samples against their sequence number; count corrupt ones")
	fs.StringVar(&c.expectType, "expect-type", "", "refuse (exit 3) a topic not of this type: "+strings.Join(app.TypeNames, ", "))
	fs.Uint64Var(&c.count, "count", 0, "stop after this many samples (0: no limit)")
	app.DurationVar(fs, &c.duration, "duration", 0, false, "stop after this long, e.g. 60s (0: no limit)")
	app.DurationVar(fs, &c.waitForPublisher, "wait-for-publisher", 5*time.Second, true, "how long to wait for the topic's publisher (exit 5 after; 0: fail at once; forever)")
	app.DurationVar(fs, &c.interval, "interval", 0, false, "with --mode latest, take the newest sample once every interval, like a display")
	fs.StringVar(&c.name, "name", "", "this subscriber's name in its reports to the publisher (busctl info, top, metrics; default the program's name)")
	fs.BoolVar(&c.stats, "stats", false, "print received/s, lost/s, lag, corrupt and latency on stderr once a second")
	fs.BoolVar(&c.statsJSON, "stats-json", false, "on exit print one JSON line on stdout with received, lost, corrupt, publisher_restarts, duration_s, rate_hz and latency_ns percentiles")
	c.bus.Register(fs)
	c.rt.Register(fs)
	fs.StringVar(&c.logLevel, "log-level", "warn", "debug, info, warn or error")
	cmd.RunE = func(*cobra.Command, []string) error {
		p, err := prepare(c, stderr)
		if err != nil {
			return err
		}
		return p.run(stdout, stderr)
	}
	return cmd
}

// Run runs the subscriber with args and returns its exit code.
func Run(args []string, stdout, stderr io.Writer) int {
	return app.Execute(Command(stdout, stderr), args, nil, stdout, stderr)
}

// EchoConfig is what busctl echo asks for.
type EchoConfig struct {
	Topic, Format, Fields, From string
	Count                       uint64
	Duration, WaitForPublisher  time.Duration
	Bus                         bus.Options
}

// Echo prints a topic's samples as the subscriber does.
func Echo(e EchoConfig, stdout, stderr io.Writer) error {
	c := config{topic: e.Topic, format: e.Format, fields: e.Fields, from: e.From, count: e.Count, duration: e.Duration,
		waitForPublisher: e.WaitForPublisher, mode: "stream", wait: "block", logLevel: "warn", busOpts: &e.Bus}
	p, err := prepare(c, stderr)
	if err != nil {
		return err
	}
	return p.run(stdout, stderr)
}

// plan is a checked configuration.
type plan struct {
	c      config
	cfg    bus.SubscriberConfig
	fields []string
	thread rt.Thread
	log    *zap.Logger
}

// prepare checks every flag before anything is opened.
func prepare(c config, stderr io.Writer) (*plan, error) {
	p := &plan{c: c}
	opts := bus.Options{}
	if c.busOpts != nil {
		opts = *c.busOpts
	} else {
		var err error
		if opts, err = c.bus.Options(); err != nil {
			return nil, err
		}
	}
	if err := app.CheckTopic("topic", c.topic); err != nil {
		return nil, err
	}
	cfg := bus.SubscriberConfig{Topic: c.topic, WaitForPublisher: c.waitForPublisher, Name: c.name}
	if c.name != "" {
		if err := bus.ValidName(c.name); err != nil {
			return nil, app.Usagef("--name %q: 1 to %d printable ASCII characters", c.name, bus.MaxNameLen)
		}
	}
	switch c.mode {
	case "stream":
	case "latest":
		cfg.Mode = ring.Latest
	default:
		return nil, app.Usagef("--mode %q: want stream or latest", c.mode)
	}
	switch c.wait {
	case "block":
	case "spin":
		cfg.Wait = ring.WaitSpin
	case "adaptive":
		cfg.Wait = ring.WaitAdaptive
	default:
		return nil, app.Usagef("--wait %q: want block, spin or adaptive", c.wait)
	}
	switch c.from {
	case "newest":
	case "oldest":
		cfg.Start = ring.FromOldest
	default:
		return nil, app.Usagef("--from %q: want newest or oldest", c.from)
	}
	switch c.format {
	case "json", "text", "csv", "none":
	default:
		return nil, app.Usagef("--format %q: want text, json, csv or none", c.format)
	}
	if c.fields != "" {
		if c.format == "none" {
			return nil, app.Usagef("--fields needs --format text, json or csv")
		}
		for _, f := range strings.Split(c.fields, ",") {
			if f = strings.TrimSpace(f); f == "" {
				return nil, app.Usagef("--fields %q: an empty field name", c.fields)
			}
			p.fields = append(p.fields, f)
		}
	}
	if c.interval > 0 && c.mode != "latest" {
		return nil, app.Usagef("--interval needs --mode latest: a stream subscriber takes every sample")
	}
	if c.expectType != "" {
		s, err := app.SchemaOf("expect-type", c.expectType)
		if err != nil {
			return nil, err
		}
		cfg.Schema = s
		if p.fields != nil {
			j, _ := s.ToJSON(mustMarshal(s.New()))
			if err := newRecord("", 0, 0, 0, 0, false, s.Name, j).check(p.fields, s.Name); err != nil {
				return nil, err
			}
		}
	} else {
		cfg.Untyped = true
	}
	var err error
	if p.thread, err = c.rt.Thread(); err != nil {
		return nil, err
	}
	if p.log, _, err = app.Logger(c.logLevel, stderr); err != nil {
		return nil, err
	}
	opts.Logger = p.log
	cfg.Options = opts
	p.cfg = cfg
	return p, nil
}

func mustMarshal(m schema.Message) []byte {
	b, _ := m.MarshalMsg(nil)
	return b
}

func (p *plan) run(stdout, stderr io.Writer) error {
	c := p.c
	defer p.log.Sync()
	ctx, stop := app.SignalContext()
	defer stop()
	p.log.Debug("subscribing; signals stop the run from here on")
	if c.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.duration)
		defer cancel()
	}
	start := time.Now()
	// The reports carry the latency the receiver measures; Subscribe's
	// Next calls this on the receiver's goroutine.
	var r *receiver
	p.cfg.Latency = func() (p50, p99 time.Duration) {
		if r == nil {
			return 0, 0
		}
		return time.Duration(r.hist.ValueAtQuantile(50)), time.Duration(r.hist.ValueAtQuantile(99))
	}
	sub, err := bus.Subscribe(ctx, p.cfg)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, bus.ErrNoPublisher) {
			// Interrupted while attaching: nothing received, nothing wrong.
			if c.statsJSON {
				b, _ := json.Marshal(Stats{DurationS: time.Since(start).Seconds()})
				fmt.Fprintln(stdout, string(b))
			}
			return nil
		}
		return err
	}
	defer sub.Close()
	if c.rt.MLock {
		if err := rt.LockMemory(false); err != nil {
			return err
		}
	}
	reg, _ := schema.NewRegistry()
	r = &receiver{c: c, fields: p.fields, sub: sub, reg: reg, out: app.NewOutput(stdout), stderr: stderr,
		hist: hdrhistogram.New(1, int64(time.Minute), 3), live: hdrhistogram.New(1, int64(time.Minute), 3),
		attached: clock.Mono()}
	if err := r.typeOf(sub.Header()); err != nil {
		return err
	}
	// systemd: ready once attached; the watchdog is fed while the
	// receive loop moves, which then wakes at least every quarter of the
	// watchdog interval.
	sd := sdnotify.New(p.log)
	r.prog, r.beatEvery = new(sdnotify.Progress), int64(sd.WatchdogInterval()/4)
	var shown atomic.Pointer[string]
	wctx, wstop := context.WithCancel(ctx)
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		sd.Watchdog(wctx, r.prog, func() string {
			if s := shown.Load(); s != nil {
				return *s
			}
			return "attached to topic " + c.topic
		})
	}()
	sd.Ready(fmt.Sprintf("attached to topic %s (%s)", c.topic, r.typeName))
	r.status = func(s string) { shown.Store(&s) }
	start = time.Now()
	err = rt.Run(p.thread, func(int) error { return r.loop(ctx) })
	wstop()
	<-wdone
	sd.Stopping(fmt.Sprintf("stopping: topic %s: %d received, %d lost, %d restarts", c.topic, r.received, r.lost, r.restarts))
	r.out.Flush()
	if r.statsShown && app.IsTerminal(stderr) {
		fmt.Fprintln(stderr)
	}
	if c.statsJSON {
		d := time.Since(start)
		st := Stats{Received: r.received, Lost: r.lost, Corrupt: r.corrupt, Restarts: r.restarts, DurationS: d.Seconds(),
			Latency: Latency{P50: r.hist.ValueAtQuantile(50), P90: r.hist.ValueAtQuantile(90), P99: r.hist.ValueAtQuantile(99),
				P999: r.hist.ValueAtQuantile(99.9), Max: r.hist.Max()}}
		if d > 0 {
			st.RateHz = float64(r.received) / d.Seconds()
		}
		b, _ := json.Marshal(st)
		fmt.Fprintln(stdout, string(b))
	}
	if err == nil && r.corrupt > 0 {
		err = fmt.Errorf("%w: %d of %d samples received were corrupt", app.ErrCorrupt, r.corrupt, r.received)
	}
	return err
}
