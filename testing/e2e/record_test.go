package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// busctl record, replay, export and info FILE.mcap, run as a user would.

// fileSummary is what busctl info FILE.mcap -o json says.
type fileSummary struct {
	Complete  bool   `json:"complete"`
	Truncated bool   `json:"truncated"`
	Messages  uint64 `json:"messages"`
	Markers   uint64 `json:"markers"`
	Lost      uint64 `json:"lost"`
	Chunks    int    `json:"chunks"`
	Start     uint64 `json:"start_ns"`
	End       uint64 `json:"end_ns"`
	Recording map[string]string
	Topics    []struct {
		Topic, Schema, Encoding string
		Messages, Lost          uint64
		FirstIndex              uint64 `json:"first_index"`
		LastIndex               uint64 `json:"last_index"`
	}
	Channels []struct {
		ID           uint16
		Topic        string
		Messages     uint64
		FirstLogTime uint64 `json:"first_log_time"`
		LastLogTime  uint64 `json:"last_log_time"`
	}
}

func (e *env) inspect(path string) fileSummary {
	e.t.Helper()
	r := e.run("busctl", "info", path, "-o", "json")
	if r.code != 0 {
		e.t.Fatalf("busctl info %s: exit %d, %s", path, r.code, r.stderr)
	}
	var s fileSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		e.t.Fatalf("busctl info %s -o json: %v\n%s", path, err, r.stdout)
	}
	return s
}

// nthLine waits for the n-th stderr line (from 1) that contains s and
// returns it.
func nthLine(p *lineProc, s string, n int) string {
	p.t.Helper()
	seen := 0
	return p.waitLine(s, func(l string) bool {
		if strings.Contains(l, s) {
			seen++
		}
		return seen == n
	})
}

