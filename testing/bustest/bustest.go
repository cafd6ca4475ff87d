// Package bustest gives tests of packages built on the bus a private bus
// that must be empty when the test ends.
package bustest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sensorbus/sensorbus/bus"
)

// New returns Options for a fresh bus in a new temporary directory, which
// is removed when the test ends; the test fails if a topic file is left in
// the bus then. prefix names the temporary directory.
func New(t testing.TB, prefix string) bus.Options {
	t.Helper()
	root, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	opts := bus.Options{Dir: filepath.Join(root, "bus")}
	t.Cleanup(func() {
		left, _ := bus.Files(opts)
		os.RemoveAll(root)
		if len(left) > 0 && !t.Failed() {
			t.Errorf("files left behind: %v", left)
		}
	})
	return opts
}
