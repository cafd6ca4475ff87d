package e2e

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// oneLine fails unless stderr is exactly one line, free of stack traces.
func oneLine(t *testing.T, what, stderr string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("%s: stderr is not one line: %q", what, stderr)
	}
	for _, bad := range []string{"goroutine ", "panic", ".go:"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("%s: stderr has %q: %q", what, bad, stderr)
		}
	}
}

// Every wrong value is a usage error: exit 2, one line naming the flag as
// typed, and nothing created.
func TestUsageErrors(t *testing.T) {
	offline := strconv.Itoa(runtime.NumCPU() + 7)
	long := strings.Repeat("t", 100)
	rows := []struct {
		prog string
		args []string
		want string // in stderr
	}{
		{"publisher", nil, "--topic is required"},
		{"publisher", []string{"--topic"}, "--topic"},
		{"publisher", []string{"--topic", "bad/name"}, `--topic "bad/name": '/'`},
		{"publisher", []string{"--topic", "two words"}, `' ' at byte 3`},
		{"publisher", []string{"--topic", "température"}, `'é'`},
		{"publisher", []string{"--topic", ".hidden"}, "must not start"},
		{"publisher", []string{"--topic", long}, "longer than 64"},
		{"publisher", []string{"--topic", "x", "--slots", "1000"}, "--slots 1000: want a power of two"},
		{"publisher", []string{"--topic", "x", "--slot-size", "2000000000"}, "--slot-size 2000000000"},
		{"publisher", []string{"--topic", "x", "--slots", "4194304", "--slot-size", "16777216"}, "larger than"},
		{"publisher", []string{"--topic", "x", "--cpu", offline}, "--cpu \"" + offline + "\": CPU " + offline + " is not online"},
		{"publisher", []string{"--topic", "x", "--cpu", "two"}, "--cpu \"two\""},
		{"publisher", []string{"--topic", "x", "--fifo", "100"}, "--fifo 100"},
		{"publisher", []string{"--topic", "x", "--type", "raw", "--payload-size", "1000"}, "--payload-size 1000: a sample of it encodes to up to"},
		{"publisher", []string{"--topic", "x", "--type", "raw", "--payload-size", "4"}, "--payload-size 4"},
		{"publisher", []string{"--topic", "x", "--payload-size", "100"}, "--payload-size applies to --type raw"},
		{"publisher", []string{"--topic", "x", "--type", "toaster"}, `--type "toaster"`},
		{"publisher", []string{"--topic", "x", "--slot-size", "16"}, "--slot-size 16: a imu sample needs"},
		{"publisher", []string{"--topic", "x", "--rate", "NaN"}, "--rate NaN"},
		{"publisher", []string{"--topic", "x", "--rate", "Inf"}, "--rate +Inf"},
		{"publisher", []string{"--topic", "x", "--rate", "1e-10"}, "--rate 1e-10"},
		{"publisher", []string{"--topic", "x", "--rate", "-5"}, "--rate -5"},
		{"publisher", []string{"--topic", "x", "--rate", "fast"}, `--rate "fast": want a number`},
		{"publisher", []string{"--topic", "x", "--duration", "1"}, `--duration "1": want a duration such as`},
		{"publisher", []string{"--topic", "x", "--duration", "-1s"}, `--duration "-1s"`},
		{"publisher", []string{"--topic", "x", "--count", "-1"}, `--count "-1"`},
		{"publisher", []string{"--topic", "x", "--source", "radio"}, `--source "radio"`},
		{"publisher", []string{"--topic", "x", "--source", "thermal", "--type", "imu"}, "--type imu: --source thermal publishes temperatures as scalar"},
		{"publisher", []string{"--topic", "x", "--allow-uid", "no-such-user"}, `--allow-uid "no-such-user": no such user`},
		{"publisher", []string{"--topic", "x", "--allow-gid", "no-such-group"}, `--allow-gid "no-such-group": no such group`},
		{"publisher", []string{"--topic", "x", "--group", "no-such-group"}, `--group "no-such-group": no such group`},
		{"publisher", []string{"--topic", "x", "--log-level", "loud"}, `--log-level "loud"`},
		{"publisher", []string{"--topic", "x", "-rate", "5"}, "-rate: long flags take two dashes: --rate"},
		{"publisher", []string{"--topic", "x", "--bogus"}, "unknown flag: --bogus"},
		{"publisher", []string{"--topic", "x", "extra"}, `unexpected argument "extra"`},
		{"subscriber", []string{"--topic", "x", "--mode", "sideways"}, `--mode "sideways"`},
		{"subscriber", []string{"--topic", "x", "--wait", "nap"}, `--wait "nap"`},
		{"subscriber", []string{"--topic", "x", "--from", "middle"}, `--from "middle"`},
		{"subscriber", []string{"--topic", "x", "--format", "xml"}, `--format "xml"`},
		{"subscriber", []string{"--topic", "x", "--format", "none", "--fields", "seq"}, "--fields needs --format"},
		{"subscriber", []string{"--topic", "x", "--fields", "seq,,value"}, "--fields"},
		{"subscriber", []string{"--topic", "x", "--expect-type", "imu", "--fields", "seq,colour"}, `--fields: sensorbus.IMU has no field "colour"`},
		{"subscriber", []string{"--topic", "x", "--expect-type", "toaster"}, `--expect-type "toaster"`},
		{"subscriber", []string{"--topic", "x", "--interval", "1s"}, "--interval needs --mode latest"},
		{"subscriber", []string{"--topic", "x", "--wait-for-publisher", "soon"}, `--wait-for-publisher "soon": want a duration such as 500ms, 10s, 1m30s or 2h (0 for none), or forever`},
		{"subscriber", []string{"--topic", "x", "--duration", "5"}, `--duration "5"`},
		{"subscriber", []string{"--topic", "a b"}, `--topic "a b"`},
		{"subscriber", []string{"--topic", "x", "--cpu", offline}, "is not online"},
		{"busctl", nil, "a command is required"},
		{"busctl", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"busctl", []string{"info"}, "info: missing TOPIC"},
		{"busctl", []string{"info", "a", "b"}, `info: unexpected argument "b"`},
		{"busctl", []string{"info", "a/b"}, `info: TOPIC "a/b"`},
		{"busctl", []string{"list", "-o", "yaml"}, `-o "yaml"`},
		{"busctl", []string{"list", "extra"}, `list: unexpected argument "extra"`},
		{"busctl", []string{"hz", "x", "--window", "0"}, "--window 0"},
		{"busctl", []string{"echo", "x", "--format", "xml"}, `--format "xml"`},
		{"busctl", []string{"doctor", "-o", "wide"}, `-o "wide"`},
		{"busctl", []string{"list", "--group", "no-such-group"}, `--group "no-such-group"`},
	}
	for _, row := range rows {
		e := newEnv(t)
		r := e.run(row.prog, row.args...)
		what := row.prog + " " + strings.Join(row.args, " ")
		if r.code != 2 || !strings.Contains(r.stderr, row.want) || !strings.HasPrefix(r.stderr, row.prog+": ") {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", what, r.code, r.stderr, row.want)
		}
		oneLine(t, what, r.stderr)
		if _, err := os.Stat(e.dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: the bus directory was created", what)
		}
	}
	// The environment's group is checked like the flag.
	e := newEnv(t)
	c := e.cmd("subscriber", "--topic", "x")
	c.Env = append(os.Environ(), "SENSORBUS_GROUP=no-such-group")
	if r := e.runCmd(c); r.code != 2 || !strings.Contains(r.stderr, `SENSORBUS_GROUP "no-such-group": no such group`) {
		t.Errorf("SENSORBUS_GROUP: exit %d, %q", r.code, r.stderr)
	}
}

