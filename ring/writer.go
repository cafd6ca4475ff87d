package ring

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/sensorbus/sensorbus/internal/clock"
	"github.com/sensorbus/sensorbus/internal/sys"
)

// Writer publishes samples into a ring. It never waits for readers: each
// sample overwrites the oldest slot.
//
// A Writer is owned by one goroutine: Publish, Reserve, Commit, Abort,
// Heartbeat and Close must not be called concurrently.
type Writer struct {
	path, wakePath string
	fd, wakeFD     int
	mem, wakeMem   []byte
	geo            geometry
	hdr            Header
	mask           uint64

	cursor    split64 // samples published, shared
	heartbeat *uint32 // ms, see layout.go
	closedW   *uint32
	waiting   *uint32 // in the wake file
	wakeSeq   *uint32 // in the wake file

	next      uint64 // samples published; the writer's own copy of cursor
	ahead     bool   // prefetch the slot prefetchDistance samples ahead
	lastBeat  int64  // Mono of the last heartbeat Publish stored
	beatEvery int64
	reserved  bool
	fence     uint32 // process-local word for writeFence
	closed    bool
}

// Create makes a new ring as described by cfg and returns its Writer.
// If a live writer already owns cfg.Name it fails with a *BusyError
// (errors.Is ErrBusy); the files of a dead writer are replaced.
func Create(cfg Config) (*Writer, error) {
	page := sys.PageSize()
	geo, err := cfg.validate(page)
	if err != nil {
		return nil, err
	}
	dir := cfg.Dir
	if dir == "" {
		dir = DefaultDir
	}
	mode := cfg.Mode
	if mode == 0 {
		mode = 0o600
	}
	gen, err := newGeneration()
	if err != nil {
		return nil, err
	}
	pid := os.Getpid()
	start, err := processStart(pid)
	if err != nil {
		return nil, errorf("read own start time: %v", err)
	}
	w := &Writer{
		path:     filepath.Join(dir, cfg.Name),
		wakePath: filepath.Join(dir, cfg.Name+WakeSuffix),
		fd:       -1,
		wakeFD:   -1,
		geo:      geo,
		mask:     uint64(geo.slotCount - 1),
		hdr: Header{
			SlotSize:          geo.slotSize,
			Slots:             geo.slotCount,
			SchemaName:        cfg.SchemaName,
			SchemaFingerprint: cfg.SchemaFingerprint,
			Generation:        gen,
			CreatedUnixNano:   time.Now().UnixNano(),
			WriterPID:         pid,
			WriterStart:       start,
			Size:              geo.totalSize,
		},
		beatEvery: int64(cfg.HeartbeatInterval),
	}
	if w.beatEvery == 0 {
		w.beatEvery = int64(100 * time.Millisecond)
	}
	if hasPrefetchW && geo.slotCount >= 4*prefetchDistance {
		w.ahead = true
	}
	ok := false
	defer func() {
		if !ok {
			w.release()
		}
	}()

	w.wakeFD, w.wakeMem, err = newFile(dir, wakeMode(mode), page)
	if err != nil {
		return nil, errorf("create wake file in %s: %v", dir, err)
	}
	copy(w.wakeMem[offWakeMagic:], wakeMagic)
	binary.LittleEndian.PutUint32(w.wakeMem[offWakeVersion:], version)
	binary.LittleEndian.PutUint64(w.wakeMem[offWakeGen:], gen)
	w.waiting = u32(w.wakeMem, offWaiting)
	w.wakeSeq = u32(w.wakeMem, offWakeSeq)

	w.fd, w.mem, err = newFile(dir, mode, geo.totalSize)
	if err != nil {
		return nil, errorf("create segment in %s: %v", dir, err)
	}
	writeHeader(w.mem, geo, &w.hdr)
	w.cursor = newSplit64(w.mem, offCursor)
	w.heartbeat = u32(w.mem, offHeartbeat)
	w.closedW = u32(w.mem, offClosed)
	w.lastBeat = clock.Mono()
	storeBeat(w.heartbeat, w.lastBeat)

	// The wake file first: once the ring file has its name, readers find
	// everything in place. A live writer holds its wake file locked too,
	// so a busy topic is refused here.
	if err := install(w.wakeFD, w.wakePath); err != nil {
		w.wakePath = "" // not ours to unlink
		var be *BusyError
		if errors.As(err, &be) {
			// The pid is in the ring file's header, not the wake file's.
			be.Path, be.PID = w.path, pidOf(w.path)
		}
		return nil, err
	}
	if err := install(w.fd, w.path); err != nil {
		w.path = ""
		return nil, err
	}
	ok = true
	return w, nil
}

