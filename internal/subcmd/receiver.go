package subcmd

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/app"
	"github.com/sensorbus/sensorbus/internal/clock"
	"github.com/sensorbus/sensorbus/internal/sdnotify"
	"github.com/sensorbus/sensorbus/internal/synth"
	"github.com/sensorbus/sensorbus/ring"
	"github.com/sensorbus/sensorbus/schema"
)

// receiver is the receive loop's state; it belongs to the loop's goroutine.
type receiver struct {
	c        config
	fields   []string
	sub      *bus.Subscriber
	reg      *schema.Registry
	out      *app.Output
	stderr   io.Writer
	schema   *schema.Schema // nil: a schema this build does not know
	typeName string
	verifier *synth.Verifier
	judged   bool // the generation's first sample showed it synthetic
	hist     *hdrhistogram.Histogram
	live     *hdrhistogram.Histogram
	csv      *csvOut
	attached int64 // clock.Mono at (re-)attach: latency counts samples published after it

	received, lost, corrupt, restarts uint64
	lastIndex                         uint64
	first, statsShown, fieldsChecked  bool

	// the last stats line's counts and time
	lastRecv, lastLost uint64
	lastStats          int64

	// The systemd watchdog: the loop ticks prog at least every beatEvery
	// (0: no watchdog) and hands status its one-line summary.
	prog      *sdnotify.Progress
	beatEvery int64
	status    func(string)
}

// typeOf picks the decoder and verifier for the topic's current schema.
func (r *receiver) typeOf(h ring.Header) error {
	r.schema, _ = r.reg.ByFingerprint(h.SchemaFingerprint)
	r.typeName = "untyped"
	if h.SchemaName != "" {
		r.typeName = h.SchemaName
	}
	r.verifier, r.judged = nil, false
	if r.c.verify {
		v, err := synth.NewVerifier(r.schema)
		if err != nil {
			return app.Usagef("--verify: topic %q carries %s, which --verify cannot check (it checks synthetic samples of the built-in types)", r.c.topic, r.typeName)
		}
		r.verifier = v
	}
	return nil
}

// loop receives until the count, the duration or a signal. While it waits
// for a sample, Next's context also ends at the next stats line or output
// flush, so both happen on time however slow the topic.
func (r *receiver) loop(ctx context.Context) error {
	const second = int64(time.Second)
	r.first = true
	now := clock.Mono()
	var nextStats int64
	if r.c.stats {
		r.lastStats, nextStats = now, now+second
	}
	var nextBeat int64
	if r.beatEvery > 0 {
		nextBeat = now
	}
	var w waker
	defer w.stop()
	for r.c.count == 0 || r.received < r.c.count {
		if nextBeat != 0 && now >= nextBeat {
			r.prog.Tick()
			r.status(fmt.Sprintf("topic %s: %d received, %d lost, %d restarts", r.c.topic, r.received, r.lost, r.restarts))
			nextBeat = now + r.beatEvery
		}
		at := nextStats
		if due := r.out.Due(); due != 0 && (at == 0 || due < at) {
			at = due
		}
		if nextBeat != 0 && (at == 0 || nextBeat < at) {
			at = nextBeat
		}
		wctx := w.ctx(ctx, at)
		s, err := r.sub.Next(wctx)
		now = clock.Mono()
		if err != nil {
			if ctx.Err() != nil {
				return nil // --duration, SIGINT, SIGTERM or SIGHUP: a normal end
			}
			if wctx.Err() == nil {
				return err
			}
			w.stop() // spent: the next round makes a new one
		} else if err := r.take(s, now); err != nil {
			return err
		}
		if due := r.out.Due(); due != 0 && now >= due {
			r.out.Flush()
		}
		if nextStats != 0 && now >= nextStats {
			r.printStats(now)
			nextStats = max(nextStats+second, now+second/2)
		}
		if r.c.interval > 0 && err == nil {
			r.out.Flush()
			t := time.NewTimer(r.c.interval)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil
			}
		}
	}
	return nil
}

// waker is a context that also ends at a clock.Mono deadline.
type waker struct {
	c      context.Context
	cancel context.CancelFunc
	at     int64
}

// ctx returns parent, ended also at at (if not 0); it is reused while at
// stays the same.
func (w *waker) ctx(parent context.Context, at int64) context.Context {
	if w.c != nil && at == w.at {
		return w.c
	}
	w.stop()
	w.c, w.at = parent, at
	if at != 0 {
		w.c, w.cancel = context.WithTimeout(parent, time.Duration(at-clock.Mono()))
	}
	return w.c
}

func (w *waker) stop() {
	if w.cancel != nil {
		w.cancel()
	}
	w.c, w.cancel = nil, nil
}

