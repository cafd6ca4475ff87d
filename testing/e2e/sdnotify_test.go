package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// notifySocket is a NOTIFY_SOCKET as systemd offers one: a datagram
// socket whose messages arrive on a channel.
func notifySocket(t *testing.T) (path string, msgs <-chan string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 1024)
	go func() {
		defer close(ch)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			ch <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { c.Close() })
	return path, ch
}

// expectNotify reads messages until one contains want; it returns those
// read, the match last.
func expectNotify(t *testing.T, msgs <-chan string, want string) []string {
	t.Helper()
	var seen []string
	timeout := time.After(30 * time.Second)
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("notify socket closed before %q; saw %q", want, seen)
			}
			seen = append(seen, m)
			if strings.Contains(m, want) {
				return seen
			}
		case <-timeout:
			t.Fatalf("no %q within 30s; saw %q", want, seen)
		}
	}
}

func withNotify(c *exec.Cmd, sock string, watchdog time.Duration) *exec.Cmd {
	c.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC="+strconv.FormatInt(watchdog.Microseconds(), 10))
	return c
}

// Publisher and subscriber tell systemd they are ready, feed the watchdog
// at half its interval while they run, and say they stop on SIGTERM.
func TestSdNotify(t *testing.T) {
	e := newEnv(t)
	const watchdog = 400 * time.Millisecond
	pubSock, pubMsgs := notifySocket(t)
	pub := withNotify(e.cmd("publisher", "--topic", "sd", "--rate", "500"), pubSock, watchdog)
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	defer pub.Process.Kill()
	first := expectNotify(t, pubMsgs, "READY=1")
	if len(first) != 1 || !strings.Contains(first[0], "STATUS=serving topic sd") {
		t.Errorf("publisher's first messages: %q", first)
	}
	for range 3 {
		m := expectNotify(t, pubMsgs, "WATCHDOG=1")
		if last := m[len(m)-1]; !strings.Contains(last, "STATUS=topic sd: ") {
			t.Errorf("watchdog ping without the status: %q", last)
		}
	}

	subSock, subMsgs := notifySocket(t)
	sub := withNotify(e.cmd("subscriber", "--topic", "sd", "--format", "none"), subSock, watchdog)
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	defer sub.Process.Kill()
	if m := expectNotify(t, subMsgs, "READY=1"); !strings.Contains(m[len(m)-1], "STATUS=attached to topic sd") {
		t.Errorf("subscriber's ready: %q", m)
	}
	for range 3 {
		m := expectNotify(t, subMsgs, "WATCHDOG=1")
		if last := m[len(m)-1]; !strings.Contains(last, "received") {
			t.Errorf("subscriber's watchdog ping without the status: %q", last)
		}
	}
	sub.Process.Signal(syscall.SIGTERM)
	expectNotify(t, subMsgs, "STOPPING=1")
	sub.Wait()
	pub.Process.Signal(syscall.SIGTERM)
	if m := expectNotify(t, pubMsgs, "STOPPING=1"); !strings.Contains(m[len(m)-1], "published") {
		t.Errorf("publisher's stopping: %q", m[len(m)-1])
	}
	if err := pub.Wait(); err != nil {
		t.Errorf("publisher: %v", err)
	}
}

// A publisher whose source stalls (stdin with nothing written) stops
// feeding the watchdog, and says so in its status.
func TestSdNotifyStalledPublisher(t *testing.T) {
	e := newEnv(t)
	const watchdog = 400 * time.Millisecond
	sock, msgs := notifySocket(t)
	pub := withNotify(e.cmd("publisher", "--topic", "stall", "--type", "scalar", "--source", "stdin"), sock, watchdog)
	in, err := pub.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	defer pub.Process.Kill()
	expectNotify(t, msgs, "READY=1")
	expectNotify(t, msgs, "STATUS=stalled")
	// From now on the pings stay away: the next status updates are
	// stalled ones, at the watchdog's pace.
	for range 3 {
		m := expectNotify(t, msgs, "STATUS=")
		if last := m[len(m)-1]; strings.Contains(last, "WATCHDOG=1") || !strings.Contains(last, "stalled") {
			t.Fatalf("stalled publisher sent %q", last)
		}
	}
	// A line on stdin gets it going again.
	in.Write([]byte(`{"sensor":1,"value":2,"unit":"V"}` + "\n"))
	expectNotify(t, msgs, "WATCHDOG=1")
	in.Close()
	expectNotify(t, msgs, "STOPPING=1")
	pub.Wait()
}
