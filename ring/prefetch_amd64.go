package ring

import "unsafe"

// Prefetching. Moving a slot between the writer's core and a reader's is
// the cost of the ring on a multi-core machine: each cache line a reader
// has read must be taken back for ownership before the writer's stores to
// it complete, and each line the writer has written must travel to the
// reader. Between distant cores that is hundreds of nanoseconds a line,
// so both sides start those transfers early, with prefetch instructions
// that are only hints: they change no value and cannot fault, and a CPU
// may ignore them. See Writer.commit and Reader.Next for what each one
// buys, measured.
//
// Only amd64 prefetches (prefetch_other.go has empty stand-ins): that is
// where the gains were measured; on ARM they are not measured yet.

// hasPrefetchW tells whether the CPU implements PREFETCHW (CPUID
// 0x80000001, ECX bit 8); older Intel CPUs may not.
var hasPrefetchW = cpuidECX(0x80000001)&(1<<8) != 0

// prefetchw asks for ownership of the lines cache lines starting at p.
//
//go:noescape
func prefetchw(p unsafe.Pointer, lines int)

// prefetch asks for a shared copy of the lines cache lines starting at p.
//
//go:noescape
func prefetch(p unsafe.Pointer, lines int)

// cpuidECX returns ECX of CPUID leaf (sub-leaf 0).
func cpuidECX(leaf uint32) uint32
