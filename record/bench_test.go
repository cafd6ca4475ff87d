package record

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/ring"
	"github.com/sensorbus/sensorbus/rt"
	"github.com/sensorbus/sensorbus/schema"
	"github.com/sensorbus/sensorbus/testing/proctest"
)

// BenchmarkRecorderPerSample is the recorder's own work per IMU sample,
// from the moment a subscriber hands it over: the chunk append, the
// compression and the write to a file (ns/op on one goroutine, so the
// CPU time per sample), and the file's bytes per sample. Reading the
// sample from the ring adds the Stream read of the ring's benchmarks.
func BenchmarkRecorderPerSample(b *testing.B) {
	for _, c := range []Compression{CompressZstd, CompressLZ4, CompressNone} {
		b.Run(string(c), func(b *testing.B) {
			cc := common{Topics: []string{"imu"}, Compression: c}
			if err := cc.validate(); err != nil {
				b.Fatal(err)
			}
			r := newRecorder(cc, "bench", 0, func() {})
			st := &TopicStats{}
			r.stats["imu"] = st
			ch, err := r.channelFor("imu", ring.Header{SchemaName: schema.IMUSchema.Name, SchemaFingerprint: schema.IMUSchema.Fingerprint, SlotSize: 128, Slots: 4096})
			if err != nil {
				b.Fatal(err)
			}
			z, err := newCompressor(c)
			if err != nil {
				b.Fatal(err)
			}
			defer z.close()
			path := filepath.Join(b.TempDir(), "bench.mcap")
			fw, err := createFile(path, z, r.fileMeta(0), 0)
			if err != nil {
				b.Fatal(err)
			}
			g, _ := newSynth()
			// Samples as a sensor makes them: distinct, varying values.
			const distinct = 4096
			data := make([][]byte, distinct)
			for i := range data {
				m, _ := g.Make(uint64(i), time.Now().UnixNano()+int64(i)*5000)
				data[i], _ = m.MarshalMsg(nil)
			}
			s := bus.Sample{}
			b.ResetTimer()
			for i := range b.N {
				s.Index, s.PublishedAt = uint64(i), int64(i)*5000
				r.add(ch, st, &s, data[i%distinct], nil)
				if len(r.queue) > 0 {
					cs := r.take(false)
					for _, c := range cs {
						if err := fw.write(c); err != nil {
							b.Fatal(err)
						}
					}
					r.recycle(cs)
				}
			}
			for _, c := range r.take(true) {
				if err := fw.write(c); err != nil {
					b.Fatal(err)
				}
			}
			if err := fw.finish(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			fi, err := os.Stat(path)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(fi.Size())/float64(b.N), "file-B/sample")
		})
	}
}

// replayInto replays a synthetic file of n samples interval apart at speed
// into topic "bench" and returns the publish stamps a subscriber saw.
func replayInto(b *testing.B, n int, interval time.Duration, speed float64) ([]int64, []uint64, time.Duration) {
	opts := testBus(b)
	path := filepath.Join(b.TempDir(), "bench.mcap")
	if err := (synthFile{n: n, interval: interval}).write(path); err != nil {
		b.Fatal(err)
	}
	var rec []uint64
	r, err := OpenFile(path)
	if err != nil {
		b.Fatal(err)
	}
	for {
		m, err := r.Next()
		if err != nil {
			break
		}
		rec = append(rec, m.PublishTime)
	}
	r.Close()
	ctx := context.Background()
	stamps := make(chan []int64, 1)
	replayed := make(chan struct{})
	// The subscriber attaches (the replay waits for it) and reads only
	// once the replay is over: the ring holds every sample, and reading
	// in this process meanwhile would compete with the replayer.
	sub := func() {
		s, err := bus.Subscribe(ctx, bus.SubscriberConfig{Options: opts, Topic: "imu", Schema: schema.IMUSchema, Start: ring.FromOldest,
			WaitForPublisher: time.Minute, NoReattach: true, Wait: ring.WaitBlock})
		if err != nil {
			b.Error(err)
			stamps <- nil
			return
		}
		defer s.Close()
		<-replayed
		var got []int64
		for {
			smp, err := s.Next(ctx)
			if err != nil {
				break
			}
			got = append(got, smp.PublishedAt)
		}
		stamps <- got
	}
	go sub()
	b.ResetTimer()
	t0 := time.Now()
	if _, err := Replay(ctx, ReplayConfig{Bus: opts, Files: []string{path}, Speed: speed, PausedUntilSubscribed: true, Slots: 1 << 16}); err != nil {
		b.Fatal(err)
	}
	d := time.Since(t0)
	b.StopTimer()
	close(replayed)
	return <-stamps, rec, d
}

