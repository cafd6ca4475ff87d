// Package pubcmd is the publisher program: it puts synthetic, stdin or
// thermal-sensor samples on a topic at a paced rate.
package pubcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/app"
	"github.com/sensorbus/sensorbus/internal/clock"
	"github.com/sensorbus/sensorbus/internal/sdnotify"
	"github.com/sensorbus/sensorbus/internal/synth"
	"github.com/sensorbus/sensorbus/internal/sys"
	"github.com/sensorbus/sensorbus/rt"
	"github.com/sensorbus/sensorbus/schema"
)

const prog = "publisher"

type config struct {
	topic, typ, source, allowUID, allowGID, logLevel string
	payloadSize, slots, slotSize                     int
	rate                                             float64
	count                                            uint64
	duration                                         time.Duration
	statsJSON                                        bool
	bus                                              app.Bus
	rt                                               app.RT
	thermalRoot                                      string
}

// Stats is what --stats-json prints.
type Stats struct {
	Published uint64  `json:"published"`
	Skipped   uint64  `json:"skipped"`
	DurationS float64 `json:"duration_s"`
	RateHz    float64 `json:"rate_hz"`
}

const long = `Publishes sensor samples on a sensorbus topic until --count, --duration,
the end of stdin or SIGINT, SIGTERM or SIGHUP; then removes the topic.

Sources: synthetic samples (a pure function of their sequence number, so
subscriber --verify can check every one), JSON lines on stdin (a bad or
too large line is reported with its number, counted and skipped; a line
without "time" is stamped with the time it was read), or this host's
temperature sensors (--source thermal: type scalar, 1 Hz unless --rate says
otherwise, all sensors each time; their names are published on the topic
TOPIC.names).`

const examples = `  publisher --topic imu --type imu --rate 1000
  publisher --topic temp --source thermal
  echo '{"sensor":2,"value":20.5,"unit":"degC"}' | publisher --topic t --type scalar --source stdin
  publisher --topic fast --rate 0 --duration 10s --stats-json`

// Command returns the publisher's command.
func Command(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	return newCommand(&config{thermalRoot: "/sys/class"}, stdin, stdout, stderr)
}

func newCommand(cp *config, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	c := cp
	cmd := app.NewRoot("publisher --topic NAME [flags]", "Put sensor samples on a sensorbus topic", long, examples)
	cmd.Args = app.ExactArgs(0)
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVar(&c.topic, "topic", "", "topic to publish (required)")
	fs.StringVar(&c.typ, "type", "imu", "sample type: "+strings.Join(app.TypeNames, ", "))
	fs.StringVar(&c.source, "source", "synthetic", "synthetic, stdin (JSON lines of the type) or thermal (this host's temperature sensors)")
	fs.Float64Var(&c.rate, "rate", 1000, "samples per second, 0 for as fast as possible (--source thermal: sweeps of all sensors, 1 unless set)")
	fs.Uint64Var(&c.count, "count", 0, "stop after this many samples (0: no limit)")
	app.DurationVar(fs, &c.duration, "duration", 0, false, "stop after this long, e.g. 10s (0: no limit)")
	fs.IntVar(&c.payloadSize, "payload-size", 64, "bytes of payload for --type raw")
	fs.IntVar(&c.slots, "slots", 4096, "samples the ring keeps (a power of two)")
	fs.IntVar(&c.slotSize, "slot-size", 256, "largest encoded sample in bytes")
	fs.StringVar(&c.allowUID, "allow-uid", "", "comma-separated users (names or uids) admitted besides this user and root")
	fs.StringVar(&c.allowGID, "allow-gid", "", "comma-separated groups (names or gids) whose members are admitted")
	c.bus.Register(fs)
	c.rt.Register(fs)
	fs.StringVar(&c.logLevel, "log-level", "warn", "debug, info, warn or error")
	fs.BoolVar(&c.statsJSON, "stats-json", false, `on exit print one JSON line on stdout: {"published":N,"skipped":N,"duration_s":F,"rate_hz":F}`)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		p, err := prepare(cmd, *c, stdin, stderr)
		if err != nil {
			return err
		}
		return p.run(stdout, stderr)
	}
	return cmd
}

// Run runs the publisher with args (without the program name) and returns
// its exit code.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return app.Execute(Command(stdin, stdout, stderr), args, stdin, stdout, stderr)
}

// source yields the samples to publish; next returns false at the end.
type source interface {
	next(seq uint64) (schema.Message, bool, error)
}

// plan is a checked configuration: everything a run needs, nothing created.
type plan struct {
	c       config
	schema  *schema.Schema
	opts    bus.Options
	uids    []int
	gids    []int
	thread  rt.Thread
	log     *zap.Logger
	level   zapcore.Level
	src     source
	perTick int // samples per pacing tick
	skipped func() uint64
	names   []string // thermal sensor names
}

