package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sensorbus/sensorbus/testing/natstest"
)

// busctl bridge runs against a real nats-server process, built from the
// module's tool requirement (go.mod: tool github.com/nats-io/nats-server/v2)
// as package bridge's tests do; the go command caches the binary.

var natsListen = regexp.MustCompile(`Listening for client connections on [^ ]*:(\d+)`)

// startNATS starts a nats-server on a loopback port it picks, with extra
// configuration, and returns its URL once the server says it is ready.
func startNATS(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "server.conf")
	if err := os.WriteFile(conf, []byte("listen: \"127.0.0.1:-1\"\n"+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startLines(t, exec.Command(natstest.ServerPath(t), "-c", conf))
	p.waitLine("nats-server ready", func(l string) bool { return strings.Contains(l, "Server is ready") })
	for _, l := range p.lines() {
		if m := natsListen.FindStringSubmatch(l); m != nil {
			return "nats://127.0.0.1:" + m[1]
		}
	}
	t.Fatalf("nats-server did not say its port:\n%s", strings.Join(p.lines(), "\n"))
	return ""
}

// lineProc is a program whose stderr is read line by line as it comes,
// for readiness signals and --stats lines; its stdout is kept whole.
type lineProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout bytes.Buffer
	mu     sync.Mutex
	stderr []string
	read   chan struct{} // closed when stderr is at its end
	exited bool
}

func startLines(t *testing.T, c *exec.Cmd) *lineProc {
	t.Helper()
	p := &lineProc{t: t, cmd: c, read: make(chan struct{})}
	c.Stdout = &p.stdout
	pipe, err := c.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.read)
		sc := bufio.NewScanner(pipe)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr = append(p.stderr, sc.Text())
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if !p.exited {
			c.Process.Kill()
			<-p.read
			c.Wait()
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", filepath.Base(c.Path), strings.Join(p.lines(), "\n"))
		}
	})
	return p
}

func (p *lineProc) lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.stderr...)
}

// waitLine polls stderr until a line matches, for up to a minute (the
// machine is shared: the deadline is for a program that hangs, not a
// slow one), and returns it.
func (p *lineProc) waitLine(what string, match func(string) bool) string {
	p.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for seen := 0; ; {
		ls := p.lines()
		for ; seen < len(ls); seen++ {
			if match(ls[seen]) {
				return ls[seen]
			}
		}
		select {
		case <-p.read:
			if len(p.lines()) == seen {
				p.t.Fatalf("%s: the program ended first; stderr:\n%s", what, strings.Join(ls, "\n"))
			}
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: not within a minute; stderr:\n%s", what, strings.Join(ls, "\n"))
		}
	}
}

// signal stops the program with sig and returns how it ended.
func (p *lineProc) signal(sig syscall.Signal) result {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	return p.wait()
}

func (p *lineProc) wait() result {
	<-p.read
	err := p.cmd.Wait()
	p.exited = true
	r := result{stdout: p.stdout.String(), stderr: strings.Join(p.lines(), "\n")}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	}
	return r
}

// startBridge starts busctl bridge on e's bus and waits until it is
// connected (the bridge logs it at level info).
func (e *env) startBridge(args ...string) *lineProc {
	e.t.Helper()
	p := startLines(e.t, e.cmd("busctl", append([]string{"bridge", "--log-level", "info"}, args...)...))
	p.waitLine("bridge connected", func(l string) bool { return strings.Contains(l, `"msg":"bridge connected"`) })
	return p
}

// bridgeJSON is busctl bridge -o json's report, as far as the tests read it.
type bridgeJSON struct {
	Host      string  `json:"host"`
	Server    string  `json:"server"`
	DurationS float64 `json:"duration_s"`
	Exports   []struct {
		Topic    string `json:"topic"`
		Samples  uint64 `json:"samples"`
		Unsent   uint64 `json:"unsent"`
		RingLost uint64 `json:"ring_lost"`
	} `json:"exports"`
	Imports []struct {
		Host     string `json:"host"`
		Topic    string `json:"topic"`
		Local    string `json:"local"`
		Received uint64 `json:"received"`
		Lost     uint64 `json:"lost"`
		Dropped  uint64 `json:"dropped"`
	} `json:"imports"`
}

