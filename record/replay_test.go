package record

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/synth"
	"github.com/sensorbus/sensorbus/ring"
	"github.com/sensorbus/sensorbus/schema"
)

type recorded struct {
	index   uint64
	pubTime uint64
	data    []byte
}

// readAll returns every sample of topic in the files, in order.
func readAll(t *testing.T, topic string, files ...string) []recorded {
	t.Helper()
	var out []recorded
	for _, f := range files {
		r, err := OpenFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for {
			m, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Marker == nil && m.Channel.Topic == topic {
				data := bytes.Clone(m.Data)
				if m.Channel.MessageEncoding == MessageEncodingJSON {
					v, err := schema.IMUSchema.FromJSON(m.Data)
					if err != nil {
						t.Fatal(err)
					}
					if data, err = v.MarshalMsg(nil); err != nil {
						t.Fatal(err)
					}
				}
				out = append(out, recorded{m.Index, m.PublishTime, data})
			}
		}
		r.Close()
	}
	return out
}

// replaySlots is the ring size of the replayed topic: large enough that
// the subscriber can never be overrun, so every sample must arrive.
const replaySlots = 1 << 15

// replayAndVerify replays files into topic "replayed" and checks with a
// subscriber that every recorded sample arrives, whole, in order, is the
// synthetic sample of its recorded index, and (at speed > 0) is never
// published before its recorded offset from the first.
func replayAndVerify(t *testing.T, opts bus.Options, speed float64, files ...string) ReplayStats {
	t.Helper()
	want := readAll(t, "imu", files...)
	if len(want) == 0 || len(want) > replaySlots {
		t.Fatalf("%d samples recorded: want 1 to %d", len(want), replaySlots)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		st  ReplayStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		// KeepOpen, so the topic stays open until the subscriber has
		// every sample: on main as of 5e63af8, a ring reader told the
		// writer closed gives up early when 64 or more skipped samples
		// (a replayed gap) lie ahead of it (ring.Reader.Next checks
		// the end after one TryNext, which looks at 64 slots).
		st, err := Replay(ctx, ReplayConfig{Bus: opts, Files: files, Speed: speed, Remap: map[string]string{"imu": "replayed"},
			PausedUntilSubscribed: true, Slots: replaySlots, KeepOpen: true})
		done <- result{st, err}
	}()
	sub, err := bus.Subscribe(ctx, bus.SubscriberConfig{Options: opts, Topic: "replayed", Schema: schema.IMUSchema,
		Start: ring.FromOldest, WaitForPublisher: time.Minute, NoReattach: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	v, err := synth.NewVerifier(schema.IMUSchema)
	if err != nil {
		t.Fatal(err)
	}
	var first int64
	late := time.Duration(0)
	for i, w := range want {
		s, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("sample %d of %d: %v", i, len(want), err)
		}
		// The replay publishes recorded gaps (and the samples before
		// the first recorded one) as lost.
		gap := w.index
		if i > 0 {
			gap = w.index - want[i-1].index - 1
		}
		if s.Lost != gap {
			t.Fatalf("sample %d (recorded index %d): %d reported lost, want %d", i, w.index, s.Lost, gap)
		}
		if !bytes.Equal(s.Data, w.data) || !v.Check(w.index, s.Data) {
			t.Fatalf("sample %d (recorded index %d) differs or is corrupt", i, w.index)
		}
		if i == 0 {
			first = s.PublishedAt
		}
		if speed > 0 {
			got := s.PublishedAt - first
			rec := float64(w.pubTime-want[0].pubTime) / speed
			// The pacer waits for each sample's due time, counted from
			// just after the first was published: never early (but for
			// the clock reads around the first publish).
			if float64(got) < rec-float64(20*time.Microsecond) {
				t.Fatalf("sample %d published %v after the first, recorded %v", i, time.Duration(got), time.Duration(rec))
			}
			late = max(late, time.Duration(float64(got)-rec))
		}
	}
	cancel()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.st.Messages != uint64(len(want)) {
		t.Fatalf("replayed %d of %d", r.st.Messages, len(want))
	}
	t.Logf("replayed %d samples; latest sample %v behind its recorded offset", len(want), late)
	return r.st
}

func TestRecordReplayVerify(t *testing.T) {
	for _, tc := range []struct {
		name     string
		encoding string
		speed    float64
	}{{"msgpack-speed1", MessageEncodingMsgpack, 1}, {"json-speed0", MessageEncodingJSON, 0}, {"msgpack-speed4", MessageEncodingMsgpack, 4}} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testBus(t)
			out := filepath.Join(t.TempDir(), "run.mcap")
			ev := make(events, 64)
			wait := recordAsync(context.Background(), RecordConfig{Bus: opts, Output: out, Topics: []string{"imu"}, StopWhenGone: true,
				Encoding: tc.encoding, Notify: ev.notify})
			p := newSynthPublisher(t, opts, "imu", schema.IMUSchema, 4096)
			ev.wait(t, EventAttached)
			err := p.publish(400, time.Millisecond)
			p.pub.Close()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := wait(); err != nil {
				t.Fatal(err)
			}
			replayAndVerify(t, opts, tc.speed, out)
		})
	}
}
