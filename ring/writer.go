package ring

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sensorbus/sensorbus/internal/clock"
	"github.com/sensorbus/sensorbus/internal/sys"
)

// Writer publishes samples into a ring. It never waits for readers: each
// sample overwrites the oldest slot.
//
// Publish, Reserve, Commit, Abort, Skip and Prefault belong to one
// goroutine, the writer's. Close, Heartbeat, Status, ReaderFiles, Header,
// SlotSize and Path may be called from any goroutine, also while the
// writer's goroutine publishes: Close then waits for nothing, and a
// Publish running meanwhile completes into memory that is no longer the
// ring's (see Close). After Close every method returns ErrClosed or does
// nothing; none touches the ring.
//
// The writer keeps what it needs (cursor, each slot's sequence) in its own
// memory and only ever stores to the ring, so nothing in the ring, whoever
// changed it, can make it misbehave.
type Writer struct {
	path, wakePath string // "" for an anonymous ring
	mem, wakeMem   []byte
	geo            geometry
	hdr            Header
	mask           uint64

	cursor    split64 // samples published, shared
	heartbeat *uint32 // ms, see layout.go
	closedW   *uint32
	waiting   *uint32 // in the wake area
	wakeSeq   *uint32 // in the wake area

	seqs      []uint32 // each slot's sequence as last stored
	next      uint64   // samples published; the writer's own copy of cursor
	ahead     bool     // prefetch the slot prefetchDistance samples ahead
	woke      bool     // the last commit found a reader asleep: one likely sleeps again
	lastBeat  int64    // Mono of the last heartbeat Publish stored
	beatEvery int64
	reserved  bool
	fence     uint32 // process-local word for writeFence

	closed   atomic.Bool
	mu       sync.Mutex // orders Close with ReaderFiles
	fd       int        // under mu; -1 once closed
	wakeFD   int        // under mu
	released bool       // under mu
}

// Create makes a new ring as described by cfg and returns its Writer.
// For a named ring, if a live writer already owns cfg.Name it fails with a
// *BusyError (errors.Is ErrBusy); the files of a dead writer are replaced.
// A ring larger than the memory the process may still use fails with a
// *MemoryError (errors.Is ErrNoMemory): its memory is reserved here, so a
// ring that was created never faults for want of memory later.
func Create(cfg Config) (*Writer, error) {
	page := sys.PageSize()
	geo, err := cfg.validate(page)
	if err != nil {
		return nil, err
	}
	gen, err := newGeneration()
	if err != nil {
		return nil, err
	}
	pid := os.Getpid()
	start, err := processStart(pid)
	if err != nil {
		return nil, fmt.Errorf("ring: read own start time: %w", err)
	}
	w := &Writer{
		fd:     -1,
		wakeFD: -1,
		geo:    geo,
		mask:   uint64(geo.slotCount - 1),
		seqs:   make([]uint32, geo.slotCount),
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
		beatEvery: int64(cmp.Or(cfg.HeartbeatInterval, DefaultHeartbeatInterval)),
	}
	if hasPrefetchW && geo.slotCount >= 4*prefetchDistance {
		w.ahead = true
	}
	if cfg.Name == "" {
		err = w.createAnonymous(page)
	} else {
		err = w.createNamed(cfg, page)
	}
	if err != nil {
		w.release()
		return nil, err
	}
	return w, nil
}

// createAnonymous makes the ring and its wake area as sealed memory files.
// The ring is sealed against shrinking, growing and any new write access:
// only this writer's mapping, made before the seal, can change it. The
// wake area stays writable (blocking readers store their request for a
// wake-up there) but cannot change size, so no process can make another
// one fault on it.
func (w *Writer) createAnonymous(page int) (err error) {
	w.wakeFD, w.wakeMem, err = newMemfd("sensorbus-wake", page)
	if err != nil {
		return fmt.Errorf("ring: create wake area: %w", err)
	}
	w.initWake()
	// memfds are made 0777; 0600 keeps other users from re-opening one
	// they were handed through /proc (the seals would stop them anyway).
	if err := sys.Fchmod(w.wakeFD, 0o600); err != nil {
		return fmt.Errorf("ring: chmod wake area: %w", err)
	}
	if err := sys.AddSeals(w.wakeFD, sys.SealShrink|sys.SealGrow|sys.SealSeal); err != nil {
		return fmt.Errorf("ring: seal wake area: %w", err)
	}
	w.fd, w.mem, err = newMemfd("sensorbus-ring", w.geo.totalSize)
	if err != nil {
		return fmt.Errorf("ring: create ring: %w", err)
	}
	w.initRing()
	if err := sys.Fchmod(w.fd, 0o600); err != nil {
		return fmt.Errorf("ring: chmod ring: %w", err)
	}
	if err := sys.AddSeals(w.fd, sys.SealShrink|sys.SealGrow|sys.SealFutureWrite|sys.SealSeal); err != nil {
		return fmt.Errorf("ring: seal ring: %w", err)
	}
	return nil
}

