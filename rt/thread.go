package rt

import (
	"errors"
	"fmt"
	"runtime"
	"slices"

	"github.com/sensorbus/sensorbus/internal/sys"
)

// Thread describes the OS thread Run creates.
type Thread struct {
	// CPUs the thread may run on; empty leaves the process's affinity.
	CPUs []int
	// Priority is the SCHED_FIFO priority, 1 (lowest) to 99; 0 leaves the
	// thread under the normal scheduler.
	Priority int
}

// MaxPriority is the highest SCHED_FIFO priority.
const MaxPriority = 99

func (t Thread) validate() error {
	if t.Priority < 0 || t.Priority > MaxPriority {
		return fmt.Errorf("rt: SCHED_FIFO priority %d out of range [1, %d] (0 for none)", t.Priority, MaxPriority)
	}
	if len(t.CPUs) == 0 {
		return nil
	}
	online, err := onlineCPUs()
	if err != nil {
		return fmt.Errorf("rt: read online CPUs: %w", err)
	}
	allowed, err := allowedCPUs()
	if err != nil {
		return fmt.Errorf("rt: read allowed CPUs: %w", err)
	}
	for _, c := range t.CPUs {
		if !slices.Contains(online, c) {
			return fmt.Errorf("%w: CPU %d is not online (online: %s)", ErrBadCPU, c, FormatCPUList(online))
		}
		if !slices.Contains(allowed, c) {
			return fmt.Errorf("%w: CPU %d is outside this process's allowed set %s (taskset, a cgroup cpuset or systemd CPUAffinity limits it)", ErrBadCPU, c, FormatCPUList(allowed))
		}
	}
	return nil
}

// Run runs fn on a new OS thread set up as t describes, waits for fn to
// return, and returns its error (or the error that kept fn from starting).
// fn receives the thread's id, for ReadThreadStats. The thread stays
// locked to fn's goroutine and exits with it, so its affinity and policy
// never reach another goroutine.
func Run(t Thread, fn func(tid int) error) error {
	if err := t.validate(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		// Never unlocked: when this goroutine returns, the runtime ends
		// the thread instead of reusing it. The main thread cannot end;
		// the runtime parks it for good instead, so the settings are
		// also restored before returning.
		runtime.LockOSThread()
		tid := sys.Gettid()
		orig, err := sys.Affinity(tid)
		if err != nil {
			done <- fmt.Errorf("rt: read affinity of thread %d: %w", tid, err)
			return
		}
		// The result is sent only after the thread is restored: once
		// Run returns, the thread is back as it was.
		var ferr error
		defer func() { done <- ferr }()
		defer restore(tid, t, orig)
		if ferr = setup(tid, t); ferr != nil {
			return
		}
		ferr = fn(tid)
	}()
	return <-done
}

// restore puts thread tid back under the normal scheduler and its
// original affinity. Errors are ignored: the thread never runs another
// goroutine either way.
func restore(tid int, t Thread, orig []int) {
	if t.Priority > 0 {
		sys.SetOther(tid)
	}
	if len(t.CPUs) > 0 {
		sys.SetAffinity(tid, orig)
	}
}

func setup(tid int, t Thread) error {
	if len(t.CPUs) > 0 {
		if err := sys.SetAffinity(tid, t.CPUs); err != nil {
			return fmt.Errorf("rt: pin thread %d to CPUs %s: %w", tid, FormatCPUList(t.CPUs), err)
		}
	}
	if t.Priority > 0 {
		if err := sys.SetFIFO(tid, t.Priority); err != nil {
			if errors.Is(err, sys.EPERM) {
				return fifoNotPermitted(t.Priority, readSelf())
			}
			return fmt.Errorf("rt: SCHED_FIFO priority %d: %w", t.Priority, err)
		}
	}
	return nil
}

// fifoNotPermitted explains an EPERM from sched_setattr.
func fifoNotPermitted(prio int, s self) error {
	e := &NotPermittedError{What: fmt.Sprintf("SCHED_FIFO priority %d", prio)}
	if !s.has(capSysNice) {
		lim := "unknown"
		if s.limitsKnown {
			lim = limitString(s.rtprio)
		}
		if !s.limitsKnown || s.rtprio < uint64(prio) {
			e.Causes = append(e.Causes, fmt.Sprintf("the process lacks CAP_SYS_NICE and its RLIMIT_RTPRIO is %s (needs %d or more)", lim, prio))
			e.Fixes = append(e.Fixes,
				"run as root",
				"give the binary the capability: sudo setcap cap_sys_nice+ep BINARY",
				fmt.Sprintf("raise the limit: LimitRTPRIO=%d in the systemd unit, or '@GROUP - rtprio %d' in /etc/security/limits.d/", prio, prio))
		}
	}
	if s.rtRuntimeRead && s.rtRuntimeUs == 0 {
		e.Causes = append(e.Causes, "kernel.sched_rt_runtime_us is 0, so no real-time task may run")
		e.Fixes = append(e.Fixes, "sysctl kernel.sched_rt_runtime_us=950000")
	}
	if len(e.Causes) == 0 {
		e.Causes = append(e.Causes, "the process may set it, so a cgroup likely gives real-time tasks no runtime (cgroup v1 cpu.rt_runtime_us is 0, common in containers)")
		e.Fixes = append(e.Fixes, "give the cgroup real-time runtime (cpu.rt_runtime_us), or run outside it; with Docker: --cpu-rt-runtime=950000 --cap-add=SYS_NICE")
	}
	return e
}
