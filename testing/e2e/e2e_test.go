// Package e2e builds the publisher, subscriber and busctl programs and runs
// them as a user would: flags, output, exit codes, signals and files left.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/testing/leakcheck"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sensorbus-e2e-bin-")
	if err != nil {
		panic(err)
	}
	build := exec.Command("go", "build", "-o", dir+"/", "../../cmd/publisher", "../../cmd/subscriber", "../../cmd/busctl")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build the programs:", err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755) // for the tests that run the programs as another user
	binDir = dir
	code := leakcheck.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one test's private bus.
type env struct {
	t   *testing.T
	dir string
}

func newEnv(t *testing.T) *env { return newEnvAt(t, filepath.Join(t.TempDir(), "bus")) }

// newEnvAt is newEnv with the bus directory at dir.
func newEnvAt(t *testing.T, dir string) *env {
	e := &env{t: t, dir: dir}
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		if left := e.leftovers(); len(left) > 0 {
			t.Errorf("files left behind: %v", left)
		}
	})
	return e
}

// leftovers lists what the bus still holds, as the bus itself counts it.
func (e *env) leftovers() []string {
	files, err := bus.Files(bus.Options{Dir: e.dir})
	if err != nil {
		return []string{err.Error()}
	}
	return files
}

func (e *env) cmd(prog string, args ...string) *exec.Cmd {
	return exec.Command(filepath.Join(binDir, prog), append(args, "--bus-dir", e.dir)...)
}

// result is a finished program.
type result struct {
	code           int
	stdout, stderr string
}

func (e *env) run(prog string, args ...string) result {
	e.t.Helper()
	return e.runCmd(e.cmd(prog, args...))
}

// runCmd runs c to its end and collects its output and exit code.
func (e *env) runCmd(c *exec.Cmd) result {
	e.t.Helper()
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// start starts a program in the background; wait collects it.
func (e *env) start(prog string, args ...string) (*exec.Cmd, func() result) {
	e.t.Helper()
	c := e.cmd(prog, args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := false
	e.t.Cleanup(func() {
		if !done {
			c.Process.Kill()
			c.Wait()
		}
	})
	return c, func() result {
		err := c.Wait()
		done = true
		r := result{stdout: out.String(), stderr: errb.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		}
		return r
	}
}

// waitLive waits until busctl shows the topic live.
func (e *env) waitLive(topic string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r := e.run("busctl", "info", topic, "--json"); r.code == 0 && strings.Contains(r.stdout, `"state": "live"`) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("topic %q never became live", topic)
}

func lastJSON(t *testing.T, out string, v any) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		t.Fatalf("last line of %q is not the stats JSON: %v", out, err)
	}
}

// keysOf returns the sorted keys of a JSON object, recursively dotted.
func keysOf(t *testing.T, line string) []string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	var keys []string
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			for k2 := range sub {
				keys = append(keys, k+"."+k2)
			}
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

type pubStats struct {
	Published uint64  `json:"published"`
	DurationS float64 `json:"duration_s"`
	RateHz    float64 `json:"rate_hz"`
}

type subStats struct {
	Received, Lost, Corrupt uint64
	Restarts                uint64                                   `json:"publisher_restarts"`
	DurationS               float64                                  `json:"duration_s"`
	RateHz                  float64                                  `json:"rate_hz"`
	Latency                 struct{ P50, P90, P99, P999, Max int64 } `json:"latency_ns"`
}