// Errors map to their documented codes: the system refusing a real-time
// setting is 4, other failures to create the topic 1.
func TestCreateFailures(t *testing.T) {
	// As nobody, without CAP_SYS_NICE or an RLIMIT_RTPRIO: SCHED_FIFO is
	// refused.
	parent, err := os.MkdirTemp("", "sensorbus-e2e-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	os.Chmod(parent, 0o777)
	e := &env{t: t, dir: filepath.Join(parent, "bus")}
	c := e.cmd("publisher", "--topic", "rt", "--fifo", "50", "--count", "10")
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	r := e.runCmd(c)
	if r.code != 4 || !strings.Contains(r.stderr, "SCHED_FIFO") {
		t.Errorf("--fifo as nobody: exit %d, %q; want 4", r.code, r.stderr)
	}
	oneLine(t, "--fifo as nobody", r.stderr)
	// The bus is nobody's, so root cannot open it as its own: look. The
	// bus lock file stays with the directory.
	if ents, err := os.ReadDir(e.dir); err != nil || len(ents) != 1 || ents[0].Name() != ".lock" {
		t.Errorf("--fifo as nobody left %v (%v)", ents, err)
	}

	// A bus directory that is a file.
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	r = e.runCmd(exec.Command(filepath.Join(binDir, "publisher"), "--topic", "x", "--bus-dir", file))
	if r.code != 1 || !strings.Contains(r.stderr, "not a directory") {
		t.Errorf("bus directory that is a file: exit %d, %q; want 1", r.code, r.stderr)
	}
	oneLine(t, "bus directory that is a file", r.stderr)

	// A bus directory of another user.
	other := filepath.Join(parent, "other")
	os.Mkdir(other, 0o700)
	os.Chown(other, 65534, 65534)
	r = e.runCmd(exec.Command(filepath.Join(binDir, "publisher"), "--topic", "x", "--bus-dir", other))
	if r.code != 1 || !strings.Contains(r.stderr, "uid 65534") {
		t.Errorf("another user's bus directory: exit %d, %q; want 1", r.code, r.stderr)
	}
	oneLine(t, "another user's bus directory", r.stderr)
}
