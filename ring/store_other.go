//go:build !amd64

package ring

import "sync/atomic"

// storeRelease stores v at p with (at least) release ordering. Outside
// amd64 sync/atomic's store is the cheapest such store Go offers: STLR on
// arm64, a store between two barriers on 32-bit ARM.
func storeRelease(p *uint32, v uint32) { atomic.StoreUint32(p, v) }

// readFence orders preceding plain loads before a later atomic load: on
// arm64 the STLR of this store cannot pass the following LDAR of seq, nor
// the earlier loads pass the STLR; on 32-bit ARM its leading DMB orders
// them (see shm_unsafe.go).
func readFence(local *uint32) { atomic.StoreUint32(local, 0) }

// storeFence is needed only on amd64, whose memmove may use non-temporal
// stores; elsewhere the writer's fences already order every store.
func storeFence() {}
