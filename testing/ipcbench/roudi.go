package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
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
	if _, err := os.Stat("/tmp/roudi"); err == nil {
		return nil, errors.New("another RouDi is running on this machine (/tmp/roudi exists); iceoryx 2.0 allows one")
	}
	cfg := filepath.Join(work, "roudi.toml")
	if err := os.WriteFile(cfg, []byte(roudiConfig), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--config-file", cfg, "--log-level", "warning")
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
		for _, f := range roudiFiles() {
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
