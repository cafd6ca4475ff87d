package record

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/clock"
	"github.com/sensorbus/sensorbus/internal/synth"
	"github.com/sensorbus/sensorbus/schema"
	"github.com/sensorbus/sensorbus/testing/leakcheck"
)

const childEnv = "SENSORBUS_RECORD_TEST_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(runChild(role))
	}
	os.Exit(leakcheck.Run(m))
}

// testBus returns Options for a fresh bus, removed afterwards; the test
// fails if the bus holds anything then.
func testBus(t testing.TB) bus.Options {
	t.Helper()
	root, err := os.MkdirTemp("", "rectest-")
	if err != nil {
		t.Fatal(err)
	}
	opts := bus.Options{Dir: filepath.Join(root, "bus")}
	t.Cleanup(func() {
		left, _ := bus.Files(opts)
		os.RemoveAll(root)
		if len(left) > 0 && !t.Failed() {
			t.Errorf("files left behind: %v", left)
		}
	})
	return opts
}

// synthPublisher publishes synthetic samples of s on topic, which
// subscribers verify from the ring index alone (internal/app's generator).
type synthPublisher struct {
	pub *bus.Publisher
	gen *synth.Synth
	seq uint64
}

func newSynthPublisher(t testing.TB, opts bus.Options, topic string, s *schema.Schema, slots int) *synthPublisher {
	t.Helper()
	pub, err := bus.NewPublisher(bus.PublisherConfig{Options: opts, Topic: topic, Schema: s, Slots: slots, SlotSize: 128})
	if err != nil {
		t.Fatal(err)
	}
	g, err := synth.New(s, 64)
	if err != nil {
		pub.Close()
		t.Fatal(err)
	}
	return &synthPublisher{pub: pub, gen: g}
}

// publish publishes n samples, one every interval (0: back to back).
func (p *synthPublisher) publish(n int, interval time.Duration) error {
	next := time.Now()
	for range n {
		if interval > 0 {
			next = next.Add(interval)
			for time.Until(next) > 0 {
				time.Sleep(time.Until(next))
			}
		}
		m, err := p.gen.Make(p.seq, time.Now().UnixNano())
		if err != nil {
			return err
		}
		if err := schema.EncodeMessage(p.pub.Ring(), m); err != nil {
			return err
		}
		p.seq++
	}
	return nil
}

// events collects a recorder's events on a channel.
type events chan Event

func (e events) notify(ev Event) {
	select {
	case e <- ev:
	default: // a test that does not wait for this event
	}
}

// wait returns the next event of kind k, failing the test after a minute.
func (e events) wait(t testing.TB, k EventKind) Event {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case ev := <-e:
			if ev.Kind == k {
				return ev
			}
		case <-timeout:
			t.Fatalf("no event %d within a minute", k)
		}
	}
}

// recordAsync runs Record in a goroutine; the returned function waits for
// its result.
func recordAsync(ctx context.Context, cfg RecordConfig) func() (Stats, error) {
	type result struct {
		st  Stats
		err error
	}
	ch := make(chan result, 1)
	go func() {
		st, err := Record(ctx, cfg)
		ch <- result{st, err}
	}()
	return func() (Stats, error) {
		select {
		case r := <-ch:
			return r.st, r.err
		case <-time.After(2 * time.Minute):
			return Stats{}, errors.New("Record did not return within 2 minutes")
		}
	}
}

// newSynth is the IMU generator of internal/app, the only use of it here.
func newSynth() (*synth.Synth, error) { return synth.New(schema.IMUSchema, 64) }

// paced publishes at rate Hz for d (sample i due at start + i/rate; a
// late one does not shift the rest), sleeping while the next is far off
// and spinning for the last stretch. It returns how many it published.
func (p *synthPublisher) paced(rate float64, d time.Duration) (uint64, error) {
	interval := int64(float64(time.Second) / rate)
	start := clock.Mono()
	end := start + int64(d)
	const spinFor = int64(200 * time.Microsecond)
	var n uint64
	for {
		due := start + int64(n)*interval
		if due >= end {
			return n, nil
		}
		if w := due - clock.Mono() - spinFor; w > 0 {
			time.Sleep(time.Duration(w))
		}
		for clock.Mono() < due {
		}
		if err := p.publish(1, 0); err != nil {
			return n, err
		}
		n++
	}
}