// BenchmarkReplayInterval1kHz replays samples recorded 1 ms apart at speed
// 1 and reports the p99 and max of |actual - recorded interval| between
// consecutive samples, from the replayed ring's publish stamps.
func BenchmarkReplayInterval1kHz(b *testing.B) {
	n := max(b.N, 2)
	got, rec, _ := replayInto(b, n, time.Millisecond, 1)
	if len(got) != n {
		b.Fatalf("subscriber got %d of %d", len(got), n)
	}
	errs := make([]float64, 0, n-1)
	for i := 1; i < n; i++ {
		actual := float64(got[i] - got[i-1])
		want := float64(rec[i] - rec[i-1])
		errs = append(errs, math.Abs(actual-want))
	}
	slices.Sort(errs)
	b.ReportMetric(errs[len(errs)*99/100]/1e3, "p99-interval-error-µs")
	b.ReportMetric(errs[len(errs)/2]/1e3, "p50-interval-error-µs")
	b.ReportMetric(errs[len(errs)-1]/1e3, "max-interval-error-µs")
}

// BenchmarkReplaySpeed0 replays as fast as possible: samples/s published.
func BenchmarkReplaySpeed0(b *testing.B) {
	n := max(b.N, 2)
	got, _, d := replayInto(b, n, time.Millisecond, 0)
	if len(got) == 0 {
		b.Fatal("nothing received")
	}
	b.ReportMetric(float64(n)/d.Seconds(), "samples/s")
}

// BenchmarkRecord200kHz records an IMU topic published at 200 kHz by
// another process for RECORD_BENCH_DURATION (default 5s; the README's
// figure is from 60s) and reports the samples the recorder lost, its CPU
// time per sample (this process: subscriber, chunks, compression, file)
// and the file's bytes per sample. The publisher spins one CPU to keep
// its pace.
func BenchmarkRecord200kHz(b *testing.B) {
	d := 5 * time.Second
	if v := os.Getenv("RECORD_BENCH_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			b.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		c    Compression
		prio int
	}{{"zstd", CompressZstd, 0}, {"lz4", CompressLZ4, 0}, {"zstd-fifo", CompressZstd, 10}} {
		c := tc.c
		b.Run(tc.name, func(b *testing.B) {
			if tc.prio > 0 {
				if err := rt.Run(rt.Thread{Priority: tc.prio}, func(int) error { return nil }); err != nil {
					b.Skip(err)
				}
			}
			opts := testBus(b)
			out := filepath.Join(b.TempDir(), "200k.mcap")
			pub := proctest.Start(b, childEnv, "publisher", proctest.Options{Env: childEnvOf(opts, "PUB_TOPIC=imu", "PUB_RATE=200000", "PUB_DURATION="+d.String()),
				Timeout: d + time.Minute})
			pub.Expect("ready")
			ev := make(events, 16)
			var ru0, ru1 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			wait := recordAsync(context.Background(), RecordConfig{Bus: opts, Output: out, Topics: []string{"imu"}, StopWhenGone: true, Compression: c, Notify: ev.notify,
				Thread: rt.Thread{Priority: tc.prio}})
			ev.wait(b, EventAttached)
			b.ResetTimer()
			pub.Send("go")
			var res struct{ Published uint64 }
			pub.Result(&res)
			st, err := wait()
			b.StopTimer()
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			if err != nil {
				b.Fatal(err)
			}
			fi, err := os.Stat(out)
			if err != nil {
				b.Fatal(err)
			}
			cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
			ts := st.Topics["imu"]
			if ts.Messages+ts.Lost+ts.Before != res.Published {
				b.Fatalf("published %d, recorded %d + lost %d + before %d", res.Published, ts.Messages, ts.Lost, ts.Before)
			}
			b.ReportMetric(float64(res.Published), "published")
			b.ReportMetric(float64(ts.Lost), "lost")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(ts.Messages), "cpu-ns/sample")
			b.ReportMetric(float64(fi.Size())/float64(ts.Messages), "file-B/sample")
			fmt.Fprintf(os.Stderr, "200 kHz for %v, %s: published %d, recorded %d, lost %d, CPU %v\n", d, tc.name, res.Published, ts.Messages, ts.Lost, cpu)
		})
	}
}
