package ring

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/sensorbus/sensorbus/internal/clock"
	"github.com/sensorbus/sensorbus/internal/sys"
)

// Mode selects what a Reader delivers.
type Mode int

const (
	// Stream delivers every sample in order. A reader that falls more than
	// a ring behind skips ahead and reports exactly how many it lost.
	Stream Mode = iota
	// Latest delivers the newest complete sample, skipping older ones:
	// for displays. Skipped samples are reported in Sample.Lost.
	Latest
)

// Start selects where a Stream reader begins.
type Start int

const (
	// FromNewest begins with the next sample published after attach.
	FromNewest Start = iota
	// FromOldest begins with the oldest sample still in the ring: history
	// for late joiners.
	FromOldest
	// FromIndex begins with sample ReaderConfig.Index, counting as lost
	// the samples from there that the ring no longer holds. Index 0 starts
	// at the writer's first sample: a reader that attached before the
	// writer published accounts for every sample.
	FromIndex
)

// Wait selects how Next waits for a sample.
type Wait int

const (
	// WaitBlock sleeps on a futex; the writer wakes it. Costs a system
	// call on each side per wake-up, no CPU while idle.
	WaitBlock Wait = iota
	// WaitSpin polls the ring: lowest latency, one core busy.
	WaitSpin
	// WaitAdaptive learns the topic's interval between samples, sleeps
	// on the futex until shortly before the next one is due and polls
	// from there: close to WaitSpin's latency on a periodic topic for a
	// fraction of its CPU. On an irregular topic, or when a sample is
	// later than the pattern says, it waits as WaitBlock does. Like
	// WaitSpin, it keeps its goroutine's P while it waits (its sleeps
	// of up to 250 µs are made holding it, when GOMAXPROCS is at least
	// 2): give the program a P more than its adaptive readers. See
	// adaptive.go.
	WaitAdaptive
)

// ReaderConfig describes how a Reader reads.
type ReaderConfig struct {
	Mode  Mode  // Stream (default) or Latest
	Start Start // FromNewest (default), FromOldest or FromIndex; Stream only
	Wait  Wait  // WaitBlock (default), WaitSpin or WaitAdaptive

	// Index is the first sample to deliver with FromIndex.
	Index uint64

	// LivenessInterval is how often a waiting Next checks whether the
	// writer died; 0 means DefaultLivenessInterval. It also bounds the
	// delay of a wake-up lost to a misbehaving peer.
	LivenessInterval time.Duration
}

// Validate is the one place a ReaderConfig is checked; Open and Attach call
// it.
func (c *ReaderConfig) Validate() error {
	switch {
	case c.Mode != Stream && c.Mode != Latest:
		return invalid("reader Mode %d is not Stream (%d) or Latest (%d)", c.Mode, Stream, Latest)
	case c.Start != FromNewest && c.Start != FromOldest && c.Start != FromIndex:
		return invalid("reader Start %d is not FromNewest, FromOldest or FromIndex", c.Start)
	case c.Start != FromIndex && c.Index != 0:
		return invalid("reader Index %d given without Start FromIndex", c.Index)
	case c.Wait != WaitBlock && c.Wait != WaitSpin && c.Wait != WaitAdaptive:
		return invalid("reader Wait %d is not WaitBlock (%d), WaitSpin (%d) or WaitAdaptive (%d)", c.Wait, WaitBlock, WaitSpin, WaitAdaptive)
	case c.LivenessInterval < 0:
		return invalid("negative reader LivenessInterval %v", c.LivenessInterval)
	}
	return nil
}

// Sample is one sample delivered by a Reader.
type Sample struct {
	Index       uint64 // sample number: the writer's first sample is 0
	PublishedAt int64  // CLOCK_MONOTONIC ns when the writer published it
	Data        []byte // payload; valid until the next call on the Reader
	Lost        uint64 // samples lost (Stream) or skipped (Latest) right before this one
}

// ReaderStats counts what a Reader saw.
type ReaderStats struct {
	Received uint64 // samples delivered
	Lost     uint64 // samples overwritten before they could be read (Stream), or skipped (Latest); Damaged included
	Retries  uint64 // reads discarded because the writer overwrote the slot meanwhile
	Damaged  uint64 // samples skipped because their slot was in a state the writer never leaves it in
	// Lag is how many published samples are neither delivered nor
	// counted lost yet: what a reader that stalls has in front of it.
	Lag uint64
}