// release unlinks the names this writer installed, unmaps and closes.
// Holding the writer lock, it cannot race another writer or a remover.
func (w *Writer) release() {
	for _, f := range []struct {
		path string
		fd   int
	}{{w.path, w.fd}, {w.wakePath, w.wakeFD}} {
		if f.path != "" && f.fd >= 0 && sameFile(f.fd, f.path) {
			sys.Unlink(f.path)
		}
	}
	if w.mem != nil {
		sys.Munmap(w.mem)
		w.mem = nil
	}
	if w.wakeMem != nil {
		sys.Munmap(w.wakeMem)
		w.wakeMem = nil
	}
	for _, fd := range []int{w.fd, w.wakeFD} {
		if fd >= 0 {
			sys.Close(fd) // releases the locks
		}
	}
	w.fd, w.wakeFD = -1, -1
}

// Path returns the ring file's path.
func (w *Writer) Path() string { return w.path }

// Header returns the ring's static description.
func (w *Writer) Header() Header { return w.hdr }

// Prefault faults in every page of the ring, so that publishing takes no
// page fault. Call it before a real-time loop (with rt.LockMemory).
func (w *Writer) Prefault() error {
	if w.closed {
		return ErrClosed
	}
	return sys.Prefault(w.mem, true)
}

// SlotSize returns the largest payload a sample may have.
func (w *Writer) SlotSize() int { return w.geo.slotSize }

// Published returns the number of samples published so far.
func (w *Writer) Published() uint64 { return w.next }

func (w *Writer) slot(i uint64) slotRef {
	return slotAt(w.mem, headerSize+int(i&w.mask)*w.geo.slotStride)
}

// Publish copies p into the next slot and makes it visible to readers.
// A p larger than the slot gives ErrTooLarge and writes nothing.
// It never blocks, allocates or makes a system call unless a reader is
// sleeping in a blocking wait.
func (w *Writer) Publish(p []byte) error {
	if len(p) > w.geo.slotSize {
		return ErrTooLarge
	}
	if w.reserved || w.closed {
		return w.stateErr()
	}
	s := w.slot(w.next)
	seq := w.begin(s)
	copy(s.data(len(p)), p)
	w.commit(s, seq, len(p))
	return nil
}

// Reserve opens the next slot for writing in place and returns its whole
// payload area (Header().SlotSize bytes). Readers of that slot wait until
// Commit or Abort. Write at most that many bytes, then Commit(n).
//
// The slot's previous sample is gone from the moment of Reserve; after an
// Abort readers that had not read it count it as lost.
func (w *Writer) Reserve() ([]byte, error) {
	if w.reserved || w.closed {
		return nil, w.stateErr()
	}
	s := w.slot(w.next)
	w.begin(s)
	w.reserved = true
	return s.data(w.geo.slotSize), nil
}

// Commit publishes the first n bytes of the reserved slot.
func (w *Writer) Commit(n int) error {
	if !w.reserved {
		return ErrNoReservation
	}
	if n < 0 || n > w.geo.slotSize {
		return ErrTooLarge
	}
	w.reserved = false
	s := w.slot(w.next)
	w.commit(s, atomic.LoadUint32(s.seq())-1, n)
	return nil
}

// Abort closes the reservation without publishing. The sample the slot
// held before Reserve is lost (readers count it); the cursor stays.
func (w *Writer) Abort() error {
	if !w.reserved {
		return ErrNoReservation
	}
	w.reserved = false
	s := w.slot(w.next)
	odd := atomic.LoadUint32(s.seq())
	if odd == 1 {
		// The slot was never written: it goes back to empty. A reader
		// that saw seq 0 read nothing, so the reuse of 0 is harmless.
		atomic.StoreUint32(s.seq(), 0)
		return nil
	}
	s.setLength(voidLen) // index stays: the lost sample is the old one
	atomic.StoreUint32(s.seq(), evenAfter(odd-1))
	return nil
}

func (w *Writer) stateErr() error {
	if w.closed {
		return ErrClosed
	}
	return ErrReserved
}

// evenAfter returns the even sequence that follows the odd seq+1.
// Zero is skipped: it means "never written".
func evenAfter(seq uint32) uint32 {
	if seq+2 == 0 {
		return 2
	}
	return seq + 2
}

// begin marks slot s as being written and returns its previous sequence.
func (w *Writer) begin(s slotRef) uint32 {
	seq := atomic.LoadUint32(s.seq()) // only this writer stores it
	storeRelease(s.seq(), seq+1)      // odd: readers of this slot retry from here on
	writeFence(&w.fence)              // the odd seq is visible before any payload store
	return seq
}

