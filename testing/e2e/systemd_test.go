package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The unit files in deploy/systemd pass systemd-analyze verify, with
// their ExecStart pointed at the programs just built (verify checks that
// they exist) and the templates instantiated.
func TestSystemdUnitsVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: the unit files are not verified (the systemd package brings it)")
	}
	src, err := filepath.Glob("../../deploy/systemd/*.service")
	if err != nil || len(src) < 3 {
		t.Fatalf("unit files: %v %v", src, err)
	}
	dir := t.TempDir()
	var units []string
	for _, f := range src {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, want := range []string{"ExecStart=/usr/local/bin/", "SENSORBUS_GROUP=sensorbus"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: no %q", f, want)
			}
		}
		name := filepath.Base(f)
		if strings.Contains(name, "publisher") || strings.Contains(name, "subscriber") {
			for _, want := range []string{"Type=notify", "WatchdogSec=", "LimitRTPRIO=", "LimitMEMLOCK="} {
				if !strings.Contains(text, want) {
					t.Errorf("%s: no %q", name, want)
				}
			}
		}
		text = strings.ReplaceAll(text, "/usr/local/bin/", binDir+"/")
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		unit := name
		if strings.HasSuffix(name, "@.service") {
			unit = strings.Replace(name, "@.service", "@test.service", 1)
			if err := os.Symlink(name, filepath.Join(dir, unit)); err != nil {
				t.Fatal(err)
			}
		}
		units = append(units, unit)
	}
	c := exec.Command(sa, append([]string{"verify"}, units...)...)
	c.Dir = dir
	out, err := c.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify %v: %v\n%s", units, err, out)
	}
}
