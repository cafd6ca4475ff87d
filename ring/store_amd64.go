package ring

// storeRelease stores v at p with release ordering: every earlier load and
// store of this thread is visible to other cores before the new value.
//
// On amd64 every plain store has that order (TSO), so this is one MOV.
// sync/atomic's store is XCHG instead, a full barrier that also makes the
// thread wait until the store is globally visible, which costs a cache-line
// transfer whenever a reader on another core holds the slot's line: it
// nearly doubled the writer's time per publish with one spinning reader on a
// 2-vCPU VM (see BenchmarkThroughput). The writer stores a slot's sequence
// with it; only the Dekker handshake with sleeping readers (cursor store,
// then waiting load) needs the full barrier, and keeps sync/atomic.
//
// Being an assembly function, it is never inlined: the call is a compiler
// barrier, so Go cannot move the payload stores across it either.
//
//go:noescape
func storeRelease(p *uint32, v uint32)

// readFence orders the reader's preceding plain loads of a slot before its
// next atomic load of the slot's sequence. x86 never reorders loads with
// loads, so it only has to keep the compiler from doing so, which a call
// to an assembly function does: it is empty (see shm_unsafe.go).
//
//go:noescape
func readFence(local *uint32)

// storeFence orders every earlier store, non-temporal ones included,
// before every later store (SFENCE). Plain stores need no fence on x86;
// non-temporal ones, which memmove uses for large copies, do.
//
//go:noescape
func storeFence()