// Reader reads samples from a ring, in this or another process. It maps
// the ring read-only: nothing a reader does can change the ring.
//
// Next, TryNext, Stats, Status, Position and Prefault belong to one
// goroutine. Close, Cancel, Interrupt and WriterGone may be called from
// any goroutine at any time, also concurrently with Next and after Close:
// Close waits for a context callback in flight, and a Next running
// meanwhile returns ErrClosed without touching the ring. After Close every
// method returns ErrClosed or does nothing. Any number of Readers, in any
// number of processes, may read one ring.
//
// A Reader trusts nothing it reads from the ring: every index, length,
// sequence and cursor value is checked before use, and a state the writer
// never leaves the ring in ends in ErrBadSegment or in a counted skip
// (ReaderStats.Damaged), never in a loop, a duplicate or a fault. A named
// ring's file could be shrunk under its mapping by its owner: reads of
// such a ring catch the fault and return ErrBadSegment (see guarded).
type Reader struct {
	cfg    ReaderConfig
	mem    []byte
	wake   []byte // nil for WaitSpin
	geo    geometry
	hdr    Header
	mask   uint64
	buf    []byte
	cursor split64
	closed *uint32
	beat   *uint32
	// guarded: the mapping can change size under us (a named ring, or
	// an unsealed file), so reads turn a fault into ErrBadSegment.
	guarded bool
	// locked: the writer's liveness is its lock on the ring file (a
	// named ring); otherwise the owner calls WriterGone.
	locked bool
	// fast: TryNext may take its short path (an unguarded Stream reader
	// that has not ended).
	fast bool
	done atomic.Bool // set by Close

	waiting, wakeSeq *uint32  // in the wake area; nil for WaitSpin
	ad               adaptive // WaitAdaptive's knowledge of the topic

	next      uint64 // next sample to deliver (Stream); one past the last delivered (Latest)
	pending   uint64 // lost samples not yet reported in a Sample
	stats     ReaderStats
	lastCheck int64 // Mono of the last liveness check
	fence     uint32
	spinLines int    // cache lines after a slot's first that a spinning Stream reader prefetches; -1: none
	wakeLines int    // cache lines from a slot's start that a Stream reader prefetches after a sleep
	lapAt     uint64 // where the reader restarted when last lapped
	headroom  uint64 // how far past the oldest sample the last lap restarted
	end       error  // ErrWriterClosed, ErrWriterDead or ErrBadSegment once final

	fd       atomic.Int64 // ring file, for the liveness lock; -1 once closed
	checkNow atomic.Bool  // set by Interrupt: check the writer's liveness at once
	canceled atomic.Bool  // set by Cancel
	gone     atomic.Bool  // set by WriterGone
	life     sync.Mutex   // held by Close and by whatever touches the wake area from outside Next
}

// Open attaches a Reader to the ring named name in dir ("" for DefaultDir).
func Open(dir, name string, cfg ReaderConfig) (*Reader, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	if dir == "" {
		dir = DefaultDir
	}
	path := filepath.Join(dir, name)
	// A writer replacing a dead one swaps the wake file and then the ring
	// file; a reader between the two sees generations that differ and
	// tries again.
	var lastErr error
	for range installAttempts {
		r, err := open(path, cfg)
		if err == nil || !errors.Is(err, errGenerationMismatch) {
			return r, err
		}
		lastErr = err
		time.Sleep(time.Millisecond)
	}
	return nil, lastErr
}

var errGenerationMismatch = errors.New("wake file belongs to another generation")

func open(path string, cfg ReaderConfig) (*Reader, error) {
	rfd, err := sys.Open(path, false)
	if err != nil {
		return nil, err
	}
	wfd := -1
	if cfg.Wait != WaitSpin {
		wfd, err = sys.Open(path+WakeSuffix, true)
		if err != nil {
			sys.Close(rfd)
			return nil, fmt.Errorf("ring: blocking readers need write access to the wake file: %w", err)
		}
	}
	return attach(rfd, wfd, path, cfg)
}

// Attach attaches a Reader to a ring whose files were received from its
// writer (see Writer.ReaderFiles), typically over a Unix socket. wakeFile
// may be nil for a WaitSpin reader. Attach works from the descriptors
// alone, needing no permission on the files' paths; it duplicates them, so
// the caller still closes the files. The ring must have been opened
// read-only for the mapping to be read-only.
func Attach(ringFile, wakeFile *os.File, cfg ReaderConfig) (*Reader, error) {
	rfd, err := sys.Dup(int(ringFile.Fd()))
	if err != nil {
		return nil, err
	}
	wfd := -1
	if cfg.Wait != WaitSpin {
		if wakeFile == nil {
			sys.Close(rfd)
			return nil, errorf("a blocking reader needs the wake file")
		}
		if wfd, err = sys.Dup(int(wakeFile.Fd())); err != nil {
			sys.Close(rfd)
			return nil, err
		}
	}
	return attach(rfd, wfd, ringFile.Name(), cfg)
}

