package ring

import (
	"errors"
	"fmt"
	"os"
)

var (
	// ErrTooLarge is returned by Publish and Reserve for a payload larger
	// than the slot. Nothing is written.
	ErrTooLarge = errors.New("ring: payload larger than slot")

	// ErrBadSegment is returned when a segment file is not a valid ring:
	// wrong magic or version, truncated, or header fields out of bounds.
	// The error text says which field is wrong.
	ErrBadSegment = errors.New("ring: bad segment")

	// ErrBusy is returned by Create when a live writer already owns the
	// name, and by RemoveStale for a file whose writer is alive.
	ErrBusy = errors.New("ring: segment has a live writer")

	// ErrWriterClosed is returned by a Reader once it has delivered every
	// sample of a writer that closed gracefully.
	ErrWriterClosed = errors.New("ring: writer closed")

	// ErrWriterDead is returned by a waiting Reader once it has delivered
	// every sample of a writer that died without closing (killed, crashed).
	ErrWriterDead = errors.New("ring: writer died")

	// ErrCanceled is returned by a Next that Reader.Cancel ended.
	ErrCanceled = errors.New("ring: read canceled")

	// ErrNoReservation is returned by Commit and Abort without a Reserve.
	ErrNoReservation = errors.New("ring: no reservation")

	// ErrReserved is returned by Publish and Reserve while a reservation
	// is open.
	ErrReserved = errors.New("ring: reservation open")

	// ErrInvalidConfig is returned for a Config or ReaderConfig that
	// cannot work; the text names the field and the accepted values.
	ErrInvalidConfig = errors.New("ring: invalid configuration")

	// ErrNoMemory is returned by Create when the ring does not fit in the
	// memory the process may still use; the error is a *MemoryError.
	ErrNoMemory = errors.New("ring: not enough memory")

	// ErrClosed is os.ErrClosed: the Writer or Reader was closed.
	ErrClosed = os.ErrClosed
)

// badSegment builds an ErrBadSegment that says what is wrong.
func badSegment(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadSegment, fmt.Sprintf(format, args...))
}

// BusyError is the ErrBusy returned by Create: it names the live owner.
type BusyError struct {
	Path string
	PID  int // the owner's pid as recorded in its header; 0 if unreadable
}

func (e *BusyError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("ring: %s has a live writer (pid %d)", e.Path, e.PID)
	}
	return fmt.Sprintf("ring: %s has a live writer", e.Path)
}

// Unwrap makes errors.Is(err, ErrBusy) true.
func (e *BusyError) Unwrap() error { return ErrBusy }

// MemoryError is the ErrNoMemory returned by Create: the ring's size,
// what is free, and which limit that is.
type MemoryError struct {
	Need  uint64 // bytes the ring needs
	Free  uint64 // bytes still free under Limit
	Limit string // the limit that is short: the host's or a memory cgroup's
	Err   error  // the system's error, if reserving failed
}

func (e *MemoryError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("ring: a ring of %d bytes does not fit in %s: %v", e.Need, e.Limit, e.Err)
	}
	return fmt.Sprintf("ring: a ring of %d bytes does not fit: %d bytes free under %s", e.Need, e.Free, e.Limit)
}

// Unwrap makes errors.Is(err, ErrNoMemory) true.
func (e *MemoryError) Unwrap() []error { return []error{ErrNoMemory, e.Err} }
