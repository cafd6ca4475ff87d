package ring

import (
	"context"
	"errors"
	"math"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sensorbus/sensorbus/internal/clock"
)

const us = int64(time.Microsecond)

// learnPeriodic feeds a samples published every interval from sample 0 at
// time t0.
func learnPeriodic(a *adaptive, n int, t0, interval int64) {
	for i := range n {
		a.learn(uint64(i), t0+int64(i)*interval)
	}
}

// The plan for a periodic topic: block until learned, then sleep until
// the late estimate and guard before the due time, poll up to the guard
// past it, and block once the sample is later than that.
func TestAdaptivePlanPeriodic(t *testing.T) {
	var a adaptive
	const interval = 1000 * us
	for i := range adaptWarmup + 1 {
		if spin, sleep, _ := a.plan(uint64(i), int64(i)*interval); spin != 0 || sleep >= 0 {
			t.Fatalf("before the pattern is learned (%d samples): poll until %d, sleep %v; want a blocking wait", i, spin, sleep)
		}
		a.learn(uint64(i), int64(i)*interval)
	}
	if !a.regular() || a.interval != interval || a.jitter > interval/8 {
		t.Fatalf("after %d periodic samples: %+v, want regular with interval %d", adaptWarmup+1, a, interval)
	}
	last := uint64(adaptWarmup)
	due := int64(last+1) * interval
	from, until := due-a.jitter-adaptGuard, due+2*a.jitter+adaptGuard
	// Just after the last sample: sleep, ending adaptLateInit before
	// polling starts (no timed sleep measured yet).
	spin, sleep, wakeAt := a.plan(last+1, int64(last)*interval+us)
	if spin != 0 || wakeAt != from-adaptLateInit || sleep != time.Duration(wakeAt-(int64(last)*interval+us)) {
		t.Fatalf("after a sample: poll until %d, sleep %v until %d; want a sleep until %d", spin, sleep, wakeAt, from-adaptLateInit)
	}
	// The sleep ended 20 µs late: learned, the next sleeps end earlier.
	a.woke(wakeAt, wakeAt+20*us)
	if a.late != 20*us {
		t.Fatalf("late %d after one sleep 20 µs late", a.late)
	}
	if _, _, w2 := a.plan(last+1, int64(last)*interval+us); w2 != from-20*us {
		t.Fatalf("sleep until %d, want %d", w2, from-20*us)
	}
	// A wake-up before the timer says nothing about it.
	a.woke(wakeAt, wakeAt-5*us)
	if a.late != 20*us || a.lateDev != 0 {
		t.Fatalf("an early wake-up changed the late estimate: %+v", a)
	}
	// Around the due time: poll.
	for _, now := range []int64{from, due, until - 1} {
		if spin, _, _ := a.plan(last+1, now); spin != until {
			t.Fatalf("at %d (due %d, polling from %d to %d): poll until %d", now, due, from, until, spin)
		}
	}
	// Past it: the sample is late; block.
	if spin, sleep, _ := a.plan(last+1, until); spin != 0 || sleep >= 0 {
		t.Fatalf("past the guard: poll until %d, sleep %v; want a blocking wait", spin, sleep)
	}
	// A sample skipped since the last learned: the pattern is not for it.
	if spin, sleep, _ := a.plan(last+2, due); spin != 0 || sleep >= 0 {
		t.Fatalf("for a sample after a skipped one: poll until %d, sleep %v", spin, sleep)
	}
}

// Irregular topics, and topics too fast to sleep between samples, wait
// as WaitBlock does; a pause makes a periodic topic irregular for a while
// only, and lost samples in between do not spoil the interval.
func TestAdaptivePlanIrregular(t *testing.T) {
	var a adaptive
	gaps := newGaps("irregular", time.Millisecond)
	ts := int64(0)
	for i := range uint64(200) {
		ts += int64(gaps(i)) + 1
		a.learn(i, ts)
	}
	if a.regular() {
		t.Fatalf("exponential gaps: %+v counted regular", a)
	}
	var fast adaptive
	learnPeriodic(&fast, 100, 0, 20*us)
	if fast.regular() {
		t.Fatalf("a 50 kHz topic counted regular: %+v", fast)
	}

	var p adaptive
	learnPeriodic(&p, 50, 0, 1000*us)
	p.learn(50, 49*1000*us+time.Second.Nanoseconds()) // a 1 s pause
	if p.regular() {
		t.Fatalf("regular right after a pause: %+v", p)
	}
	if p.interval > 1500*us {
		t.Fatalf("one pause moved the interval to %d", p.interval)
	}
	base := 49*1000*us + time.Second.Nanoseconds()
	for i := range 40 {
		p.learn(uint64(51+i), base+int64(i+1)*1000*us)
	}
	if !p.regular() {
		t.Fatalf("not regular again 40 periodic samples after the pause: %+v", p)
	}
	// Samples lost in between: intervals count per sample number.
	p.learn(95, base+45*1000*us)
	if p.interval < 990*us || p.interval > 1010*us {
		t.Fatalf("after 4 lost samples the interval is %d", p.interval)
	}
}

