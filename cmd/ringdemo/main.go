// Command ringdemo runs a publisher and a subscriber process over one
// ring for a few seconds and prints what the subscriber sees each second:
// rate, samples lost, and one-way latency. It is the ring-level demo until
// the publisher and subscriber programs land.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/sensorbus/sensorbus/internal/clock"
	"github.com/sensorbus/sensorbus/ring"
)

func main() {
	rate := flag.Int("rate", 100_000, "samples per second")
	dur := flag.Duration("duration", 10*time.Second, "how long to publish")
	dir := flag.String("dir", ring.DefaultDir, "directory for the segment")
	sub := flag.String("subscribe", "", "internal: run as the subscriber of this segment name")
	flag.Parse()
	var err error
	if *sub != "" {
		err = subscribe(*dir, *sub)
	} else {
		err = publish(*dir, *rate, *dur)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ringdemo:", err)
		os.Exit(1)
	}
}

var table = crc32.MakeTable(crc32.Castagnoli)

func publish(dir string, rate int, dur time.Duration) error {
	if rate <= 0 || dur <= 0 {
		return errors.New("--rate and --duration must be positive")
	}
	name := "ringdemo-" + strconv.Itoa(os.Getpid())
	w, err := ring.Create(ring.Config{Dir: dir, Name: name, SlotSize: 64, Slots: 4096})
	if err != nil {
		return err
	}
	defer w.Close()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "--dir", dir, "--subscribe", name)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	fmt.Printf("publishing 64-byte samples at %d/s for %v to %s (subscriber pid %d)\n", rate, dur, w.Path(), cmd.Process.Pid)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := make([]byte, 64)
	interval := int64(time.Second) / int64(rate)
	start := clock.Mono()
	end := start + int64(dur)
	next := start
	for i := uint64(0); next < end && ctx.Err() == nil; i++ {
		next += interval
		if d := next - clock.Mono() - int64(50*time.Microsecond); d > 0 {
			time.Sleep(time.Duration(d))
		}
		for clock.Mono() < next {
		}
		binary.LittleEndian.PutUint64(p, i)
		binary.LittleEndian.PutUint32(p[60:], crc32.Checksum(p[:60], table))
		w.Publish(p)
	}
	published := w.Published()
	w.Close() // the subscriber drains and ends
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("subscriber: %v", err)
	}
	fmt.Printf("published %d samples\n", published)
	return nil
}

func subscribe(dir, name string) error {
	r, err := ring.Open(dir, name, ring.ReaderConfig{Start: ring.FromOldest})
	if err != nil {
		return err
	}
	defer r.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h := hdrhistogram.New(1, int64(10*time.Second), 3)
	total := hdrhistogram.New(1, int64(10*time.Second), 3)
	var corrupt, n uint64
	tick := clock.Mono() + int64(time.Second)
	var lastRecv, lastLost uint64
	report := func(final bool) {
		st := r.Stats()
		if final {
			fmt.Printf("  total: received %d + lost %d = %d, %d corrupt; latency p50 %.1f µs  p99 %.1f µs  p99.9 %.1f µs  max %.1f µs\n",
				st.Received, st.Lost, st.Received+st.Lost, corrupt,
				float64(total.ValueAtQuantile(50))/1e3, float64(total.ValueAtQuantile(99))/1e3,
				float64(total.ValueAtQuantile(99.9))/1e3, float64(total.Max())/1e3)
			return
		}
		fmt.Printf("  subscriber: %7d samples/s  %6d lost  %d corrupt  latency p50 %6.1f µs  p99 %7.1f µs  max %8.1f µs\n",
			st.Received-lastRecv, st.Lost-lastLost, corrupt,
			float64(h.ValueAtQuantile(50))/1e3, float64(h.ValueAtQuantile(99))/1e3, float64(h.Max())/1e3)
		lastRecv, lastLost = st.Received, st.Lost
		h.Reset()
	}
	for {
		s, err := r.Next(ctx)
		if err != nil {
			report(true)
			if errors.Is(err, ring.ErrWriterClosed) {
				if corrupt > 0 {
					return fmt.Errorf("%d corrupt samples", corrupt)
				}
				return nil
			}
			return err
		}
		lat := max(clock.Mono()-s.PublishedAt, 1)
		h.RecordValue(lat)
		total.RecordValue(lat)
		if binary.LittleEndian.Uint64(s.Data) != s.Index || binary.LittleEndian.Uint32(s.Data[60:]) != crc32.Checksum(s.Data[:60], table) {
			corrupt++
		}
		n++
		if n&1023 == 0 && clock.Mono() >= tick {
			tick += int64(time.Second)
			report(false)
		}
	}
}
