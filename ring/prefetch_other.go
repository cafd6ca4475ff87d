//go:build !amd64

package ring

import "unsafe"

// No prefetching off amd64 (see prefetch_amd64.go).

const hasPrefetchW = false

func prefetchw(unsafe.Pointer, int) {}
func prefetch(unsafe.Pointer, int)  {}