// prepare checks every flag; it creates nothing.
func prepare(cmd *cobra.Command, c config, stdin io.Reader, stderr io.Writer) (*plan, error) {
	p := &plan{c: c, perTick: 1, skipped: func() uint64 { return 0 }}
	changed := cmd.Flags().Changed
	var err error
	if p.opts, err = c.bus.Options(); err != nil {
		return nil, err
	}
	if err := app.CheckTopic("topic", c.topic); err != nil {
		return nil, err
	}
	switch c.source {
	case "synthetic", "stdin":
	case "thermal":
		if changed("type") && c.typ != "scalar" {
			return nil, app.Usagef("--type %s: --source thermal publishes temperatures as scalar", c.typ)
		}
		p.c.typ = "scalar"
		if !changed("rate") {
			p.c.rate = 1
		}
		if err := app.CheckTopic("topic", c.topic+namesSuffix); err != nil {
			return nil, app.Usagef("--topic %q: too long for its name table topic %s%s", c.topic, c.topic, namesSuffix)
		}
	default:
		return nil, app.Usagef("--source %q: want synthetic, stdin or thermal", c.source)
	}
	if p.schema, err = app.SchemaOf("type", p.c.typ); err != nil {
		return nil, err
	}
	if err := app.CheckRate("rate", p.c.rate); err != nil {
		return nil, err
	}
	if err := app.CheckGeometry(c.slots, c.slotSize); err != nil {
		return nil, err
	}
	if changed("payload-size") && p.schema != schema.RawSchema {
		return nil, app.Usagef("--payload-size applies to --type raw only")
	}
	if p.thread, err = c.rt.Thread(); err != nil {
		return nil, err
	}
	if p.uids, err = app.ParseIDs("allow-uid", c.allowUID, false); err != nil {
		return nil, err
	}
	if p.gids, err = app.ParseIDs("allow-gid", c.allowGID, true); err != nil {
		return nil, err
	}
	if p.log, p.level, err = app.Logger(c.logLevel, stderr); err != nil {
		return nil, err
	}
	switch c.source {
	case "synthetic":
		g, err := synth.New(p.schema, c.payloadSize)
		if err != nil {
			return nil, app.Usagef("--payload-size %d: at least %d bytes (sequence number and checksum)", c.payloadSize, synth.MinRawPayload)
		}
		m, _ := g.Make(0, 1<<62) // the largest time: every field at its widest
		if n := m.Msgsize(); n > c.slotSize {
			if p.schema == schema.RawSchema {
				return nil, app.Usagef("--payload-size %d: a sample of it encodes to up to %d bytes, more than --slot-size %d", c.payloadSize, n, c.slotSize)
			}
			return nil, app.Usagef("--slot-size %d: a %s sample needs up to %d bytes", c.slotSize, p.c.typ, n)
		}
		p.src = synthetic{g}
	case "stdin":
		j := newJSONLines(p.schema, stdin, stderr, c.slotSize)
		p.src, p.skipped = j, func() uint64 { return j.skipped }
	case "thermal":
		if n := (&schema.Scalar{}).Msgsize(); n > c.slotSize {
			return nil, app.Usagef("--slot-size %d: a scalar sample needs up to %d bytes", c.slotSize, n)
		}
		t, err := newThermal(c.thermalRoot)
		if err != nil {
			return nil, err
		}
		p.src, p.perTick, p.names = t, len(t.sensors), t.names()
	}
	return p, nil
}

// namesSuffix names the topic that carries --source thermal's sensor names.
const namesSuffix = ".names"

func (p *plan) run(stdout, stderr io.Writer) error {
	c := p.c
	defer p.log.Sync()
	ctx, stop := app.SignalContext()
	defer stop()
	p.opts.Logger = p.log
	pub, err := bus.NewPublisher(bus.PublisherConfig{
		Options: p.opts,
		Topic:   c.topic, Schema: p.schema, SlotSize: c.slotSize, Slots: c.slots,
		AllowUIDs: p.uids, AllowGIDs: p.gids,
	})
	if err != nil {
		return err
	}
	defer pub.Close()
	if p.names != nil {
		np, err := publishNames(p, c.topic+namesSuffix, p.names)
		if err != nil {
			return err
		}
		defer np.Close()
	}
	if c.rt.MLock {
		if err := rt.LockMemory(false); err != nil {
			return err
		}
		if err := pub.Ring().Prefault(); err != nil {
			return err
		}
	}
	if j, ok := p.src.(*jsonLines); ok {
		j.start(ctx)
	}
	p.serving(stderr)
	// systemd: ready now; the watchdog is fed while the loop moves.
	sd := sdnotify.New(p.log)
	var prog sdnotify.Progress
	wctx, wstop := context.WithCancel(ctx)
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		sd.Watchdog(wctx, &prog, func() string { return summary(pub.Describe()) })
	}()
	sd.Ready(fmt.Sprintf("serving topic %s: %s from %s", c.topic, p.schema.Name, c.source))
	var st Stats
	start := time.Now()
	err = rt.Run(p.thread, func(int) error {
		var err error
		st.Published, err = loop(ctx, c, p.perTick, pub, p.src, &prog)
		return err
	})
	d := time.Since(start)
	wstop()
	<-wdone
	sd.Stopping("stopping: " + summary(pub.Describe()))
	pub.Close()
	st.Skipped = p.skipped()
	st.DurationS = d.Seconds()
	if d > 0 {
		st.RateHz = float64(st.Published) / d.Seconds()
	}
	p.log.Info("done", zap.Uint64("published", st.Published), zap.Uint64("skipped", st.Skipped), zap.Duration("took", d))
	if c.statsJSON {
		b, _ := json.Marshal(st)
		fmt.Fprintln(stdout, string(b))
	}
	return err
}

