// Package natstest finds the nats-server binary tests run as real server
// processes: built once per test binary from the module's tool
// requirement (go.mod: tool github.com/nats-io/nats-server/v2); the go
// command caches it.
package natstest

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

var bin struct {
	once sync.Once
	path string
	err  error
}

// ServerPath returns the nats-server binary's path, building it the first
// time; it fails the test if it cannot.
func ServerPath(t testing.TB) string {
	t.Helper()
	bin.once.Do(func() {
		out, err := exec.Command("go", "tool", "-n", "nats-server").Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				err = fmt.Errorf("%v: %s", err, ee.Stderr)
			}
			bin.err = fmt.Errorf("build nats-server: %w", err)
			return
		}
		bin.path = strings.TrimSpace(string(out))
	})
	if bin.err != nil {
		t.Fatal(bin.err)
	}
	return bin.path
}
