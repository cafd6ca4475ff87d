package ring

// This file is the only one in package ring that makes pointers into the
// shared mapping. It is safe because:
//
//   - every mapping is created by mmap with a length checked against the
//     validated header (parseHeader) and never resized while mapped;
//   - every offset used here is a constant from layout.go or a slot offset
//     computed from geometry held in process-local memory (never re-read
//     from the mapping, which a faulty writer could change), masked to the
//     slot count, so no access leaves the mapping;
//   - every field accessed atomically is a 4-byte aligned uint32 (header
//     offsets are multiples of 4; slots start on 64-byte boundaries of a
//     page-aligned mapping). No 64-bit atomic is used on shared memory.
//
// Fields that change while other processes read them are accessed only
// through sync/atomic; each access says what it orders with.

import (
	"sync/atomic"
	"unsafe"
)

// u32 returns a pointer to the uint32 at off in b.
func u32(b []byte, off int) *uint32 {
	_ = b[off+3]
	return (*uint32)(unsafe.Pointer(&b[off]))
}

// prefetchwWord asks for ownership of the cache line holding the word at
// p (a hint: it changes nothing and orders nothing).
func prefetchwWord(p *uint32) { prefetchw(unsafe.Pointer(p), 1) }

// split64 is a 64-bit counter in shared memory that only one process
// writes, made of three 32-bit words: hi1, lo, hi2. 64-bit atomics are not
// atomic across processes on 32-bit ARM before ARMv7 (Go emulates them
// with a process-local lock), so the value is published word by word:
//
//	writer (when the high word changes): hi1 = new hi; lo = new lo; hi2 = new hi
//	writer (otherwise):                  lo = new lo
//	reader: h2 = hi2; l = lo; h1 = hi1; retry unless h1 == h2
//
// The reader loads in the opposite order from the writer's stores. If it
// sees a new lo it also sees the hi1 stored before it (acquire after
// release), so h1 is new; if h2 is old too the pair mismatches and it
// retries. If it sees the old lo, h1 == h2 (both old or both new) gives a
// value the counter really held. Sync/atomic accesses are sequentially
// consistent on every Go port, which covers these orders.
type split64 struct {
	hi1, lo, hi2 *uint32
}

func newSplit64(b []byte, off int) split64 {
	return split64{hi1: u32(b, off), lo: u32(b, off+4), hi2: u32(b, off+8)}
}

// store publishes v; prev is the value last stored (writer's own copy).
func (s split64) store(v, prev uint64) {
	if v>>32 != prev>>32 {
		atomic.StoreUint32(s.hi1, uint32(v>>32)) // before lo: a reader seeing the new lo sees this
		atomic.StoreUint32(s.lo, uint32(v))
		atomic.StoreUint32(s.hi2, uint32(v>>32)) // after lo: a reader seeing this sees the new lo
		return
	}
	atomic.StoreUint32(s.lo, uint32(v)) // release: the slot published under v is visible first
}

// load returns the counter's value. It never waits for the writer: after
// a few mismatched tries (a writer stopped or killed between its stores of
// hi1 and hi2, or a corrupt segment) it decides from what it read. If the
// high words differ by one, the counter moved by one across a wrap of lo
// (a sample published): a lo in the lower half was stored after hi1 (new),
// one in the upper half before hi2 (old), and the value is exact. Any
// other difference is a jump (Writer.Skip), and lo is paired with the
// smaller high word: the value may be too small, never too large, so a
// reader waits for a sample it will find in its slot instead of skipping
// samples that were never lost. (A jump of 2^31 samples or more that
// changes the high word by exactly one looks like a wrap; no relay skips
// that much at once.)
func (s split64) load() uint64 {
	var h1, l, h2 uint32
	for range 8 {
		h2 = atomic.LoadUint32(s.hi2) // first: pairs with the writer's last store
		l = atomic.LoadUint32(s.lo)
		h1 = atomic.LoadUint32(s.hi1) // last: pairs with the writer's first store
		if h1 == h2 {
			return uint64(h1)<<32 | uint64(l)
		}
	}
	if h1 == h2+1 && l < 1<<31 {
		return uint64(h1)<<32 | uint64(l)
	}
	return uint64(min(h1, h2))<<32 | uint64(l)
}

