// Package pubcmd is the publisher program: it puts synthetic, stdin or
// thermal-sensor samples on a topic at a paced rate.
package pubcmd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/app"
	"github.com/sensorbus/sensorbus/internal/clock"
	"github.com/sensorbus/sensorbus/rt"
	"github.com/sensorbus/sensorbus/schema"
)

const prog = "publisher"

type config struct {
	topic, typ, source, busDir, allowUID, allowGID, logLevel string
	payloadSize, slots, slotSize                             int
	rate                                                     float64
	count                                                    uint64
	duration                                                 time.Duration
	statsJSON                                                bool
	rt                                                       app.RT
	thermalRoot                                              string
}

// Stats is what --stats-json prints.
type Stats struct {
	Published uint64  `json:"published"`
	DurationS float64 `json:"duration_s"`
	RateHz    float64 `json:"rate_hz"`
}

// Run runs the publisher with args (without the program name) and returns
// its exit code.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c config
	fs := app.NewFlagSet(prog, "publisher --topic NAME [flags]\n\nPublishes sensor samples on a sensorbus topic.", stdout)
	fs.StringVar(&c.topic, "topic", "", "topic to publish (required)")
	fs.StringVar(&c.typ, "type", "imu", "sample type: "+strings.Join(app.TypeNames, ", "))
	fs.IntVar(&c.payloadSize, "payload-size", 64, "bytes of payload for --type raw")
	fs.Float64Var(&c.rate, "rate", 1000, "samples per second; 0 publishes as fast as possible")
	fs.Uint64Var(&c.count, "count", 0, "stop after this many samples (0: no limit)")
	fs.DurationVar(&c.duration, "duration", 0, "stop after this long (0: until SIGINT or SIGTERM)")
	fs.IntVar(&c.slots, "slots", 4096, "samples the ring keeps (a power of two)")
	fs.IntVar(&c.slotSize, "slot-size", 256, "largest sample in bytes")
	fs.StringVar(&c.source, "source", "synthetic", "synthetic (changing values with sequence and checksum), stdin (JSON lines of the type) or thermal (this host's temperature sensors)")
	fs.StringVar(&c.busDir, "bus-dir", "", "bus directory (none: $SENSORBUS_DIR, else $XDG_RUNTIME_DIR/sensorbus, else /run/sensorbus for root, else /tmp/sensorbus-UID)")
	fs.StringVar(&c.allowUID, "allow-uid", "", "comma-separated uids admitted besides this user and root")
	fs.StringVar(&c.allowGID, "allow-gid", "", "comma-separated gids admitted")
	fs.StringVar(&c.logLevel, "log-level", "warn", "debug, info, warn or error")
	fs.BoolVar(&c.statsJSON, "stats-json", false, `on exit print one JSON line on stdout: {"published":N,"duration_s":F,"rate_hz":F}`)
	c.rt.Register(fs)
	c.thermalRoot = "/sys/class"
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return app.ExitOK
		}
		return app.Fail(stderr, prog, err)
	}
	if err := run(c, stdin, stdout, stderr); err != nil {
		return app.Fail(stderr, prog, err)
	}
	return app.ExitOK
}

// source yields the samples to publish; next returns false at the end.
type source interface {
	next(seq uint64) (schema.Message, bool, error)
}

func run(c config, stdin io.Reader, stdout, stderr io.Writer) error {
	if c.topic == "" {
		return app.Usagef("--topic is required")
	}
	if c.rate < 0 || c.duration < 0 {
		return app.Usagef("--rate and --duration must not be negative")
	}
	thread, err := c.rt.Thread()
	if err != nil {
		return err
	}
	s, err := app.SchemaOf(c.typ)
	if err != nil {
		return err
	}
	uids, err := app.ParseIDs("allow-uid", c.allowUID)
	if err != nil {
		return err
	}
	gids, err := app.ParseIDs("allow-gid", c.allowGID)
	if err != nil {
		return err
	}
	log, err := app.Logger(c.logLevel, stderr)
	if err != nil {
		return err
	}
	defer log.Sync()

	var src source
	switch c.source {
	case "synthetic":
		g, err := app.NewSynth(s, c.payloadSize)
		if err != nil {
			return err
		}
		src = synthetic{g}
	case "stdin":
		src = &jsonLines{s: s, in: bufio.NewScanner(stdin), stderr: stderr}
	case "thermal":
		if s != schema.ScalarSchema {
			return app.Usagef("--source thermal publishes temperatures: use --type scalar")
		}
		t, err := newThermal(c.thermalRoot)
		if err != nil {
			return err
		}
		src = t
	default:
		return app.Usagef("--source %q: want synthetic, stdin or thermal", c.source)
	}

	ctx, stop := app.SignalContext()
	defer stop()
	pub, err := bus.NewPublisher(bus.PublisherConfig{
		Options: bus.Options{Dir: c.busDir, Logger: log},
		Topic:   c.topic, Schema: s, SlotSize: c.slotSize, Slots: c.slots,
		AllowUIDs: uids, AllowGIDs: gids,
	})
	if err != nil {
		return err
	}
	defer pub.Close()
	if c.rt.MLock {
		if err := rt.LockMemory(false); err != nil {
			return err
		}
		if err := pub.Ring().Prefault(); err != nil {
			return err
		}
	}
	var st Stats
	start := time.Now()
	err = rt.Run(thread, func(int) error {
		var err error
		st.Published, err = loop(ctx, c, pub, src)
		return err
	})
	d := time.Since(start)
	pub.Close()
	st.DurationS = d.Seconds()
	if d > 0 {
		st.RateHz = float64(st.Published) / d.Seconds()
	}
	log.Info("done", zap.Uint64("published", st.Published), zap.Duration("took", d))
	if c.statsJSON {
		b, _ := json.Marshal(st)
		fmt.Fprintln(stdout, string(b))
	}
	return err
}

