package ring

import (
	"os"
	"strings"
	"testing"

	"github.com/sensorbus/sensorbus/testing/leakcheck"
)

// TestMain runs child roles for the multi-process tests (the test binary
// re-executes itself) and checks for leaked goroutines and descriptors.
func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(runChild(role))
	}
	os.Exit(leakcheck.Run(m))
}

// testDir returns a fresh directory on tmpfs (like /dev/shm, where rings
// live in production) and fails the test if anything is left in it.
func testDir(t testing.TB) string {
	t.Helper()
	base := "/dev/shm"
	if st, err := os.Stat(base); err != nil || !st.IsDir() {
		base = ""
	}
	dir, err := os.MkdirTemp(base, "sensorbus-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ents, _ := os.ReadDir(dir)
		var left []string
		for _, e := range ents {
			left = append(left, e.Name())
		}
		os.RemoveAll(dir)
		if len(left) > 0 && !t.Failed() {
			t.Errorf("files left in %s: %s", dir, strings.Join(left, ", "))
		}
	})
	return dir
}

func dirEntries(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func mustCreate(t testing.TB, cfg Config) *Writer {
	t.Helper()
	w, err := Create(cfg)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return w
}

func mustOpen(t testing.TB, dir, name string, cfg ReaderConfig) *Reader {
	t.Helper()
	r, err := Open(dir, name, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}