// slotRef addresses one slot in the mapping.
type slotRef struct {
	p unsafe.Pointer // start of the slot
}

func slotAt(b []byte, off int) slotRef {
	_ = b[off+slotOffData-1]
	return slotRef{p: unsafe.Pointer(&b[off])}
}

func (s slotRef) seq() *uint32 { return (*uint32)(s.p) }

// The fields below are read by readers with plain loads between two loads
// of seq and trusted only if seq did not change (the seqlock); the writer
// stores them only while seq is odd.

func (s slotRef) length() uint32 { return *(*uint32)(unsafe.Add(s.p, slotOffLen)) }
func (s slotRef) index() uint64  { return *(*uint64)(unsafe.Add(s.p, slotOffIndex)) }
func (s slotRef) time() int64    { return *(*int64)(unsafe.Add(s.p, slotOffTime)) }

func (s slotRef) setLength(n uint32) { *(*uint32)(unsafe.Add(s.p, slotOffLen)) = n }
func (s slotRef) setIndex(i uint64)  { *(*uint64)(unsafe.Add(s.p, slotOffIndex)) = i }
func (s slotRef) setTime(t int64)    { *(*int64)(unsafe.Add(s.p, slotOffTime)) = t }

// data returns the slot's payload area of n bytes.
func (s slotRef) data(n int) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(s.p, slotOffData)), n)
}

// Fences.
//
// A seqlock needs two orders that sync/atomic alone does not give on weak
// memory models:
//
//   writer: the store making seq odd must be visible before any payload
//           store (StoreStore after the odd store);
//   reader: every payload load must complete before seq is loaded again
//           (LoadLoad before the second seq load).
//
// On arm64, atomic.Store is STLR (release: orders earlier accesses only)
// and atomic.Load is LDAR (acquire: orders later accesses only), so a plain
// payload store may pass the odd STLR, and a plain payload load may pass
// the second LDAR. ARMv8 does order a release followed by an acquire
// (RCsc), which both fences below use:
//
//   writeFence: STLR seq(odd) ; LDAR local ; payload stores
//     the LDAR cannot pass the STLR, and the payload stores cannot pass the
//     LDAR, so the odd seq is ordered before the payload.
//   readFence:  payload loads ; STLR local ; LDAR seq
//     the payload loads cannot pass the STLR, and the STLR cannot pass the
//     LDAR, so the payload is read before seq is re-read.
//
// On 32-bit ARM atomic.Store is DMB; STR; DMB (or the kernel's barrier
// helper before ARMv7) and atomic.Load is LDR; DMB: the odd store's
// trailing barrier orders it before the payload, and readFence's leading
// barrier orders the payload loads before the seq load. On amd64 and 386
// (TSO) stores are not reordered with stores nor loads with loads, so the
// fences only need to stop the compiler. writeFence costs one uncontended
// load of a process-local word. On amd64 readFence is an empty assembly
// function (store_amd64.s), and the writer's seq stores use storeRelease,
// a plain MOV: sync/atomic's store there is XCHG, a full barrier, which in
// the reader cost about 50 ns a sample (BenchmarkRoundTrip, ring round
// trip 771 -> 671 ns p50) and in the writer a wait for every slot line.
//
// The word is process-local (a field of the Writer or Reader), so the fence
// never contends with another core. The fences are kept by the compiler:
// atomic operations are never eliminated, and both they and calls to
// assembly functions act as compiler barriers.

// writeFence orders a preceding atomic store before later plain stores.
func writeFence(local *uint32) { _ = atomic.LoadUint32(local) }
