package ring

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/sensorbus/sensorbus/internal/clock"
	"github.com/sensorbus/sensorbus/internal/sys"
	"github.com/sensorbus/sensorbus/testing/proctest"
)

// Two-process benchmarks. The benchmark process is the writer; readers
// and echo peers are re-executed copies of the test binary (see
// child_test.go). Run with `make bench`.

// benchReaderResult is what a bench-reader child reports.
type benchReaderResult struct {
	Received uint64 `json:"received"`
	Lost     uint64 `json:"lost"`
	P50      int64  `json:"p50"`
	P99      int64  `json:"p99"`
	P999     int64  `json:"p999"`
	Max      int64  `json:"max"`
	CallP50  int64  `json:"call_p50"` // from the time Publish was called
	// CPU is the reader process's CPU time (user + system, all threads)
	// from its first sample to its end, per unit of wall time: 1 is one
	// CPU kept busy.
	CPU float64 `json:"cpu"`
}

// benchWait parses RING_WAIT: spin, adaptive or block (the default).
func benchWait(s string) Wait {
	switch s {
	case "spin":
		return WaitSpin
	case "adaptive":
		return WaitAdaptive
	}
	return WaitBlock
}

// benchCPUs returns the two CPUs a pinned benchmark uses, the writer's and
// the readers', or skips the benchmark if this process may not use two.
func benchCPUs(b *testing.B) (writer, readers int) {
	cpus, err := sys.Affinity(0)
	if err != nil || len(cpus) < 2 {
		b.Skipf("pinning needs two CPUs (have %v, %v)", cpus, err)
	}
	return cpus[0], cpus[1]
}

// pinBench locks the calling goroutine to its thread and the thread to
// cpu, for good (a benchmark child, or a benchmark's writer loop, which
// calls the returned func when done).
func pinBench(cpu int) (unpin func(), err error) {
	runtime.LockOSThread()
	old, err := sys.Affinity(0)
	if err == nil {
		err = sys.SetAffinity(0, []int{cpu})
	}
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("pin to CPU %d: %w", cpu, err)
	}
	return func() {
		sys.SetAffinity(0, old)
		runtime.UnlockOSThread()
	}, nil
}