// A timed sleep's lateness past the interval (a stopped process) is
// counted as the interval; when sleeps end too late to help, the reader
// blocks instead of polling most of the interval, and tries sleeping
// again later.
func TestAdaptivePlanLateSleeps(t *testing.T) {
	var a adaptive
	const interval = 100 * us
	learnPeriodic(&a, 20, 0, interval)
	for range 50 {
		a.woke(0, time.Hour.Nanoseconds())
	}
	if a.late > interval {
		t.Fatalf("late %d, more than the interval", a.late)
	}
	now := 19*interval + us
	if spin, sleep, _ := a.plan(20, now); spin != 0 || sleep >= 0 {
		t.Fatalf("with sleeps a whole interval late: poll until %d, sleep %v; want a blocking wait", spin, sleep)
	}
	for range 100 {
		a.plan(20, now)
	}
	if spin, sleep, _ := a.plan(20, now); spin != 0 || sleep < 0 {
		t.Fatalf("the late estimate (%d) was not forgotten: poll until %d, sleep %v", a.late, spin, sleep)
	}
}

// Every way out of Next works in every phase of an adaptive wait: the
// reader believes a sample is due every millisecond, none comes, and it
// is ended while asleep, polling or blocked.
func TestAdaptiveWaitEnds(t *testing.T) {
	w := mustCreate(t, Config{SlotSize: 16, Slots: 8})
	defer w.Close()
	ends := []struct {
		name string
		end  func(r *Reader, cancel context.CancelFunc)
		want error
	}{
		{"context", func(_ *Reader, cancel context.CancelFunc) { cancel() }, context.Canceled},
		{"Cancel", func(r *Reader, _ context.CancelFunc) { r.Cancel() }, ErrCanceled},
		{"Close", func(r *Reader, _ context.CancelFunc) { r.Close() }, ErrClosed},
		{"WriterGone", func(r *Reader, _ context.CancelFunc) { r.WriterGone() }, ErrWriterDead},
	}
	for _, end := range ends {
		for _, after := range []time.Duration{0, 300 * time.Microsecond, 990 * time.Microsecond, 3 * time.Millisecond} {
			name := end.name + " after " + after.String()
			r := attachTo(t, w, ReaderConfig{Wait: WaitAdaptive, LivenessInterval: time.Hour})
			now := clock.Mono()
			r.ad = adaptive{}
			learnPeriodic(&r.ad, adaptWarmup+1, now-int64(adaptWarmup)*1000*us, 1000*us)
			r.next = r.ad.lastIdx + 1
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() {
				_, err := r.Next(ctx)
				errc <- err
			}()
			time.Sleep(after)
			end.end(r, cancel)
			select {
			case err := <-errc:
				if !errors.Is(err, end.want) {
					t.Errorf("%s: Next = %v, want %v", name, err, end.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: Next did not return", name)
			}
			cancel()
			r.Close()
		}
	}
}

// Adaptive readers in their own processes, on regular, irregular and
// bursty topics (the bursty one overrunning a small ring): no sample
// corrupt, duplicated or out of order, and every one delivered or counted
// lost.
func TestAdaptiveMultiProcess(t *testing.T) {
	count := 4000
	if testing.Short() {
		count = 1500
	}
	for _, tc := range []struct {
		pattern string
		slots   int
	}{{"regular", 256}, {"irregular", 256}, {"bursty", 16}} {
		t.Run(tc.pattern, func(t *testing.T) {
			dir := testDir(t)
			env := []string{"RING_DIR=" + dir, "RING_NAME=ad", "RING_PAYLOAD=64", "RING_SLOTS=" + strconv.Itoa(tc.slots),
				"RING_COUNT=" + strconv.Itoa(count), "RING_PATTERN=" + tc.pattern, "RING_INTERVAL_US=200"}
			w := startChild(t, "writer", env...)
			w.Expect("ready")
			r := startChild(t, "reader", append(env, "RING_WAIT=adaptive")...)
			r.Expect("ready")
			w.Send("go")
			res := result(t, r)
			t.Logf("%+v", res)
			if res.Corrupt != 0 || res.OutOfOrder != 0 {
				t.Errorf("%d corrupt, %d out of order", res.Corrupt, res.OutOfOrder)
			}
			if res.Received+res.Lost != uint64(count) || res.Position != uint64(count) {
				t.Errorf("received %d + lost %d, position %d; published %d", res.Received, res.Lost, res.Position, count)
			}
			if res.Received == 0 || res.End != "closed" {
				t.Errorf("received %d, ended %q", res.Received, res.End)
			}
			if err := w.Cmd.Wait(); err != nil {
				t.Fatalf("writer: %v", err)
			}
		})
	}
}

// At most GOMAXPROCS-1 readers sleep holding their P.
func TestTakeRawSleep(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	for i := range 2 {
		if !takeRawSleep() {
			t.Fatalf("P %d of 3 refused to a sleeper", i+1)
		}
	}
	if takeRawSleep() {
		t.Fatal("the last P given to a sleeper")
	}
	rawSleepers.Add(-2)
	runtime.GOMAXPROCS(1)
	if takeRawSleep() {
		t.Fatal("the only P given to a sleeper")
	}
	if n := rawSleepers.Load(); n != 0 {
		t.Fatalf("%d sleepers counted, want 0", n)
	}
}

// An adaptive reader of a 10 kHz topic sleeps holding its P between
// samples: meanwhile garbage collections (each a stop-the-world, which
// waits for such a sleep to end) and the program's other goroutines go
// on, and every sample is delivered.
func TestAdaptiveRawSleepsLetOthersRun(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs GOMAXPROCS >= 2")
	}
	w, r := anonRing(t, Config{SlotSize: 64, Slots: 4096}, ReaderConfig{Wait: WaitAdaptive})
	const n = 5000
	before := rawSleeps.Load()
	stop := make(chan struct{})
	var gcs, ticks atomic.Int64
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			runtime.GC()
			gcs.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				ticks.Add(1)
			}
		}
	}()
	go func() {
		// The writer: a 64-byte sample every 100 µs, paced by spinning
		// (so it holds a P too; the other goroutines have what the
		// sleeping reader leaves them).
		next := clock.Mono()
		p := make([]byte, 64)
		for range n {
			next += int64(100 * time.Microsecond)
			for clock.Mono() < next {
			}
			w.Publish(p)
		}
	}()
	got := uint64(0)
	for got < n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s, err := r.Next(ctx)
		cancel()
		if err != nil {
			t.Fatalf("after %d samples: %v", got, err)
		}
		got += 1 + s.Lost
	}
	close(stop)
	if st := r.Stats(); st.Received+st.Lost != n {
		t.Errorf("received %d + lost %d, published %d", st.Received, st.Lost, n)
	}
	t.Logf("%d sleeps holding the P, %d garbage collections, %d ticks", rawSleeps.Load()-before, gcs.Load(), ticks.Load())
	if gcs.Load() == 0 || ticks.Load() == 0 {
		t.Errorf("the other goroutines did not run: %d collections, %d ticks", gcs.Load(), ticks.Load())
	}
}