// commit fills in slot s's metadata, closes the seqlock, advances the
// cursor and wakes sleeping readers.
func (w *Writer) commit(s slotRef, seq uint32, n int) {
	now := clock.Mono()
	s.setLength(uint32(n))
	s.setIndex(w.next)
	s.setTime(now)
	storeRelease(s.seq(), evenAfter(seq)) // release: payload and metadata are visible before the even seq

	prev := w.next
	w.next++
	w.cursor.store(w.next, prev) // release: the slot is complete before the cursor counts it
	if w.ahead {
		prefetchw(w.slot(w.next+prefetchDistance).p, sampleLines(n))
	}

	// After the cursor store, so that a reader which announced itself
	// before reading the cursor is seen here (both sides store, then
	// load; sync/atomic is sequentially consistent).
	if atomic.LoadUint32(w.waiting) != 0 {
		w.wake()
	}
	if now-w.lastBeat >= w.beatEvery {
		storeBeat(w.heartbeat, now)
		w.lastBeat = now
	}
}

// A slot's lines that readers have read are theirs, shared, until the
// writer takes them back for ownership; with readers on other cores each
// take-back is a cross-core transfer, and the store buffer hides only a
// few of them: with 4 spinning readers attached the writer spent 108 ns
// per 64-byte publish instead of 40 on the 2-vCPU VM. So after each sample
// it asks for ownership of the slot prefetchDistance samples ahead, which
// overlaps those transfers with the publishes in between: 42.4 ns with 4
// readers, 41.0 alone (BenchmarkThroughput, slots=4096, medians of 5).
// Distances of 2, 3, 6 and 8 samples did no better. A ring of 256 slots
// still costs 50 ns with readers: readers that cannot keep up with a
// writer publishing flat out are lapped every hundred or so samples and
// restart an eighth of the ring past the oldest sample (Reader.lapped),
// just ahead of the writer, where they hold the lines it takes next. The
// slot ahead holds a sample about to be overwritten, so a reader still
// reading it loses little; rings of fewer than 4*prefetchDistance slots
// skip it, since there it may be a slot a keeping-up reader is reading.
// Only the lines this sample used are prefetched, assuming the next ones
// are alike, and no more than prefetchBytes: larger payloads are copied in
// long runs the CPU's own prefetchers follow.
const (
	prefetchDistance = 4
	prefetchBytes    = 256
)

// sampleLines returns how many cache lines from a slot's start to
// prefetch for a sample of n bytes.
func sampleLines(n int) int {
	return (min(slotOffData+n, prefetchBytes) + 63) / 64
}

// wake wakes every reader sleeping in a blocking wait.
func (w *Writer) wake() {
	atomic.StoreUint32(w.waiting, 0)
	atomic.AddUint32(w.wakeSeq, 1) // a reader about to sleep on the old value returns at once
	sys.FutexWake(w.wakeSeq)
}

// Heartbeat records that the writer is alive. Publish does it too; call it
// at least every heartbeat interval while not publishing, so readers can
// tell a quiet writer from a hung one. Unlike the other methods it is safe
// to call from any goroutine, concurrently with Publish.
func (w *Writer) Heartbeat() {
	if w.heartbeat != nil {
		storeBeat(w.heartbeat, clock.Mono())
	}
}

// storeBeat stores a heartbeat: CLOCK_MONOTONIC in milliseconds, modulo
// 2^32. One 32-bit word, so concurrent stores are safe; ages computed by
// wrapping subtraction are right up to 49 days.
func storeBeat(p *uint32, mono int64) {
	atomic.StoreUint32(p, uint32(mono/1e6)) // no ordering needed: a timestamp on its own
}

// beatAge returns the time since the heartbeat stored in p.
func beatAge(p *uint32) time.Duration {
	return time.Duration(uint32(clock.Mono()/1e6)-atomic.LoadUint32(p)) * time.Millisecond
}

// ReaderFiles opens the ring again for a reader in another process, as a
// read-only file and a read-write wake file, for passing over a Unix
// socket. The caller closes them.
func (w *Writer) ReaderFiles() (ringFile, wakeFile *os.File, err error) {
	if w.closed {
		return nil, nil, ErrClosed
	}
	rfd, err := sys.Reopen(w.fd, false)
	if err != nil {
		return nil, nil, err
	}
	wfd, err := sys.Reopen(w.wakeFD, true)
	if err != nil {
		sys.Close(rfd)
		return nil, nil, err
	}
	return os.NewFile(uintptr(rfd), w.path), os.NewFile(uintptr(wfd), w.wakePath), nil
}

// Close marks the ring closed, wakes sleeping readers, removes the files'
// names, and releases the mapping and locks. Readers still attached drain
// what is left and then get ErrWriterClosed.
func (w *Writer) Close() error {
	if w.closed {
		return ErrClosed
	}
	if w.reserved {
		w.Abort()
	}
	w.closed = true
	atomic.StoreUint32(w.closedW, 1) // after the last cursor store: a reader seeing it sees every sample
	w.wake()
	w.release()
	return nil
}