// runBenchChild runs the benchmark roles; it returns -1 for other roles.
// With RING_CPU set, the child's working goroutine is pinned to that CPU.
func runBenchChild(role string) int {
	dir, name := os.Getenv("RING_DIR"), os.Getenv("RING_NAME")
	if c := os.Getenv("RING_CPU"); c != "" && (role == "bench-reader" || role == "futex-floor") {
		cpu, err := strconv.Atoi(c)
		if err == nil {
			_, err = pinBench(cpu)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	switch role {
	case "bench-reader":
		wait := benchWait(os.Getenv("RING_WAIT"))
		cfg := ReaderConfig{Start: FromOldest, Wait: wait}
		var r *Reader
		var err error
		if os.Getenv("RING_ANON") != "" {
			// An anonymous ring, as package bus hands them out: the
			// files are descriptors 3 and 4, and a line on stdin
			// says the writer is gone (the end of bus's control
			// connection).
			r, err = Attach(os.NewFile(3, "ring"), os.NewFile(4, "wake"), cfg)
			if err == nil {
				go func() {
					io.Copy(io.Discard, io.LimitReader(os.Stdin, 1))
					r.WriterGone()
				}()
			}
		} else {
			r, err = Open(dir, name, cfg)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer r.Close()
		h := hdrhistogram.New(1, int64(10*time.Second), 3)
		call := hdrhistogram.New(1, int64(10*time.Second), 3)
		fmt.Println("ready")
		var cpu0, wall0 int64
		for {
			s, err := r.Next(context.Background())
			if err != nil {
				break
			}
			now := clock.Mono()
			if cpu0 == 0 {
				// CPU time from the first sample on: attaching and
				// waiting for the writer to start are not the mode's.
				c, _ := sys.ProcessCPU()
				cpu0, wall0 = int64(c), now
			}
			h.RecordValue(max(now-s.PublishedAt, 1))
			if len(s.Data) >= 8 {
				if t := int64(binary.LittleEndian.Uint64(s.Data)); t != 0 {
					call.RecordValue(max(now-t, 1))
				}
			}
		}
		st := r.Stats()
		res := benchReaderResult{
			Received: st.Received, Lost: st.Lost,
			P50: h.ValueAtQuantile(50), P99: h.ValueAtQuantile(99), P999: h.ValueAtQuantile(99.9), Max: h.Max(),
			CallP50: call.ValueAtQuantile(50),
		}
		if c, err := sys.ProcessCPU(); err == nil && cpu0 != 0 {
			if wall := clock.Mono() - wall0; wall > 0 {
				res.CPU = float64(int64(c)-cpu0) / float64(wall)
			}
		}
		json.NewEncoder(os.Stdout).Encode(res)
		return 0
	case "futex-floor":
		// Sleep on the word at 0 of the shared page; each time the
		// parent bumps it and wakes us, record our clock minus the
		// stamp it stored at 8 just before its FUTEX_WAKE. With
		// FLOOR_SYSCALL=handshake, do as a ring reader does: the parent
		// counts samples in the word at 128 and wakes the word at 0 only
		// if we stored 1 to the word at 4 before sleeping.
		mode := os.Getenv("FLOOR_SYSCALL")
		mem, err := mapPage(filepath.Join(dir, name), mode == "handshake")
		if err != nil {
			return 1
		}
		word, stamp := u32(mem, 0), (*int64)(unsafe.Pointer(&mem[8]))
		count, waiting := word, u32(mem, 4)
		if mode == "handshake" {
			count = u32(mem, 128)
		}
		h := hdrhistogram.New(1, int64(10*time.Second), 3)
		var cpu0, wall0 int64
		fmt.Println("ready")
		for last := uint32(0); ; {
			v := atomic.LoadUint32(count)
			if v == last {
				switch mode {
				case "raw":
					// The bare system call: no entersyscall/exitsyscall.
					// Safe here only because this process does nothing
					// else (the runtime cannot stop this thread while
					// it sleeps).
					syscall.RawSyscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(word)), 0, uintptr(last), 0, 0, 0)
				case "handshake":
					seq := atomic.LoadUint32(word)
					atomic.StoreUint32(waiting, 1)
					if atomic.LoadUint32(count) == last {
						sys.FutexWait(word, seq, -1)
					}
				default:
					sys.FutexWait(word, last, -1)
				}
				continue
			}
			if v == ^uint32(0) {
				break
			}
			now := clock.Mono()
			h.RecordValue(max(now-atomic.LoadInt64(stamp), 1))
			last = v
			if cpu0 == 0 {
				c, _ := sys.ProcessCPU()
				cpu0, wall0 = int64(c), now
			}
		}
		res := benchReaderResult{Received: uint64(h.TotalCount()), P50: h.ValueAtQuantile(50), P99: h.ValueAtQuantile(99)}
		if c, err := sys.ProcessCPU(); err == nil && cpu0 != 0 {
			res.CPU = float64(int64(c)-cpu0) / float64(clock.Mono()-wall0)
		}
		json.NewEncoder(os.Stdout).Encode(res)
		return 0
	case "pingpong":
		mem, err := mapPage(filepath.Join(dir, name), true)
		if err != nil {
			return 1
		}
		word := u32(mem, 0)
		fmt.Println("ready")
		// Answer every odd value with the next even one, until 0.
		for want := uint32(1); ; want += 2 {
			for {
				v := atomic.LoadUint32(word)
				if v == want {
					break
				}
				if v == ^uint32(0) {
					return 0
				}
			}
			atomic.StoreUint32(word, want+1)
		}
	case "oneway":
		mem, err := mapPage(filepath.Join(dir, name), false)
		if err != nil {
			return 1
		}
		seq, stamp := u32(mem, 0), (*int64)(unsafe.Pointer(&mem[8]))
		h := hdrhistogram.New(1, int64(10*time.Second), 3)
		fmt.Println("ready")
		for last := uint32(0); ; {
			v := atomic.LoadUint32(seq)
			if v == last {
				continue
			}
			if v == ^uint32(0) {
				break
			}
			now := clock.Mono()
			h.RecordValue(max(now-*stamp, 1)) // stamp stored before seq (TSO; amd64 yardstick)
			last = v
		}
		json.NewEncoder(os.Stdout).Encode(benchReaderResult{Received: uint64(h.TotalCount()), P50: h.ValueAtQuantile(50)})
		return 0
	case "ring-echo":
		// Read the parent's ring spinning, publish every sample back on a
		// ring of our own named name+"-back".
		r, err := Open(dir, name, ReaderConfig{Wait: WaitSpin})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer r.Close()
		w, err := Create(Config{Dir: dir, Name: name + "-back", SlotSize: r.Header().SlotSize, Slots: r.Header().Slots})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer w.Close()
		fmt.Println("ready")
		for {
			s, err := r.Next(context.Background())
			if err != nil {
				return 0
			}
			w.Publish(s.Data)
		}
	case "pipe-echo":
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(os.Stdin, buf); err != nil {
				return 0
			}
			if _, err := os.Stdout.Write(buf); err != nil {
				return 1
			}
		}
	}
	return -1
}

