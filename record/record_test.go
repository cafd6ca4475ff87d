package record

import (
	"context"
	"path/filepath"
	"testing"

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
