package ring

import (
	"fmt"
	"sync/atomic"
	"time"
)

// WriterState says whether a ring's writer is still there.
type WriterState int

const (
	// WriterAlive: the writer is there (for a named ring: it holds the
	// ring's writer lock).
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

// Status reports the state of the ring's writer: WriterAlive until it is
// gone (its lock released, for a named ring; WriterGone called, for an
// anonymous one), then WriterClosed if it closed the ring, else WriterDead.
func (r *Reader) Status() (st Status, err error) {
	if r.done.Load() {
		return Status{}, ErrClosed
	}
	err = r.guard(func() error {
		st.Published = r.published()
		st.HeartbeatAge = beatAge(r.beat)
		gone, err := r.writerGone()
		switch {
		case err != nil:
			return err
		case !gone:
			st.State = WriterAlive
		case atomic.LoadUint32(r.closed) != 0:
			st.State = WriterClosed
		default:
			st.State = WriterDead
		}
		return nil
	})
	start, perr := processStart(r.hdr.WriterPID)
	st.ProcessAlive = perr == nil && start == r.hdr.WriterStart
	return st, err
}