// BenchmarkLatency measures one-way latency from Publish to a reader in
// another process receiving the sample, at 10,000 samples/s, recorded in
// an HdrHistogram by the reader. ns/op is the pacing interval; the
// latency from the sample's publish time (PublishedAt, stamped inside
// Publish after the copy) is in the p50-ns, p99-ns, p99.9-ns and max-ns
// metrics, and call-p50-ns is the median from the moment Publish was
// called (the time the writer puts in the payload), which also counts
// what Publish spends before its stamp, such as taking back the slot's
// cache lines from the reader.
//
// The writer paces either by spinning (it keeps a CPU busy, so a woken
// reader may have to wait for it to be preempted) or by sleeping until
// just before each sample (both CPUs idle between samples, so wake-ups
// pay the exit from idle). Both are reported because neither alone is
// the whole truth on a small machine.
func BenchmarkLatency(b *testing.B) {
	for _, pacing := range []string{"spin", "sleep"} {
		for _, wait := range []string{"spin", "block"} {
			b.Run("pacing="+pacing+"/reader="+wait, func(b *testing.B) {
				dir := testDir(b)
				w := mustCreate(b, Config{Dir: dir, Name: "lat", SlotSize: 64, Slots: 4096})
				r := startChild(b, "bench-reader", "RING_DIR="+dir, "RING_NAME=lat", "RING_WAIT="+wait)
				r.Expect("ready")
				p := make([]byte, 64)
				const interval = int64(100 * time.Microsecond)
				next := clock.Mono()
				for b.Loop() {
					next += interval
					if pacing == "spin" {
						for clock.Mono() < next {
						}
					} else {
						pace(next)
					}
					binary.LittleEndian.PutUint64(p, uint64(clock.Mono()))
					w.Publish(p)
				}
				w.Close()
				res := benchResult(b, r)
				if res.Lost != 0 {
					b.Errorf("reader lost %d samples at 10k/s", res.Lost)
				}
				b.ReportMetric(float64(res.P50), "p50-ns")
				b.ReportMetric(float64(res.P99), "p99-ns")
				b.ReportMetric(float64(res.P999), "p99.9-ns")
				b.ReportMetric(float64(res.Max), "max-ns")
				b.ReportMetric(float64(res.CallP50), "call-p50-ns")
			})
		}
	}
}

