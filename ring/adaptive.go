package ring

import "time"

// WaitAdaptive.
//
// A blocking reader pays a futex wake-up for every sample (several µs on
// a VM, more when its CPU has gone idle); a spinning one keeps a CPU busy
// to be there within a cache-line transfer. Most sensor topics are
// periodic, and a reader that knows when the next sample is due can have
// both: sleep until shortly before it, then poll. adaptive is what a
// WaitAdaptive reader knows of its topic's timing, learned from the
// publish stamps of the samples it delivers (the writer's clock, so its
// own wake-up delays do not blur the pattern):
//
//   - interval: the time between samples (an exponentially weighted mean,
//     per sample number, so samples lost or skipped in between count
//     right);
//   - jitter: how far intervals stray from it (weighted mean deviation);
//   - late: how much later than asked a timed futex sleep ends on this
//     machine (the kernel's timer and the CPU's way out of idle), with its
//     own deviation.
//
// Next then plans each wait (plan): on a regular topic it sleeps on the
// futex, announced as a blocking reader does, so a sample that comes early
// still wakes it, with a timeout meant to end the sleep (given the mean
// lateness and its deviation) the jitter plus adaptGuard before the sample
// is due; from there it polls, as WaitSpin does (poll), until twice the
// jitter plus adaptGuard past the due time (or from at most a quarter of
// the interval before, when no sleep can end in time). The last
// adaptRawSleep of a sleep is made holding the P (sys.FutexWaitShort):
// through the Go runtime's system-call path a sleep ends later and less
// predictably, and costs two or three threads' wake-ups (see
// BenchmarkBlockingFloor and BenchmarkTimedSleep). A sample that has not
// come by then
// is late beyond the pattern: the reader waits as WaitBlock does, and the
// late sample's interval raises the jitter. Until the pattern is learned,
// for topics faster than adaptMinInterval and for irregular ones (jitter
// above an eighth of the interval) it waits as WaitBlock does all along.
//
// What the reader delivers and counts is the same in every mode: plan
// only decides how to wait between looks at the ring, and every way out
// of a wait (context, Cancel, Close, WriterGone, Interrupt, the writer's
// end) is checked on each pass of Next's loop, polling included.
type adaptive struct {
	lastIdx  uint64 // the last sample learned from
	lastTS   int64  // its publish stamp
	seen     bool   // lastIdx and lastTS are set
	n        int    // intervals learned, up to adaptWarmup
	interval int64  // ns
	jitter   int64  // ns
	late     int64  // ns
	lateDev  int64  // ns
}

const (
	// adaptWarmup intervals are learned before the pattern is used.
	adaptWarmup = 8
	// adaptMinInterval: on faster topics a sleep and its wake-up would
	// take most of the interval; the reader waits as WaitBlock does,
	// and usually finds the next sample already there.
	adaptMinInterval = int64(50 * time.Microsecond)
	// adaptMaxInterval: slower topics wait as WaitBlock does; the
	// pattern of a topic this slow is better not trusted with a poll.
	adaptMaxInterval = int64(10 * time.Second)
	// adaptMaxJitter: a topic is regular while its jitter is at most
	// this fraction of its interval (1/8).
	adaptMaxJitter = 8
	// adaptGuard is the least time polled before and after a due time,
	// on top of the jitter before it and twice the jitter after it.
	adaptGuard = int64(2 * time.Microsecond)
	// adaptMaxMargin: a sleep is aimed at most an adaptMaxMargin'th of
	// the interval earlier than the mean lateness says (1/16: at most
	// about 6 % of a CPU polled for it).
	adaptMaxMargin = 16
	// adaptMinSleep: a sleep shorter than this is not worth the system
	// call; the reader polls instead.
	adaptMinSleep = int64(5 * time.Microsecond)
	// adaptRawSleep: sleeps up to this long are made without the Go
	// runtime's system-call path (sys.FutexWaitShort), when the program
	// has more than one P: the goroutine keeps its P while it sleeps,
	// which delays a stop-the-world by at most this much.
	adaptRawSleep = 250 * time.Microsecond
	// adaptLateInit is the first guess at how late a timed sleep ends,
	// until one has been measured.
	adaptLateInit = int64(50 * time.Microsecond)
)

