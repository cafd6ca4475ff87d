package rt

import (
	"errors"
	"strings"

	"github.com/sensorbus/sensorbus/internal/sys"
)

var (
	// ErrNotPermitted is returned when the kernel refuses a real-time
	// setting. The error is a *NotPermittedError naming what is missing
	// and how to grant it.
	ErrNotPermitted = errors.New("rt: not permitted")

	// ErrBadCPU is returned for a CPU that is offline or outside the
	// process's allowed set.
	ErrBadCPU = errors.New("rt: CPU not usable")

	// ErrNotSupported is returned on systems other than Linux.
	ErrNotSupported = sys.ErrNotSupported
)

// NotPermittedError says what was refused, why, and how to allow it.
type NotPermittedError struct {
	What   string   // e.g. "SCHED_FIFO priority 50"
	Causes []string // what is missing
	Fixes  []string // how to grant it
}

func (e *NotPermittedError) Error() string {
	var b strings.Builder
	b.WriteString("rt: " + e.What + " not permitted")
	if len(e.Causes) > 0 {
		b.WriteString(": " + strings.Join(e.Causes, "; "))
	}
	if len(e.Fixes) > 0 {
		b.WriteString(". To allow it: " + strings.Join(e.Fixes, "; or "))
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrNotPermitted) true.
func (e *NotPermittedError) Unwrap() error { return ErrNotPermitted }
