package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/clock"
	"github.com/sensorbus/sensorbus/internal/synth"
	"github.com/sensorbus/sensorbus/schema"
)

// lines delivers r's lines, each with the clock.Mono it was read at.
type stamped struct {
	text string
	at   int64
}

func lines(r io.Reader) <-chan stamped {
	ch := make(chan stamped, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ch <- stamped{strings.TrimRight(sc.Text(), "\r"), clock.Mono()}
		}
	}()
	return ch
}

func nextLine(t *testing.T, ch <-chan stamped, within time.Duration) stamped {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatal("output ended")
		}
		return l
	case <-time.After(within):
		t.Fatalf("no line within %v", within)
	}
	return stamped{}
}

// A 2 Hz topic's samples appear on a terminal, and through a pipe, within
// a second of being published, not when a buffer fills or the program ends.
func TestSampleLinesFlushed(t *testing.T) {
	e := newEnv(t)
	pub, waitPub := e.start("publisher", "--topic", "slow", "--type", "scalar", "--rate", "2")
	e.waitLive("slow")

	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	term := e.cmd("subscriber", "--topic", "slow", "--format", "json", "--duration", "60s")
	var termErr bytes.Buffer
	term.Stdout, term.Stderr = tty, &termErr
	if err := term.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	defer func() { term.Process.Kill(); term.Wait() }()

	piped := e.cmd("subscriber", "--topic", "slow", "--format", "json", "--duration", "60s")
	out, err := piped.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := piped.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { piped.Process.Kill(); piped.Wait() }()

	for name, ch := range map[string]<-chan stamped{"terminal": lines(ptmx), "pipe": lines(out)} {
		{
			l := nextLine(t, ch, 30*time.Second)
			var s struct {
				PublishedNs int64 `json:"published_ns"`
			}
			if err := json.Unmarshal([]byte(l.text), &s); err != nil {
				t.Fatalf("%s: %q: %v (%s)", name, l.text, err, termErr.String())
			}
			if d := time.Duration(l.at - s.PublishedNs); d > time.Second {
				t.Errorf("%s: a sample appeared %v after it was published", name, d)
			}
		}
	}
	pub.Process.Signal(syscall.SIGTERM)
	waitPub()
}

// The --stats line comes once a second with true per-second rates.
func TestStatsLine(t *testing.T) {
	e := newEnv(t)
	pub, waitPub := e.start("publisher", "--topic", "s", "--type", "scalar", "--rate", "100", "--duration", "60s")
	e.waitLive("s")
	sub := e.cmd("subscriber", "--topic", "s", "--format", "none", "--stats", "--duration", "60s")
	errp, err := sub.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sub.Process.Kill(); sub.Wait() }()
	started := clock.Mono()
	ch := lines(errp)
	re := regexp.MustCompile(`^subscriber: stats: s: (\d+) received/s  (\d+) lost/s  lag (\d+)  corrupt 0  restarts 0  latency p50 [0-9.]+ µs  p99 [0-9.]+ µs$`)
	var l stamped
	for range 3 {
		l = nextLine(t, ch, 30*time.Second)
		m := re.FindStringSubmatch(l.text)
		if m == nil {
			t.Fatalf("stats line %q", l.text)
		}
		// 100 samples a second; the old line said 256/s every 2.56 s.
		if n, _ := strconv.Atoi(m[1]); n < 20 || n > 180 {
			t.Errorf("stats line %q: %d received/s at 100 Hz", l.text, n)
		}
	}
	// Lines can be read late, never early: three take over a second.
	if d := time.Duration(l.at - started); d < 1500*time.Millisecond {
		t.Errorf("three stats lines within %v", d)
	}
	pub.Process.Signal(syscall.SIGTERM)
	waitPub()
}

