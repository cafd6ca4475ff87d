package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RouDi, iceoryx 1's central daemon: it owns the shared-memory segments
// (/dev/shm/iceoryx_mgmt and one named after the user) and registers
// processes over a Unix socket (/tmp/roudi). There is one per machine in
// iceoryx 2.0, so the harness refuses to start if another one runs, and
// stops its own after the mechanism's rows; RouDi removes its files
// when it exits on SIGTERM, and the harness removes what a RouDi it had
// to kill left behind.

// roudiFiles are the files a RouDi of this user creates.
func roudiFiles() []string {
	name := "root"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return []string{"/dev/shm/iceoryx_mgmt", "/dev/shm/" + name, "/tmp/roudi", "/tmp/roudi.lock", "/tmp/iox-unique-roudi.lock"}
}

// roudiConfig has a memory pool for each message size, with room for
// iceoryx's chunk header (and Cyclone DDS's own header in front of its
// samples), and enough chunks for a subscriber queue of 256 per reader
// plus what is in flight.
const roudiConfig = `[general]
version = 1

[[segment]]

[[segment.mempool]]
size = 128
count = 2048

[[segment.mempool]]
size = 256
count = 2048

[[segment.mempool]]
size = 1152
count = 2048

[[segment.mempool]]
size = 1280
count = 2048

[[segment.mempool]]
size = 16512
count = 1024

[[segment.mempool]]
size = 16640
count = 1024
`

func roudiDaemon(work string) (stop func(), err error) {
	bin, err := exec.LookPath("iox-roudi")
	if err != nil {
		return nil, errors.New("iox-roudi not found: needs the Debian package iceoryx")
	}
	if pid := roudiRunning(); pid > 0 {
		return nil, fmt.Errorf("another RouDi (pid %d) is running on this machine; iceoryx 2.0 allows one", pid)
	}
	// None runs: what is there was left by one that was killed.
	for _, f := range append(roudiFiles(), deadRuntimeFiles()...) {
		if os.Remove(f) == nil {
			fmt.Fprintf(os.Stderr, "ipcbench: removed %s, left by a RouDi that was killed\n", f)
		}
	}
	cfg := filepath.Join(work, "roudi.toml")
	if err := os.WriteFile(cfg, []byte(roudiConfig), 0o600); err != nil {
		return nil, err
	}
	// Monitoring off: with it, RouDi drops a process whose keepalive is
	// 1.5 s late, which on a loaded machine (two vCPUs shared with builds)
	// happened to a sender mid-run, whose next loan then crashed. The
	// harness cleans up after its own dead processes instead.
	cmd := exec.Command(bin, "--config-file", cfg, "--log-level", "warning", "--monitoring-mode", "off")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	d, err := startDaemon(cmd)
	if err != nil {
		return nil, err
	}
	stop = func() {
		if !d.stop(10 * time.Second) {
			fmt.Fprintln(os.Stderr, "ipcbench: RouDi did not stop on SIGTERM; killed it and removed its files")
			for _, f := range roudiFiles() {
				os.Remove(f)
			}
		}
		for _, f := range append(roudiFiles(), deadRuntimeFiles()...) {
			if _, err := os.Stat(f); err == nil {
				fmt.Fprintf(os.Stderr, "ipcbench: RouDi left %s; removed\n", f)
				os.Remove(f)
			}
		}
	}
	// Wait for its ready line; keep reading its output afterwards so it
	// never blocks on a full pipe, and show warnings.
	ready := make(chan bool, 1)
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			line := sc.Text()
			if !seen {
				log.WriteString(line + "\n")
				if strings.Contains(line, "RouDi is ready for clients") {
					seen = true
					ready <- true
				}
				continue
			}
			fmt.Fprintln(os.Stderr, "iox-roudi:", line)
		}
		if !seen {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if ok {
			return stop, nil
		}
	case <-time.After(startTimeout):
		stop()
		<-ready // its output closed: log is complete
		return nil, fmt.Errorf("RouDi did not start within %v: %s", startTimeout, strings.TrimSpace(log.String()))
	}
	stop()
	return nil, fmt.Errorf("RouDi did not start: %s", strings.TrimSpace(log.String()))
}

// deadRuntimeFiles are the Unix sockets and lock files in /tmp of the
// iceoryx runtimes of processes that are gone: ours (ipcb-send-PID,
// ipcb-recv-PID) and Cyclone DDS's (iceoryx_rt_PID_TIME). A process that
// deregisters removes its own; one that was killed leaves them.
func deadRuntimeFiles() []string {
	var out []string
	for _, pattern := range []string{"/tmp/ipcb-send-*", "/tmp/ipcb-recv-*", "/tmp/iceoryx_rt_*"} {
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			rest := strings.TrimPrefix(filepath.Base(m), "iceoryx_rt_")
			rest = strings.TrimPrefix(strings.TrimPrefix(rest, "ipcb-send-"), "ipcb-recv-")
			pid, err := strconv.Atoi(strings.FieldsFunc(rest, func(r rune) bool { return r == '_' || r == '.' })[0])
			if err != nil {
				continue
			}
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); os.IsNotExist(err) {
				out = append(out, m)
			}
		}
	}
	return out
}

// roudiRunning returns the pid of a live iox-roudi, or 0.
func roudiRunning() int {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ...; a zombie has exited already.
		if comm, rest, ok := strings.Cut(string(stat), ") "); ok && strings.HasSuffix(comm, "(iox-roudi") && !strings.HasPrefix(rest, "Z") {
			return pid
		}
	}
	return 0
}