// A 200 kHz publisher and three verifying stream subscribers for 3 s:
// nothing corrupt, and every subscriber accounts for every sample.
func TestPublisher200kHzThreeVerifyingSubscribers(t *testing.T) {
	e := newEnv(t)
	var subs []func() result
	for _, wait := range []string{"block", "spin", "block"} {
		_, w := e.start("subscriber", "--topic", "fast", "--from", "oldest", "--verify", "--format", "none",
			"--wait", wait, "--stats-json", "--duration", "6s", "--wait-for-publisher", "10s")
		subs = append(subs, w)
	}
	r := e.run("publisher", "--topic", "fast", "--rate", "200000", "--duration", "3s", "--stats-json")
	if r.code != 0 {
		t.Fatalf("publisher exit %d: %s", r.code, r.stderr)
	}
	var ps pubStats
	lastJSON(t, r.stdout, &ps)
	t.Logf("publisher: %+v", ps)
	// The rate itself is BenchmarkPacing's business; here the run must be
	// substantial and every sample accounted for.
	if ps.Published < 10_000 {
		t.Errorf("published only %d in 3 s at 200 kHz", ps.Published)
	}
	for k, w := range subs {
		res := w()
		var ss subStats
		lastJSON(t, res.stdout, &ss)
		t.Logf("subscriber %d: %+v", k, ss)
		if res.code != 0 || ss.Corrupt != 0 || ss.Received+ss.Lost != ps.Published || ss.Received == 0 {
			t.Errorf("subscriber %d: exit %d, %+v; want received+lost = %d, none corrupt (%s)", k, res.code, ss, ps.Published, res.stderr)
		}
	}
}

func TestLatestMode(t *testing.T) {
	e := newEnv(t)
	pub, waitPub := e.start("publisher", "--topic", "disp", "--type", "gps", "--rate", "2000")
	e.waitLive("disp")
	r := e.run("subscriber", "--topic", "disp", "--mode", "latest", "--interval", "50ms", "--count", "5", "--format", "json")
	pub.Process.Signal(syscall.SIGTERM)
	waitPub()
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines: %q", len(lines), r.stdout)
	}
	var prev uint64
	for i, l := range lines {
		var s struct {
			Topic  string
			Seq    uint64
			Type   string
			Fields struct{ Lat, Lon float64 }
		}
		if err := json.Unmarshal([]byte(l), &s); err != nil || s.Topic != "disp" || s.Type != "sensorbus.GPSFix" || s.Fields.Lat < 59 {
			t.Fatalf("line %q: %+v %v", l, s, err)
		}
		if i > 0 && s.Seq <= prev+10 {
			t.Errorf("latest mode at 2 kHz, one look per 50 ms: seq %d after %d", s.Seq, prev)
		}
		prev = s.Seq
	}
}

func TestExitCodes(t *testing.T) {
	e := newEnv(t)
	pub, waitPub := e.start("publisher", "--topic", "temp", "--type", "scalar", "--rate", "100")
	e.waitLive("temp")

	r := e.run("subscriber", "--topic", "temp", "--expect-type", "imu", "--count", "1")
	if r.code != 3 || !strings.Contains(r.stderr, "sensorbus.IMU") || !strings.Contains(r.stderr, "sensorbus.Scalar") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("schema mismatch: exit %d, stderr %q; want 3 and one line naming both types", r.code, r.stderr)
	}
	r = e.run("subscriber", "--topic", "nobody", "--wait-for-publisher", "200ms")
	if r.code != 5 || !strings.Contains(r.stderr, "no publisher") {
		t.Errorf("no publisher: exit %d, %q", r.code, r.stderr)
	}
	r = e.run("publisher", "--topic", "temp")
	if r.code != 6 || !strings.Contains(r.stderr, fmt.Sprintf("pid %d", pub.Process.Pid)) {
		t.Errorf("second publisher: exit %d, %q", r.code, r.stderr)
	}
	for _, args := range [][]string{{"--topic"}, {"--topic", "x", "--rate", "-5"}, {"--bogus"}, {}, {"--topic", "x", "--type", "toaster"}, {"--topic", "bad/name"}} {
		r = e.run("publisher", args...)
		if r.code != 2 {
			t.Errorf("publisher %v: exit %d, %q; want 2", args, r.code, r.stderr)
		}
		if strings.Contains(r.stderr, "goroutine") || strings.Contains(r.stderr, "panic") {
			t.Errorf("publisher %v printed a stack trace: %s", args, r.stderr)
		}
	}
	if r = e.run("subscriber", "--topic", "temp", "--mode", "sideways"); r.code != 2 {
		t.Errorf("bad --mode: exit %d", r.code)
	}
	if r = e.run("publisher", "--help"); r.code != 0 || !strings.Contains(r.stdout, "--rate float") || !strings.Contains(r.stdout, "(default 1000)") || !strings.Contains(r.stdout, "Exit codes") {
		t.Errorf("--help: exit %d, %q", r.code, r.stdout)
	}
	if r = e.run("busctl", "frobnicate"); r.code != 2 {
		t.Errorf("busctl unknown command: exit %d", r.code)
	}
	pub.Process.Signal(syscall.SIGTERM)
	if res := waitPub(); res.code != 0 {
		t.Errorf("publisher after SIGTERM: exit %d, %s", res.code, res.stderr)
	}
}