// BenchmarkRoundTrip compares the ring with the bare cache line without
// a clock read inside either one-way trip. At 10,000 round trips a second,
// the benchmark process publishes a 64-byte sample that a child process,
// reading spinning, publishes back on a second ring, read spinning too;
// then, as many times at the same pace, it bounces a word through one
// cache line with another child (the BenchmarkYardstickCacheLine
// exchange). Each round trip is timed from before the first store to after
// the answer is seen. ring-rtt-p50-ns and line-rtt-p50-ns are the medians;
// their ratio, ring/line, is the ring's one-way latency in units of half a
// cache-line round trip, measured alike and in the same run.
func BenchmarkRoundTrip(b *testing.B) {
	dir := testDir(b)
	w := mustCreate(b, Config{Dir: dir, Name: "rt", SlotSize: 64, Slots: 4096})
	echo := startChild(b, "ring-echo", "RING_DIR="+dir, "RING_NAME=rt")
	echo.Expect("ready")
	back, err := Open(dir, "rt-back", ReaderConfig{Wait: WaitSpin})
	if err != nil {
		b.Fatal(err)
	}
	defer back.Close()
	p := make([]byte, 64)
	ring := hdrhistogram.New(1, int64(10*time.Second), 3)
	n := 0
	pacer := newPacer()
	for b.Loop() {
		pacer.wait()
		t0 := clock.Mono()
		w.Publish(p)
		if _, err := back.Next(context.Background()); err != nil {
			b.Fatal(err)
		}
		ring.RecordValue(clock.Mono() - t0)
		n++
	}
	w.Close()
	echo.Cmd.Wait()

	lineDir, mem := sharedPage(b, "rt-line")
	word := u32(mem, 0)
	pp := startChild(b, "pingpong", "RING_DIR="+lineDir, "RING_NAME=rt-line")
	pp.Expect("ready")
	line := hdrhistogram.New(1, int64(10*time.Second), 3)
	pacer = newPacer()
	for v := uint32(0); n > 0; n-- {
		pacer.wait()
		t0 := clock.Mono()
		atomic.StoreUint32(word, v+1)
		for atomic.LoadUint32(word) != v+2 {
		}
		line.RecordValue(clock.Mono() - t0)
		v += 2
	}
	atomic.StoreUint32(word, ^uint32(0))
	pp.Cmd.Wait()

	rp, lp := ring.ValueAtQuantile(50), line.ValueAtQuantile(50)
	b.ReportMetric(float64(rp), "ring-rtt-p50-ns")
	b.ReportMetric(float64(lp), "line-rtt-p50-ns")
	b.ReportMetric(float64(rp)/float64(lp), "ring/line")
}

// pacer spins until the next multiple of 100 µs after its creation.
type pacer struct{ next int64 }

func newPacer() *pacer { return &pacer{next: clock.Mono()} }

func (p *pacer) wait() {
	p.next += int64(100 * time.Microsecond)
	for clock.Mono() < p.next {
	}
}

// pace waits until the Mono time due: asleep for most of it, so the
// writer does not hold a CPU the woken reader could need, then spinning
// for the last stretch, which sleeping cannot hit precisely.
func pace(due int64) {
	const spinFor = int64(20 * time.Microsecond)
	if d := due - clock.Mono() - spinFor; d > 0 {
		time.Sleep(time.Duration(d))
	}
	for clock.Mono() < due {
	}
}

// startAnonReader starts a bench-reader child on w, an anonymous ring,
// as a bus subscriber reads one; endAnonReader tells it the writer is
// gone (after w.Close) and returns its result.
func startAnonReader(b *testing.B, w *Writer, env ...string) *proctest.Child {
	b.Helper()
	rf, wf := readerFiles(b, w)
	c := proctest.Start(b, childEnv, "bench-reader", proctest.Options{Env: append(env, "RING_ANON=1"), Files: []*os.File{rf, wf}})
	c.Expect("ready")
	return c
}

func endAnonReader(b *testing.B, c *proctest.Child) benchReaderResult {
	b.Helper()
	c.Send("gone")
	return benchResult(b, c)
}

func benchResult(b *testing.B, c *proctest.Child) benchReaderResult {
	b.Helper()
	var res benchReaderResult
	c.Result(&res)
	return res
}

