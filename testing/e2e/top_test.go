package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needTool finds a program the test needs: under CI it must be there
// (.ci/run installs it); elsewhere its absence skips the test.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing, and CI must run this test (.ci/run installs it)", name)
	}
	t.Skipf("%s is not installed (CI installs it)", name)
	return ""
}

// topRate finds the topic's row on a busctl top screen and returns its
// rate.
func topRate(screen, topic string) (float64, bool) {
	for _, l := range strings.Split(screen, "\n") {
		f := strings.Fields(l)
		if len(f) >= 6 && f[0] == topic && f[1] == "live" {
			r, err := strconv.ParseFloat(f[3], 64)
			return r, err == nil
		}
	}
	return 0, false
}

// busctl top, in a real terminal (tmux), shows the topic at the rate it
// is published at, and quits on q.
func TestBusctlTopInTmux(t *testing.T) {
	tmux := needTool(t, "tmux")
	e := newEnv(t)
	const rate = 2000.0
	pub, waitPub := e.start("publisher", "--topic", "toptest", "--rate", "2000", "--duration", "5m")
	sub, waitSub := e.start("subscriber", "--topic", "toptest", "--format", "none", "--name", "watcher", "--duration", "5m")
	defer func() {
		sub.Process.Signal(syscall.SIGTERM)
		waitSub()
		pub.Process.Signal(syscall.SIGTERM)
		waitPub()
	}()
	e.waitLive("toptest")
	sock := filepath.Join(t.TempDir(), "tmux.sock")
	tm := func(args ...string) (string, error) {
		c := exec.Command(tmux, append([]string{"-S", sock}, args...)...)
		c.Env = append(os.Environ(), "TERM=xterm-256color")
		out, err := c.CombinedOutput()
		return string(out), err
	}
	if out, err := tm("new-session", "-d", "-s", "top", "-x", "150", "-y", "30",
		filepath.Join(binDir, "busctl")+" top --bus-dir "+e.dir); err != nil {
		t.Fatalf("tmux: %v: %s", err, out)
	}
	defer tm("kill-server")
	var screen string
	var got float64
	ok := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !ok; time.Sleep(100 * time.Millisecond) {
		s, err := tm("capture-pane", "-p", "-t", "top")
		if err != nil {
			t.Fatalf("capture-pane: %v: %s", err, s)
		}
		screen = s
		if r, found := topRate(s, "toptest"); found && r > 0 {
			got = r
			ok = r >= 0.9*rate && r <= 1.1*rate && strings.Contains(s, "watcher")
		}
	}
	t.Logf("busctl top in tmux:\n%s", screen)
	if !ok {
		t.Fatalf("top never showed toptest at %v/s ±10%% with its subscriber watcher; last rate %v", rate, got)
	}
	if os.Getenv("SENSORBUS_TOP_SCREEN") != "" {
		os.WriteFile(os.Getenv("SENSORBUS_TOP_SCREEN"), []byte(screen), 0o644)
	}
	tm("send-keys", "-t", "top", "q")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := tm("has-session", "-t", "top"); err != nil {
			break // top quit, and its session with it
		}
		if time.Now().After(deadline) {
			t.Fatal("busctl top did not quit on q")
		}
	}
	// --once is the same screen as plain text.
	r := e.run("busctl", "top", "--once", "--interval", "200ms")
	if rr, found := topRate(r.stdout, "toptest"); r.code != 0 || !found || rr == 0 {
		t.Errorf("top --once: exit %d, rate %v:\n%s%s", r.code, rr, r.stdout, r.stderr)
	}
}
