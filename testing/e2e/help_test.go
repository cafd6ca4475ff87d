package e2e

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden help texts in testdata/help")

// Every help text is as reviewed in testdata/help (go test -update
// rewrites them).
func TestHelpGolden(t *testing.T) {
	cases := [][]string{
		{"publisher", "--help"},
		{"subscriber", "--help"},
		{"busctl", "--help"},
	}
	for _, sub := range []string{"list", "info", "echo", "hz", "schema", "gc", "doctor", "bridge", "completion", "record", "replay", "export"} {
		cases = append(cases, []string{"busctl", sub, "--help"})
	}
	for _, args := range cases {
		r := runBare(t, args...)
		if r.code != 0 || r.stderr != "" {
			t.Errorf("%v: exit %d, %q", args, r.code, r.stderr)
		}
		golden := filepath.Join("testdata", "help", strings.Join(args[:len(args)-1], "_")+".txt")
		if *update {
			os.MkdirAll(filepath.Dir(golden), 0o755)
			if err := os.WriteFile(golden, []byte(r.stdout), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (go test ./testing/e2e -run TestHelpGolden -update writes it)", err)
		}
		if r.stdout != string(want) {
			t.Errorf("%v differs from %s:\n%s", args, golden, r.stdout)
		}
		if !strings.Contains(r.stdout, "Exit codes: 0 ok") || !strings.Contains(r.stdout, "Examples:") {
			t.Errorf("%v: no exit codes or examples", args)
		}
	}
	// help SUBCOMMAND is SUBCOMMAND --help.
	if a, b := runBare(t, "busctl", "help", "list"), runBare(t, "busctl", "list", "--help"); a.code != 0 || a.stdout != b.stdout {
		t.Errorf("busctl help list: exit %d, %q", a.code, a.stdout)
	}
}

// runBare runs a program without the test bus.
func runBare(t *testing.T, args ...string) result {
	t.Helper()
	e := &env{t: t}
	return e.runCmd(exec.Command(filepath.Join(binDir, args[0]), args[1:]...))
}

func TestVersion(t *testing.T) {
	for _, prog := range []string{"publisher", "subscriber", "busctl"} {
		r := runBare(t, prog, "--version")
		if r.code != 0 || !regexp.MustCompile(`^`+prog+` \S.* go1\.\d+`).MatchString(r.stdout) {
			t.Errorf("%s --version: exit %d, %q", prog, r.code, r.stdout)
		}
	}
}

// busctl completion bash is a script bash sources without a word, and
// whose completion function offers the commands.
func TestCompletionBash(t *testing.T) {
	r := runBare(t, "busctl", "completion", "bash")
	if r.code != 0 {
		t.Fatalf("exit %d, %q", r.code, r.stderr)
	}
	script := filepath.Join(t.TempDir(), "busctl.bash")
	os.WriteFile(script, []byte(r.stdout), 0o644)
	e := &env{t: t}
	res := e.runCmd(exec.Command("bash", "-c", `source "$1" && complete -p busctl`, "bash", script))
	if res.code != 0 || res.stderr != "" || !strings.Contains(res.stdout, "__start_busctl") {
		t.Errorf("bash: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	// With the bash-completion package, where there is one, ask it.
	const bc = "/usr/share/bash-completion/bash_completion"
	if _, err := os.Stat(bc); err == nil {
		c := exec.Command("bash", "-c", `source `+bc+` && source "$1" && COMP_WORDS=(busctl l) COMP_CWORD=1 COMP_LINE="busctl l" COMP_POINT=8 && __start_busctl && printf '%s\n' "${COMPREPLY[@]}"`, "bash", script)
		c.Env = append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"))
		if res := e.runCmd(c); res.code != 0 || !strings.Contains(res.stdout, "list") {
			t.Errorf("completing 'busctl l': exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
		}
	}
	for _, sh := range []string{"zsh", "fish"} {
		if r := runBare(t, "busctl", "completion", sh); r.code != 0 || !strings.Contains(r.stdout, "busctl") {
			t.Errorf("completion %s: exit %d", sh, r.code)
		}
	}
}

// busctl's outputs, with --bus-dir before or after the command.
func TestBusctlOutputs(t *testing.T) {
	e := newEnv(t)
	pub, waitPub := e.start("publisher", "--topic", "imu", "--rate", "200")
	e.waitLive("imu")
	bin := filepath.Join(binDir, "busctl")
	for _, args := range [][]string{
		{"--bus-dir", e.dir, "info", "imu", "--json"},
		{"info", "--json", "imu", "--bus-dir", e.dir},
		{"info", "imu", "-o", "json", "--bus-dir", e.dir},
		{"--bus-dir=" + e.dir, "info", "-ojson", "imu"},
	} {
		r := e.runCmd(exec.Command(bin, args...))
		var ti struct{ Topic, State string }
		if err := json.Unmarshal([]byte(r.stdout), &ti); r.code != 0 || err != nil || ti.Topic != "imu" || ti.State != "live" {
			t.Errorf("busctl %v: exit %d, %q %q", args, r.code, r.stdout, r.stderr)
		}
	}
	if r := e.run("busctl", "list", "-o", "wide"); !strings.Contains(r.stdout, "FINGERPRINT") || !strings.Contains(r.stdout, "4096") {
		t.Errorf("list -o wide: %q", r.stdout)
	}
	if r := e.run("busctl", "list", "--no-headers"); strings.Contains(r.stdout, "TOPIC") || !strings.HasPrefix(r.stdout, "imu ") {
		t.Errorf("list --no-headers: %q", r.stdout)
	}
	if r := e.run("busctl", "info", "imu", "-o", "wide"); !strings.Contains(r.stdout, "generation") || strings.Contains(e.run("busctl", "info", "imu").stdout, "generation") {
		t.Errorf("info -o wide: %q", r.stdout)
	}
	r := e.run("busctl", "schema", "imu", "-o", "json")
	var sd struct {
		Name, Fingerprint, Encoding string
		Known                       bool
		Fields                      []struct{ Name, Type string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &sd); err != nil || sd.Name != "sensorbus.IMU" || !sd.Known || len(sd.Fields) != 13 || sd.Fields[2].Name != "accel.x" {
		t.Errorf("schema -o json: %v %q", err, r.stdout)
	}
	if r := e.run("busctl", "schema", "imu"); !strings.Contains(r.stdout, "accel.x") || !strings.Contains(r.stdout, "tuple") {
		t.Errorf("schema: %q", r.stdout)
	}
	r = e.run("busctl", "echo", "imu", "--count", "3", "--format", "csv", "--fields", "seq,accel.z")
	if got := strings.Split(strings.TrimSpace(r.stdout), "\n"); r.code != 0 || len(got) != 4 || got[0] != "seq,accel.z" {
		t.Errorf("echo csv: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	r = e.run("busctl", "hz", "imu", "--count", "2", "-o", "json")
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var h struct {
			RateHz float64 `json:"rate_hz"`
			Window int
		}
		// 200 Hz by the publisher's clock; the bound only catches nonsense.
		if err := json.Unmarshal([]byte(l), &h); err != nil || h.RateHz < 100 || h.RateHz > 400 || h.Window < 1 {
			t.Errorf("hz -o json line %q: %v", l, err)
		}
	}
	if r := e.run("busctl", "hz", "imu", "--count", "1"); !strings.HasPrefix(r.stdout, "average rate: ") || !strings.Contains(r.stdout, "std dev") {
		t.Errorf("hz: %q", r.stdout)
	}
	pub.Process.Signal(syscall.SIGKILL)
	waitPub()
	r = e.run("busctl", "gc", "-o", "json")
	var gc struct{ Removed []string }
	if err := json.Unmarshal([]byte(r.stdout), &gc); err != nil || len(gc.Removed) != 2 {
		t.Errorf("gc -o json: %v %q", err, r.stdout)
	}
	if r := e.run("busctl", "gc", "--no-headers"); r.stdout != "" {
		t.Errorf("gc --no-headers with nothing to remove: %q", r.stdout)
	}
}

// doctor exits 1 exactly when a check fails.
func TestDoctorExitCode(t *testing.T) {
	r := runBare(t, "busctl", "doctor")
	failed := regexp.MustCompile(`(?m)^FAIL`).MatchString(r.stdout)
	if failed && r.code != 1 || !failed && r.code != 0 {
		t.Errorf("doctor: exit %d with output %q", r.code, r.stdout)
	}
	// As nobody, memory locking and SCHED_FIFO are refused.
	c := exec.Command(filepath.Join(binDir, "busctl"), "doctor")
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	e := &env{t: t}
	if r := e.runCmd(c); r.code != 1 || !strings.Contains(r.stdout, "FAIL") || !strings.Contains(r.stderr, "check(s) failed") {
		t.Errorf("doctor as nobody: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
}

var _ = time.Second