// BenchmarkThroughput publishes 64-byte samples flat out with 0, 1 and 4
// spinning reader processes attached. ns/op is wall time per publish;
// cpu-ns/op is the writer thread's own CPU time per publish, which is
// what readers could slow through cache-line contention (on a 2-core
// machine, more processes than cores also share the CPU, which wall time
// shows and CPU time does not).
func BenchmarkThroughput(b *testing.B) {
	// 256 slots of 64 B stay in the writer's cache; 4096 do not. What a
	// reader costs the writer is mostly the writer fetching back, for
	// ownership, slot lines the reader holds shared: cheap while the ring
	// is cache-resident, a memory round trip when it is not.
	for _, slots := range []int{256, 4096} {
		for _, readers := range []int{0, 1, 4} {
			b.Run(fmt.Sprintf("slots=%d/readers=%d", slots, readers), func(b *testing.B) {
				dir := testDir(b)
				w := mustCreate(b, Config{Dir: dir, Name: "tput", SlotSize: 64, Slots: slots})
				var rs []*proctest.Child
				for range readers {
					c := startChild(b, "bench-reader", "RING_DIR="+dir, "RING_NAME=tput", "RING_WAIT=spin")
					c.Expect("ready")
					rs = append(rs, c)
				}
				p := make([]byte, 64)
				runtime.LockOSThread()
				cpu0 := threadCPU()
				n := 0
				for b.Loop() {
					w.Publish(p)
					n++
				}
				cpu := threadCPU() - cpu0
				runtime.UnlockOSThread()
				w.Close()
				var received uint64
				for _, c := range rs {
					res := benchResult(b, c)
					received += res.Received
				}
				b.ReportMetric(float64(cpu)/float64(n), "cpu-ns/op")
				if readers > 0 {
					b.ReportMetric(float64(received)/float64(readers)/float64(n)*100, "%read")
				}
			})
		}
	}
}

// threadCPU returns the calling thread's CPU time in ns.
func threadCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkYardstickCacheLine bounces one word between two processes
// through a shared mapping: ns/op is one round trip, the floor for any
// shared-memory handoff on this machine.
func BenchmarkYardstickCacheLine(b *testing.B) {
	dir, mem := sharedPage(b, "pingpong")
	word := u32(mem, 0)
	c := startChild(b, "pingpong", "RING_DIR="+dir, "RING_NAME=pingpong")
	c.Expect("ready")
	v := uint32(0)
	for b.Loop() {
		atomic.StoreUint32(word, v+1)
		for atomic.LoadUint32(word) != v+2 {
		}
		v += 2
	}
	atomic.StoreUint32(word, ^uint32(0))
	c.Cmd.Wait()
}

// BenchmarkYardstickOneWay measures a one-way handoff the way
// BenchmarkLatency does, with nothing of the ring in it: at 10,000 a
// second the writer stores its clock and then bumps a word in the same
// cache line; the reader process spins on the word and records its own
// clock minus the stored one. p50-ns is the floor for BenchmarkLatency's
// spinning reader on this machine: one cache line moved, plus two clock
// reads.
func BenchmarkYardstickOneWay(b *testing.B) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "386" {
		b.Skip("the stamp is a plain store ordered by TSO")
	}
	dir, mem := sharedPage(b, "oneway")
	seq, stamp := u32(mem, 0), (*int64)(unsafe.Pointer(&mem[8]))
	c := startChild(b, "oneway", "RING_DIR="+dir, "RING_NAME=oneway")
	c.Expect("ready")
	const interval = int64(100 * time.Microsecond)
	next := clock.Mono()
	v := uint32(0)
	for b.Loop() {
		next += interval
		for clock.Mono() < next {
		}
		*stamp = clock.Mono()
		v++
		if v == ^uint32(0) {
			v = 1
		}
		atomic.StoreUint32(seq, v)
	}
	atomic.StoreUint32(seq, ^uint32(0))
	res := benchResult(b, c)
	b.ReportMetric(float64(res.P50), "p50-ns")
}

