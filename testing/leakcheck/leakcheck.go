// Package leakcheck checks that a test binary leaves nothing behind: no
// goroutines (via go.uber.org/goleak), no open file descriptors, and no
// files in directories it names.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(leakcheck.Run(m)) }
package leakcheck

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"testing"

	"go.uber.org/goleak"
)

// Run runs the tests and then, if they passed, the leak checks. It returns
// the exit code for os.Exit.
func Run(m *testing.M, opts ...goleak.Option) int {
	// The runtime's poller opens its descriptors on first use; start it
	// now so they count as already open.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	before := FDs()
	code := m.Run()
	if code != 0 {
		return code
	}
	if leaked := Diff(before, FDs()); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "leakcheck: file descriptors left open: %v\n", leaked)
		code = 1
	}
	if err := goleak.Find(opts...); err != nil {
		fmt.Fprintf(os.Stderr, "leakcheck: %v\n", err)
		code = 1
	}
	return code
}

// FDs returns the process's open descriptors and what each refers to.
func FDs() map[int]string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	fds := make(map[int]string, len(ents))
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the descriptor ReadDir itself used
		}
		fds[n] = target
	}
	return fds
}

// Diff lists the descriptors open in after that were not open (to the
// same file) in before.
func Diff(before, after map[int]string) []string {
	var leaked []string
	for fd, target := range after {
		if before[fd] != target {
			leaked = append(leaked, fmt.Sprintf("%d→%s", fd, target))
		}
	}
	sort.Strings(leaked)
	return leaked
}