// poll ends, as every pass of Next's loop does, for the writer's end: a
// writer that closed, or a liveness check that is due (the writer may have
// died), and not only when its window ends, which on a slow topic (a
// jitter of up to an eighth of a 10 s interval) is seconds away. Each poll
// here is given an hour: one that ignores these runs until the test's
// timeout.
func TestAdaptivePollSeesWriterEnd(t *testing.T) {
	for _, tc := range []struct {
		name        string
		liveness    time.Duration
		closeWriter bool
	}{
		{"writer closed", time.Hour, true},
		{"liveness check due", time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testDir(t)
			w := mustCreate(t, Config{Dir: dir, Name: "poll", SlotSize: 16, Slots: 8})
			defer w.Close()
			r := mustOpen(t, dir, "poll", ReaderConfig{Wait: WaitAdaptive, LivenessInterval: tc.liveness})
			if tc.closeWriter {
				w.Close()
			}
			r.lastCheck = clock.Mono()
			done := make(chan struct{})
			go func() {
				defer close(done)
				r.poll(context.Background(), clock.Mono()+int64(time.Hour))
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				r.Close() // ends the poll
				<-done
				t.Fatal("poll did not return")
			}
			if tc.closeWriter {
				if _, err := r.Next(context.Background()); !errors.Is(err, ErrWriterClosed) {
					t.Errorf("Next after the writer closed = %v, want ErrWriterClosed", err)
				}
			}
		})
	}
}

// Stamps a hostile writer chose to overflow a signed difference are
// learned as the longest interval, not as a negative one.
func TestAdaptiveLearnExtremeStamps(t *testing.T) {
	var a adaptive
	a.learn(0, math.MinInt64+1)
	a.learn(1, math.MaxInt64)
	if a.interval != 4*adaptMaxInterval || a.jitter < 0 {
		t.Fatalf("after stamps from MinInt64 to MaxInt64: %+v", a)
	}
}