// sharedPage creates a one-page file in a test directory and maps it
// read-write; the mapping and file go at the end of the benchmark.
func sharedPage(b *testing.B, name string) (dir string, mem []byte) {
	dir = testDir(b)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, make([]byte, 4096), 0o600); err != nil {
		b.Fatal(err)
	}
	mem, err := mapPage(path, true)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		sys.Munmap(mem)
		os.Remove(path)
	})
	return dir, mem
}

// mapPage maps the first 4096 bytes of the file at path, shared (the
// kernel rounds up to its page size).
func mapPage(path string, write bool) ([]byte, error) {
	fd, err := sys.Open(path, write)
	if err != nil {
		return nil, err
	}
	defer sys.Close(fd)
	return sys.Mmap(fd, 4096, write)
}

// BenchmarkYardstickPipe sends 64 bytes through a pipe to another process
// and reads them back: ns/op is one round trip.
func BenchmarkYardstickPipe(b *testing.B) {
	c := startChild(b, "pipe-echo")
	buf := make([]byte, 64)
	for b.Loop() {
		if _, err := c.Stdin.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c.Stdout, buf); err != nil {
			b.Fatal(err)
		}
	}
	c.CloseStdin()
	c.Cmd.Wait()
}

// BenchmarkBlockingFloor sets the blocking reader beside the floor under
// it, in one run: at 10,000 samples/s, a 64-byte sample through the ring
// to a WaitBlock reader in another process, timed from the Publish call
// (ring-p50-ns); and, interleaved with it at the same pace, the bare
// kernel hand-off no blocking reader can beat: the benchmark stores its
// clock in a shared page, bumps a word there and wakes with FUTEX_WAKE
// another process sleeping on the word in FUTEX_WAIT, which records its
// clock minus the stamp (floor-p50-ns: the sleeper makes the bare system
// call; go-p50-ns: it calls sys.FutexWait, with the Go runtime's
// bookkeeping around the call, as the ring reader does; handshake-p50-ns:
// the same, with the ring's waiting-flag handshake and nothing else of the
// ring). ring/floor is the ratio of the medians; publish-p50-ns is the
// writer's Publish call, wake included.
//
// The writer paces by spinning (paced by sleeping, it overshoots its
// sleeps on a VM and then publishes samples back to back, which hides
// wake-ups). pinned: the writer's thread on one CPU, every sleeper's on
// another, so that each wake-up is the same kind (another CPU, idle);
// unpinned: where the kernel puts them. Unpinned, a sleeper the kernel
// wakes on the writer's own CPU preempts the spinning writer, which is
// quicker than waking an idle CPU, or waits for the writer's time slice
// to end (milliseconds), which shows in its p99: the two sub-benchmarks
// together show what placement alone does.
func BenchmarkBlockingFloor(b *testing.B) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		b.Skip("the floor's stamp is a 64-bit atomic in shared memory")
	}
	b.Run("pinned", func(b *testing.B) { blockingFloor(b, true) })
	b.Run("unpinned", func(b *testing.B) { blockingFloor(b, false) })
}

