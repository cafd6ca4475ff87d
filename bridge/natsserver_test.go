package bridge

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/sensorbus/sensorbus/testing/natstest"
)

// The tests run real nats-server processes, built once per test binary
// from the module's tool requirement (go.mod: tool
// github.com/nats-io/nats-server/v2); the go command caches the binary.

// natsConf describes one server.
type natsConf struct {
	Name      string
	JetStream bool
	Cluster   bool     // listen for routes
	Routes    []string // nats-route://127.0.0.1:PORT of other servers
	Extra     string   // more configuration (authorization, tls)
}

// natsServer is a running nats-server process on loopback.
type natsServer struct {
	t         testing.TB
	conf      natsConf
	dir       string
	port      int // client port, fixed after the first start
	routePort int
	cmd       *exec.Cmd
	log       *syncBuffer
	exited    chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	clientListen = regexp.MustCompile(`Listening for client connections on [^ ]*:(\d+)`)
	routeListen  = regexp.MustCompile(`Listening for route connections on [^ ]*:(\d+)`)
)

// startNATS starts a server on a port it picks; restart reuses the port.
func startNATS(t testing.TB, conf natsConf) *natsServer {
	t.Helper()
	if conf.Name == "" {
		conf.Name = "n1"
	}
	s := &natsServer{t: t, conf: conf, dir: t.TempDir(), port: -1, routePort: -1}
	s.start()
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("nats-server %s log:\n%s", conf.Name, s.log.String())
		}
	})
	return s
}

func (s *natsServer) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

func (s *natsServer) RouteURL() string { return "nats-route://127.0.0.1:" + strconv.Itoa(s.routePort) }

func (s *natsServer) start() {
	t := s.t
	t.Helper()
	var c strings.Builder
	fmt.Fprintf(&c, "server_name: %q\nlisten: \"127.0.0.1:%d\"\n", s.conf.Name, s.port)
	if s.conf.JetStream {
		fmt.Fprintf(&c, "jetstream { store_dir: %q }\n", filepath.Join(s.dir, "js"))
	}
	if s.conf.Cluster {
		fmt.Fprintf(&c, "cluster { name: \"c\"\n listen: \"127.0.0.1:%d\"\n", s.routePort)
		if len(s.conf.Routes) > 0 {
			fmt.Fprintf(&c, " routes: [%s]\n", strings.Join(s.conf.Routes, ", "))
		}
		c.WriteString("}\n")
	}
	c.WriteString(s.conf.Extra)
	path := filepath.Join(s.dir, "server.conf")
	if err := os.WriteFile(path, []byte(c.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(natstest.ServerPath(t), "-c", path)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd, s.log, s.exited = cmd, &syncBuffer{}, make(chan struct{})
	ready := make(chan error, 1)
	go func() {
		defer close(s.exited)
		sc := bufio.NewScanner(stderr)
		signalled, isReady := false, false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(s.log, line)
			if m := clientListen.FindStringSubmatch(line); m != nil {
				s.port, _ = strconv.Atoi(m[1])
			}
			if m := routeListen.FindStringSubmatch(line); m != nil {
				s.routePort, _ = strconv.Atoi(m[1])
			}
			if strings.Contains(line, "Server is ready") {
				isReady = true
			}
			// A cluster's route port is logged after "ready".
			if !signalled && isReady && (!s.conf.Cluster || s.routePort > 0) {
				signalled = true
				ready <- nil
			}
		}
		if !signalled {
			ready <- fmt.Errorf("nats-server exited before it was ready")
		}
	}()
	// The server says when it is ready; a server that hangs is the test
	// timeout's business.
	if err := <-ready; err != nil {
		cmd.Wait()
		t.Fatalf("%v; log:\n%s", err, s.log.String())
	}
}

// kill stops the server with SIGKILL: no goodbye to its clients.
func (s *natsServer) kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
	<-s.exited
	s.cmd = nil
}

// restart starts the server again on the same ports, with the same store.
func (s *natsServer) restart() {
	s.t.Helper()
	s.start()
}