// take counts, checks and prints one sample received at now.
func (r *receiver) take(s bus.Sample, now int64) error {
	if s.Restarted {
		r.restarts++
		r.attached = now
		if err := r.typeOf(r.sub.Header()); err != nil {
			return err
		}
	}
	if r.first && r.c.mode == "stream" && r.c.from == "oldest" {
		// Samples before the oldest the ring still held: asked for, lost.
		r.lost += s.Index - s.Lost
	}
	r.first = false
	r.received++
	r.lost += s.Lost
	r.lastIndex = s.Index
	lat := now - s.PublishedAt
	if s.PublishedAt >= r.attached {
		r.hist.RecordValue(max(lat, 1))
		if r.c.stats {
			r.live.RecordValue(max(lat, 1))
		}
	}
	if r.verifier != nil {
		ok := r.verifier.Check(s.Index, s.Data)
		if !r.judged {
			if !ok {
				return app.Usagef("--verify: topic %q does not carry synthetic samples (sample %d is not the synthetic one), which is all --verify can check", r.c.topic, s.Index)
			}
			r.judged = true
		}
		if !ok {
			r.corrupt++
		}
	}
	if r.c.format != "none" {
		if err := r.print(s, lat); err != nil {
			return err
		}
		return r.out.Line(now)
	}
	return nil
}

// printStats prints the stats line: rates since the last line, lag, and
// latency percentiles over that second.
func (r *receiver) printStats(now int64) {
	secs := float64(now-r.lastStats) / 1e9
	var lag uint64
	if st, err := r.sub.PublisherStatus(); err == nil && r.received > 0 && st.Published > r.lastIndex+1 {
		lag = st.Published - r.lastIndex - 1
	}
	line := fmt.Sprintf("%s: %.0f received/s  %.0f lost/s  lag %d  corrupt %d  restarts %d  latency p50 %.1f µs  p99 %.1f µs",
		r.c.topic, float64(r.received-r.lastRecv)/secs, float64(r.lost-r.lastLost)/secs, lag, r.corrupt, r.restarts,
		float64(r.live.ValueAtQuantile(50))/1e3, float64(r.live.ValueAtQuantile(99))/1e3)
	if app.IsTerminal(r.stderr) {
		fmt.Fprintf(r.stderr, "\r%s   ", line)
	} else {
		fmt.Fprintf(r.stderr, "%s: stats: %s\n", prog, line)
	}
	r.lastRecv, r.lastLost, r.lastStats = r.received, r.lost, now
	r.live.Reset()
	r.statsShown = true
}

func (r *receiver) decode(data []byte) json.RawMessage {
	if r.schema != nil {
		if j, err := r.schema.ToJSON(data); err == nil {
			return j
		}
		return nil
	}
	if j, err := schema.AnyToJSON(data); err == nil {
		return j
	}
	return nil
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

func (r *receiver) print(s bus.Sample, lat int64) error {
	fields := r.decode(s.Data)
	if r.fields != nil || r.c.format == "csv" {
		rec := newRecord(r.c.topic, s.Index, s.PublishedAt, lat, s.Lost, s.Restarted, r.typeName, fields)
		want := r.fields
		if !r.fieldsChecked && want != nil {
			if err := rec.check(want, r.typeName); err != nil {
				return err
			}
			r.fieldsChecked = true
		}
		switch r.c.format {
		case "json":
			rec.writeJSON(r.out, want)
		case "text":
			rec.writeText(r.out, want)
		case "csv":
			if r.csv == nil {
				if want == nil {
					want = append([]string{"seq", "published_ns", "latency_ns"}, rec.leaves...)
				}
				r.csv = &csvOut{w: csv.NewWriter(r.out), cols: want}
				r.csv.w.Write(want)
			}
			r.csv.write(rec)
		}
		return nil
	}
	if r.c.format == "json" {
		line := sampleJSON{Topic: r.c.topic, Seq: s.Index, PublishedNs: s.PublishedAt, LatencyNs: lat, Lost: s.Lost, Restarted: s.Restarted, Type: r.typeName, Fields: fields}
		if fields == nil {
			line.Fields = json.RawMessage("null")
			line.Error = "does not decode as " + r.typeName
		}
		b, _ := json.Marshal(line)
		r.out.Write(b)
		r.out.WriteByte('\n')
		return nil
	}
	var extra string
	if s.Lost > 0 && r.c.mode == "stream" {
		extra += " (lost " + strconv.FormatUint(s.Lost, 10) + " before)"
	}
	if s.Restarted {
		extra += " (publisher restarted)"
	}
	if fields == nil {
		fields = json.RawMessage(`"<does not decode as ` + r.typeName + `>"`)
	}
	fmt.Fprintf(r.out, "%s #%d %s latency %.1fµs%s %s\n", r.c.topic, s.Index, r.typeName, float64(lat)/1e3, extra, fields)
	return nil
}