// inProcessPublisher publishes on e's bus from the test process.
func inProcessPublisher(t *testing.T, e *env, topic string, s *schema.Schema) *bus.Publisher {
	t.Helper()
	pub, err := bus.NewPublisher(bus.PublisherConfig{Options: bus.Options{Dir: e.dir}, Topic: topic, Schema: s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	return pub
}

// A corrupt sample makes the run exit 7; samples that are not synthetic
// cannot be verified: exit 2.
func TestVerifyExitCodes(t *testing.T) {
	e := newEnv(t)
	pub := inProcessPublisher(t, e, "v", schema.IMUSchema)
	g, _ := synth.New(schema.IMUSchema, 0)
	for seq := range uint64(3) {
		m, _ := g.Make(seq, 1)
		if seq == 1 {
			m.(*schema.IMU).Temp += 0.5 // one corrupted field
		}
		if err := schema.EncodeMessage(pub.Ring(), m); err != nil {
			t.Fatal(err)
		}
	}
	r := e.run("subscriber", "--topic", "v", "--verify", "--from", "oldest", "--count", "3", "--format", "none", "--stats-json")
	var ss subStats
	lastJSON(t, r.stdout, &ss)
	if r.code != 7 || ss.Corrupt != 1 || ss.Received != 3 || !strings.Contains(r.stderr, "corrupt") {
		t.Errorf("one corrupt sample: exit %d, %+v, %q; want 7", r.code, ss, r.stderr)
	}
	oneLine(t, "corrupt", r.stderr)

	// Samples from stdin are not synthetic.
	c := e.cmd("publisher", "--topic", "in", "--type", "scalar", "--source", "stdin")
	stdin, _ := c.StdinPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(stdin, `{"sensor":2,"value":20.5,"unit":"degC"}`)
	r = e.run("subscriber", "--topic", "in", "--verify", "--from", "oldest", "--wait-for-publisher", "30s", "--count", "1")
	stdin.Close()
	c.Wait()
	if r.code != 2 || !strings.Contains(r.stderr, "--verify") || !strings.Contains(r.stderr, "synthetic") {
		t.Errorf("--verify on stdin samples: exit %d, %q; want 2", r.code, r.stderr)
	}
	oneLine(t, "--verify stdin", r.stderr)

	// An untyped topic.
	raw, err := bus.NewPublisher(bus.PublisherConfig{Options: bus.Options{Dir: e.dir}, Topic: "untyped"})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	r = e.run("subscriber", "--topic", "untyped", "--verify")
	if r.code != 2 || !strings.Contains(r.stderr, "--verify: topic \"untyped\" carries untyped") {
		t.Errorf("--verify on an untyped topic: exit %d, %q; want 2", r.code, r.stderr)
	}
	oneLine(t, "--verify untyped", r.stderr)
}

// SIGHUP ends both programs like SIGTERM: final stats, no files left.
func TestSIGHUP(t *testing.T) {
	e := newEnv(t)
	pub, waitPub := e.start("publisher", "--topic", "h", "--rate", "1000", "--stats-json")
	e.waitLive("h")
	sub := e.cmd("subscriber", "--topic", "h", "--format", "json", "--stats-json", "--duration", "60s")
	out, _ := sub.StdoutPipe()
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	ch := lines(out)
	nextLine(t, ch, 30*time.Second) // receiving
	sub.Process.Signal(syscall.SIGHUP)
	var last string
	for l := range ch {
		last = l.text
	}
	if err := sub.Wait(); err != nil {
		t.Errorf("subscriber after SIGHUP: %v", err)
	}
	var ss subStats
	if err := json.Unmarshal([]byte(last), &ss); err != nil || ss.Received == 0 {
		t.Errorf("subscriber's last line %q: %v", last, err)
	}
	pub.Process.Signal(syscall.SIGHUP)
	r := waitPub()
	var ps pubStats
	lastJSON(t, r.stdout, &ps)
	if r.code != 0 || ps.Published == 0 {
		t.Errorf("publisher after SIGHUP: exit %d, %+v, %s", r.code, ps, r.stderr)
	}
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("SIGHUP left %v", left)
	}
}

// --wait-for-publisher forever waits past the default 5 s; 0 fails at once.
func TestWaitForPublisher(t *testing.T) {
	e := newEnv(t)
	if r := e.run("subscriber", "--topic", "w", "--wait-for-publisher", "0"); r.code != 5 {
		t.Errorf("--wait-for-publisher 0: exit %d, %q", r.code, r.stderr)
	}
	start := time.Now()
	_, waitSub := e.start("subscriber", "--topic", "w", "--wait-for-publisher", "forever", "--count", "1", "--format", "json")
	// Waiting is not observable from outside; outlast the old default
	// (a subscriber that gave up would exit 5, below).
	time.Sleep(6 * time.Second)
	pub, waitPub := e.start("publisher", "--topic", "w", "--rate", "100")
	r := waitSub()
	if r.code != 0 || !strings.Contains(r.stdout, `"topic":"w"`) || time.Since(start) < 6*time.Second {
		t.Errorf("forever: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	pub.Process.Signal(syscall.SIGTERM)
	waitPub()
}

// Latency percentiles leave out the history a --from oldest subscriber
// reads first.
func TestLatencyOnlyAfterAttach(t *testing.T) {
	e := newEnv(t)
	pub, waitPub := e.start("publisher", "--topic", "l", "--type", "scalar", "--rate", "5")
	e.waitLive("l")
	// Wait for a second of history.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ti bus.TopicInfo
		r := e.run("busctl", "info", "l", "-o", "json")
		if json.Unmarshal([]byte(r.stdout), &ti) == nil && ti.Published >= 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no history")
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := e.run("subscriber", "--topic", "l", "--from", "oldest", "--duration", "5s", "--format", "none", "--stats-json")
	pub.Process.Signal(syscall.SIGTERM)
	waitPub()
	var ss subStats
	lastJSON(t, r.stdout, &ss)
	// The history is 1.2 s old and more; a live sample at 5 Hz is read
	// as it comes.
	if r.code != 0 || ss.Received < 7 || ss.Latency.Max >= int64(600*time.Millisecond) || ss.Latency.Max == 0 {
		t.Errorf("exit %d, %+v: latency should count only the live samples", r.code, ss)
	}
}

// Stdin: a line over 64 KiB no longer ends the input, one too large for a
// slot is skipped with its number, a line without time gets the time it
// was read, and skipped lines are in the stats.
func TestStdinLines(t *testing.T) {
	e := newEnv(t)
	_, waitSub := e.start("subscriber", "--topic", "in", "--from", "oldest", "--format", "json", "--fields", "sensor,time",
		"--count", "2", "--wait-for-publisher", "30s", "--duration", "60s")
	c := e.cmd("publisher", "--topic", "in", "--type", "raw", "--source", "stdin", "--rate", "0", "--stats-json")
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	before := time.Now().UnixNano()
	io.WriteString(stdin, `{"time":7,"sensor":1,"data":"AAEC"}
{"sensor":2,"data":"`+strings.Repeat("A", 100_000)+`"}
{"sensor":3,"data":"AAEC"}
{"sensor":4,"data":"`+strings.Repeat("A", 400)+`"}
`)
	// The topic lives while stdin is open: until the subscriber has both.
	r := waitSub()
	after := time.Now().UnixNano()
	stdin.Close()
	c.Wait()
	var ps struct{ Published, Skipped uint64 }
	lastJSON(t, out.String(), &ps)
	if ps.Published != 2 || ps.Skipped != 2 {
		t.Errorf("published %d, skipped %d; want 2 and 2 (%s)", ps.Published, ps.Skipped, errb.String())
	}
	for _, want := range []string{"stdin line 2 skipped: longer than", "stdin line 4 skipped: its sample of", "2 line(s) skipped"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr %q lacks %q", errb.String(), want)
		}
	}
	got := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(got) != 2 || got[0] != `{"sensor":1,"time":7}` {
		t.Fatalf("subscriber: exit %d, %q %s", r.code, r.stdout, r.stderr)
	}
	var s3 struct{ Sensor, Time int64 }
	if err := json.Unmarshal([]byte(got[1]), &s3); err != nil || s3.Sensor != 3 || s3.Time < before || s3.Time > after {
		t.Errorf("line without time: %q; want sensor 3 stamped between %d and %d", got[1], before, after)
	}
}

// The publisher says it is serving: one line on a terminal, a log line at
// --log-level info, nothing otherwise.
func TestServingLine(t *testing.T) {
	e := newEnv(t)
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	c := e.cmd("publisher", "--topic", "a", "--rate", "10", "--count", "2")
	c.Stderr = tty
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	l := nextLine(t, lines(ptmx), 30*time.Second)
	c.Wait()
	if want := `publisher: serving topic "a": sensorbus.IMU, 4096 slots of 256 bytes, 10/s from synthetic, bus ` + e.dir; l.text != want {
		t.Errorf("on a terminal: %q, want %q", l.text, want)
	}
	r := e.run("publisher", "--topic", "a", "--rate", "10", "--count", "2", "--log-level", "info")
	if !strings.Contains(r.stderr, `"msg":"serving"`) || !strings.Contains(r.stderr, `"bus_dir":"`+e.dir+`"`) {
		t.Errorf("--log-level info: %q", r.stderr)
	}
	if r := e.run("publisher", "--topic", "a", "--rate", "10", "--count", "2"); r.stderr != "" {
		t.Errorf("quiet by default off a terminal: %q", r.stderr)
	}
}

// subscriber | head -1 ends once head has its line, on a slow topic too.
func TestPipeToHead(t *testing.T) {
	e := newEnv(t)
	pub, waitPub := e.start("publisher", "--topic", "slow", "--type", "scalar", "--rate", "2")
	e.waitLive("slow")
	c := exec.Command("bash", "-c", `"$1" --topic slow --format json --duration 120s --bus-dir "$2" | head -1`, "bash", filepath.Join(binDir, "subscriber"), e.dir)
	var out bytes.Buffer
	c.Stdout = &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		c.Process.Kill()
		<-done
		t.Fatal("subscriber | head -1 still running after 60 s")
	}
	if !strings.HasPrefix(out.String(), `{"topic":"slow"`) {
		t.Errorf("head -1 got %q", out.String())
	}
	pub.Process.Signal(syscall.SIGTERM)
	waitPub()
}