// createNamed makes the ring and wake files in cfg.Dir and gives them
// their names.
func (w *Writer) createNamed(cfg Config, page int) (err error) {
	dir := cmp.Or(cfg.Dir, DefaultDir)
	perm := cmp.Or(cfg.Perm, DefaultPerm)
	path, wakePath := filepath.Join(dir, cfg.Name), filepath.Join(dir, cfg.Name+WakeSuffix)
	w.wakeFD, w.wakeMem, err = newFile(dir, wakePerm(perm), page)
	if err != nil {
		return fmt.Errorf("ring: create wake file in %s: %w", dir, err)
	}
	w.initWake()
	w.fd, w.mem, err = newFile(dir, perm, w.geo.totalSize)
	if err != nil {
		return fmt.Errorf("ring: create segment in %s: %w", dir, err)
	}
	w.initRing()

	// The wake file first: once the ring file has its name, readers find
	// everything in place. A live writer holds its wake file locked too,
	// so a busy topic is refused here.
	if err := install(w.wakeFD, wakePath); err != nil {
		var be *BusyError
		if errors.As(err, &be) {
			// The pid is in the ring file's header, not the wake file's.
			be.Path, be.PID = path, pidOf(path)
		}
		return err
	}
	w.wakePath = wakePath
	if err := install(w.fd, path); err != nil {
		return err
	}
	w.path = path
	return nil
}

func (w *Writer) initWake() {
	copy(w.wakeMem[offWakeMagic:], wakeMagic)
	binary.LittleEndian.PutUint32(w.wakeMem[offWakeVersion:], version)
	binary.LittleEndian.PutUint64(w.wakeMem[offWakeGen:], w.hdr.Generation)
	w.waiting = u32(w.wakeMem, offWaiting)
	w.wakeSeq = u32(w.wakeMem, offWakeSeq)
}

func (w *Writer) initRing() {
	writeHeader(w.mem, w.geo, &w.hdr)
	w.cursor = newSplit64(w.mem, offCursor)
	w.heartbeat = u32(w.mem, offHeartbeat)
	w.closedW = u32(w.mem, offClosed)
	w.lastBeat = clock.Mono()
	storeBeat(w.heartbeat, w.lastBeat)
}

// release unlinks the names this writer installed, takes the ring's memory
// away from this process and closes the descriptors (releasing the locks).
// Holding the writer lock, it cannot race another writer or a remover.
// The mappings are replaced by private memory rather than unmapped, so
// that a Publish still running in the writer's goroutine never faults;
// the address range is unmapped once the Writer is garbage.
func (w *Writer) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range []struct {
		path string
		fd   int
	}{{w.path, w.fd}, {w.wakePath, w.wakeFD}} {
		if f.path != "" && f.fd >= 0 && sameFile(f.fd, f.path) {
			sys.Unlink(f.path)
		}
	}
	if w.released {
		return
	}
	w.released = true
	if kept := [2][]byte{retire(w.mem), retire(w.wakeMem)}; kept[0] != nil || kept[1] != nil {
		runtime.AddCleanup(w, unmap, kept)
	}
	for _, fd := range []int{w.fd, w.wakeFD} {
		if fd >= 0 {
			sys.Close(fd)
		}
	}
	w.fd, w.wakeFD = -1, -1
}

// retire makes the mapping m private memory of this process: whatever
// still reads or writes it is cut off from the ring and never faults. It
// returns m, to be unmapped later. Should the kernel refuse, m is unmapped
// at once (better a fault in a caller that broke the rules than a ring
// kept mapped) and retire returns nil.
func retire(m []byte) []byte {
	if m == nil {
		return nil
	}
	if err := sys.RemapAnonymous(m); err != nil {
		sys.Munmap(m)
		return nil
	}
	return m
}

func unmap(ms [2][]byte) {
	for _, m := range ms {
		if m != nil {
			sys.Munmap(m)
		}
	}
}

// Path returns a named ring's file path; "" for an anonymous ring.
func (w *Writer) Path() string { return w.path }

// Header returns the ring's static description.
func (w *Writer) Header() Header { return w.hdr }

// Prefault faults in every page of the ring, so that publishing takes no
// page fault. Call it before a real-time loop (with rt.LockMemory).
func (w *Writer) Prefault() error {
	if w.closed.Load() {
		return ErrClosed
	}
	return sys.Prefault(w.mem, true)
}