// loop publishes until the count, the duration, the source's end or a
// signal. Pacing follows a schedule (sample i is due at start + i/rate),
// sleeping while the next sample is far off and spinning for the last
// stretch, which sleeping cannot hit precisely; a late sample does not
// shift the ones after it.
func loop(ctx context.Context, c config, pub *bus.Publisher, src source) (uint64, error) {
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
		if seq&255 == 0 && ctx.Err() != nil {
			break
		}
		if interval > 0 {
			due := start + int64(seq)*interval
			if d := due - clock.Mono() - spinFor; d > 0 {
				select {
				case <-time.After(time.Duration(d)):
				case <-ctx.Done():
					return seq, nil
				}
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
		if err := schema.EncodeMessage(w, m); err != nil {
			if errors.Is(err, schema.ErrTooLarge) {
				return seq, fmt.Errorf("sample %d of up to %d bytes does not fit %d-byte slots (raise --slot-size): %w", seq, m.Msgsize(), w.SlotSize(), err)
			}
			return seq, fmt.Errorf("publish sample %d: %w", seq, err)
		}
	}
	return seq, nil
}

type synthetic struct{ g *app.Synth }

func (s synthetic) next(seq uint64) (schema.Message, bool, error) {
	m, err := s.g.Make(seq, time.Now().UnixNano())
	return m, true, err
}

// jsonLines reads one JSON object per line; a bad line is reported on
// stderr, counted and skipped.
type jsonLines struct {
	s      *schema.Schema
	in     *bufio.Scanner
	stderr io.Writer
	line   int
	bad    int
}

func (j *jsonLines) next(uint64) (schema.Message, bool, error) {
	for j.in.Scan() {
		j.line++
		text := strings.TrimSpace(j.in.Text())
		if text == "" {
			continue
		}
		m, err := j.s.FromJSON([]byte(text))
		if err != nil {
			j.bad++
			fmt.Fprintf(j.stderr, "%s: stdin line %d skipped: %v\n", prog, j.line, err)
			continue
		}
		return m, true, nil
	}
	if err := j.in.Err(); err != nil {
		return nil, false, fmt.Errorf("read stdin: %w", err)
	}
	if j.bad > 0 {
		fmt.Fprintf(j.stderr, "%s: %d bad line(s) skipped\n", prog, j.bad)
	}
	return nil, false, nil
}

// thermal reads the host's temperature sensors: /sys/class/thermal zones
// and hwmon temperature inputs, publishing one Scalar per sensor in turn
// (Sensor is the sensor's position in the sorted list).
type thermal struct {
	paths []string
	msg   schema.Scalar
}

func newThermal(root string) (*thermal, error) {
	var paths []string
	z, _ := filepath.Glob(filepath.Join(root, "thermal", "thermal_zone*", "temp"))
	h, _ := filepath.Glob(filepath.Join(root, "hwmon", "hwmon*", "temp*_input"))
	paths = append(append(paths, z...), h...)
	sort.Strings(paths)
	if len(paths) == 0 {
		return nil, fmt.Errorf("--source thermal: this host has no temperature sensors (nothing in %s/thermal/thermal_zone*/temp or %s/hwmon/hwmon*/temp*_input; a VM usually has none)", root, root)
	}
	return &thermal{paths: paths}, nil
}

func (t *thermal) next(seq uint64) (schema.Message, bool, error) {
	i := int(seq % uint64(len(t.paths)))
	b, err := os.ReadFile(t.paths[i])
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", t.paths[i], err)
	}
	milli, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %q is not millidegrees", t.paths[i], b)
	}
	t.msg = schema.Scalar{Time: time.Now().UnixNano(), Sensor: uint32(i), Value: float64(milli) / 1000, Unit: schema.UnitCelsius}
	return &t.msg, true, nil
}