// waitReceived waits until a subscriber of topic reports (once a second)
// that it received at least n samples.
func (e *env) waitReceived(topic string, n uint64) {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var ti struct {
			Subscribers []struct{ Received uint64 } `json:"subscribers_list"`
		}
		r := e.run("busctl", "info", topic, "-o", "json")
		if r.code == 0 && json.Unmarshal([]byte(r.stdout), &ti) == nil && len(ti.Subscribers) > 0 && ti.Subscribers[0].Received >= n {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no subscriber of %q reported %d samples within a minute: %s", topic, n, r.stdout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// recordPublished records the first n synthetic IMU samples published at
// rate into path, with extra record flags. The publisher's ring holds a
// long history (65536 slots), so the recorder, which starts from the
// oldest sample, gets the first n however late it attaches on a busy
// machine.
func (e *env) recordPublished(topic, path string, n int, rate string, extra ...string) fileSummary {
	e.t.Helper()
	pub, waitPub := e.start("publisher", "--topic", topic, "--rate", rate, "--slots", "65536")
	e.waitLive(topic)
	r := e.run("busctl", append([]string{"record", "-o", path, topic, "--count", strconv.Itoa(n)}, extra...)...)
	pub.Process.Signal(syscall.SIGINT)
	if pr := waitPub(); pr.code != 0 {
		e.t.Fatalf("publisher: exit %d, %s", pr.code, pr.stderr)
	}
	if r.code != 0 || !strings.HasPrefix(r.stdout, "recorded "+strconv.Itoa(n)+" samples of 1 topic") ||
		!strings.Contains(r.stderr, "busctl record: recording "+topic) || !strings.Contains(r.stderr, "busctl record: wrote "+path) {
		e.t.Fatalf("record: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	s := e.inspect(path)
	if !s.Complete || s.Messages != uint64(n) || s.Lost != 0 || len(s.Topics) != 1 || s.Topics[0].Schema != "sensorbus.IMU" ||
		s.Topics[0].FirstIndex != 0 || s.Topics[0].LastIndex != uint64(n-1) {
		e.t.Fatalf("recording %s: %+v", path, s)
	}
	return s
}

// A synthetic topic recorded while it is published, replayed into another
// topic and verified there by a subscriber: nothing corrupt, every
// recorded sample delivered; in both encodings and with each compression.
func TestRecordReplayVerify(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	const n = 3000
	var files []string
	for i, flags := range [][]string{
		nil,
		{"--encoding", "json", "--compression", "lz4"},
		{"--compression", "none", "--chunk-size", "4KiB"},
	} {
		path := filepath.Join(dir, "run"+strconv.Itoa(i)+".mcap")
		s := e.recordPublished("imu", path, n, "5000", flags...)
		if len(flags) > 1 && flags[1] == "json" && s.Topics[0].Encoding != "json" {
			t.Errorf("--encoding json recorded %q", s.Topics[0].Encoding)
		}
		files = append(files, path)

		// The subscriber waits for the replayed topic; the replay waits
		// for the subscriber before its first sample.
		_, waitSub := e.start("subscriber", "--topic", "imu.replay", "--from", "oldest", "--verify", "--format", "none",
			"--stats-json", "--count", strconv.Itoa(n), "--wait-for-publisher", "60s")
		r := e.run("busctl", "replay", path, "--remap", "imu=imu.replay", "--paused-until-subscribed", "--speed", "4", "-o", "json")
		var rs struct {
			Messages uint64
			Topics   map[string]uint64
			Gaps     uint64
			Loops    int
		}
		if err := json.Unmarshal([]byte(r.stdout), &rs); r.code != 0 || err != nil || rs.Messages != n || rs.Topics["imu.replay"] != n || rs.Gaps != 0 || rs.Loops != 1 {
			t.Fatalf("replay %v: exit %d, %v\nstdout %s\nstderr %s", flags, r.code, err, r.stdout, r.stderr)
		}
		sr := waitSub()
		var st subStats
		lastJSON(t, sr.stdout, &st)
		if sr.code != 0 || st.Received != n || st.Lost != 0 || st.Corrupt != 0 {
			t.Fatalf("subscriber of the replay %v: exit %d, %+v, %s", flags, sr.code, st, sr.stderr)
		}
	}
	// The text report names the topic and its count.
	_, waitSub := e.start("subscriber", "--topic", "imu", "--format", "none", "--count", "10", "--from", "oldest", "--wait-for-publisher", "60s")
	r := e.run("busctl", "replay", files[0], "--paused-until-subscribed", "--speed", "0", "--topic", "imu")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "replayed 3000 samples of 1 topic in ") || !strings.Contains(r.stdout, "\nimu    3000\n") {
		t.Errorf("replay text: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	waitSub()
	// export: a CSV row a sample, and JSON lines.
	r = e.run("busctl", "export", files[1])
	rows := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(rows) != n+1 || !strings.HasPrefix(rows[0], "topic,index,log_time_ns,publish_time_ns,lost_before,time,sensor,accel.x") {
		t.Errorf("export csv: exit %d, %d rows, %q", r.code, len(rows), r.stderr)
	}
	r = e.run("busctl", "export", files[0], "--format", "jsonl", "--topic", "imu")
	rows = strings.Split(strings.TrimSpace(r.stdout), "\n")
	var row struct {
		Topic string
		Index uint64
		Data  struct{ Accel struct{ Z float64 } }
	}
	if err := json.Unmarshal([]byte(rows[len(rows)-1]), &row); r.code != 0 || err != nil || len(rows) != n || row.Index != n-1 || row.Data.Accel.Z == 0 {
		t.Errorf("export jsonl: exit %d, %d rows, %v, %+v", r.code, len(rows), err, row)
	}
	// info in text.
	r = e.run("busctl", "info", files[0])
	for _, want := range []string{"complete     yes", "samples      3000", "lost         0", "imu    sensorbus.IMU  msgpack   3000"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("info text lacks %q:\n%s", want, r.stdout)
		}
	}
	mcapCheck(t, e, files...)
}

// The flight recorder writes a file on each SIGUSR1, and on exit with
// --snapshot-on-exit, each named by time and holding the recent samples.
func TestRecordSnapshotOnSIGUSR1(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	pub, waitPub := e.start("publisher", "--topic", "imu", "--rate", "1000")
	e.waitLive("imu")
	rec := startLines(t, e.cmd("busctl", "record", "--snapshot", "10s", "--snapshot-on-exit", "-o", dir, "imu", "--json"))
	nthLine(rec, "busctl record: recording imu", 1)
	e.waitReceived("imu", 100) // so that the first snapshot has samples to hold
	var files []string
	for i := range 3 {
		sig := syscall.SIGUSR1
		if i == 2 {
			sig = syscall.SIGTERM // --snapshot-on-exit
		}
		rec.cmd.Process.Signal(sig)
		files = append(files, strings.TrimPrefix(nthLine(rec, "busctl record: wrote ", i+1), "busctl record: wrote "))
	}
	r := rec.wait()
	var st struct {
		Files    []string
		Messages uint64
		Topics   map[string]struct{ Messages, Lost uint64 }
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); r.code != 0 || err != nil || len(st.Files) != 3 || st.Topics["imu"].Messages == 0 {
		t.Fatalf("record --snapshot: exit %d, %v, %q %q", r.code, err, r.stdout, r.stderr)
	}
	seen := map[string]bool{}
	for i, f := range files {
		if f != st.Files[i] || filepath.Dir(f) != dir || !strings.HasPrefix(filepath.Base(f), "snapshot-") || seen[f] {
			t.Errorf("snapshot %d: %q (report: %v)", i, f, st.Files)
		}
		seen[f] = true
		s := e.inspect(f)
		if !s.Complete || s.Messages == 0 || s.Recording["mode"] != "snapshot" || s.Topics[0].Topic != "imu" {
			t.Errorf("snapshot %s: %+v", f, s)
		}
		if i > 0 {
			if prev := e.inspect(files[i-1]); s.End < prev.End {
				t.Errorf("snapshot %s ends before the one before it", f)
			}
		}
	}
	pub.Process.Signal(syscall.SIGINT)
	waitPub()
	mcapCheck(t, e, files...)
}

// A recorder killed with kill -9 leaves a file that info, export and
// replay read up to its last complete chunk.
func TestRecordKilled(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(t.TempDir(), "killed.mcap")
	pub, waitPub := e.start("publisher", "--topic", "imu", "--rate", "2000")
	e.waitLive("imu")
	rec := startLines(t, e.cmd("busctl", "record", "-o", path, "imu", "--flush-interval", "100ms"))
	nthLine(rec, "busctl record: recording imu", 1)
	// Until a chunk or two are in the file.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if r := e.run("busctl", "info", path, "-o", "json"); r.code == 0 && strings.Contains(r.stdout, `"chunks": `) && !strings.Contains(r.stdout, `"chunks": 0,`) && !strings.Contains(r.stdout, `"chunks": 1,`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no chunk in the file within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	rec.cmd.Process.Signal(syscall.SIGKILL)
	rec.wait()
	pub.Process.Signal(syscall.SIGINT)
	waitPub()

	s := e.inspect(path)
	if s.Complete || !s.Truncated || s.Messages == 0 || s.Chunks < 2 || s.Topics[0].FirstIndex != 0 || s.Topics[0].LastIndex != s.Messages-1 {
		t.Fatalf("killed recording: %+v", s)
	}
	if r := e.run("busctl", "info", path); r.code != 0 || !strings.Contains(r.stdout, "complete     no: cut short") {
		t.Errorf("info: exit %d, %q", r.code, r.stdout)
	}
	r := e.run("busctl", "export", path, "--format", "jsonl")
	if n := strings.Count(r.stdout, "\n"); r.code != 0 || uint64(n) != s.Messages || !strings.Contains(r.stderr, "was cut short") {
		t.Errorf("export: exit %d, %d rows of %d, %q", r.code, n, s.Messages, r.stderr)
	}
	oneLine(t, "export of a file cut short", r.stderr)
	r = e.run("busctl", "replay", path, "--speed", "0", "--remap", "imu=again", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"messages":`+strconv.FormatUint(s.Messages, 10)) {
		t.Errorf("replay: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	mcapCheck(t, e, path)
}

// Bad files and a busy topic: one line, the documented exit code.
func TestRecordBadFiles(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.mcap")
	e.recordPublished("imu", good, 200, "10000", "--compression", "none")
	full, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(i*7919 + i>>3)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := map[string]string{
		write("empty.mcap", nil):                               "not an MCAP file: the file is empty",
		write("text.mcap", []byte("not a recording\n")):        "not an MCAP file",
		write("garbage.mcap", garbage):                         "not an MCAP file",
		write("half-magic.mcap", full[:4]):                     "not an MCAP file",
		write("notes.txt", []byte("# a file without .mcap\n")): "not an MCAP file",
	}
	for path, want := range bad {
		for _, args := range [][]string{{"info", path}, {"export", path}, {"replay", path}} {
			r := e.run("busctl", args...)
			what := strings.Join(args, " ")
			if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.HasPrefix(r.stderr, "busctl: ") {
				t.Errorf("%s: exit %d, %q; want 1 and %q", what, r.code, r.stderr, want)
			}
			oneLine(t, what, r.stderr)
		}
	}
	// A type this build does not know: info and export read it, replay
	// refuses it.
	unknown := write("acme.mcap", bytes.ReplaceAll(full, []byte("sensorbus.IMU"), []byte("acmecorp.Toy!")))
	if r := e.run("busctl", "info", unknown); r.code != 0 || !strings.Contains(r.stdout, "acmecorp.Toy!") {
		t.Errorf("info of an unknown type: exit %d, %q", r.code, r.stderr)
	}
	if r := e.run("busctl", "export", unknown); r.code != 0 || strings.Count(r.stdout, "\n") != 201 {
		t.Errorf("export of an unknown type: exit %d, %q", r.code, r.stderr)
	}
	r := e.run("busctl", "replay", unknown)
	if r.code != 1 || !strings.Contains(r.stderr, `unknown schema "acmecorp.Toy!"`) {
		t.Errorf("replay of an unknown type: exit %d, %q", r.code, r.stderr)
	}
	oneLine(t, "replay of an unknown type", r.stderr)
	// Cut inside its first chunk: nothing to play.
	cut := write("cut.mcap", full[:len(full)/4])
	if s := e.inspect(cut); s.Complete || !s.Truncated {
		t.Errorf("a file cut short: %+v", s)
	}
	r = e.run("busctl", "replay", cut)
	if r.code != 1 || !strings.Contains(r.stderr, "holds no samples") {
		t.Errorf("replay of a file cut in its first chunk: exit %d, %q", r.code, r.stderr)
	}
	oneLine(t, "replay of a file cut in its first chunk", r.stderr)

	// A topic with a live publisher: 6, nothing published.
	pub, waitPub := e.start("publisher", "--topic", "imu", "--rate", "10")
	e.waitLive("imu")
	r = e.run("busctl", "replay", good)
	if r.code != 6 || !strings.Contains(r.stderr, `topic "imu" already has a live publisher`) {
		t.Errorf("replay onto a busy topic: exit %d, %q", r.code, r.stderr)
	}
	oneLine(t, "replay onto a busy topic", r.stderr)
	pub.Process.Signal(syscall.SIGINT)
	waitPub()
	// A named topic without a publisher: 5.
	r = e.run("busctl", "record", "-o", filepath.Join(dir, "none.mcap"), "nobody", "--wait-for-publisher", "0")
	if r.code != 5 {
		t.Errorf("record of a topic without a publisher: exit %d, %q", r.code, r.stderr)
	}
}

// Every wrong value exits 2 with one line, before anything is created:
// neither the bus directory nor a file.
func TestRecordUsageErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "exists.mcap")
	os.WriteFile(good, []byte("x"), 0o644)
	out := filepath.Join(dir, "new.mcap")
	rows := []struct {
		args []string
		want string
	}{
		{[]string{"record", "imu"}, "-o is required"},
		{[]string{"record", "-o", out}, "nothing to record"},
		{[]string{"record", "-o", out, "imu", "--all"}, "not both"},
		{[]string{"record", "-o", out, "a/b"}, `TOPIC "a/b"`},
		{[]string{"record", "-o", filepath.Join(dir, "json"), "imu"}, "ends in .mcap"},
		{[]string{"record", "-o", good, "imu"}, "exists; busctl record never overwrites"},
		{[]string{"record", "-o", filepath.Join(dir, "no", "x.mcap"), "imu"}, "no such file or directory"},
		{[]string{"record", "-o", out, "imu", "--compression", "gzip"}, `--compression "gzip"`},
		{[]string{"record", "-o", out, "imu", "--encoding", "cbor"}, `--encoding "cbor"`},
		{[]string{"record", "-o", out, "imu", "--duration", "5"}, `--duration "5"`},
		{[]string{"record", "-o", out, "imu", "--count", "-1"}, `--count "-1"`},
		{[]string{"record", "-o", out, "imu", "--split-size", "big"}, `--split-size "big": want a size`},
		{[]string{"record", "-o", out, "imu", "--split-duration", "-1s"}, `--split-duration "-1s"`},
		{[]string{"record", "-o", out, "imu", "--chunk-size", "64MiB"}, "--chunk-size 64MiB: want 1KiB to 32MiB"},
		{[]string{"record", "-o", out, "imu", "--flush-interval", "0"}, "--flush-interval 0"},
		{[]string{"record", "-o", out, "imu", "--wait-for-publisher", "soon"}, `--wait-for-publisher "soon"`},
		{[]string{"record", "-o", out, "imu", "--snapshot-on-exit"}, "--snapshot-on-exit applies to --snapshot"},
		{[]string{"record", "-o", out, "imu", "--snapshot", "0"}, "--snapshot 0"},
		{[]string{"record", "-o", good, "imu", "--snapshot", "10s"}, "not a directory"},
		{[]string{"record", "-o", dir, "imu", "--snapshot", "10s", "--count", "5"}, "--count does not apply to --snapshot"},
		{[]string{"record", "-o", dir, "imu", "--snapshot", "10s", "--snapshot-bytes", "0"}, "--snapshot-bytes 0"},
		{[]string{"record", "-o", out, "imu", "--log-level", "loud"}, `--log-level "loud"`},
		{[]string{"replay"}, "replay: missing FILE.mcap"},
		{[]string{"replay", filepath.Join(dir, "missing.mcap")}, "missing.mcap: no such file"},
		{[]string{"replay", dir}, "is a directory"},
		{[]string{"replay", good, "--speed", "-1"}, "--speed -1"},
		{[]string{"replay", good, "--speed", "NaN"}, "--speed NaN"},
		{[]string{"replay", good, "--speed", "fast"}, `--speed "fast": want a number`},
		{[]string{"replay", good, "--remap", "imu"}, `--remap "imu": want FROM=TO`},
		{[]string{"replay", good, "--remap", "imu=a/b"}, `--remap "imu=a/b"`},
		{[]string{"replay", good, "--remap", "imu=a", "--remap", "imu=b"}, "remapped twice"},
		{[]string{"replay", good, "--topic", ".x"}, `--topic ".x"`},
		{[]string{"replay", good, "--start", "-5s"}, `--start "-5s"`},
		{[]string{"replay", good, "-o", "yaml"}, `-o "yaml"`},
		{[]string{"export"}, "export: missing FILE.mcap"},
		{[]string{"export", good, "--format", "xlsx"}, `--format "xlsx"`},
		{[]string{"export", filepath.Join(dir, "missing.mcap")}, "no such file"},
		{[]string{"info", filepath.Join(dir, "missing.mcap")}, "no such file"},
		{[]string{"info", good, "-o", "yaml"}, `-o "yaml"`},
	}
	for _, row := range rows {
		e := newEnv(t)
		r := e.run("busctl", row.args...)
		what := "busctl " + strings.Join(row.args, " ")
		if r.code != 2 || !strings.Contains(r.stderr, row.want) || !strings.HasPrefix(r.stderr, "busctl: ") {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", what, r.code, r.stderr, row.want)
		}
		oneLine(t, what, r.stderr)
		if _, err := os.Stat(e.dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: the bus directory was created", what)
		}
		if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: created %s", what, out)
			os.Remove(out)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files were created: %v", ents)
	}
}

// The shell completes the new commands' values.
func TestRecordCompletion(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"__complete", "record", "--compression", ""}, "zstd\nlz4\nnone\n:4\n"},
		{[]string{"__complete", "record", "--encoding", ""}, "msgpack\njson\n:4\n"},
		{[]string{"__complete", "export", "run.mcap", "--format", ""}, "csv\njsonl\n:4\n"},
		{[]string{"__complete", "replay", ""}, "mcap\n:8\n"},
		{[]string{"__complete", "info", ""}, "mcap\n:8\n"},
	} {
		r := runBare(t, append([]string{"busctl"}, c.args...)...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, c.want) {
			t.Errorf("busctl %v: exit %d, %q; want %q", c.args, r.code, r.stdout, c.want)
		}
	}
}

// mcapCheck reads files with the official TypeScript MCAP readers
// (testing/mcapcheck, installed by make mcapcheck) and compares their
// counts, channels and times with busctl info's. Skipped without node,
// except under CI.
func mcapCheck(t *testing.T, e *env, files ...string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is needed under CI to check recordings with the official MCAP readers")
		}
		t.Log("node not installed: recordings not checked with the TypeScript MCAP readers")
		return
	}
	dir, err := filepath.Abs(filepath.Join("..", "mcapcheck"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@mcap", "core")); err != nil {
		npm := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		npm.Dir = dir
		if out, err := npm.CombinedOutput(); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("npm ci: %v\n%s", err, out)
			}
			t.Logf("npm ci failed (run make mcapcheck): recordings not checked with the TypeScript MCAP readers: %v", err)
			return
		}
	}
	cmd := exec.Command(node, append([]string{"check.mjs"}, files...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node check.mjs: %v\n%s\n%s", err, out, stderr.Bytes())
	}
	type read struct {
		Messages uint64
		Footer   bool
		Error    string
		Channels []struct {
			ID           uint16
			Topic        string
			Messages     uint64
			FirstLogTime string
			LastLogTime  string
		}
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for i := 0; ; i++ {
		var res struct {
			File    string
			Stream  read
			Indexed *read
		}
		if err := dec.Decode(&res); errors.Is(err, io.EOF) {
			if i != len(files) {
				t.Fatalf("node check.mjs reported %d files of %d", i, len(files))
			}
			return
		} else if err != nil {
			t.Fatalf("node check.mjs: %v\n%s", err, out)
		}
		s := e.inspect(res.File)
		reads := []read{res.Stream}
		if s.Complete {
			if res.Indexed == nil {
				t.Errorf("%s: complete, but the TypeScript reader found no footer", res.File)
			} else {
				reads = append(reads, *res.Indexed)
			}
		} else if res.Stream.Footer {
			t.Errorf("%s: the TypeScript reader found a footer busctl info did not", res.File)
		}
		for _, got := range reads {
			if got.Error != "" || got.Messages != s.Messages+s.Markers {
				t.Errorf("%s: the TypeScript reader read %d messages (%q), busctl info %d samples + %d markers", res.File, got.Messages, got.Error, s.Messages, s.Markers)
			}
			n := 0
			for _, c := range got.Channels {
				if c.Messages == 0 {
					continue
				}
				if n >= len(s.Channels) {
					t.Errorf("%s: the TypeScript reader found more channels than busctl info: %+v", res.File, got.Channels)
					break
				}
				w := s.Channels[n]
				n++
				if c.ID != w.ID || c.Topic != w.Topic || c.Messages != w.Messages ||
					c.FirstLogTime != strconv.FormatUint(w.FirstLogTime, 10) || c.LastLogTime != strconv.FormatUint(w.LastLogTime, 10) {
					t.Errorf("%s: channel %+v, busctl info %+v", res.File, c, w)
				}
			}
			if n != len(s.Channels) {
				t.Errorf("%s: %d channels with messages, busctl info %d", res.File, n, len(s.Channels))
			}
		}
	}
}
