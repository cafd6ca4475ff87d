// Package subcmd is the subscriber program: it shows, logs or checks a
// topic's samples and reports what it received, lost and how late.
package subcmd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/app"
	"github.com/sensorbus/sensorbus/internal/clock"
	"github.com/sensorbus/sensorbus/ring"
	"github.com/sensorbus/sensorbus/rt"
	"github.com/sensorbus/sensorbus/schema"
)

const prog = "subscriber"

type config struct {
	topic, mode, wait, from, format, expectType, busDir, logLevel string
	verify, stats, statsJSON                                      bool
	count                                                         uint64
	duration, waitForPublisher, interval                          time.Duration
	rt                                                            app.RT
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

// Run runs the subscriber with args and returns its exit code.
func Run(args []string, stdout, stderr io.Writer) int {
	var c config
	fs := app.NewFlagSet(prog, "subscriber --topic NAME [flags]\n\nReceives a sensorbus topic's samples and shows, logs or checks them.", stdout)
	fs.StringVar(&c.topic, "topic", "", "topic to subscribe to (required)")
	fs.StringVar(&c.mode, "mode", "stream", "stream (every sample, losses counted) or latest (newest only)")
	fs.StringVar(&c.wait, "wait", "block", "block (sleep until woken) or spin (poll: lowest latency, a busy CPU)")
	fs.StringVar(&c.from, "from", "newest", "newest (samples from now on) or oldest (the ring's history first; samples it no longer holds count as lost)")
	fs.StringVar(&c.format, "format", "text", "json (one object per sample), text (a readable line) or none")
	fs.BoolVar(&c.verify, "verify", false, "check synthetic samples against their sequence number; count corrupt ones")
	fs.StringVar(&c.expectType, "expect-type", "", "refuse (exit 3) a topic not of this type: "+strings.Join(app.TypeNames, ", "))
	fs.Uint64Var(&c.count, "count", 0, "stop after this many samples (0: no limit)")
	fs.DurationVar(&c.interval, "interval", 0, "with --mode latest, take the newest sample once every interval, like a display refreshing (0: as they come)")
	fs.DurationVar(&c.duration, "duration", 0, "stop after this long (0: until SIGINT or SIGTERM)")
	fs.DurationVar(&c.waitForPublisher, "wait-for-publisher", 5*time.Second, "how long to wait for the topic's publisher to appear (exit 5 after)")
	fs.StringVar(&c.busDir, "bus-dir", "", "bus directory (none: $SENSORBUS_DIR, else $XDG_RUNTIME_DIR/sensorbus, else /run/sensorbus for root, else /tmp/sensorbus-UID)")
	fs.StringVar(&c.logLevel, "log-level", "warn", "debug, info, warn or error")
	fs.BoolVar(&c.stats, "stats", false, "show a live status line on stderr each second (when stderr is a terminal)")
	fs.BoolVar(&c.statsJSON, "stats-json", false, "on exit print one JSON line on stdout with received, lost, corrupt, publisher_restarts, duration_s, rate_hz and latency_ns percentiles")
	c.rt.Register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return app.ExitOK
		}
		return app.Fail(stderr, prog, err)
	}
	if err := run(c, stdout, stderr); err != nil {
		return app.Fail(stderr, prog, err)
	}
	return app.ExitOK
}

