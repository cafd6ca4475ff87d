// Package rt runs latency-critical loops the way an edge device needs
// them: on a dedicated OS thread pinned to chosen CPUs, optionally under
// SCHED_FIFO, with memory locked and the ring pre-faulted, and it tells
// honestly what the host allows (Check) and where jitter comes from
// (ReadThreadStats).
//
//	err := rt.Run(rt.Thread{CPUs: []int{3}, Priority: 50}, func(tid int) error {
//		for ... { w.Publish(sample) } // pinned, SCHED_FIFO 50
//		return nil
//	})
//	if errors.Is(err, rt.ErrNotPermitted) { ... } // the message says what to grant
//
// A thread whose affinity or policy Run changed never returns to Go's
// thread pool: it exits when the function returns. Children of the process
// do not inherit SCHED_FIFO (reset-on-fork).
//
// Everything here is Linux-only; elsewhere the functions return
// ErrNotSupported. All functions are safe for concurrent use.
package rt