// SlotSize returns the largest payload a sample may have.
func (w *Writer) SlotSize() int { return w.geo.slotSize }

// Published returns the number of samples published so far. It belongs to
// the writer's goroutine; from others, use Status.
func (w *Writer) Published() uint64 { return w.next }

// WriterStatus is what Writer.Status reports.
type WriterStatus struct {
	Published uint64 // samples published, as readers see the cursor
	Closed    bool
}

// Status reports the ring as readers see it. Unlike Published it may be
// called from any goroutine.
func (w *Writer) Status() WriterStatus {
	if w.closed.Load() {
		return WriterStatus{Closed: true}
	}
	// The cursor is the writer's own store; a load of it races with
	// nothing but a Close, whose retired mapping reads as zero.
	return WriterStatus{Published: w.cursor.load()}
}

func (w *Writer) slot(i uint64) slotRef {
	return slotAt(w.mem, headerSize+int(i&w.mask)*w.geo.slotStride)
}

// Payloads of at least ntBytes may be copied with non-temporal stores
// (Go's memmove on amd64 uses them from 1 MiB), which x86 does not order
// after earlier stores: without a store fence a reader could see new
// payload bytes before the odd sequence that announces them, and accept a
// torn sample. The fence costs far less than such a copy.
const ntBytes = 64 << 10

// Publish copies p into the next slot and makes it visible to readers.
// A p larger than the slot gives ErrTooLarge and writes nothing.
// It never blocks, allocates or makes a system call unless a reader is
// sleeping in a blocking wait.
func (w *Writer) Publish(p []byte) error {
	if len(p) > w.geo.slotSize {
		return ErrTooLarge
	}
	if w.reserved || w.closed.Load() {
		return w.stateErr()
	}
	i := w.next & w.mask
	s := w.slot(w.next)
	seq := w.begin(s, i)
	if len(p) >= ntBytes {
		storeFence()
	}
	copy(s.data(len(p)), p)
	w.commit(s, i, seq, len(p))
	return nil
}

// Reserve opens the next slot for writing in place and returns its whole
// payload area (Header().SlotSize bytes). Readers of that slot wait until
// Commit or Abort. Write at most that many bytes, then Commit(n). The
// area must not be used after Commit, Abort or Close.
//
// The slot's previous sample is gone from the moment of Reserve; after an
// Abort readers that had not read it count it as lost.
func (w *Writer) Reserve() ([]byte, error) {
	if w.reserved || w.closed.Load() {
		return nil, w.stateErr()
	}
	s := w.slot(w.next)
	w.begin(s, w.next&w.mask)
	if w.geo.slotSize >= ntBytes {
		storeFence()
	}
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
	if w.closed.Load() {
		return ErrClosed
	}
	i := w.next & w.mask
	if w.geo.slotSize >= ntBytes {
		storeFence() // the caller's copy may have been non-temporal too
	}
	w.commit(w.slot(w.next), i, w.seqs[i]-1, n)
	return nil
}

// Abort closes the reservation without publishing. The sample the slot
// held before Reserve is lost (readers count it); the cursor stays.
func (w *Writer) Abort() error {
	if !w.reserved {
		return ErrNoReservation
	}
	w.reserved = false
	if w.closed.Load() {
		return ErrClosed
	}
	i := w.next & w.mask
	s := w.slot(w.next)
	if odd := w.seqs[i]; odd == 1 {
		// The slot was never written: it goes back to empty. A reader
		// that saw seq 0 read nothing, so the reuse of 0 is harmless.
		w.seqs[i] = 0
	} else {
		s.setLength(voidLen) // index stays: the lost sample is the old one
		w.seqs[i] = evenAfter(odd - 1)
	}
	storeRelease(s.seq(), w.seqs[i])
	return nil
}

// Skip accounts the next n samples as lost without publishing them:
// readers count them in Sample.Lost and their lost totals, as if they had
// been overwritten. It serves writers that relay samples from elsewhere
// (a bridge, a replay) and know that some never reached them. It costs a
// slot write per skipped sample, at most a ring's worth: of a longer gap
// only the last ring's worth is written, and a reader wanting a sample
// before it finds its slot holding a newer one and counts the gap as lost
// all the same.
func (w *Writer) Skip(n uint64) error {
	if w.reserved || w.closed.Load() {
		return w.stateErr()
	}
	stored := w.next // the cursor as last stored
	if slots := uint64(w.geo.slotCount); n > slots {
		// The cursor jumps at the first store below; a reader seeing a
		// slot's void sample ahead of the cursor it loaded waits for it.
		w.next += n - slots
		n = slots
	}
	now := clock.Mono()
	for range n {
		i := w.next & w.mask
		s := w.slot(w.next)
		seq := w.begin(s, i)
		s.setLength(voidLen)
		s.setIndex(w.next)
		s.setTime(now)
		w.seqs[i] = evenAfter(seq)
		storeRelease(s.seq(), w.seqs[i]) // release: length and index are visible before the even seq
		w.next++
		w.cursor.store(w.next, stored) // release: each void sample is counted once complete
		stored = w.next
	}
	if n > 0 && atomic.LoadUint32(w.waiting) != 0 {
		w.wake()
	}
	return nil
}