func run(c config, stdout, stderr io.Writer) error {
	if c.topic == "" {
		return app.Usagef("--topic is required")
	}
	cfg := bus.SubscriberConfig{Topic: c.topic, WaitForPublisher: c.waitForPublisher}
	switch c.mode {
	case "stream":
	case "latest":
		cfg.Mode = ring.Latest
	default:
		return app.Usagef("--mode %q: want stream or latest", c.mode)
	}
	switch c.wait {
	case "block":
	case "spin":
		cfg.Wait = ring.WaitSpin
	default:
		return app.Usagef("--wait %q: want block or spin", c.wait)
	}
	switch c.from {
	case "newest":
	case "oldest":
		cfg.Start = ring.FromOldest
	default:
		return app.Usagef("--from %q: want newest or oldest", c.from)
	}
	if c.format != "json" && c.format != "text" && c.format != "none" {
		return app.Usagef("--format %q: want json, text or none", c.format)
	}
	if c.duration < 0 || c.waitForPublisher < 0 || c.interval < 0 {
		return app.Usagef("--duration, --interval and --wait-for-publisher must not be negative")
	}
	if c.interval > 0 && c.mode != "latest" {
		return app.Usagef("--interval needs --mode latest: a stream subscriber takes every sample")
	}
	if c.expectType != "" {
		s, err := app.SchemaOf(c.expectType)
		if err != nil {
			return err
		}
		cfg.Schema = s
	} else {
		cfg.Untyped = true
	}
	thread, err := c.rt.Thread()
	if err != nil {
		return err
	}
	log, err := app.Logger(c.logLevel, stderr)
	if err != nil {
		return err
	}
	defer log.Sync()
	cfg.Options = bus.Options{Dir: c.busDir, Logger: log}

	ctx, stop := app.SignalContext()
	defer stop()
	if c.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.duration)
		defer cancel()
	}
	sub, err := bus.Subscribe(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, bus.ErrNoPublisher) {
			return nil // interrupted while waiting: nothing received, nothing wrong
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
	r := &receiver{c: c, sub: sub, reg: reg, out: bufio.NewWriterSize(stdout, 64<<10), stderr: stderr,
		hist: hdrhistogram.New(1, int64(time.Minute), 3), live: hdrhistogram.New(1, int64(time.Minute), 3)}
	if err := r.typeOf(sub.Header()); err != nil {
		return err
	}
	start := time.Now()
	err = rt.Run(thread, func(int) error { return r.loop(ctx) })
	r.out.Flush()
	if r.liveShown {
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
	return err
}

type receiver struct {
	c         config
	sub       *bus.Subscriber
	reg       *schema.Registry
	out       *bufio.Writer
	stderr    io.Writer
	schema    *schema.Schema // nil: a schema this build does not know
	verifier  *app.Verifier
	hist      *hdrhistogram.Histogram
	live      *hdrhistogram.Histogram
	liveShown bool

	received, lost, corrupt, restarts uint64
	first                             bool
}

// typeOf picks the decoder and verifier for the topic's current schema.
func (r *receiver) typeOf(h ring.Header) error {
	r.schema, _ = r.reg.ByFingerprint(h.SchemaFingerprint)
	r.verifier = nil
	if r.c.verify {
		v, err := app.NewVerifier(r.schema)
		if err != nil {
			return fmt.Errorf("topic %q carries %q: %w", r.c.topic, h.SchemaName, err)
		}
		r.verifier = v
	}
	return nil
}

func (r *receiver) loop(ctx context.Context) error {
	r.first = true
	showLive := r.c.stats && app.IsTerminal(r.stderr)
	tick := clock.Mono() + int64(time.Second)
	var lastRecv, lastLost uint64
	for r.c.count == 0 || r.received < r.c.count {
		s, err := r.sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // --duration, SIGINT or SIGTERM: a normal end
			}
			return err
		}
		lat := max(clock.Mono()-s.PublishedAt, 1)
		r.hist.RecordValue(lat)
		r.live.RecordValue(lat)
		if r.first && r.c.mode == "stream" && r.c.from == "oldest" {
			// Samples before the oldest the ring still held: asked for, lost.
			r.lost += s.Index - s.Lost
		}
		r.first = false
		if s.Restarted {
			r.restarts++
			if err := r.typeOf(r.sub.Header()); err != nil {
				return err
			}
		}
		r.received++
		r.lost += s.Lost
		if r.verifier != nil && !r.verifier.Check(s.Index, s.Data) {
			r.corrupt++
		}
		if r.c.format != "none" {
			r.print(s, lat)
		}
		if r.c.interval > 0 {
			r.out.Flush()
			select {
			case <-time.After(r.c.interval):
			case <-ctx.Done():
				return nil
			}
		}
		if showLive && r.received&255 == 0 && clock.Mono() >= tick {
			tick += int64(time.Second)
			fmt.Fprintf(r.stderr, "\r%s: %8d/s  lost %d  corrupt %d  restarts %d  latency p50 %.1f µs  p99 %.1f µs   ",
				r.c.topic, r.received-lastRecv, r.lost-lastLost, r.corrupt, r.restarts,
				float64(r.live.ValueAtQuantile(50))/1e3, float64(r.live.ValueAtQuantile(99))/1e3)
			lastRecv, lastLost = r.received, r.lost
			r.live.Reset()
			r.liveShown = true
		}
	}
	return nil
}

func (r *receiver) fields(data []byte) (json.RawMessage, string) {
	if r.schema != nil {
		if j, err := r.schema.ToJSON(data); err == nil {
			return j, r.schema.Name
		}
		return nil, r.schema.Name
	}
	j, err := schema.AnyToJSON(data)
	if err != nil {
		return nil, "untyped"
	}
	return j, "untyped"
}

// sampleJSON is one line of --format json.
type sampleJSON struct {
	Topic       string          `json:"topic"`
	Seq         uint64          `json:"seq"`
	PublishedNs int64           `json:"published_ns"`
	LatencyNs   int64           `json:"latency_ns"`
	Lost        uint64          `json:"lost,omitempty"`
	Restarted   bool            `json:"restarted,omitempty"`
	Type        string          `json:"type"`
	Fields      json.RawMessage `json:"fields"`
	Error       string          `json:"error,omitempty"`
}

func (r *receiver) print(s bus.Sample, lat int64) {
	fields, typ := r.fields(s.Data)
	if r.c.format == "json" {
		line := sampleJSON{Topic: r.c.topic, Seq: s.Index, PublishedNs: s.PublishedAt, LatencyNs: lat, Lost: s.Lost, Restarted: s.Restarted, Type: typ, Fields: fields}
		if fields == nil {
			line.Fields = json.RawMessage("null")
			line.Error = "does not decode as " + typ
		}
		b, _ := json.Marshal(line)
		r.out.Write(b)
		r.out.WriteByte('\n')
		return
	}
	var extra string
	if s.Lost > 0 && r.c.mode == "stream" {
		extra += " (lost " + strconv.FormatUint(s.Lost, 10) + " before)"
	}
	if s.Restarted {
		extra += " (publisher restarted)"
	}
	if fields == nil {
		fields = json.RawMessage(`"<does not decode as ` + typ + `>"`)
	}
	fmt.Fprintf(r.out, "%s #%d %s latency %.1fµs%s %s\n", r.c.topic, s.Index, typ, float64(lat)/1e3, extra, fields)
}