// attach validates and maps the ring rfd and wake file wfd (or -1) and
// takes ownership of both descriptors: on error they are closed. The wake
// file descriptor is closed once mapped.
func attach(rfd, wfd int, path string, cfg ReaderConfig) (_ *Reader, err error) {
	if err := cfg.Validate(); err != nil {
		sys.Close(rfd)
		if wfd >= 0 {
			sys.Close(wfd)
		}
		return nil, err
	}
	cfg.LivenessInterval = cmp.Or(cfg.LivenessInterval, DefaultLivenessInterval)
	r := &Reader{cfg: cfg}
	r.fd.Store(int64(rfd))
	defer func() {
		if wfd >= 0 {
			sys.Close(wfd)
		}
		if err != nil {
			r.release()
			err = fmt.Errorf("attach %s: %w", path, err)
		}
	}()

	st, err := sys.Fstat(rfd)
	if err != nil {
		return nil, err
	}
	if !st.IsRegular() {
		return nil, badSegment("not a regular file (mode %o)", st.Mode)
	}
	// A ring sealed against shrinking and growing cannot fault under us;
	// anything else can, if someone with write access truncates it.
	const fixedSize = sys.SealShrink | sys.SealGrow
	seals, _ := sys.Seals(rfd)
	r.guarded = seals&fixedSize != fixedSize
	r.locked = r.guarded
	var head [headerSize]byte
	n, err := sys.Pread(rfd, head[:], 0)
	if err != nil {
		return nil, err
	}
	page := sys.PageSize()
	r.hdr, r.geo, err = parseHeader(head[:max(n, 0)], st.Size, page)
	if err != nil {
		return nil, err
	}
	if r.mem, err = sys.Mmap(rfd, r.geo.totalSize, false); err != nil {
		return nil, err
	}
	// Check the mapped header too: a named file could have been rewritten
	// between pread and mmap by its owner, and the mapping is what is
	// used from here on. Once parsed, header fields are never read again.
	if err := r.guard(func() error {
		_, _, err := parseHeader(r.mem[:headerSize], st.Size, page)
		return err
	}); err != nil {
		return nil, err
	}
	if wfd >= 0 {
		if err := r.mapWake(wfd); err != nil {
			return nil, err
		}
	}
	r.mask = uint64(r.geo.slotCount - 1)
	r.fast = !r.guarded && cfg.Mode == Stream
	r.spinLines = -1
	if cfg.Wait == WaitSpin && cfg.Mode == Stream {
		r.spinLines = sampleLines(r.geo.slotSize) - 1
	}
	r.wakeLines = sampleLines(r.geo.slotSize)
	r.buf = make([]byte, r.geo.slotSize)
	r.cursor = newSplit64(r.mem, offCursor)
	r.beat = u32(r.mem, offHeartbeat)
	r.closed = u32(r.mem, offClosed)

	var c uint64
	if err := r.guard(func() error { c = r.cursor.load(); return nil }); err != nil {
		return nil, err
	}
	r.next = c
	if cfg.Mode == Stream {
		n := uint64(r.geo.slotCount)
		oldest := c - min(c, n)
		switch cfg.Start {
		case FromOldest:
			r.next = oldest
		case FromIndex:
			r.next = cfg.Index
			if r.next < oldest { // overwritten before we came
				r.skip(oldest - r.next)
			}
		}
	}
	r.lastCheck = clock.Mono()
	return r, nil
}

// mapWake maps and checks the wake area wfd of the ring r maps.
func (r *Reader) mapWake(wfd int) (err error) {
	wst, err := sys.Fstat(wfd)
	if err != nil {
		return err
	}
	if !wst.IsRegular() || wst.Size < wakeSize {
		return badSegment("wake file is %d bytes (mode %o), want a file of at least %d", wst.Size, wst.Mode, wakeSize)
	}
	const fixedSize = sys.SealShrink | sys.SealGrow
	if seals, _ := sys.Seals(wfd); seals&fixedSize != fixedSize {
		r.guarded = true
	}
	if r.wake, err = sys.Mmap(wfd, wakeSize, true); err != nil {
		return err
	}
	var gen uint64
	if err := r.guard(func() error { gen, err = parseWake(r.wake, wst.Size); return err }); err != nil {
		return err
	}
	if gen != r.hdr.Generation {
		return fmt.Errorf("%w (%x, ring is %x)", errGenerationMismatch, gen, r.hdr.Generation)
	}
	r.waiting = u32(r.wake, offWaiting)
	r.wakeSeq = u32(r.wake, offWakeSeq)
	return nil
}

// release gives up the mappings and the descriptor. The mappings are
// retired (see Writer.release) rather than unmapped, so a Next running in
// another goroutine reads zeros instead of faulting; the address ranges
// are unmapped once the Reader is garbage.
func (r *Reader) release() {
	if kept := [2][]byte{retire(r.mem), retire(r.wake)}; kept[0] != nil || kept[1] != nil {
		runtime.AddCleanup(r, unmap, kept)
	}
	if fd := r.fd.Swap(-1); fd >= 0 {
		sys.Close(int(fd))
	}
}

