package ring

import (
	"fmt"
	"testing"
)

func BenchmarkPublish(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			dir := testDir(b)
			w := mustCreate(b, Config{Dir: dir, Name: "bench", SlotSize: size, Slots: 4096})
			defer w.Close()
			p := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				w.Publish(p)
			}
		})
	}
}

func BenchmarkReserveCommit64B(b *testing.B) {
	dir := testDir(b)
	w := mustCreate(b, Config{Dir: dir, Name: "bench", SlotSize: 64, Slots: 4096})
	defer w.Close()
	p := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ := w.Reserve()
		w.Commit(copy(buf, p))
	}
}

// BenchmarkStreamRead measures a reader's cost per sample with the data
// already in the ring (same process, so no cross-core transfer): the
// seqlock read, the copy out, and the bookkeeping.
func BenchmarkStreamRead(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			dir := testDir(b)
			const slots = 4096
			w := mustCreate(b, Config{Dir: dir, Name: "bench", SlotSize: size, Slots: slots})
			defer w.Close()
			p := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			var r *Reader
			for i := 0; b.Loop(); i++ {
				if i%slots == 0 {
					b.StopTimer()
					if r != nil {
						r.Close()
					}
					r = mustOpen(b, dir, "bench", ReaderConfig{Wait: WaitSpin})
					for range slots {
						w.Publish(p)
					}
					b.StartTimer()
				}
				if _, ok, _ := r.TryNext(); !ok {
					b.Fatal("no sample")
				}
			}
		})
	}
}

// The seqlock's fences (shm_unsafe.go), alone: what correctness on arm64
// and arm costs per publish (writeFence) and per read (readFence). On
// amd64 the read fence is an XCHG the TSO model would not need; it is kept
// so that one code path is tested on every architecture.
func BenchmarkFence(b *testing.B) {
	var local uint32
	b.Run("write", func(b *testing.B) {
		for b.Loop() {
			writeFence(&local)
		}
	})
	b.Run("read", func(b *testing.B) {
		for b.Loop() {
			readFence(&local)
		}
	})
}
