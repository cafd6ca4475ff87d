package pubcmd

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/sdnotify"
	"github.com/sensorbus/sensorbus/internal/synth"
	"github.com/sensorbus/sensorbus/ring"
	"github.com/sensorbus/sensorbus/schema"
)

// BenchmarkPacing runs the publisher's loop at a requested rate and
// reports how far the achieved rate is from it (rate-error-%): the
// program's promise is within 1% up to 200 kHz. ns/op is the achieved
// interval.
func BenchmarkPacing(b *testing.B) {
	for _, rate := range []float64{1000, 100_000, 200_000} {
		b.Run(fmt.Sprintf("%.0fHz", rate), func(b *testing.B) {
			dir := b.TempDir()
			pub, err := bus.NewPublisher(bus.PublisherConfig{Options: bus.Options{Dir: filepath.Join(dir, "bus")},
				Topic: "pace", Schema: schema.IMUSchema})
			if err != nil {
				b.Fatal(err)
			}
			defer pub.Close()
			g, _ := synth.New(schema.IMUSchema, 64)
			b.ResetTimer()
			start := time.Now()
			n, err := loop(context.Background(), config{rate: rate, count: uint64(b.N)}, 1, pub, synthetic{g}, new(sdnotify.Progress))
			d := time.Since(start)
			if err != nil || n != uint64(b.N) {
				b.Fatalf("published %d of %d: %v", n, b.N, err)
			}
			// The first sample is due at once, the last at (n-1)/rate.
			want := float64(n-1) / rate
			if n > 1 {
				b.ReportMetric(math.Abs(d.Seconds()-want)/want*100, "rate-error-%")
			}
			// How regular the intervals are: the publish stamps of the
			// samples the ring still holds, against 1/rate.
			b.StopTimer()
			rf, wf, err := pub.Ring().ReaderFiles()
			if err != nil {
				b.Fatal(err)
			}
			r, err := ring.Attach(rf, wf, ring.ReaderConfig{Start: ring.FromOldest})
			rf.Close()
			wf.Close()
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			var devs []float64
			last := int64(0)
			for {
				s, ok, err := r.TryNext()
				if err != nil || !ok {
					break
				}
				if last != 0 && s.Lost == 0 {
					devs = append(devs, math.Abs(float64(s.PublishedAt-last)-float64(time.Second)/rate))
				}
				last = s.PublishedAt
			}
			if len(devs) > 0 {
				slices.Sort(devs)
				b.ReportMetric(devs[len(devs)/2]/1e3, "interval-dev-p50-µs")
				b.ReportMetric(devs[len(devs)*99/100]/1e3, "interval-dev-p99-µs")
			}
		})
	}
}
