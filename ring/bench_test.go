package ring

import (
	"fmt"
	"testing"
)

// benchRing creates a 4096-slot ring: anonymous (sealed, as the bus makes
// them) or named (a file in a tmpfs directory).
func benchRing(b *testing.B, anon bool, size int) (*Writer, func(ReaderConfig) *Reader) {
	if anon {
		w := mustCreate(b, Config{SlotSize: size, Slots: 4096})
		return w, func(rc ReaderConfig) *Reader { return attachTo(b, w, rc) }
	}
	dir := testDir(b)
	w := mustCreate(b, Config{Dir: dir, Name: "bench", SlotSize: size, Slots: 4096})
	return w, func(rc ReaderConfig) *Reader { return mustOpen(b, dir, "bench", rc) }
}

func ringKind(anon bool) string {
	if anon {
		return "anon"
	}
	return "named"
}

func BenchmarkPublish(b *testing.B) {
	for _, anon := range []bool{true, false} {
		for _, size := range []int{64, 1024} {
			b.Run(fmt.Sprintf("%s/%dB", ringKind(anon), size), func(b *testing.B) {
				w, _ := benchRing(b, anon, size)
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
}

func BenchmarkReserveCommit64B(b *testing.B) {
	w, _ := benchRing(b, true, 64)
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
// seqlock read, the copy out, and the bookkeeping. A named ring's reads
// are guarded against faults (its file could be truncated); a sealed
// anonymous one's are not: the difference is the guard's cost.
func BenchmarkStreamRead(b *testing.B) {
	for _, anon := range []bool{true, false} {
		for _, size := range []int{64, 1024} {
			b.Run(fmt.Sprintf("%s/%dB", ringKind(anon), size), func(b *testing.B) {
				benchStreamRead(b, anon, size)
			})
		}
	}
}

func benchStreamRead(b *testing.B, anon bool, size int) {
	const slots = 4096
	w, open := benchRing(b, anon, size)
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
			r = open(ReaderConfig{Wait: WaitSpin})
			for range slots {
				w.Publish(p)
			}
			b.StartTimer()
		}
		if _, ok, _ := r.TryNext(); !ok {
			b.Fatal("no sample")
		}
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
