package ring

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
)

// Wait selects how Next waits for a sample.
type Wait int

const (
	// WaitBlock sleeps on a futex; the writer wakes it. Costs a system
	// call on each side per wake-up, no CPU while idle.
	WaitBlock Wait = iota
	// WaitSpin polls the ring: lowest latency, one core busy.
	WaitSpin
)

// ReaderConfig describes how a Reader reads.
type ReaderConfig struct {
	Mode  Mode  // Stream (default) or Latest
	Start Start // FromNewest (default) or FromOldest; Stream only
	Wait  Wait  // WaitBlock (default) or WaitSpin

	// LivenessInterval is how often a waiting Next checks whether the
	// writer died; 0 means 100ms. It also bounds the delay of a wake-up
	// lost to a misbehaving peer.
	LivenessInterval time.Duration
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
	Lost     uint64 // samples overwritten before they could be read (Stream), or skipped (Latest)
	Retries  uint64 // reads discarded because the writer overwrote the slot meanwhile
}

// Reader reads samples from a ring, in this or another process. It maps
// the ring read-only: nothing a reader does can change the ring.
//
// A Reader is owned by one goroutine; its methods must not be called
// concurrently. Any number of Readers, in any number of processes, may
// read one ring.
type Reader struct {
	cfg    ReaderConfig
	fd     int // ring file, read-only; kept for the liveness check
	mem    []byte
	wake   []byte // nil when not WaitBlock
	geo    geometry
	hdr    Header
	mask   uint64
	buf    []byte
	cursor split64
	closed *uint32
	beat   *uint32

	waiting, wakeSeq *uint32 // in the wake file; nil unless WaitBlock

	next      uint64 // next sample to deliver (Stream); one past the last delivered (Latest)
	pending   uint64 // lost samples not yet reported in a Sample
	stats     ReaderStats
	lastCheck int64 // Mono of the last liveness check
	fence     uint32
	spinLines int    // cache lines after a slot's first that a spinning Stream reader prefetches; -1: none
	end       error  // ErrWriterClosed or ErrWriterDead once the ring is drained
	checkNow  uint32 // set by Interrupt: check the writer's liveness at once
	canceled  uint32 // set by Cancel
	done      bool
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
	if cfg.Wait == WaitBlock {
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
	if cfg.Wait == WaitBlock {
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
	if cfg.Mode != Stream && cfg.Mode != Latest || cfg.Start != FromNewest && cfg.Start != FromOldest ||
		cfg.Wait != WaitBlock && cfg.Wait != WaitSpin || cfg.LivenessInterval < 0 {
		sys.Close(rfd)
		if wfd >= 0 {
			sys.Close(wfd)
		}
		return nil, errorf("invalid reader config %+v", cfg)
	}
	if cfg.LivenessInterval == 0 {
		cfg.LivenessInterval = 100 * time.Millisecond
	}
	r := &Reader{cfg: cfg, fd: rfd}
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
	// Check the mapped header too: the file could have been replaced
	// between pread and mmap only by a same-user process writing it, but
	// the mapping is what is used from here on.
	if _, _, err := parseHeader(r.mem[:headerSize], st.Size, page); err != nil {
		return nil, err
	}
	if wfd >= 0 {
		wst, err := sys.Fstat(wfd)
		if err != nil {
			return nil, err
		}
		if wst.Size < wakeSize {
			return nil, badSegment("wake file is %d bytes, want %d", wst.Size, wakeSize)
		}
		if r.wake, err = sys.Mmap(wfd, wakeSize, true); err != nil {
			return nil, err
		}
		gen, err := parseWake(r.wake, wst.Size)
		if err != nil {
			return nil, err
		}
		if gen != r.hdr.Generation {
			return nil, fmt.Errorf("%w (%x, ring is %x)", errGenerationMismatch, gen, r.hdr.Generation)
		}
		r.waiting = u32(r.wake, offWaiting)
		r.wakeSeq = u32(r.wake, offWakeSeq)
	}
	r.mask = uint64(r.geo.slotCount - 1)
	r.spinLines = -1
	if cfg.Wait == WaitSpin && cfg.Mode == Stream {
		r.spinLines = sampleLines(r.geo.slotSize) - 1
	}
	r.buf = make([]byte, r.geo.slotSize)
	r.cursor = newSplit64(r.mem, offCursor)
	r.beat = u32(r.mem, offHeartbeat)
	r.closed = u32(r.mem, offClosed)

	c := r.cursor.load()
	r.next = c
	if cfg.Mode == Stream && cfg.Start == FromOldest && c > 0 {
		r.next = c - min(c, uint64(r.geo.slotCount))
	}
	r.lastCheck = clock.Mono()
	return r, nil
}

func (r *Reader) release() {
	if r.mem != nil {
		sys.Munmap(r.mem)
		r.mem = nil
	}
	if r.wake != nil {
		sys.Munmap(r.wake)
		r.wake = nil
	}
	if r.fd >= 0 {
		sys.Close(r.fd)
		r.fd = -1
	}
}

// Close detaches the reader.
func (r *Reader) Close() error {
	if r.done {
		return ErrClosed
	}
	r.done = true
	r.release()
	return nil
}

// Prefault faults in every page of the ring's mapping, so that reading
// takes no page fault.
func (r *Reader) Prefault() error {
	if r.done {
		return ErrClosed
	}
	if r.wake != nil {
		if err := sys.Prefault(r.wake, true); err != nil {
			return err
		}
	}
	return sys.Prefault(r.mem, false)
}

// Header returns the ring's static description.
func (r *Reader) Header() Header { return r.hdr }

// Stats returns what the reader has counted so far.
func (r *Reader) Stats() ReaderStats { return r.stats }

// Position returns the number of the next sample a Stream reader will
// deliver (or has lost).
func (r *Reader) Position() uint64 { return r.next }

// slotState is the outcome of reading one slot.
type slotState int

const (
	slotOK      slotState = iota
	slotEmpty             // never written
	slotOlder             // holds an older sample: the wanted one is not published yet
	slotNewer             // holds a newer sample: the wanted one was overwritten
	slotBusy              // being written
	slotTorn              // changed while read; read again
	slotVoid              // the wanted sample was destroyed by an aborted reservation
	slotCorrupt           // stable but impossible contents
)

// read copies sample i from its slot into r.buf if the slot holds it.
// It returns the payload length and publish time with slotOK.
func (r *Reader) read(i uint64) (slotState, int, int64) {
	s := slotAt(r.mem, headerSize+int(i&r.mask)*r.geo.slotStride)
	seq := atomic.LoadUint32(s.seq()) // acquire: the fields below are loaded after it
	if seq == 0 {
		return slotEmpty, 0, 0
	}
	if seq&1 != 0 {
		return slotBusy, 0, 0
	}
	idx, n, ts := s.index(), s.length(), s.time()
	if idx != i || n > uint32(r.geo.slotSize) {
		readFence(&r.fence)
		if atomic.LoadUint32(s.seq()) != seq {
			return slotTorn, 0, 0
		}
		switch {
		case idx < i:
			return slotOlder, 0, 0
		case idx > i:
			return slotNewer, 0, 0
		case n == voidLen:
			return slotVoid, 0, 0
		default:
			return slotCorrupt, int(n), 0
		}
	}
	copy(r.buf, s.data(int(n)))
	readFence(&r.fence)                    // the copy is complete before seq is loaded again
	if atomic.LoadUint32(s.seq()) != seq { // the writer started on this slot meanwhile: the copy may be torn
		return slotTorn, 0, 0
	}
	return slotOK, int(n), ts
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

// TryNext returns the next sample if one is ready, without waiting.
func (r *Reader) TryNext() (Sample, bool, error) {
	if r.done {
		return Sample{}, false, ErrClosed
	}
	if r.cfg.Mode == Latest {
		return r.tryLatest()
	}
	for {
		i := r.next
		st, n, ts := r.read(i)
		switch st {
		case slotOK:
			if r.spinLines >= 0 {
				r.spinLines = sampleLines(n) - 1 // the next sample is likely alike
			}
			r.next++
			r.stats.Received++
			lost := r.pending
			r.pending = 0
			return Sample{Index: i, PublishedAt: ts, Data: r.buf[:n], Lost: lost}, true, nil
		case slotEmpty, slotOlder:
			return Sample{}, false, nil
		case slotTorn:
			r.stats.Retries++
		case slotVoid:
			r.skip(1)
		case slotBusy:
			// The writer is filling this slot: with sample i itself, or
			// with sample i+N or later (lapped). Only a cursor that
			// reached i+N tells the second: a cursor just past i may be
			// the writer finishing sample i since seq was loaded.
			c := r.cursor.load()
			if c < i+uint64(r.geo.slotCount) {
				return Sample{}, false, nil
			}
			r.lapped(c)
		case slotNewer:
			r.lapped(r.cursor.load())
		case slotCorrupt:
			return Sample{}, false, badSegment("slot of sample %d claims %d bytes, slot size is %d", i, n, r.geo.slotSize)
		}
	}
}

func (r *Reader) skip(n uint64) {
	r.next += n
	r.pending += n
	r.stats.Lost += n
}

// lapped moves a Stream reader that the writer overtook to the oldest
// sample still in the ring, plus an eighth of the ring of headroom so it
// is not overtaken again at once, counting every sample it passes as lost.
// With the cursor at c the ring holds samples c-N .. c-1, unless the writer
// is already overwriting c-N; then the next read finds that slot busy or
// newer and laps again. Each call moves the reader forward.
func (r *Reader) lapped(c uint64) {
	n := uint64(r.geo.slotCount)
	target := min(c-min(c, n)+n/8, c)
	if target <= r.next {
		target = r.next + 1 // sample r.next is gone either way
	}
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
		st, n, ts := r.read(i)
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
// Once the writer has closed and every sample is delivered it returns
// ErrWriterClosed; once the writer has died, ErrWriterDead. It returns
// ctx.Err() when ctx is done.
func (r *Reader) Next(ctx context.Context) (Sample, error) {
	var stop func() bool
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	for spins := 0; ; spins++ {
		s, ok, err := r.TryNext()
		if ok || err != nil {
			return s, err
		}
		if r.cfg.Wait == WaitSpin && spins&1023 != 0 {
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
			continue
		}
		if err := r.checkEnd(ctx); err != nil {
			if errors.Is(err, ErrWriterClosed) || errors.Is(err, ErrWriterDead) {
				// The writer can publish nothing more, and it stopped
				// before this look: if it finds nothing, the end is final.
				if s, ok, err := r.TryNext(); ok || err != nil {
					return s, err
				}
				r.end = err
			}
			return Sample{}, err
		}
		if r.cfg.Wait == WaitSpin {
			continue
		}
		// Announce, then look again: a writer that publishes after the
		// look sees the announcement and bumps wakeSeq.
		v := atomic.LoadUint32(r.wakeSeq)
		atomic.StoreUint32(r.waiting, 1)
		if s, ok, err := r.TryNext(); ok || err != nil {
			return s, err
		}
		if atomic.LoadUint32(r.closed) != 0 {
			continue // checkEnd drains and reports it
		}
		if stop == nil && ctx.Done() != nil {
			stop = context.AfterFunc(ctx, r.interrupt)
		}
		timeout := r.cfg.LivenessInterval
		if dl, ok := ctx.Deadline(); ok {
			timeout = min(timeout, max(time.Until(dl), 0))
		}
		// EAGAIN (woken already), EINTR (Go's preemption signals),
		// ETIMEDOUT and spurious wake-ups all lead back to the top.
		sys.FutexWait(r.wakeSeq, v, timeout)
	}
}

// interrupt wakes this reader (and, harmlessly, other sleepers) when its
// context is done.
func (r *Reader) interrupt() {
	atomic.AddUint32(r.wakeSeq, 1)
	sys.FutexWake(r.wakeSeq)
}

// Cancel makes a Next that is waiting, and every later one, return
// ErrCanceled. Unlike the other methods it may be called from any
// goroutine, but not after Close (which unmaps what it touches).
func (r *Reader) Cancel() {
	atomic.StoreUint32(&r.canceled, 1)
	r.Interrupt()
}

// Interrupt makes a Next that is waiting, or the next one to wait, check
// at once whether the writer is still alive, instead of at the next
// liveness interval. Unlike the other methods it may be called from any
// goroutine, for example by one that saw the writer's control connection
// close, but not after Close (which unmaps what it touches).
func (r *Reader) Interrupt() {
	atomic.StoreUint32(&r.checkNow, 1)
	if r.wakeSeq != nil {
		r.interrupt()
	}
}

// checkEnd returns the error that ends a wait: the context's, or the
// writer's closing or death (ErrWriterClosed, ErrWriterDead), which the
// caller confirms with one more look at the ring.
func (r *Reader) checkEnd(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if atomic.LoadUint32(&r.canceled) != 0 {
		return ErrCanceled
	}
	if r.end != nil {
		return r.end
	}
	if atomic.LoadUint32(r.closed) != 0 {
		return ErrWriterClosed
	}
	now := clock.Mono()
	if now-r.lastCheck < int64(r.cfg.LivenessInterval) && atomic.SwapUint32(&r.checkNow, 0) == 0 {
		return nil
	}
	r.lastCheck = now
	if alive, err := sys.Locked(r.fd, lockWriter); err == nil && !alive {
		if atomic.LoadUint32(r.closed) != 0 {
			return ErrWriterClosed
		}
		return ErrWriterDead
	}
	return nil
}
