package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// Rows of an isolated mechanism are measured by a sender process of their
// own (IPCBENCH_ROLE=measure), which runs measure and prints the Result
// as JSON. Libraries with per-process state (iceoryx's runtime belongs to
// one RouDi for the life of the process) then start clean for each row,
// and a library that aborts takes only its row down.

// measureIsolated measures one row in a child sender process, which
// leads a process group of its own with its receivers; pgid holds the
// group while it runs, for the harness to kill if it is interrupted.
func measureIsolated(cfg config, m mechanism, size int, work string, r *Result, pgid *atomic.Int64) error {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(),
		roleEnv+"=measure",
		"MEASURE_KEY="+m.key,
		"MEASURE_SIZE="+strconv.Itoa(size),
		"MEASURE_WORK="+work,
		"MEASURE_RATE="+strconv.Itoa(cfg.rate),
		"MEASURE_LATENCY_NS="+strconv.FormatInt(int64(cfg.latencyFor), 10),
		"MEASURE_THROUGHPUT_NS="+strconv.FormatInt(int64(cfg.throughputFor), 10),
	)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	pgid.Store(int64(cmd.Process.Pid))
	defer pgid.Store(0)
	limit := cfg.latencyFor + cfg.throughputFor + 2*(startTimeout+resultTimeout)
	timer := time.AfterFunc(limit, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	// Receivers the sender left (it failed, or was killed) go too, before
	// the row's daemon stops: they may be registered with it.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	for i := 0; i < 200 && syscall.Kill(-cmd.Process.Pid, 0) == nil; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	// The result is the last line; a C library may have logged before it.
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	var got Result
	if jerr := json.Unmarshal(lines[len(lines)-1], &got); jerr != nil {
		if err == nil {
			err = jerr
		}
		return fmt.Errorf("sender process: %w (output %q)", err, out.String())
	}
	if got.Error != "" {
		return errors.New(got.Error)
	}
	r.P50Ns, r.P99Ns, r.P999Ns, r.MaxNs = got.P50Ns, got.P99Ns, got.P999Ns, got.MaxNs
	r.MsgPerSec, r.MBPerSec, r.CPUNsPerMsg, r.LostPct = got.MsgPerSec, got.MBPerSec, got.CPUNsPerMsg, got.LostPct
	return nil
}

// measureChild is the sender process of an isolated row.
func measureChild() int {
	atoi := func(k string) int64 { n, _ := strconv.ParseInt(os.Getenv(k), 10, 64); return n }
	cfg := config{
		rate:          int(atoi("MEASURE_RATE")),
		latencyFor:    time.Duration(atoi("MEASURE_LATENCY_NS")),
		throughputFor: time.Duration(atoi("MEASURE_THROUGHPUT_NS")),
	}
	size := int(atoi("MEASURE_SIZE"))
	var r Result
	err := fmt.Errorf("unknown mechanism %q", os.Getenv("MEASURE_KEY"))
	for _, m := range mechanisms(os.Getenv("MEASURE_WORK")) {
		if m.key == os.Getenv("MEASURE_KEY") {
			err = measure(cfg, m, size, &r)
			break
		}
	}
	if err != nil {
		r.Error = err.Error()
	}
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	return 0
}

// daemonProc is a server the harness runs for some rows.
type daemonProc struct {
	cmd  *exec.Cmd
	done chan error // Wait's result
}

// startDaemon starts cmd so that it gets SIGTERM if the harness dies,
// however it dies.
func startDaemon(cmd *exec.Cmd) (*daemonProc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	d := &daemonProc{cmd: cmd, done: make(chan error, 1)}
	started := make(chan error, 1)
	go func() {
		// The kernel sends Pdeathsig when the thread that forked the
		// child ends, not the process: keep this thread for as long as
		// the daemon runs (the runtime ends a locked thread whose
		// goroutine returns, which is then harmless).
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		d.done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return d, nil
}

// stop sends SIGTERM and waits up to grace for the daemon to exit, then
// kills it. It reports whether the daemon exited by itself.
func (d *daemonProc) stop(grace time.Duration) bool {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return true
	case <-time.After(grace):
		d.cmd.Process.Kill()
		<-d.done
		return false
	}
}

// exited reports whether the daemon has ended, without waiting.
func (d *daemonProc) exited() bool {
	select {
	case err := <-d.done:
		d.done <- err
		return true
	default:
		return false
	}
}