// Two buses stand for two hosts, A and B, joined by a real nats-server: a
// publisher and busctl bridge --export on A, busctl bridge --import and a
// verifying subscriber on B. Every sample is accounted for, none is
// corrupt, the imported topic shows its origin, and each program stops
// cleanly on a signal with its statistics.
func TestBridgeAcrossHosts(t *testing.T) {
	url := startNATS(t, "")
	a := newEnvAt(t, filepath.Join(t.TempDir(), "hostA"))
	b := newEnvAt(t, filepath.Join(t.TempDir(), "hostB"))

	// A slow topic on A that stays up while the test looks at B's list.
	temp, waitTemp := a.start("publisher", "--topic", "temp", "--type", "scalar", "--rate", "20")
	a.waitLive("temp")
	importer := b.startBridge("--nats", url, "--name", "b", "--import", "a/imu", "--import", "a/temp=a-temp", "-o", "json", "--stats")
	exporter := a.startBridge("--nats", url, "--name", "a", "--export", "imu", "--export", "temp")
	const count = 10000
	_, waitSub := b.start("subscriber", "--topic", "imu", "--verify", "--from", "oldest", "--format", "none", "--stats-json",
		"--count", strconv.Itoa(count), "--wait-for-publisher", "60s",
		// Only if samples were lost does --count not end it; then this does.
		"--duration", "90s")

	b.waitLive("a-temp")
	if r := b.run("busctl", "list", "-o", "wide"); r.code != 0 || !regexp.MustCompile(`(?m)^a-temp .*sensorbus\.Scalar.* a/temp\s*$`).MatchString(r.stdout) {
		t.Errorf("busctl list -o wide on B: exit %d, %q", r.code, r.stdout)
	}
	var topics []struct{ Topic, Origin string }
	if r := b.run("busctl", "list", "-o", "json"); json.Unmarshal([]byte(r.stdout), &topics) != nil || len(topics) == 0 {
		t.Errorf("busctl list -o json on B: %q", r.stdout)
	}
	for _, ti := range topics {
		if ti.Topic == "a-temp" && ti.Origin != "a/temp" {
			t.Errorf("a-temp: origin %q, want a/temp", ti.Origin)
		}
	}

	// Rings that hold every sample: however late the exporter or the
	// subscriber attaches (from the first sample, from the oldest), none is
	// lost, so none may be.
	r := a.run("publisher", "--topic", "imu", "--rate", "5000", "--count", strconv.Itoa(count), "--slots", "16384", "--stats-json")
	if r.code != 0 {
		t.Fatalf("publisher: exit %d, %s", r.code, r.stderr)
	}
	var pub pubStats
	lastJSON(t, r.stdout, &pub)
	sr := waitSub()
	var sub subStats
	lastJSON(t, sr.stdout, &sub)
	if sr.code != 0 || sub.Corrupt != 0 || sub.Received+sub.Lost != pub.Published || sub.Lost != 0 {
		t.Errorf("subscriber on B: exit %d, %+v; published %d on A", sr.code, sub, pub.Published)
	}

	// The importer's --stats lines are its report so far, one a second.
	importer.waitLine("an import --stats line", func(l string) bool { return strings.HasPrefix(l, `{"host":"b"`) })

	// The exporter prints text, the importer JSON; SIGTERM and SIGHUP
	// stop them cleanly.
	er := exporter.signal(syscall.SIGTERM)
	if er.code != 0 || !regexp.MustCompile(`(?m)^export imu: `+strconv.FormatUint(pub.Published, 10)+` samples sent in \d+ messages`).MatchString(er.stdout) ||
		!strings.HasPrefix(er.stdout, "bridge a via "+url+": ") || !strings.Contains(er.stdout, "export temp: ") {
		t.Errorf("exporter: exit %d, stdout %q", er.code, er.stdout)
	}
	ir := importer.signal(syscall.SIGHUP)
	var rep bridgeJSON
	lastJSON(t, ir.stdout, &rep)
	if ir.code != 0 || rep.Host != "b" || rep.Server != url || len(rep.Imports) != 2 || len(rep.Exports) != 0 {
		t.Fatalf("importer: exit %d, stdout %q", ir.code, ir.stdout)
	}
	if im := rep.Imports[0]; im.Host != "a" || im.Topic != "imu" || im.Local != "imu" || im.Received != pub.Published || im.Lost != 0 || im.Dropped != 0 {
		t.Errorf("importer's a/imu: %+v, published %d", im, pub.Published)
	}
	if im := rep.Imports[1]; im.Local != "a-temp" || im.Received == 0 {
		t.Errorf("importer's a/temp: %+v", im)
	}
	if strings.Count(strings.TrimSpace(ir.stdout), "\n") != 0 {
		t.Errorf("importer's stdout is not one JSON line: %q", ir.stdout)
	}

	// SIGINT, with nothing ever received.
	idle := b.startBridge("--nats", url, "--name", "c", "--import", "x/y")
	if r := idle.signal(syscall.SIGINT); r.code != 0 || !strings.Contains(r.stdout, "import x/y as y: 0 samples received") {
		t.Errorf("idle bridge: exit %d, stdout %q", r.code, r.stdout)
	}

	temp.Process.Signal(syscall.SIGINT)
	if r := waitTemp(); r.code != 0 {
		t.Errorf("temp publisher: exit %d, %s", r.code, r.stderr)
	}
}

