package ring

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sensorbus/sensorbus/internal/sys"
)

// WriterState says whether a ring's writer is still there.
type WriterState int

const (
	// WriterAlive: the writer process holds the ring's writer lock.
	WriterAlive WriterState = iota
	// WriterClosed: the writer closed the ring gracefully.
	WriterClosed
	// WriterDead: the writer is gone without closing (killed, crashed);
	// the ring is stale and RemoveStale may remove it.
	WriterDead
)

func (s WriterState) String() string {
	switch s {
	case WriterAlive:
		return "alive"
	case WriterClosed:
		return "closed"
	case WriterDead:
		return "dead"
	}
	return fmt.Sprintf("WriterState(%d)", int(s))
}

// Status is a ring's writer as a reader sees it now.
type Status struct {
	State     WriterState
	Published uint64 // samples published so far (the write cursor)
	// Published counts a sample whose slot is complete even if the writer
	// died before advancing the cursor past it: readers deliver it.
	// HeartbeatAge is the time since the writer last published or called
	// Heartbeat. A live writer whose heartbeat is much older than its
	// heartbeat interval is hung (or stopped).
	HeartbeatAge time.Duration
	// ProcessAlive says whether a process with the writer's pid and start
	// time exists in this pid namespace. The lock is what decides State;
	// this is for diagnostics.
	ProcessAlive bool
}

// Status reports the state of the ring's writer.
func (r *Reader) Status() (Status, error) {
	if r.done {
		return Status{}, ErrClosed
	}
	st := Status{
		Published:    r.published(),
		HeartbeatAge: beatAge(r.beat),
	}
	start, err := processStart(r.hdr.WriterPID)
	st.ProcessAlive = err == nil && start == r.hdr.WriterStart
	locked, err := sys.Locked(r.fd, lockWriter)
	if err != nil {
		return st, fmt.Errorf("ring: query writer lock: %w", err)
	}
	switch {
	case atomic.LoadUint32(r.closed) != 0:
		st.State = WriterClosed
	case locked:
		st.State = WriterAlive
	default:
		st.State = WriterDead
	}
	return st, nil
}