func (w *Writer) stateErr() error {
	if w.closed.Load() {
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

// begin marks slot s (index i) as being written and returns its previous
// sequence.
func (w *Writer) begin(s slotRef, i uint64) uint32 {
	seq := w.seqs[i]
	w.seqs[i] = seq + 1
	storeRelease(s.seq(), seq+1) // odd: readers of this slot retry from here on
	writeFence(&w.fence)         // the odd seq is visible before any payload store
	if w.woke {
		// A reader going back to sleep stored its waiting flag in the
		// wake area's line, which commit loads and then writes: ask for
		// that line now, so it arrives during the copy rather than on
		// the way to the futex wake (see wake).
		prefetchwWord(w.waiting)
	}
	return seq
}

// commit fills in slot s's metadata, closes the seqlock, advances the
// cursor and wakes sleeping readers.
func (w *Writer) commit(s slotRef, i uint64, seq uint32, n int) {
	now := clock.Mono()
	s.setLength(uint32(n))
	s.setIndex(w.next)
	s.setTime(now)
	w.seqs[i] = evenAfter(seq)
	storeRelease(s.seq(), w.seqs[i]) // release: payload and metadata are visible before the even seq

	prev := w.next
	w.next++
	w.cursor.store(w.next, prev) // release: the slot is complete before the cursor counts it
	if w.ahead {
		prefetchw(w.slot(w.next+prefetchDistance).p, sampleLines(n))
	}

	// After the cursor store, so that a reader which announced itself
	// before reading the cursor is seen here (both sides store, then
	// load; sync/atomic is sequentially consistent).
	w.woke = atomic.LoadUint32(w.waiting) != 0
	if w.woke {
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
// restart up to an eighth of the ring past the oldest sample (Reader.lapped),
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
//
// This is the path from a sample to a sleeping reader, and it is kept
// short: waiting and wakeSeq share one cache line, which begin has
// already asked for when a reader slept last time (on the 2-vCPU VM the
// line otherwise crosses between the cores twice here, once for the load
// of waiting and once more for these stores), and FUTEX_WAKE, which never
// blocks, is made without the Go runtime's bookkeeping for a system call
// that might (sys.FutexWakeRaw).
func (w *Writer) wake() {
	atomic.StoreUint32(w.waiting, 0)
	atomic.AddUint32(w.wakeSeq, 1) // a reader about to sleep on the old value returns at once
	sys.FutexWakeRaw(w.wakeSeq)
}

// Heartbeat records that the writer is alive. Publish does it too; call it
// at least every heartbeat interval while not publishing, so readers can
// tell a quiet writer from a hung one. It may be called from any
// goroutine, concurrently with Publish and Close.
func (w *Writer) Heartbeat() {
	if !w.closed.Load() {
		storeBeat(w.heartbeat, clock.Mono()) // after a concurrent Close: into retired memory
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
// read-only ring and a read-write wake area, for passing over a Unix
// socket. The caller closes them. What a reader can do with them: map and
// read the ring; store to the wake area, which at worst wakes readers late
// or for nothing. For an anonymous ring it cannot change either's size,
// write the ring or map it writable (the seals forbid it even to the
// writer's own uid), and no lock it takes means anything to anyone.
func (w *Writer) ReaderFiles() (ringFile, wakeFile *os.File, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fd < 0 {
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
	name, wakeName := w.path, w.wakePath
	if name == "" {
		name, wakeName = "sensorbus-ring", "sensorbus-wake"
	}
	return os.NewFile(uintptr(rfd), name), os.NewFile(uintptr(wfd), wakeName), nil
}

// Close marks the ring closed, wakes sleeping readers, removes a named
// ring's files, and releases the ring and the locks. Readers still
// attached drain what is left and then get ErrWriterClosed (a named ring)
// or end when told the writer is gone (an anonymous one, see
// Reader.WriterGone). An open reservation is dropped. Close may be called
// from any goroutine: a Publish running meanwhile in the writer's own
// finishes into memory that is no longer the ring's.
func (w *Writer) Close() error {
	if w.closed.Swap(true) {
		return ErrClosed
	}
	atomic.StoreUint32(w.closedW, 1) // after the last cursor store of a Publish that returned: a reader seeing it sees every sample
	w.wake()
	w.release()
	return nil
}