// Every wrong value is refused before the bridge connects: exit 2, one
// line naming the flag, and nothing created on the bus.
func TestBridgeUsageErrors(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("not a key\n"), 0o600)
	const url = "nats://127.0.0.1:4222"
	rows := []struct {
		args []string
		want string
	}{
		{nil, "--nats is required"},
		{[]string{"--nats", url}, "nothing to do: give --export TOPIC or --import HOST/TOPIC"},
		{[]string{"--nats", "ftp://h", "--export", "imu"}, `--nats "ftp://h": scheme "ftp"`},
		{[]string{"--nats", "nats://u:secret@h:70000", "--export", "imu"}, `--nats "nats://u:xxxxx@h:70000": port "70000"`},
		{[]string{"--nats", url + ",", "--export", "imu"}, "an empty URL in the list"},
		{[]string{"--nats", url, "--name", "a.b", "--export", "imu"}, `--name "a.b"`},
		{[]string{"--nats", url, "--export", "bad/name"}, `--export "bad/name": '/'`},
		{[]string{"--nats", url, "--export", "a..b"}, `--export "a..b": topic "a..b" has an empty subject token`},
		{[]string{"--nats", url, "--import", "imu"}, `--import "imu": want HOST/TOPIC[=LOCAL]`},
		{[]string{"--nats", url, "--import", "a.b/imu"}, `--import "a.b/imu": host`},
		{[]string{"--nats", url, "--import", "a/imu=.x"}, `--import "a/imu=.x": local topic`},
		{[]string{"--nats", url, "--import", "a/imu", "--import", "b/imu"}, `--import "b/imu": local topic "imu" is imported twice`},
		{[]string{"--nats", url, "--export", "imu", "--import", "a/imu"}, `local topic "imu" is also exported`},
		{[]string{"--nats", url, "--export", "imu", "--jetstream", "S.1"}, `--jetstream "S.1"`},
		{[]string{"--nats", url, "--export", "imu", "--stream-max-age", "1h"}, "--stream-max-age applies to --jetstream"},
		{[]string{"--nats", url, "--export", "imu", "--jetstream", "S", "--stream-max-bytes", "1 GB"}, `--stream-max-bytes "1 GB": want a size`},
		{[]string{"--nats", url, "--export", "imu", "--jetstream", "S", "--stream-max-age", "0"}, "--stream-max-age 0: want more than 0"},
		{[]string{"--nats", url, "--export", "imu", "--jetstream", "S", "--stream-replicas", "6"}, "--stream-replicas 6: want 1 to 5"},
		{[]string{"--nats", url, "--export", "imu", "--batch-max-bytes", "65MiB"}, "--batch-max-bytes 65MiB: want at most 64MiB"},
		{[]string{"--nats", url, "--export", "imu", "--batch-max-delay", "-1ms"}, `--batch-max-delay "-1ms": want a duration`},
		{[]string{"--nats", url, "--export", "imu", "--max-reconnect-wait", "10ms"}, "shorter than --reconnect-wait"},
		{[]string{"--nats", url, "--export", "imu", "--scan-interval", "5s"}, "--scan-interval applies to --export '*'"},
		{[]string{"--nats", url, "--export", "imu", "--user", "u", "--token", "t"}, "--user and --token: give one kind of NATS credentials"},
		{[]string{"--nats", url, "--export", "imu", "--password", "p"}, "--password needs --user"},
		{[]string{"--nats", url, "--export", "imu", "--creds", filepath.Join(dir, "none.creds")}, "none.creds\": no such file or directory"},
		{[]string{"--nats", url, "--export", "imu", "--creds", junk}, "not a NATS credentials file"},
		{[]string{"--nats", url, "--export", "imu", "--nkey", junk}, "not a user NKey seed"},
		{[]string{"--nats", url, "--export", "imu", "--tls-ca", junk}, "no PEM certificate in it"},
		{[]string{"--nats", url, "--export", "imu", "--tls-cert", junk}, "--tls-cert needs --tls-key"},
		{[]string{"--nats", url, "--export", "imu", "--tls-cert", junk, "--tls-key", junk}, "--tls-cert"},
		{[]string{"--nats", url, "--export", "imu", "--allow-uid", "root"}, "apply to imported topics"},
		{[]string{"--nats", url, "--import", "a/imu", "--allow-gid", "no-such-group"}, `--allow-gid "no-such-group": no such group`},
		{[]string{"--nats", url, "--export", "imu", "--group", "no-such-group"}, `--group "no-such-group": no such group`},
		{[]string{"--nats", url, "--export", "imu", "-o", "wide"}, `-o "wide"`},
		{[]string{"--nats", url, "--export", "imu", "--log-level", "loud"}, `--log-level "loud"`},
		{[]string{"--nats", url, "--export", "imu", "extra"}, `unexpected argument "extra"`},
	}
	for _, row := range rows {
		r := e.run("busctl", append([]string{"bridge"}, row.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, row.want) || strings.Contains(r.stderr, "secret") {
			t.Errorf("bridge %v: exit %d, stderr %q, want 2 and %q", row.args, r.code, r.stderr, row.want)
		}
		oneLine(t, fmt.Sprint(row.args), r.stderr)
	}
	if _, err := os.Stat(e.dir); !os.IsNotExist(err) {
		t.Errorf("the bus directory was created: %v", err)
	}
}