// Close detaches the reader. It may be called from any goroutine; a Next
// waiting or running in another returns ErrClosed.
func (r *Reader) Close() error {
	r.life.Lock()
	defer r.life.Unlock()
	if r.done.Swap(true) {
		return ErrClosed
	}
	if r.wakeSeq != nil {
		// A Next asleep in another goroutine sees done at once, not at
		// its next timeout (and so do other sleepers, harmlessly).
		atomic.AddUint32(r.wakeSeq, 1)
		sys.FutexWake(r.wakeSeq)
	}
	r.release()
	return nil
}

// Prefault faults in every page of the ring's mapping, so that reading
// takes no page fault.
func (r *Reader) Prefault() error {
	if r.done.Load() {
		return ErrClosed
	}
	return r.guard(func() error {
		if r.wake != nil {
			if err := sys.Prefault(r.wake, true); err != nil {
				return err
			}
		}
		return sys.Prefault(r.mem, false)
	})
}

// Header returns the ring's static description.
func (r *Reader) Header() Header { return r.hdr }

// Stats returns what the reader has counted so far.
func (r *Reader) Stats() ReaderStats {
	st := r.stats
	if r.done.Load() || r.end != nil {
		return st
	}
	var p uint64
	if r.guard(func() error { p = r.published(); return nil }) == nil && p > r.next {
		st.Lag = p - r.next
	}
	return st
}

// Position returns the number of the next sample a Stream reader will
// deliver (or has lost).
func (r *Reader) Position() uint64 { return r.next }

// guard runs f, which reads the mapping. For a ring whose size could change
// under us, a memory fault in f becomes ErrBadSegment (and the Reader's
// final error) instead of killing the process; a sealed ring needs no
// guard, and gets none.
func (r *Reader) guard(f func() error) (err error) {
	if !r.guarded {
		return f()
	}
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if v := recover(); v != nil {
			if !isFault(v) {
				panic(v)
			}
			r.setEnd(badSegment("memory fault reading the ring: its file was truncated under the mapping"))
			err = r.end
		}
	}()
	return f()
}

// setEnd records the error that ends the reader.
func (r *Reader) setEnd(err error) {
	r.end = err
	r.fast = false
}

// isFault reports whether a recovered panic is a memory fault: one with
// the faulting address, or, where an emulator (qemu-user) does not report
// the address, Go's error for a fault at a small one.
func isFault(v any) bool {
	if _, ok := v.(interface{ Addr() uintptr }); ok {
		return true
	}
	re, ok := v.(runtime.Error)
	return ok && strings.Contains(re.Error(), "invalid memory address")
}

// slotState is the outcome of reading one slot.
type slotState int

const (
	slotOK      slotState = iota
	slotEmpty             // never written
	slotOlder             // holds an older sample
	slotNewer             // holds a newer sample
	slotBusy              // being written
	slotTorn              // changed while read; read again
	slotVoid              // the wanted sample was destroyed by an aborted reservation or skipped
	slotCorrupt           // stable but impossible contents
)

// read copies sample i from its slot into r.buf if the slot holds it.
// It returns the payload length and publish time with slotOK, the index
// and length (voidLen for a skipped sample) the slot holds with slotOlder
// and slotNewer.
func (r *Reader) read(i uint64) (st slotState, n int, ts int64, idx uint64) {
	s := slotAt(r.mem, headerSize+int(i&r.mask)*r.geo.slotStride)
	seq := atomic.LoadUint32(s.seq()) // acquire: the fields below are loaded after it
	if seq == 0 {
		return slotEmpty, 0, 0, 0
	}
	if seq&1 != 0 {
		return slotBusy, 0, 0, 0
	}
	idx, ln, ts := s.index(), s.length(), s.time()
	if idx != i || ln > uint32(r.geo.slotSize) {
		readFence(&r.fence)
		if atomic.LoadUint32(s.seq()) != seq {
			return slotTorn, 0, 0, 0
		}
		switch {
		case idx < i:
			return slotOlder, int(ln), 0, idx
		case idx > i:
			return slotNewer, int(ln), 0, idx
		case ln == voidLen:
			return slotVoid, 0, 0, idx
		default:
			return slotCorrupt, int(ln), 0, idx
		}
	}
	copy(r.buf, s.data(int(ln)))
	readFence(&r.fence)                    // the copy is complete before seq is loaded again
	if atomic.LoadUint32(s.seq()) != seq { // the writer started on this slot meanwhile: the copy may be torn
		return slotTorn, 0, 0, 0
	}
	return slotOK, int(ln), ts, idx
}

// published returns the number of samples published: the cursor, plus
// one if the writer completed the slot of sample c but died before it
// advanced the cursor (commit closes the seqlock, then moves the cursor).
func (r *Reader) published() uint64 {
	c := r.cursor.load()
	s := slotAt(r.mem, headerSize+int(c&r.mask)*r.geo.slotStride)
	seq := atomic.LoadUint32(s.seq()) // acquire: idx is read after it
	if seq == 0 || seq&1 != 0 {
		return c
	}
	idx := s.index()
	readFence(&r.fence)
	if atomic.LoadUint32(s.seq()) == seq && idx == c {
		return c + 1
	}
	return c
}

