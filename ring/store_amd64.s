#include "textflag.h"

// func storeRelease(p *uint32, v uint32)
TEXT ·storeRelease(SB), NOSPLIT, $0-12
	MOVQ p+0(FP), AX
	MOVL v+8(FP), BX
	MOVL BX, (AX) // a plain store: release on TSO (see store_amd64.go)
	RET

// func readFence(local *uint32)
TEXT ·readFence(SB), NOSPLIT, $0-8
	RET // TSO orders loads; the call stops the compiler

// func storeFence()
TEXT ·storeFence(SB), NOSPLIT, $0-0
	SFENCE // non-temporal stores are ordered only by a fence
	RET