// SIGTERM stops both programs gracefully: they print their final stats
// and the publisher removes its files.
func TestSIGTERMLeavesNoFiles(t *testing.T) {
	e := newEnv(t)
	pub, waitPub := e.start("publisher", "--topic", "t", "--rate", "5000", "--stats-json")
	e.waitLive("t")
	sub, waitSub := e.start("subscriber", "--topic", "t", "--format", "none", "--stats-json", "--duration", "60s")
	// Stopped once it has received samples, as its report says.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var ti bus.TopicInfo
		if r := e.run("busctl", "info", "t", "-o", "json"); r.code == 0 && json.Unmarshal([]byte(r.stdout), &ti) == nil &&
			len(ti.Peers) == 1 && ti.Peers[0].Received > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the subscriber reported no sample received within 30 s")
		}
	}
	sub.Process.Signal(syscall.SIGTERM)
	pub.Process.Signal(syscall.SIGTERM)
	pr, sr := waitPub(), waitSub()
	if pr.code != 0 || sr.code != 0 {
		t.Fatalf("exit codes %d, %d: %s %s", pr.code, sr.code, pr.stderr, sr.stderr)
	}
	want := []string{"duration_s", "published", "rate_hz", "skipped"}
	if k := keysOf(t, strings.TrimSpace(pr.stdout)); !reflect.DeepEqual(k, want) {
		t.Errorf("publisher --stats-json keys %v, want %v", k, want)
	}
	want = []string{"corrupt", "duration_s", "latency_ns.max", "latency_ns.p50", "latency_ns.p90", "latency_ns.p99", "latency_ns.p999", "lost", "publisher_restarts", "rate_hz", "received"}
	if k := keysOf(t, strings.TrimSpace(sr.stdout)); !reflect.DeepEqual(k, want) {
		t.Errorf("subscriber --stats-json keys %v, want %v", k, want)
	}
	var ss subStats
	lastJSON(t, sr.stdout, &ss)
	if ss.Received == 0 || ss.Latency.P50 <= 0 || ss.Latency.Max < ss.Latency.P99 {
		t.Errorf("subscriber stats %+v", ss)
	}
	if left := e.leftovers(); len(left) != 0 {
		t.Fatalf("SIGTERM left %v", left)
	}
}