// maxTries bounds the slots one TryNext looks at, so that no state of the
// ring keeps it from returning (and Next from checking its context).
const maxTries = 64

// TryNext returns the next sample if one is ready, without waiting.
func (r *Reader) TryNext() (Sample, bool, error) {
	// The common case first, kept small: a Stream reader whose next
	// sample is in its slot. Everything else takes tryNextSlow. (A
	// closed reader's retired mapping reads as empty slots, so the
	// closed state is checked there.)
	if r.fast {
		if st, n, ts, _ := r.read(r.next); st == slotOK {
			i := r.next
			lost := r.deliver(i, n)
			return Sample{Index: i, PublishedAt: ts, Data: r.buf[:n], Lost: lost}, true, nil
		}
	}
	return r.tryNextSlow()
}

// tryNextSlow is TryNext for a closed or ended reader, or one whose reads
// are guarded: kept apart so that the common path has no closure.
func (r *Reader) tryNextSlow() (s Sample, ok bool, err error) {
	if r.done.Load() {
		return Sample{}, false, ErrClosed
	}
	if r.end != nil && errors.Is(r.end, ErrBadSegment) {
		return Sample{}, false, r.end
	}
	if !r.guarded {
		return r.tryNext()
	}
	err = r.guard(func() error {
		var e error
		s, ok, e = r.tryNext()
		return e
	})
	return s, ok, err
}

func (r *Reader) tryNext() (Sample, bool, error) {
	if r.cfg.Mode == Latest {
		return r.tryLatest()
	}
	for range maxTries {
		i := r.next
		st, n, ts, idx := r.read(i)
		switch st {
		case slotOK:
			lost := r.deliver(i, n)
			return Sample{Index: i, PublishedAt: ts, Data: r.buf[:n], Lost: lost}, true, nil
		case slotTorn:
			r.stats.Retries++
			continue
		case slotVoid:
			r.skip(1)
			continue
		case slotCorrupt:
			return Sample{}, false, badSegment("slot of sample %d claims %d bytes, slot size is %d", i, n, r.geo.slotSize)
		}
		// Empty, older, newer or busy: the cursor, loaded after the slot,
		// tells a sample not published yet from one overwritten, and both
		// from a slot in a state the writer never leaves it in.
		c := r.cursor.load()
		switch {
		case st == slotNewer && idx > c && uint32(n) == voidLen:
			// A writer skipping a long gap writes void samples ahead of
			// the cursor, which follows at once: wait for it.
			return Sample{}, false, nil
		case st == slotNewer && idx > c:
			return Sample{}, false, badSegment("slot of sample %d holds sample %d, beyond the cursor at %d", i, idx, c)
		case st == slotNewer || c >= i+uint64(r.geo.slotCount):
			if !r.cursorPlausible(c) {
				return Sample{}, false, badSegment("cursor at %d, but the slot of sample %d does not hold it", c, c-1)
			}
			r.lapped(c)
		case c <= i:
			// Not published yet. (A busy slot is the writer filling
			// sample i itself; a cursor just past i may be the writer
			// finishing it since the slot was read.)
			return Sample{}, false, nil
		default:
			// The cursor passed i, so the writer completed sample i,
			// and it has not come round to its slot again: it must
			// read now.
			st, n, ts, _ = r.read(i)
			switch st {
			case slotOK:
				lost := r.deliver(i, n)
				return Sample{Index: i, PublishedAt: ts, Data: r.buf[:n], Lost: lost}, true, nil
			case slotTorn, slotNewer:
				// The writer came round meanwhile: the loop sees it.
			default:
				if c2 := r.cursor.load(); c2 >= i+uint64(r.geo.slotCount) {
					continue // overwritten meanwhile: the loop laps
				}
				r.stats.Damaged++
				r.skip(1)
			}
		}
	}
	return Sample{}, false, nil
}

// cursorPlausible checks a cursor before the reader skips ahead by it: a
// cursor at c says sample c-1 is complete, and from then on its slot
// holds it or a newer sample (or is being written with one), or, when a
// writer skips a long gap, an older skipped one it is about to overwrite.
func (r *Reader) cursorPlausible(c uint64) bool {
	if c == 0 {
		return true
	}
	st, n, _, _ := r.read(c - 1)
	return st != slotEmpty && (st != slotOlder || uint32(n) == voidLen)
}

// deliver accounts sample i, of n bytes, as delivered and returns the
// samples lost right before it. (The caller builds the Sample in its
// return statement: a Sample returned through a helper costs copies.)
func (r *Reader) deliver(i uint64, n int) (lost uint64) {
	if r.spinLines >= 0 {
		r.spinLines = sampleLines(n) - 1 // the next sample is likely alike
	}
	r.next = i + 1
	r.stats.Received++
	lost, r.pending = r.pending, 0
	return lost
}

