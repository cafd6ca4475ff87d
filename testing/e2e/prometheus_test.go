package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sensorbus/sensorbus/bus"
)

// freePort returns a loopback port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// promQuery asks Prometheus's HTTP API for an instant vector and returns
// its first value; ok is false while there is none.
func promQuery(t *testing.T, base, q string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" || len(r.Data.Result) == 0 {
		return 0, false
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// poll calls f until it holds or the deadline passes.
func poll(t *testing.T, what string, within time.Duration, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !f(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
	}
}

// A real Prometheus scrapes busctl metrics: the topic's published counter
// rises, and a subscriber stopped long enough to be overrun shows a
// nonzero lost counter. promtool accepts the exposition.
func TestPrometheusScrapesBusctlMetrics(t *testing.T) {
	prom := needTool(t, "prometheus")
	promtool := needTool(t, "promtool")
	e := newEnv(t)
	// A small ring at 20 kHz: a subscriber stopped for 256 samples is overrun.
	pub, waitPub := e.start("publisher", "--topic", "prom", "--rate", "20000", "--slots", "256", "--duration", "10m")
	e.waitLive("prom")
	victim, waitVictim := e.start("subscriber", "--topic", "prom", "--format", "none", "--name", "victim", "--duration", "10m")
	defer func() {
		victim.Process.Signal(syscall.SIGCONT)
		victim.Process.Signal(syscall.SIGTERM)
		waitVictim()
		pub.Process.Signal(syscall.SIGTERM)
		waitPub()
	}()

	// The exporter, on a port of its choosing.
	exp := e.cmd("busctl", "metrics", "--listen", "127.0.0.1:0")
	stderr, _ := exp.StderrPipe()
	if err := exp.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { exp.Process.Signal(syscall.SIGTERM); exp.Wait() }()
	line, err := bufio.NewReader(stderr).ReadString('\n')
	target, ok := strings.CutPrefix(strings.TrimSpace(line), "busctl: serving metrics on http://")
	if err != nil || !ok {
		t.Fatalf("busctl metrics said %q (%v)", line, err)
	}
	target = strings.TrimSuffix(target, "/metrics")
	go io.Copy(io.Discard, stderr)

	// Prometheus, scraping it every second.
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: sensorbus\n    static_configs:\n      - targets: [%q]\n", target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var promLog bytes.Buffer
	p := exec.Command(prom, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr)
	p.Stdout, p.Stderr = &promLog, &promLog
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		p.Process.Signal(syscall.SIGTERM)
		p.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", promLog.String())
		}
	}()
	base := "http://" + promAddr
	poll(t, "prometheus to be ready", 60*time.Second, func() bool {
		r, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	})

	// The published counter rises from one scrape to a later one.
	var first float64
	poll(t, "a first sensorbus_published_total", 60*time.Second, func() bool {
		var ok bool
		first, ok = promQuery(t, base, `sensorbus_published_total{topic="prom"}`)
		return ok && first > 0
	})
	var later float64
	poll(t, "sensorbus_published_total to rise", 60*time.Second, func() bool {
		later, _ = promQuery(t, base, `sensorbus_published_total{topic="prom"}`)
		return later > first
	})
	t.Logf("sensorbus_published_total{topic=\"prom\"}: %v, then %v", first, later)
	poll(t, "the victim's report", 60*time.Second, func() bool {
		v, ok := promQuery(t, base, `sensorbus_subscriber_received_total{topic="prom",subscriber="victim"}`)
		return ok && v > 0
	})
	if v, _ := promQuery(t, base, `sensorbus_up{topic="prom"}`); v != 1 {
		t.Errorf("sensorbus_up %v, want 1", v)
	}

	// Stop the victim until the publisher has gone round the ring twice.
	opts := bus.Options{Dir: e.dir}
	at, err := bus.Info(opts, "prom")
	if err != nil {
		t.Fatal(err)
	}
	victim.Process.Signal(syscall.SIGSTOP)
	poll(t, "the publisher to overrun the stopped subscriber", 60*time.Second, func() bool {
		now, err := bus.Info(opts, "prom")
		return err == nil && now.Published > at.Published+2*256+20000/10
	})
	victim.Process.Signal(syscall.SIGCONT)
	var lost float64
	poll(t, "a nonzero sensorbus_subscriber_lost_total", 60*time.Second, func() bool {
		lost, _ = promQuery(t, base, `sensorbus_subscriber_lost_total{topic="prom",subscriber="victim"}`)
		return lost > 0
	})
	t.Logf("sensorbus_subscriber_lost_total{subscriber=\"victim\"}: %v", lost)

	// promtool accepts what the exporter serves.
	resp, err := http.Get("http://" + target + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	for _, name := range []string{"sensorbus_bytes_published_total", "sensorbus_subscribers", "sensorbus_publisher_restarts_total",
		"sensorbus_last_publish_timestamp_seconds", "sensorbus_topic_state", "sensorbus_subscriber_lag", "sensorbus_build_info"} {
		if !bytes.Contains(body, []byte("\n"+name)) {
			t.Errorf("the exposition has no %s", name)
		}
	}
}
