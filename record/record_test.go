package record

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sensorbus/sensorbus/schema"
)

// recordSynth records n synthetic IMU samples published after the
// recorder attached, with cfg's other settings, and returns the stats.
func recordSynth(t *testing.T, cfg RecordConfig, n int) Stats {
	t.Helper()
	ev := make(events, 64)
	cfg.Topics = []string{"imu"}
	cfg.StopWhenGone = true
	cfg.Notify = ev.notify
	wait := recordAsync(context.Background(), cfg)
	p := newSynthPublisher(t, cfg.Bus, "imu", schema.IMUSchema, 4096)
	ev.wait(t, EventAttached)
	err := p.publish(n, 0)
	p.pub.Close()
	if err != nil {
		t.Fatal(err)
	}
	st, err := wait()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestRecordInspect(t *testing.T) {
	for _, c := range []Compression{CompressZstd, CompressLZ4, CompressNone} {
		t.Run(string(c), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run.mcap")
			const n = 3000
			st := recordSynth(t, RecordConfig{Bus: testBus(t), Output: out, Compression: c, ChunkSize: 64 << 10}, n)
			if st.Messages != n || st.Lost != 0 || len(st.Files) != 1 {
				t.Fatalf("stats %+v", st)
			}
			sum, err := Inspect(out)
			if err != nil {
				t.Fatal(err)
			}
			if !sum.Complete || sum.Truncated || sum.Messages != n || sum.Lost != 0 || len(sum.Topics) != 1 || sum.Chunks < 2 {
				t.Fatalf("summary %+v", sum)
			}
			ts := sum.Topics[0]
			if ts.Topic != "imu" || ts.Schema != "sensorbus.IMU" || ts.FirstIndex != 0 || ts.LastIndex != n-1 || ts.Messages != n {
				t.Fatalf("topic %+v", ts)
			}
			checkWithNode(t, out)
		})
	}
}

// A split recording is files named in sequence, each finished, holding
// together every sample once; they replay as one.
func TestRecordSplit(t *testing.T) {
	opts := testBus(t)
	dir := t.TempDir()
	const n = 3000
	st := recordSynth(t, RecordConfig{Bus: opts, Output: filepath.Join(dir, "run.mcap"), ChunkSize: 4096, SplitSize: 16 << 10}, n)
	if len(st.Files) < 3 {
		t.Fatalf("%d files: %v", len(st.Files), st.Files)
	}
	next := uint64(0)
	for i, f := range st.Files {
		if want := filepath.Join(dir, fmt.Sprintf("run-%04d.mcap", i+1)); f != want {
			t.Fatalf("file %d is %s, want %s", i, f, want)
		}
		sum, err := Inspect(f)
		if err != nil {
			t.Fatal(err)
		}
		ts := sum.Topics[0]
		if !sum.Complete || ts.FirstIndex != next || sum.Recording[MetaPart] != strconv.Itoa(i+1) || sum.Size > 16<<10+8192 {
			t.Fatalf("%s: %+v", f, sum)
		}
		next = ts.LastIndex + 1
	}
	if next != n {
		t.Fatalf("the files end at index %d", next-1)
	}
	checkWithNode(t, st.Files...)
	replayAndVerify(t, opts, 0, st.Files...)
}

