package rt

import (
	"fmt"
	"os"
	"time"

	"github.com/prometheus/procfs"
)

// ThreadStats tells where a thread's jitter comes from.
type ThreadStats struct {
	// Voluntary counts the times the thread gave up the CPU (sleeps,
	// blocking system calls); Involuntary the times it was preempted,
	// which for a real-time loop is the number to watch.
	Voluntary   uint64 `json:"voluntary_switches"`
	Involuntary uint64 `json:"involuntary_switches"`
	// RunTime is CPU time used; WaitTime is time spent runnable but
	// waiting for a CPU (schedstat).
	RunTime    time.Duration `json:"run_ns"`
	WaitTime   time.Duration `json:"wait_ns"`
	Timeslices uint64        `json:"timeslices"`
}

// ReadThreadStats reads the statistics of thread tid of this process.
func ReadThreadStats(tid int) (ThreadStats, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return ThreadStats{}, err
	}
	p, err := fs.Thread(os.Getpid(), tid)
	if err != nil {
		return ThreadStats{}, fmt.Errorf("rt: thread %d: %w", tid, err)
	}
	st, err := p.NewStatus()
	if err != nil {
		return ThreadStats{}, fmt.Errorf("rt: thread %d status: %w", tid, err)
	}
	ss, err := p.Schedstat()
	if err != nil {
		return ThreadStats{}, fmt.Errorf("rt: thread %d schedstat: %w", tid, err)
	}
	return ThreadStats{
		Voluntary:   st.VoluntaryCtxtSwitches,
		Involuntary: st.NonVoluntaryCtxtSwitches,
		RunTime:     time.Duration(ss.RunningNanoseconds),
		WaitTime:    time.Duration(ss.WaitingNanoseconds),
		Timeslices:  ss.RunTimeslices,
	}, nil
}