func (r *Reader) skip(n uint64) {
	r.next += n
	r.pending += n
	r.stats.Lost += n
}

// lapped moves a Stream reader that the writer overtook to the oldest
// sample still in the ring, counting every sample it passes as lost. With
// the cursor at c the ring holds samples c-N .. c-1, unless the writer is
// already overwriting c-N; then the next read finds that slot busy or
// newer and laps again. A reader lapped again within a ring's worth of its
// last lap is slower than the writer: it restarts further ahead, the
// headroom doubling with each such lap up to an eighth of the ring, so it
// is not overtaken again at once (and, flat out, stays out of the lines
// the writer takes next). One lapped once, or after keeping up, loses no
// more than it must. Each call moves the reader forward.
func (r *Reader) lapped(c uint64) {
	n := uint64(r.geo.slotCount)
	if r.next < r.lapAt+n {
		r.headroom = min(max(2*r.headroom, 1), n/8)
	} else {
		r.headroom = 0
	}
	target := min(c-min(c, n)+r.headroom, c)
	if target <= r.next {
		target = r.next + 1 // sample r.next is gone either way
	}
	r.lapAt = target
	r.skip(target - r.next)
}

func (r *Reader) tryLatest() (Sample, bool, error) {
	// A few tries: each failure means the writer moved on meanwhile, or
	// is stuck in the middle of a write (then there is nothing to read).
	for range 8 {
		c := r.cursor.load()
		if c == 0 || c <= r.next {
			return Sample{}, false, nil
		}
		i := c - 1
		st, n, ts, _ := r.read(i)
		switch st {
		case slotOK:
			skipped := i - r.next
			r.next = i + 1
			r.stats.Received++
			r.stats.Lost += skipped
			return Sample{Index: i, PublishedAt: ts, Data: r.buf[:n], Lost: skipped}, true, nil
		case slotVoid:
			r.stats.Lost += c - r.next
			r.next = c
			return Sample{}, false, nil
		case slotCorrupt:
			return Sample{}, false, badSegment("slot of sample %d claims %d bytes, slot size is %d", i, n, r.geo.slotSize)
		case slotEmpty, slotOlder:
			// The cursor counts a sample its slot does not hold: only a
			// corrupt segment does that.
			return Sample{}, false, badSegment("cursor at %d but the slot of sample %d does not hold it", c, i)
		default:
			r.stats.Retries++
		}
	}
	return Sample{}, false, nil
}

// Next returns the next sample, waiting for it as the ReaderConfig says.
// Once the writer is gone and every sample is delivered it returns
// ErrWriterClosed (it closed) or ErrWriterDead (it died). It returns
// ctx.Err() when ctx is done, ErrCanceled after Cancel, ErrClosed after
// Close, and ErrBadSegment for a ring in a state no writer leaves it in.
func (r *Reader) Next(ctx context.Context) (s Sample, err error) {
	if !r.guarded {
		return r.nextSample(ctx)
	}
	err = r.guard(func() error {
		var e error
		s, e = r.nextSample(ctx)
		return e
	})
	return s, err
}

