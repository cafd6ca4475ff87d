// Package proctest runs copies of a test binary as child processes, for
// tests that must cross a real process boundary: a TestMain that sees the
// role variable runs the role instead of the tests. Children talk to the
// test through lines on stdin and stdout.
//
//	func TestMain(m *testing.M) {
//		if role := os.Getenv(roleEnv); role != "" {
//			os.Exit(runChild(role))
//		}
//		os.Exit(leakcheck.Run(m))
//	}
//
//	c := proctest.Start(t, roleEnv, "writer", proctest.Options{Env: env})
//	c.Expect("ready")
//	c.Send("go")
package proctest

import (
	"bufio"
	"cmp"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DefaultTimeout is how long Expect and Result wait for a child's next
// line unless Options.Timeout says otherwise.
const DefaultTimeout = 60 * time.Second

// Options adjust how a child starts.
type Options struct {
	Binary  string              // the program; empty: this test binary
	Env     []string            // added to the environment
	Cred    *syscall.Credential // run as another user (needs root)
	Timeout time.Duration       // for each line Expect and Result wait for; 0: DefaultTimeout
	Files   []*os.File          // open in the child as descriptors 3, 4, ...
}

// Child is a running copy of the test binary.
type Child struct {
	t     testing.TB
	Cmd   *exec.Cmd
	Stdin io.WriteCloser // the child's standard input; Send writes lines to it
	// Stdout is the child's raw standard output, for tests that read
	// bytes rather than lines; do not mix it with Expect.
	Stdout  io.Reader
	timeout time.Duration
	lines   chan string   // the child's stdout lines, read by a goroutine started at the first Expect
	done    chan struct{} // closed when the test ends: the line reader stops
	once    sync.Once
}

// Start runs the test binary (or opt.Binary) with roleEnv=role. The child
// is killed when the test ends, if it is still running.
func Start(t testing.TB, roleEnv, role string, opt Options) *Child {
	t.Helper()
	bin := opt.Binary
	if bin == "" {
		bin = os.Args[0]
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{roleEnv + "=" + role}, opt.Env...)...)
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = opt.Files
	if opt.Cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: opt.Cred}
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &Child{t: t, Cmd: cmd, Stdin: stdin, Stdout: stdout, timeout: cmp.Or(opt.Timeout, DefaultTimeout),
		lines: make(chan string), done: make(chan struct{})}
	t.Cleanup(func() {
		close(c.done)
		cmd.Process.Signal(syscall.SIGCONT) // a stopped child cannot die
		cmd.Process.Kill()
		cmd.Wait()
	})
	return c
}

// next returns the child's next line; false once it closed its output. A
// child that prints nothing for the timeout is killed and fails the test.
func (c *Child) next() (string, bool) {
	c.t.Helper()
	c.once.Do(func() {
		go func() {
			defer close(c.lines)
			sc := bufio.NewScanner(c.Stdout)
			for sc.Scan() {
				select {
				case c.lines <- sc.Text():
				case <-c.done:
					return
				}
			}
		}()
	})
	t := time.NewTimer(c.timeout)
	defer t.Stop()
	select {
	case line, ok := <-c.lines:
		return line, ok
	case <-t.C:
		c.Cmd.Process.Kill()
		c.t.Fatalf("child %v printed nothing for %v", c.Cmd.Args, c.timeout)
		return "", false
	}
}

// Expect reads the child's next line and fails the test unless it starts
// with prefix, or if none comes within the timeout. It returns the line.
func (c *Child) Expect(prefix string) string {
	c.t.Helper()
	line, ok := c.next()
	if !ok {
		c.t.Fatalf("child %v ended before printing %q", c.Cmd.Args, prefix)
	}
	if !strings.HasPrefix(line, prefix) {
		c.t.Fatalf("child printed %q, want %q", line, prefix)
	}
	return line
}

// Send writes a line to the child's stdin.
func (c *Child) Send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.Stdin, line+"\n"); err != nil {
		c.t.Fatal(err)
	}
}

// CloseStdin closes the child's stdin.
func (c *Child) CloseStdin() { c.Stdin.Close() }

// Result reads lines until one that is a JSON object, decodes it into v
// and waits for the child to exit successfully. A line starting with
// "error" fails the test.
func (c *Child) Result(v any) {
	c.t.Helper()
	for {
		line, ok := c.next()
		if !ok {
			break
		}
		if strings.HasPrefix(line, "{") {
			if err := json.Unmarshal([]byte(line), v); err != nil {
				c.t.Fatalf("child result %q: %v", line, err)
			}
			if err := c.Cmd.Wait(); err != nil {
				c.t.Fatalf("child %v: %v", c.Cmd.Args, err)
			}
			return
		}
		if strings.HasPrefix(line, "error") {
			c.t.Fatalf("child: %s", line)
		}
	}
	c.t.Fatalf("child %v ended without a result", c.Cmd.Args)
}

// Kill9 kills the child with SIGKILL and reaps it.
func (c *Child) Kill9() {
	c.Cmd.Process.Signal(syscall.SIGKILL)
	c.Cmd.Wait()
}

// CopyBinary copies the test binary into a directory any user may enter,
// for children run as another user (the go tool's build directory is
// root's alone). The copy is removed when the test ends.
func CopyBinary(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "proctest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bin := filepath.Join(dir, filepath.Base(os.Args[0]))
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}
