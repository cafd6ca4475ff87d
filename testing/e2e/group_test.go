package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A bus shared with a group by name: its members subscribe, a user
// outside it is refused with exit 4. SENSORBUS_GROUP works like --group.
func TestSharedBusByGroupName(t *testing.T) {
	parent, err := os.MkdirTemp("", "sensorbus-e2e-group-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	os.Chmod(parent, 0o755)
	e := newEnvAt(t, filepath.Join(parent, "bus"))
	pub, waitPub := e.start("publisher", "--topic", "g", "--group", "nogroup", "--allow-uid", "nobody", "--rate", "200")
	e.waitLive("g")
	st, err := os.Stat(e.dir)
	if err != nil || st.Mode().Perm() != 0o750 || st.Sys().(*syscall.Stat_t).Gid != 65534 {
		t.Errorf("bus directory: %v %v; want 0750 and group nogroup", st.Mode(), err)
	}
	as := func(uid uint32, env []string, args ...string) result {
		c := e.cmd("subscriber", args...)
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		c.Env = append(os.Environ(), env...)
		return e.runCmd(c)
	}
	if r := as(65534, nil, "--topic", "g", "--group", "nogroup", "--count", "1"); r.code != 0 || !strings.HasPrefix(r.stdout, "g #") {
		t.Errorf("nobody, a member: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if r := as(65534, []string{"SENSORBUS_GROUP=nogroup"}, "--topic", "g", "--count", "1"); r.code != 0 {
		t.Errorf("nobody with SENSORBUS_GROUP: exit %d, %q", r.code, r.stderr)
	}
	r := as(4321, nil, "--topic", "g", "--group", "nogroup", "--count", "1")
	if r.code != 4 {
		t.Errorf("a user outside the group: exit %d, %q; want 4", r.code, r.stderr)
	}
	oneLine(t, "outside the group", r.stderr)
	pub.Process.Signal(syscall.SIGTERM)
	if r := waitPub(); r.code != 0 {
		t.Errorf("publisher: exit %d, %s", r.code, r.stderr)
	}
}