// learn takes sample idx, published at ts, into the pattern.
func (a *adaptive) learn(idx uint64, ts int64) {
	if a.seen && idx > a.lastIdx && ts > a.lastTS {
		// Stamps come from the ring, which a faulty writer could fill
		// with anything: bounded, no sum below can overflow.
		// (ts > lastTS, so their difference as unsigned is exact even
		// where the signed one would overflow.)
		d := int64(min((uint64(ts)-uint64(a.lastTS))/min(idx-a.lastIdx, 1<<20), uint64(4*adaptMaxInterval)))
		if a.n == 0 {
			a.interval, a.jitter = d, d/4 // doubtful until a few more agree
		} else {
			// One pause (a publisher stopped a while) moves the mean
			// by at most half an interval: a real change of rate is
			// still learned within a few samples.
			d = min(d, 4*a.interval)
			a.interval += (d - a.interval) / 8
			a.jitter += (abs64(d-a.interval) - a.jitter) / 8
		}
		a.n = min(a.n+1, adaptWarmup)
	}
	a.lastIdx, a.lastTS, a.seen = idx, ts, true
}

// regular reports whether the pattern is learned and worth using.
func (a *adaptive) regular() bool {
	return a.n >= adaptWarmup && a.interval >= adaptMinInterval && a.interval <= adaptMaxInterval &&
		a.jitter*adaptMaxJitter <= a.interval
}

// plan decides how to wait, at Mono time now, for sample next: poll
// until Mono time pollUntil (0: do not poll), or sleep for at most
// sleepFor (-1: as WaitBlock does), a sleep meant to end at Mono time
// wakeAt (0 for none).
func (a *adaptive) plan(next uint64, now int64) (pollUntil int64, sleepFor time.Duration, wakeAt int64) {
	if !a.regular() || next != a.lastIdx+1 {
		return 0, -1, 0 // (a sample skipped since: the pattern is for the next one)
	}
	due := a.lastTS + a.interval
	from, until := due-a.jitter-adaptGuard, due+2*a.jitter+adaptGuard
	switch {
	case now >= until:
		return 0, -1, 0 // later than the pattern allows: block
	case now >= from:
		return until, 0, 0
	default:
		// Aimed at the mean lateness plus twice its deviation, but
		// never more than adaptMaxMargin of the interval earlier: most
		// sleeps end before the poll is due, and the margin costs at
		// most that share of a CPU. A sleep that ends later still has
		// the guard before the due time, and one later than that is
		// woken by the sample, as a blocking reader is.
		late := a.late + min(2*a.lateDev, a.interval/adaptMaxMargin)
		if a.late == 0 && a.lateDev == 0 {
			late = adaptLateInit // no timed sleep measured yet
		}
		wakeAt = from - late
		switch {
		case wakeAt-now >= adaptMinSleep:
			return 0, time.Duration(wakeAt - now), wakeAt
		case from-now <= a.interval/4:
			return until, 0, 0
		default:
			// Timed sleeps end too late here to be of use, and polling
			// the rest of the interval would cost a CPU: wait as
			// WaitBlock does, and forget the lateness slowly, so that
			// timed sleeps are tried again should it have passed.
			a.late -= a.late / 8
			a.lateDev -= a.lateDev / 8
			return 0, -1, 0
		}
	}
}

// woke learns from a timed sleep meant to end at wakeAt that ended at now.
// A sleep that ended early was ended by a wake-up, not by its timer, and
// says nothing about the timer.
func (a *adaptive) woke(wakeAt, now int64) {
	if now < wakeAt {
		return
	}
	l := min(now-wakeAt, a.interval) // a sleep stretched by a stopped process, say, is not the timer's
	if a.late == 0 && a.lateDev == 0 {
		a.late = l
		return
	}
	a.late += (l - a.late) / 8
	a.lateDev += (abs64(l-a.late) - a.lateDev) / 8
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