func blockingFloor(b *testing.B, pinned bool) {
	var pin []string
	wcpu, rcpu := benchCPUs(b)
	if pinned {
		pin = []string{"RING_CPU=" + strconv.Itoa(rcpu)}
	}
	w := mustCreate(b, Config{SlotSize: 64, Slots: 4096})
	r := startAnonReader(b, w, append(pin, "RING_WAIT=block")...)
	type sleeper struct {
		c                    *proctest.Child
		word, count, waiting *uint32
		stamp                *int64
	}
	var floors []sleeper
	for _, syscall := range []string{"raw", "go", "handshake"} {
		fdir, mem := sharedPage(b, "floor-"+syscall)
		c := startChild(b, "futex-floor", append(pin, "RING_DIR="+fdir, "RING_NAME=floor-"+syscall, "FLOOR_SYSCALL="+syscall)...)
		c.Expect("ready")
		f := sleeper{c, u32(mem, 0), u32(mem, 0), u32(mem, 4), (*int64)(unsafe.Pointer(&mem[8]))}
		if syscall == "handshake" {
			f.count = u32(mem, 128)
		}
		floors = append(floors, f)
	}

	if pinned {
		// After starting the children, which would otherwise inherit
		// this thread's affinity (and a GOMAXPROCS of 1 with it).
		unpin, err := pinBench(wcpu)
		if err != nil {
			b.Skip(err)
		}
		defer unpin()
	}

	// The four interleaved, each at 10,000/s, a quarter of a period apart,
	// so that all three meet the same machine: on a shared VM, load that
	// comes and goes would otherwise decide the ratio.
	const interval = int64(100 * time.Microsecond)
	p := make([]byte, 64)
	pub := hdrhistogram.New(1, int64(10*time.Second), 3)
	next := clock.Mono()
	spinUntil := func(t int64) {
		for clock.Mono() < t {
		}
	}
	v := uint32(0)
	for b.Loop() {
		next += interval
		spinUntil(next)
		t0 := clock.Mono()
		binary.LittleEndian.PutUint64(p, uint64(t0))
		w.Publish(p)
		pub.RecordValue(max(clock.Mono()-t0, 1))
		v++
		for k, f := range floors {
			spinUntil(next + int64(k+1)*interval/4)
			atomic.StoreInt64(f.stamp, clock.Mono())
			if k < 2 {
				atomic.StoreUint32(f.word, v)
				sys.FutexWakeRaw(f.word)
				continue
			}
			// The ring's handshake, with nothing else of the ring.
			atomic.StoreUint32(f.count, v)
			if atomic.LoadUint32(f.waiting) != 0 {
				atomic.StoreUint32(f.waiting, 0)
				atomic.AddUint32(f.word, 1)
				sys.FutexWakeRaw(f.word)
			}
		}
	}
	w.Close()
	ring := endAnonReader(b, r)
	var res [3]benchReaderResult
	for k, f := range floors {
		atomic.StoreUint32(f.count, ^uint32(0))
		if f.count != f.word {
			atomic.AddUint32(f.word, 1)
		}
		sys.FutexWakeRaw(f.word)
		res[k] = benchResult(b, f.c)
	}
	b.ReportMetric(float64(ring.CallP50), "ring-p50-ns")
	b.ReportMetric(float64(res[0].P50), "floor-p50-ns")
	b.ReportMetric(float64(res[1].P50), "go-p50-ns")
	b.ReportMetric(float64(res[2].P50), "handshake-p50-ns")
	b.ReportMetric(float64(ring.CallP50)/float64(res[0].P50), "ring/floor")
	b.ReportMetric(float64(pub.ValueAtQuantile(50)), "publish-p50-ns")
	b.ReportMetric(float64(ring.P99), "ring-p99-ns")
	b.ReportMetric(float64(res[0].P99), "floor-p99-ns")
	b.ReportMetric(float64(res[1].P99), "go-p99-ns")
	b.ReportMetric(float64(res[2].P99), "handshake-p99-ns")
	// CPU time of each sleeper process per wake-up (its CPU share times
	// the interval): what sleeping costs, the Go runtime's share included.
	perWake := func(cpu float64) float64 { return cpu * float64(interval) / 1e3 }
	b.ReportMetric(perWake(res[0].CPU), "floor-cpu-µs/wake")
	b.ReportMetric(perWake(res[1].CPU), "go-cpu-µs/wake")
	b.ReportMetric(perWake(ring.CPU), "ring-cpu-µs/wake")
}