// A server that cannot be reached is exit 1, one that refuses the
// credentials exit 4, each one line; the password may come from the
// environment.
func TestBridgeConnectErrors(t *testing.T) {
	e := newEnv(t)
	// Port 1 on loopback: nothing listens there, the connection is refused.
	r := e.run("busctl", "bridge", "--nats", "nats://127.0.0.1:1", "--export", "imu")
	if r.code != 1 || !strings.Contains(r.stderr, "cannot connect to NATS nats://127.0.0.1:1") {
		t.Errorf("unreachable: exit %d, %q", r.code, r.stderr)
	}
	oneLine(t, "unreachable", r.stderr)

	url := startNATS(t, "authorization { user: rover, password: s3cret }\n")
	for _, c := range []struct {
		what string
		args []string
		env  string
	}{
		{"no credentials", nil, ""},
		{"a wrong password", []string{"--user", "rover", "--password", "wrong"}, ""},
		{"a wrong password from the environment", []string{"--user", "rover"}, "SENSORBUS_NATS_PASSWORD=wrong"},
		{"a token where a password is wanted", []string{"--token", "s3cret"}, ""},
	} {
		cmd := e.cmd("busctl", append([]string{"bridge", "--nats", url, "--import", "a/imu"}, c.args...)...)
		cmd.Env = append(os.Environ(), c.env)
		r := e.runCmd(cmd)
		if r.code != 4 || !strings.Contains(strings.ToLower(r.stderr), "authorization violation") {
			t.Errorf("%s: exit %d, %q", c.what, r.code, r.stderr)
		}
		oneLine(t, c.what, r.stderr)
	}
	cmd := e.cmd("busctl", "bridge", "--log-level", "info", "--nats", url, "--import", "a/imu", "--user", "rover")
	cmd.Env = append(os.Environ(), "SENSORBUS_NATS_PASSWORD=s3cret")
	p := startLines(t, cmd)
	p.waitLine("bridge connected", func(l string) bool { return strings.Contains(l, `"msg":"bridge connected"`) })
	if r := p.signal(syscall.SIGTERM); r.code != 0 || !strings.HasPrefix(r.stdout, "bridge ") {
		t.Errorf("with the password from the environment: exit %d, %q", r.code, r.stdout)
	}
}
