// Package clock reads CLOCK_MONOTONIC fast enough to stamp every sample.
//
// Publish timestamps must mean the same in every process on the host, so
// that a subscriber can subtract a publisher's stamp from its own reading.
// time.Now's monotonic reading is relative to the process's start and is
// not exposed; a clock_gettime system call costs far more than a publish.
// The runtime's nanotime is CLOCK_MONOTONIC read through the vDSO on Linux,
// and the runtime keeps its linkname stable on purpose (go.dev/issue/67401).
//
// Mono is safe for concurrent use.
package clock

import (
	"time"
	_ "unsafe" // for go:linkname
)

//go:linkname nanotime runtime.nanotime
func nanotime() int64

// Mono returns CLOCK_MONOTONIC in nanoseconds (on Linux; elsewhere the
// runtime's monotonic clock).
func Mono() int64 { return nanotime() }

// Since returns the time elapsed since the Mono reading t.
func Since(t int64) time.Duration { return time.Duration(nanotime() - t) }