// With All, topics that appear while recording are recorded.
func TestRecordAllPicksUpNewTopics(t *testing.T) {
	opts := testBus(t)
	out := filepath.Join(t.TempDir(), "all.mcap")
	ev := make(events, 64)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wait := recordAsync(ctx, RecordConfig{Bus: opts, Output: out, All: true, StopWhenGone: true, DiscoverInterval: 10 * time.Millisecond, Notify: ev.notify})
	for _, topic := range []string{"first", "later"} {
		p := newSynthPublisher(t, opts, topic, schema.IMUSchema, 4096)
		if e := ev.wait(t, EventAttached); e.Topic != topic {
			t.Fatalf("attached to %q", e.Topic)
		}
		err := p.publish(100, 0)
		p.pub.Close()
		if err != nil {
			t.Fatal(err)
		}
		if e := ev.wait(t, EventTopicDone); e.Topic != topic {
			t.Fatalf("%q done", e.Topic)
		}
	}
	cancel()
	st, err := wait()
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Inspect(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != 200 || len(sum.Topics) != 2 || sum.Topics[0].Messages != 100 || sum.Topics[1].Messages != 100 {
		t.Fatalf("stats %+v, file %+v", st, sum.Topics)
	}
	checkWithNode(t, out)
}

// Count and Duration end a recording; bad configurations are refused.
func TestRecordLimitsAndConfig(t *testing.T) {
	opts := testBus(t)
	out := filepath.Join(t.TempDir(), "count.mcap")
	ev := make(events, 64)
	wait := recordAsync(context.Background(), RecordConfig{Bus: opts, Output: out, Topics: []string{"imu"}, Count: 250, Notify: ev.notify})
	p := newSynthPublisher(t, opts, "imu", schema.IMUSchema, 4096)
	defer p.pub.Close()
	ev.wait(t, EventAttached)
	if err := p.publish(1000, 0); err != nil {
		t.Fatal(err)
	}
	st, err := wait()
	if err != nil || st.Messages != 250 {
		t.Fatalf("count 250: %+v %v", st, err)
	}
	if sum, err := Inspect(out); err != nil || sum.Messages != 250 || !sum.Complete {
		t.Fatalf("%+v %v", sum, err)
	}
	st, err = Record(context.Background(), RecordConfig{Bus: opts, Output: filepath.Join(t.TempDir(), "d.mcap"), Topics: []string{"imu"}, Duration: 50 * time.Millisecond})
	if err != nil || len(st.Files) != 1 {
		t.Fatalf("duration: %+v %v", st, err)
	}
	for _, bad := range []RecordConfig{
		{Output: out, Topics: []string{"imu"}},           // exists
		{Output: "x.mcap"},                               // no topics
		{Output: "x.mcap", Topics: []string{"bad/name"}}, // topic
		{Output: "x.mcap", Topics: []string{"imu"}, Encoding: "cbor"},
		{Output: "x.mcap", Topics: []string{"imu"}, Compression: "bz2"},
		{Topics: []string{"imu"}},
	} {
		bad.Bus = opts
		if _, err := Record(context.Background(), bad); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

// A publisher restart is recorded as a restart marker, and the full
// indices of the new generation start again where its ring did.
func TestRecordPublisherRestart(t *testing.T) {
	opts := testBus(t)
	out := filepath.Join(t.TempDir(), "restart.mcap")
	ev := make(events, 64)
	wait := recordAsync(context.Background(), RecordConfig{Bus: opts, Output: out, Topics: []string{"imu"}, Count: 150, Notify: ev.notify})
	p := newSynthPublisher(t, opts, "imu", schema.IMUSchema, 4096)
	ev.wait(t, EventAttached)
	err := p.publish(100, 0)
	p.pub.Close()
	if err != nil {
		t.Fatal(err)
	}
	p = newSynthPublisher(t, opts, "imu", schema.IMUSchema, 4096)
	defer p.pub.Close()
	if err := p.publish(50, 0); err != nil {
		t.Fatal(err)
	}
	st, err := wait()
	if err != nil || st.Topics["imu"].Restarts != 1 || st.Messages != 150 {
		t.Fatalf("%+v %v", st, err)
	}
	sum, err := Inspect(out)
	if err != nil {
		t.Fatal(err)
	}
	ts := sum.Topics[0]
	if ts.Restarts != 1 || len(ts.Gaps) != 1 || ts.Gaps[0].Kind != MarkerRestart || ts.Gaps[0].Index != 0 || ts.Lost != 0 || ts.LastIndex != 49 {
		t.Fatalf("%+v", ts)
	}
	got := readAll(t, "imu", out)
	if len(got) != 150 {
		t.Fatalf("%d samples read", len(got))
	}
	for i, s := range got {
		if want := uint64(i % 100); s.index != want { // 0..99, then 0..49
			t.Fatalf("sample %d has index %d, want %d", i, s.index, want)
		}
	}
	checkWithNode(t, out)
}

// Samples the ring no longer held when the recorder attached are marked
// as missing before it ("before"), not as the recorder's loss.
func TestRecordBeforeAttach(t *testing.T) {
	opts := testBus(t)
	out := filepath.Join(t.TempDir(), "late.mcap")
	p := newSynthPublisher(t, opts, "imu", schema.IMUSchema, 64)
	if err := p.publish(100, 0); err != nil {
		t.Fatal(err)
	}
	ev := make(events, 64)
	wait := recordAsync(context.Background(), RecordConfig{Bus: opts, Output: out, Topics: []string{"imu"}, StopWhenGone: true, Notify: ev.notify})
	ev.wait(t, EventAttached)
	p.pub.Close() // the recorder drains what the ring holds: 36 to 99
	st, err := wait()
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Inspect(out)
	if err != nil {
		t.Fatal(err)
	}
	ts := sum.Topics[0]
	if ts.Before != 36 || st.Topics["imu"].Before != 36 || ts.Lost != 0 || st.Lost != 0 || ts.FirstIndex != 36 || ts.Messages != 64 || sum.Lost != 0 {
		t.Fatalf("stats %+v; file %+v", st, ts)
	}
}
