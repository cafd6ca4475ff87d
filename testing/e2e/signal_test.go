package e2e

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A subscriber interrupted at random moments, hundreds of times, while
// its publisher publishes at 20 kHz: attaching, reading, waiting, it
// always stops cleanly with its final statistics, never with a fault.
func TestSubscriberInterruptedAtRandom(t *testing.T) {
	e := newEnv(t)
	pub, waitPub := e.start("publisher", "--topic", "sig", "--rate", "20000")
	e.waitLive("sig")
	n := 500
	if testing.Short() {
		n = 50
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	waits := []string{"block", "spin"}
	for i := range n {
		c := e.cmd("subscriber", "--topic", "sig", "--format", "none", "--stats-json", "--verify", "--wait", waits[i%2], "--log-level", "debug")
		var out bytes.Buffer
		c.Stdout = &out
		stderr, err := c.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		// From the moment it handles signals (before, SIGINT ends any
		// program at once) at a random moment of its first milliseconds:
		// attaching, reading or waiting.
		var errb bytes.Buffer
		lines := bufio.NewScanner(stderr)
		for lines.Scan() && !strings.Contains(lines.Text(), "subscribing") {
			errb.WriteString(lines.Text() + "\n")
		}
		copied := make(chan struct{})
		go func() {
			defer close(copied)
			for lines.Scan() {
				errb.WriteString(lines.Text() + "\n")
			}
		}()
		time.Sleep(time.Duration(rnd.IntN(5000)) * time.Microsecond)
		c.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { <-copied; done <- c.Wait() }()
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			c.Process.Signal(syscall.SIGQUIT)
			<-done
			t.Fatalf("run %d: the subscriber did not stop within 30 s of SIGINT; stderr:\n%s", i, errb.String())
		}
		if err != nil || strings.Contains(errb.String(), "goroutine ") || strings.Contains(errb.String(), "fault") || strings.Contains(errb.String(), "panic") {
			t.Fatalf("run %d: %v\nstderr: %s", i, err, errb.String())
		}
		var st subStats
		lastJSON(t, out.String(), &st)
		if st.Corrupt != 0 {
			t.Fatalf("run %d: %+v", i, st)
		}
	}
	pub.Process.Signal(syscall.SIGINT)
	if r := waitPub(); r.code != 0 {
		t.Fatalf("publisher: %d %s", r.code, r.stderr)
	}
}