func (r *Reader) nextSample(ctx context.Context) (Sample, error) {
	var stop func() bool
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	for spins := 0; ; spins++ {
		s, ok, err := r.TryNext()
		if ok || err != nil {
			if ok && r.cfg.Wait == WaitAdaptive {
				r.ad.learn(s.Index, s.PublishedAt)
			}
			return s, err
		}
		if r.cfg.Wait == WaitSpin && spins&1023 != 0 {
			r.prefetchSpin()
			continue
		}
		if err := r.checkEnd(ctx); err != nil {
			if errors.Is(err, ErrWriterClosed) || errors.Is(err, ErrWriterDead) {
				// The writer can publish nothing more, and it stopped
				// before this look: once a look finds nothing and skips
				// nothing (a look covers at most maxTries slots), the end
				// is final.
				for {
					before := r.next
					if s, ok, err := r.TryNext(); ok || err != nil {
						return s, err
					}
					if r.next == before {
						break
					}
				}
				r.setEnd(err)
			}
			return Sample{}, err
		}
		if r.cfg.Wait == WaitSpin {
			continue
		}
		if r.cursor.load() > r.next {
			continue // samples to deliver or skip: TryNext stopped at maxTries
		}
		sleepFor, wakeAt := time.Duration(-1), int64(0)
		if r.cfg.Wait == WaitAdaptive {
			var until int64
			if until, sleepFor, wakeAt = r.ad.plan(r.next, clock.Mono()); until != 0 {
				s, ok, err := r.poll(ctx, until)
				if ok {
					r.ad.learn(s.Index, s.PublishedAt)
				}
				if ok || err != nil {
					return s, err
				}
				continue
			}
		}
		// Announce, then look again: a writer that publishes after the
		// look sees the announcement and bumps wakeSeq.
		v := atomic.LoadUint32(r.wakeSeq)
		if r.canceled.Load() || r.done.Load() || r.checkNow.Load() || ctx.Err() != nil {
			// Cancel, Close, Interrupt, WriterGone or the context since
			// checkEnd: each sets its flag (a context its error) before
			// wakeSeq is bumped, so one whose bump is already in v is
			// seen here, and one that comes later ends the sleep.
			continue
		}
		atomic.StoreUint32(r.waiting, 1)
		if s, ok, err := r.TryNext(); ok || err != nil {
			if ok && r.cfg.Wait == WaitAdaptive {
				r.ad.learn(s.Index, s.PublishedAt)
			}
			return s, err
		}
		if stop == nil && ctx.Done() != nil {
			stop = context.AfterFunc(ctx, r.interrupt)
		}
		timeout := r.cfg.LivenessInterval
		if atomic.LoadUint32(r.closed) != 0 {
			// Closed but not gone yet: it is releasing the ring, which
			// takes a moment. A flag set on a live ring (corrupt) costs
			// a thousand looks a second, not a busy loop.
			timeout = min(timeout, time.Millisecond)
		}
		if dl, ok := ctx.Deadline(); ok {
			timeout = min(timeout, max(time.Until(dl), 0))
		}
		if sleepFor >= 0 && sleepFor < timeout {
			// Until shortly before the next sample is due: precise
			// only without the thread's timer slack (50 µs unless
			// set), which lets the kernel end a timed wait that much
			// late. It stays set for the thread; it only makes its
			// other timed waits end on time.
			timeout = sleepFor
			sys.SetTimerSlack(1)
			if timeout > adaptRawSleep && runtime.GOMAXPROCS(0) >= 2 {
				// A long sleep (a slow topic): the bulk of it through
				// the runtime's path, which ends later and less
				// predictably; the loop comes back for the last
				// adaptRawSleep, slept holding the P (below), whose
				// end the pattern learns.
				timeout -= adaptRawSleep
				wakeAt = 0
			}
		} else {
			wakeAt = 0
		}
		// EAGAIN (woken already), EINTR (Go's preemption signals),
		// ETIMEDOUT and spurious wake-ups all lead back to the top.
		if wakeAt != 0 && timeout <= adaptRawSleep && takeRawSleep() {
			// A short sleep before a sample that is due: made without
			// the runtime's system-call path, which for a sleep like
			// this every interval wakes two or three threads (see
			// sys.FutexWaitShort). The P stays with this goroutine for
			// at most adaptRawSleep; the program keeps another.
			sys.FutexWaitShort(r.wakeSeq, v, timeout)
			rawSleepers.Add(-1)
			rawSleeps.Add(1)
		} else {
			sys.FutexWait(r.wakeSeq, v, timeout)
		}
		r.fetchNext()
		if wakeAt != 0 {
			r.ad.woke(wakeAt, clock.Mono())
		}
	}
}

// prefetchSpin is what a polling reader does between looks at the ring.
func (r *Reader) prefetchSpin() {
	if r.spinLines > 0 {
		// TryNext polls the sequence in the first line of the
		// next sample's slot; the writer takes all of the slot's
		// lines as it writes. Fetching the others only once the
		// sequence has changed would be a second cross-core
		// transfer after the first; asking for them on every
		// poll (as many as the last sample used) fetches them
		// back alongside it. From the Publish call to a 64-byte
		// sample in hand: 501 -> 360 ns p50 on the 2-vCPU VM
		// (BenchmarkLatency, distant vCPUs). Not while the
		// sequence is odd: the writer is filling those lines
		// then, and each fetch would make it take a line back
		// mid-copy (1 KiB samples flat out: 1.40 -> 1.60 M/s,
		// ipcbench ring-spin).
		s := slotAt(r.mem, headerSize+int(r.next&r.mask)*r.geo.slotStride)
		if atomic.LoadUint32(s.seq())&1 == 0 {
			prefetch(unsafe.Add(s.p, 64), r.spinLines)
		}
	}
}

// rawSleepers counts the readers in the process sleeping through
// sys.FutexWaitShort, each holding a P meanwhile.
var rawSleepers atomic.Int32

// rawSleeps counts those sleeps, for tests.
var rawSleeps atomic.Uint64

// takeRawSleep reports whether a reader may sleep holding its P: at least
// one P must stay free for the program's other goroutines (and for the
// other readers), so at most GOMAXPROCS-1 readers do at a time. It counts
// the reader in rawSleepers when it may.
func takeRawSleep() bool {
	if rawSleepers.Add(1) <= int32(runtime.GOMAXPROCS(0)-1) {
		return true
	}
	rawSleepers.Add(-1)
	return false
}