func TestStdinSourceSkipsBadLines(t *testing.T) {
	e := newEnv(t)
	// From the oldest: the three samples may be out before it attaches.
	_, waitSub := e.start("subscriber", "--topic", "in", "--from", "oldest", "--format", "json", "--count", "3", "--duration", "20s", "--wait-for-publisher", "10s")
	c := e.cmd("publisher", "--topic", "in", "--type", "scalar", "--source", "stdin", "--rate", "0", "--stats-json")
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	stdin.Write([]byte(`{"time":1,"sensor":2,"value":20.5,"unit":"degC"}
{"time":2,"sensor":2,"value":"warm"}

{"time":3,"sensor":2,"value":21,"unit":"degC"}
{"time":4,"sensor":2,"value":21.5,"unit":"degC","color":"red"}
{"time":5,"sensor":2,"value":22,"unit":"degC"}
`))
	// Stdin stays open, and so the topic, until the subscriber has all three.
	r := waitSub()
	stdin.Close()
	if err := c.Wait(); err != nil {
		t.Fatalf("publisher: %v: %s", err, errb.String())
	}
	var ps pubStats
	lastJSON(t, out.String(), &ps)
	if ps.Published != 3 {
		t.Errorf("published %d of 5 lines (2 bad), want 3", ps.Published)
	}
	for _, want := range []string{"stdin line 2 skipped", "stdin line 5 skipped", "unknown field", "2 line(s) skipped"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr %q lacks %q", errb.String(), want)
		}
	}
	if r.code != 0 || strings.Count(r.stdout, `"type":"sensorbus.Scalar"`) != 3 || !strings.Contains(r.stdout, `"value":22`) {
		t.Errorf("subscriber exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
}

func TestBusctl(t *testing.T) {
	e := newEnv(t)
	if r := e.run("busctl", "list"); r.code != 5 || !strings.Contains(r.stderr, "no bus at") {
		t.Fatalf("list of a bus nobody created: %d %q %q", r.code, r.stdout, r.stderr)
	}
	pub, _ := e.start("publisher", "--topic", "bat", "--type", "battery", "--rate", "500")
	e.waitLive("bat")
	_, _ = e.start("subscriber", "--topic", "bat", "--format", "none", "--duration", "60s")
	deadline := time.Now().Add(10 * time.Second)
	var topics []struct {
		Topic, State, Schema string
		Subscribers          int
		WriterPID            int     `json:"writer_pid"`
		RateHz               float64 `json:"rate_hz"`
	}
	for time.Now().Before(deadline) {
		r := e.run("busctl", "list", "--json")
		if err := json.Unmarshal([]byte(r.stdout), &topics); err != nil {
			t.Fatalf("list --json %q: %v", r.stdout, err)
		}
		if len(topics) == 1 && topics[0].Subscribers == 1 && topics[0].RateHz > 400 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(topics) != 1 || topics[0].State != "live" || topics[0].Schema != "sensorbus.Battery" || topics[0].WriterPID != pub.Process.Pid || topics[0].Subscribers != 1 {
		t.Fatalf("list --json: %+v", topics)
	}
	if r := e.run("busctl", "list"); !strings.Contains(r.stdout, "sensorbus.Battery") || !strings.Contains(r.stdout, "live") {
		t.Errorf("list: %q", r.stdout)
	}
	if r := e.run("busctl", "info", "bat"); !strings.Contains(r.stdout, "4096 slots of 256 bytes") {
		t.Errorf("info: %q", r.stdout)
	}
	if r := e.run("busctl", "info", "nope"); r.code != 5 {
		t.Errorf("info of a missing topic: exit %d %q", r.code, r.stderr)
	}
	pub.Process.Signal(syscall.SIGKILL)
	pub.Wait()
	if r := e.run("busctl", "list"); !strings.Contains(r.stdout, "dead") {
		t.Errorf("list after kill -9: %q", r.stdout)
	}
	r := e.run("busctl", "gc")
	if r.code != 0 || strings.Count(r.stdout, "removed ") != 2 || !strings.Contains(r.stdout, "bat.sock") || !strings.Contains(r.stdout, "bat.pub") {
		t.Errorf("gc: exit %d %q; want the socket and the liveness file removed", r.code, r.stdout)
	}
	if r := e.run("busctl", "gc"); !strings.Contains(r.stdout, "nothing to remove") {
		t.Errorf("second gc: %q", r.stdout)
	}
	r = e.run("busctl", "doctor", "--json")
	var rep struct {
		Items []struct{ Name, Verdict string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || len(rep.Items) < 8 {
		t.Errorf("doctor --json: %v %q", err, r.stdout)
	}
	if r := e.run("busctl", "doctor"); !strings.Contains(r.stdout, "SCHED_FIFO allowed") {
		t.Errorf("doctor: %q", r.stdout)
	}
}