// summary is the publisher's STATUS= line.
func summary(d bus.TopicDesc) string {
	return fmt.Sprintf("topic %s: %d published, %.0f/s, %d subscribers", d.Topic, d.Published, d.RateHz, d.Subscribers)
}

// serving says, in one line, that the topic is up: on a terminal, or in
// the log at level info.
func (p *plan) serving(stderr io.Writer) {
	dir := p.opts.Dir
	if dir == "" {
		dir = bus.DefaultDir()
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	rate := "as fast as possible"
	if p.c.rate > 0 {
		rate = fmt.Sprintf("%g/s", p.c.rate)
	}
	if app.IsTerminal(stderr) {
		fmt.Fprintf(stderr, "%s: serving topic %q: %s, %d slots of %d bytes, %s from %s, bus %s\n",
			prog, p.c.topic, p.schema.Name, p.c.slots, p.c.slotSize, rate, p.c.source, dir)
		return
	}
	if p.level <= zapcore.InfoLevel {
		p.log.Info("serving", zap.String("topic", p.c.topic), zap.String("type", p.schema.Name), zap.Int("slots", p.c.slots),
			zap.Int("slot_size", p.c.slotSize), zap.String("rate", rate), zap.String("source", p.c.source), zap.String("bus_dir", dir))
	}
}

// loop publishes until the count, the duration, the source's end or a
// signal. Pacing follows a schedule (tick i is due at start + i/rate, with
// perTick samples per tick), sleeping while the next tick is far off and
// spinning for the last stretch, which sleeping cannot hit precisely; a
// late sample does not shift the ones after it.
//
// prog shows the watchdog that the loop moves: a tick every 256 samples
// and at each paced sample, and the planned waits; a source that blocks
// (stdin with nothing written) stops the ticks.
// sleepUntil sleeps until Mono time t, in steps of at most
// sleepStep so that a cancelled ctx ends it within one; false if ctx
// ended it. A Go timer would do, but its wake-up comes up to a
// millisecond late on Linux, which at 1 kHz made the samples come in
// bursts (published intervals strayed 206 µs at the median, 3.9 ms at
// most, on the 2-vCPU VM); the thread's timer slack is set to 1 ns, as
// the pacer's sleeps are short and their precision is the point.
func sleepUntil(ctx context.Context, t int64) bool {
	for {
		now := clock.Mono()
		if ctx.Err() != nil {
			return false
		}
		if now >= t {
			return true
		}
		sys.SetTimerSlack(1)
		if err := sys.SleepUntil(min(t, now+int64(sleepStep))); err != nil && !errors.Is(err, sys.EINTR) {
			// Not supported here: a Go timer, late or not.
			select {
			case <-time.After(time.Duration(t - now)):
			case <-ctx.Done():
				return false
			}
		}
	}
}

// sleepStep bounds each of sleepUntil's sleeps: how long a cancelled
// context may wait to be seen.
const sleepStep = 20 * time.Millisecond

func loop(ctx context.Context, c config, perTick int, pub *bus.Publisher, src source, prog *sdnotify.Progress) (uint64, error) {
	w := pub.Ring()
	var interval int64
	if c.rate > 0 {
		interval = int64(float64(time.Second) / c.rate)
	}
	start := clock.Mono()
	var end int64
	if c.duration > 0 {
		end = start + int64(c.duration)
	}
	const spinFor = int64(200 * time.Microsecond)
	var seq uint64
	for ; c.count == 0 || seq < c.count; seq++ {
		if seq&255 == 0 {
			if ctx.Err() != nil {
				break
			}
			prog.Tick()
		}
		if interval > 0 && seq%uint64(perTick) == 0 {
			due := start + int64(seq/uint64(perTick))*interval
			if end != 0 && due >= end {
				break
			}
			prog.IdleUntil(due)
			if !sleepUntil(ctx, due-spinFor) {
				return seq, nil
			}
			for clock.Mono() < due {
			}
		}
		if end != 0 && clock.Mono() >= end {
			break
		}
		m, ok, err := src.next(seq)
		if err != nil {
			return seq, err
		}
		if !ok {
			break
		}
		if err := pub.PublishMessage(m); err != nil {
			if errors.Is(err, schema.ErrTooLarge) {
				return seq, fmt.Errorf("sample %d of up to %d bytes does not fit %d-byte slots (raise --slot-size): %w", seq, m.Msgsize(), w.SlotSize(), err)
			}
			return seq, fmt.Errorf("publish sample %d: %w", seq, err)
		}
	}
	return seq, nil
}

type synthetic struct{ g *synth.Synth }

func (s synthetic) next(seq uint64) (schema.Message, bool, error) {
	m, err := s.g.Make(seq, time.Now().UnixNano())
	return m, true, err
}