// poll looks at the ring as a spinning reader does until a sample is
// there, Mono time until passes, or something asks Next to end (checked,
// with the clock, every pollCheck looks, so that a look costs what a
// spinning reader's does). The writer's end counts: its closed flag, and
// a liveness check that is due, are left to Next's checkEnd, as on every
// pass of its loop; a poll window can be seconds long (a jitter of up to
// an eighth of a 10 s interval).
func (r *Reader) poll(ctx context.Context, until int64) (Sample, bool, error) {
	for i := 1; ; i++ {
		if s, ok, err := r.TryNext(); ok || err != nil {
			return s, ok, err
		}
		if i%pollCheck == 0 && r.pollOver(ctx, until) {
			return Sample{}, false, nil
		}
		r.prefetchSpin()
	}
}

// pollOver reports whether poll should return to Next's loop.
func (r *Reader) pollOver(ctx context.Context, until int64) bool {
	now := clock.Mono()
	return now >= until || r.canceled.Load() || r.done.Load() || r.checkNow.Load() || ctx.Err() != nil ||
		atomic.LoadUint32(r.closed) != 0 || now-r.lastCheck >= int64(r.cfg.LivenessInterval)
}

// pollCheck is how many looks poll makes between looks at the clock.
const pollCheck = 16

// fetchNext asks for the cache lines of the next sample's slot, which the
// writer has (most likely) just written, on the way back from a sleep:
// they then cross from the writer's core while the Go runtime finishes
// the system call, rather than one after the other once the copy asks.
func (r *Reader) fetchNext() {
	if r.cfg.Mode == Stream {
		s := slotAt(r.mem, headerSize+int(r.next&r.mask)*r.geo.slotStride)
		prefetch(s.p, r.wakeLines)
	}
}

// interrupt wakes this reader (and, harmlessly, other sleepers) when its
// context is done. It may run in any goroutine; Close waits for it.
func (r *Reader) interrupt() {
	r.life.Lock()
	defer r.life.Unlock()
	if r.done.Load() || r.wakeSeq == nil {
		return
	}
	atomic.AddUint32(r.wakeSeq, 1)
	sys.FutexWake(r.wakeSeq)
}

// Cancel makes a Next that is waiting, and every later one, return
// ErrCanceled. It may be called from any goroutine, also after Close.
func (r *Reader) Cancel() {
	r.canceled.Store(true)
	r.Interrupt()
}

// Interrupt makes a Next that is waiting, or the next one to wait, check
// at once whether the writer is still alive, instead of at the next
// liveness interval. It may be called from any goroutine, also after
// Close.
func (r *Reader) Interrupt() {
	r.checkNow.Store(true)
	r.interrupt()
}

// WriterGone tells the reader that the writer is gone: a Next then
// delivers what is left and returns ErrWriterClosed, if the writer closed
// the ring, or ErrWriterDead. Whoever tracks the writer calls it (package
// bus, when the publisher's control connection ends): an anonymous ring
// has no other sign of its writer's death that a reader could trust. For
// a named ring the writer's lock decides, and WriterGone adds to it. It
// may be called from any goroutine, also after Close.
func (r *Reader) WriterGone() {
	r.gone.Store(true)
	r.Interrupt()
}

// writerGone reports whether the writer is gone: told so, or (a named
// ring) its lock on the ring file released.
func (r *Reader) writerGone() (bool, error) {
	if r.gone.Load() {
		return true, nil
	}
	if !r.locked {
		return false, nil
	}
	fd := r.fd.Load()
	if fd < 0 {
		return false, ErrClosed
	}
	alive, err := sys.Locked(int(fd), lockWriter)
	if err != nil {
		return false, fmt.Errorf("ring: query writer lock: %w", err)
	}
	return !alive, nil
}

// checkEnd returns the error that ends a wait: the context's, or the
// writer's closing or death (ErrWriterClosed, ErrWriterDead), which the
// caller confirms with one more look at the ring. The closed flag alone
// ends nothing: only a writer that is gone, as its lock or its owner
// says, can publish no more.
func (r *Reader) checkEnd(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.done.Load() {
		return ErrClosed
	}
	if r.canceled.Load() {
		return ErrCanceled
	}
	if r.end != nil {
		return r.end
	}
	closed := atomic.LoadUint32(r.closed) != 0
	now := clock.Mono()
	// checkNow is taken whether or not this look is due anyway: left set,
	// it would keep the reader from sleeping (see nextSample).
	asked := r.checkNow.Swap(false)
	if !closed && now-r.lastCheck < int64(r.cfg.LivenessInterval) && !asked {
		return nil
	}
	r.lastCheck = now
	gone, err := r.writerGone()
	if err != nil || !gone {
		return nil
	}
	if closed {
		return ErrWriterClosed
	}
	return ErrWriterDead
}
