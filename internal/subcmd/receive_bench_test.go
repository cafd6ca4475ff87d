package subcmd

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/app"
	"github.com/sensorbus/sensorbus/internal/synth"
	"github.com/sensorbus/sensorbus/schema"
)

// BenchmarkReceive is the flat-out subscriber with --format none: the
// program's receive loop (counting, latency histogram, the stats and
// flush deadlines) against bare Subscriber.Next on the same ring. ns/op is
// per sample; the ring is filled before each timed round, so the writer
// is not measured.
func BenchmarkReceive(b *testing.B) {
	for _, name := range []string{"loop", "bare"} {
		b.Run(name, func(b *testing.B) {
			const slots = 1 << 16
			opts := bus.Options{Dir: filepath.Join(b.TempDir(), "bus")}
			pub, err := bus.NewPublisher(bus.PublisherConfig{Options: opts, Topic: "b", Schema: schema.IMUSchema, Slots: slots})
			if err != nil {
				b.Fatal(err)
			}
			defer pub.Close()
			ctx := context.Background()
			sub, err := bus.Subscribe(ctx, bus.SubscriberConfig{Options: opts, Topic: "b", Untyped: true})
			if err != nil {
				b.Fatal(err)
			}
			defer sub.Close()
			g, _ := synth.New(schema.IMUSchema, 0)
			reg, _ := schema.NewRegistry()
			r := &receiver{c: config{topic: "b", format: "none", mode: "stream", from: "newest"}, sub: sub, reg: reg,
				out: app.NewOutput(io.Discard), stderr: io.Discard, hist: hdrhistogram.New(1, int64(time.Minute), 3),
				live: hdrhistogram.New(1, int64(time.Minute), 3)}
			r.typeOf(sub.Header())
			var seq uint64
			b.ResetTimer()
			for left := b.N; left > 0; {
				n := min(left, slots/2)
				b.StopTimer()
				for range n {
					m, _ := g.Make(seq, 1)
					schema.EncodeMessage(pub.Ring(), m)
					seq++
				}
				b.StartTimer()
				if name == "loop" {
					r.c.count = r.received + uint64(n)
					if err := r.loop(ctx); err != nil {
						b.Fatal(err)
					}
				} else {
					for range n {
						if _, err := sub.Next(ctx); err != nil {
							b.Fatal(err)
						}
					}
				}
				left -= n
			}
			b.StopTimer()
			if name == "loop" && (r.received != uint64(b.N) || r.lost != 0) {
				b.Fatalf("received %d, lost %d of %d", r.received, r.lost, b.N)
			}
		})
	}
}
