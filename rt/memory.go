package rt

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/sensorbus/sensorbus/internal/sys"
)

// LockMemory locks every page of the process, current and future, in
// RAM (mlockall), so no page fault or swap-in ever stalls a real-time
// loop. onFault locks pages when first touched rather than at once
// (MCL_ONFAULT): the same protection once warmed up, without committing
// every reserved page now. Pair it with Prefault for the ring.
func LockMemory(onFault bool) error {
	err := sys.LockMemory(onFault)
	if err == nil {
		return nil
	}
	if errors.Is(err, sys.EPERM) || errors.Is(err, errNOMEM) {
		s := readSelf()
		e := &NotPermittedError{What: "locking memory (mlockall)"}
		if !s.has(capIPCLock) {
			e.Causes = append(e.Causes, fmt.Sprintf("the process lacks CAP_IPC_LOCK and its RLIMIT_MEMLOCK is %s bytes, less than it has mapped", limitString(s.memlock)))
			e.Fixes = append(e.Fixes, "run as root", "sudo setcap cap_ipc_lock+ep BINARY", "LimitMEMLOCK=infinity in the systemd unit, or '@GROUP - memlock unlimited' in /etc/security/limits.d/")
		} else {
			e.Causes = append(e.Causes, "the kernel could not lock the pages: "+err.Error())
		}
		return e
	}
	return fmt.Errorf("rt: mlockall: %w", err)
}

var errNOMEM error = sys.ENOMEM

// UnlockMemory undoes LockMemory.
func UnlockMemory() error { return sys.UnlockMemory() }

// Prefault faults in every page of the mapping b, so that the loop that
// uses it takes no page fault (MADV_POPULATE_READ/WRITE where the kernel
// has it, else a read of each page). write asks for writable pages. The
// ring's own Writer.Prefault and Reader.Prefault do this for a ring.
func Prefault(b []byte, write bool) error {
	if err := sys.Prefault(b, write); err != nil {
		return fmt.Errorf("rt: prefault %d bytes: %w", len(b), err)
	}
	return nil
}

// TuneGC sets the garbage collector for a real-time process and returns a
// function that restores the previous settings. percent is as
// debug.SetGCPercent (-1 turns proportional collection off); limit is as
// debug.SetMemoryLimit (bytes; the collector runs when the heap nears it).
// TuneGC(-1, limit) makes a process that allocates little collect only
// near the limit.
//
// What it does not cover: a collection still stops every goroutine for
// short phases, including a loop running under Run; its background
// workers still take CPU time, on any CPU the process may use (pin the
// real-time thread to a CPU the rest of the process is kept off, or give
// the process GOMAXPROCS below its CPU count); and a loop that allocates
// brings the collection nearer. The real remedy is a hot loop that does
// not allocate, which sensorbus's publish and read paths do not.
func TuneGC(percent int, limit int64) (restore func()) {
	oldPercent := debug.SetGCPercent(percent)
	oldLimit := debug.SetMemoryLimit(limit)
	return func() {
		debug.SetGCPercent(oldPercent)
		debug.SetMemoryLimit(oldLimit)
	}
}