// BenchmarkAdaptive compares the three wait modes on one topic, in one
// run: a reader process of each mode in turn reads 64-byte samples
// published at a periodic 1 kHz or 10 kHz, or at irregular intervals
// (exponentially distributed, mean 100 µs, the same sequence for every
// mode). The writer paces by spinning. Per mode, <mode>-p50-ns is the
// median one-way latency from the Publish call and <mode>-cpu the reader
// process's CPU time (user and system, all its threads) per unit of wall
// time from its first sample on; adaptive/spin and adaptive/block are
// ratios of the medians.
func BenchmarkAdaptive(b *testing.B) {
	topics := []struct {
		name      string
		interval  time.Duration
		irregular bool
		samples   int
	}{
		{"periodic-1kHz", time.Millisecond, false, 3000},
		{"periodic-10kHz", 100 * time.Microsecond, false, 20000},
		{"irregular-10kHz", 100 * time.Microsecond, true, 20000},
	}
	modes := []string{"spin", "adaptive", "block"}
	for _, topic := range topics {
		b.Run(topic.name, func(b *testing.B) {
			var p50, cpu, lost [3]float64
			for b.Loop() {
				for k, mode := range modes {
					res := adaptiveRun(b, mode, topic.interval, topic.irregular, topic.samples)
					p50[k], cpu[k], lost[k] = float64(res.CallP50), res.CPU, float64(res.Lost)
				}
			}
			for k, mode := range modes {
				b.ReportMetric(p50[k], mode+"-p50-ns")
				b.ReportMetric(cpu[k], mode+"-cpu")
				// A reader loses samples only when it falls a ring
				// (0.4 s at 10 kHz) behind: the machine was busy.
				b.ReportMetric(lost[k], mode+"-lost")
			}
			b.ReportMetric(p50[1]/p50[0], "adaptive/spin")
			b.ReportMetric(p50[1]/p50[2], "adaptive/block")
		})
	}
}

// adaptiveRun publishes samples 64-byte samples to a reader process
// waiting as mode says, spaced by interval (or, irregular, by
// exponentially distributed gaps of that mean), and returns what the
// reader measured.
func adaptiveRun(b *testing.B, mode string, interval time.Duration, irregular bool, samples int) benchReaderResult {
	wcpu, rcpu := benchCPUs(b)
	w := mustCreate(b, Config{SlotSize: 64, Slots: 4096})
	r := startAnonReader(b, w, "RING_WAIT="+mode, "RING_CPU="+strconv.Itoa(rcpu))
	// After starting the reader, which would otherwise inherit this
	// thread's affinity (and a GOMAXPROCS of 1 with it).
	unpin, err := pinBench(wcpu)
	if err != nil {
		b.Skip(err)
	}
	defer unpin()
	rnd := rand.New(rand.NewPCG(19, 2))
	p := make([]byte, 64)
	next := clock.Mono()
	for range samples {
		gap := int64(interval)
		if irregular {
			gap = int64(rnd.ExpFloat64() * float64(interval))
		}
		next += gap
		for clock.Mono() < next {
		}
		binary.LittleEndian.PutUint64(p, uint64(clock.Mono()))
		w.Publish(p)
	}
	w.Close()
	return endAnonReader(b, r)
}

// BenchmarkTimedSleep is what a timed futex sleep of 70 µs (an adaptive
// reader's at 10 kHz) costs on this machine, woken by its timer, not by a
// writer: the process's CPU time per sleep (cpu-µs/sleep) and how much
// later than asked it ends (late-p50-µs), through the Go runtime's
// system-call path (go) and without it (raw, sys.FutexWaitShort), with
// the thread's timer slack at 1 ns as the adaptive reader sets it.
func BenchmarkTimedSleep(b *testing.B) {
	for _, raw := range []bool{false, true} {
		b.Run(map[bool]string{false: "go", true: "raw"}[raw], func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			sys.SetTimerSlack(1)
			defer sys.SetTimerSlack(0)
			const d = 70 * time.Microsecond
			var word uint32
			h := hdrhistogram.New(1, int64(time.Second), 3)
			c0, _ := sys.ProcessCPU()
			for b.Loop() {
				t0 := clock.Mono()
				if raw {
					sys.FutexWaitShort(&word, 0, d)
				} else {
					sys.FutexWait(&word, 0, d)
				}
				h.RecordValue(max(clock.Mono()-t0-int64(d), 1))
			}
			c1, _ := sys.ProcessCPU()
			b.ReportMetric(float64(c1-c0)/1e3/float64(b.N), "cpu-µs/sleep")
			b.ReportMetric(float64(h.ValueAtQuantile(50))/1e3, "late-p50-µs")
		})
	}
}
