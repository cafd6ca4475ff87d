package record

import (
	"context"
	"testing"
	"time"

	"github.com/sensorbus/sensorbus/schema"
)

// A flight recorder keeps the newest samples within its byte bound and
// writes them on a trigger and on exit; both files are whole and
// contiguous.
func TestSnapshotTriggerAndExit(t *testing.T) {
	opts := testBus(t)
	dir := t.TempDir()
	ev := make(events, 64)
	trigger := make(chan struct{})
	const maxBytes = 64 << 10
	type result struct {
		st  Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := Snapshot(context.Background(), SnapshotConfig{
			RecordConfig: RecordConfig{Bus: opts, Topics: []string{"imu"}, StopWhenGone: true, Notify: ev.notify, ChunkSize: 4096},
			Dir:          dir, Window: time.Hour, MaxBytes: maxBytes, Trigger: trigger, OnExit: true})
		done <- result{st, err}
	}()
	p := newSynthPublisher(t, opts, "imu", schema.IMUSchema, 8192)
	ev.wait(t, EventAttached)
	if err := p.publish(2000, 0); err != nil {
		t.Fatal(err)
	}
	// The recorder reads on its own time: trigger until a snapshot holds
	// the 2000th sample.
	first := ""
	for first == "" {
		trigger <- struct{}{}
		path := ev.wait(t, EventFile).Path
		if got := readAll(t, "imu", path); len(got) > 0 && got[len(got)-1].index == 1999 {
			first = path
		}
	}
	if err := p.publish(6000, 0); err != nil {
		t.Fatal(err)
	}
	p.pub.Close()
	last := ev.wait(t, EventFile).Path
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	n := len(r.st.Files)
	if n < 2 || r.st.Files[n-2] != first || r.st.Files[n-1] != last || r.st.Messages != 8000 {
		t.Fatalf("stats %+v", r.st)
	}
	for _, f := range []string{first, last} {
		got := readAll(t, "imu", f)
		if len(got) == 0 {
			t.Fatalf("%s: empty", f)
		}
		for i := range got {
			if got[i].index != got[0].index+uint64(i) {
				t.Fatalf("%s: sample %d has index %d after %d", f, i, got[i].index, got[0].index)
			}
		}
		sum, err := Inspect(f)
		if err != nil {
			t.Fatal(err)
		}
		if !sum.Complete || sum.Recording[MetaMode] != "snapshot" || sum.Topics[0].FirstIndex != got[0].index {
			t.Fatalf("%s: %+v", f, sum)
		}
		t.Logf("%s: indices %d to %d", f, got[0].index, got[len(got)-1].index)
	}
	got := readAll(t, "imu", last)
	if got[len(got)-1].index != 7999 {
		t.Fatalf("the exit snapshot ends at %d, want 7999", got[len(got)-1].index)
	}
	// 8000 samples of ~80 bytes do not fit 64 KiB: the oldest went.
	if got[0].index == 0 || uint64(len(got))*80 > maxBytes+8192 {
		t.Fatalf("the exit snapshot holds indices %d to %d: not bounded by %d bytes", got[0].index, got[len(got)-1].index, maxBytes)
	}
	checkWithNode(t, first, last)
}
