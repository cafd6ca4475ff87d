package bridge

import (
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/testing/proctest"
)

// Rates and counts are far below what the bridge sustains (see the
// benchmarks), so that on a loaded 2-core machine, under the race
// detector, a test that expects no loss is not flaky: the rings hold
// seconds of samples on either side.
const (
	testRate  = 4000
	testCount = 8000
	testSlots = 1 << 14
)

// hostPair is a publisher's host A and a subscriber's host B: a bus each.
type hostPair struct {
	A, B  bus.Options
	topic string
}

func newHostPair(t *testing.T) hostPair {
	return hostPair{A: testBus(t), B: testBus(t), topic: "imu"}
}

// checkNoLoss checks what the subscriber on B saw of count published.
func checkNoLoss(t *testing.T, res verifyResult, count uint64) {
	t.Helper()
	if res.Corrupt != 0 || res.Misordered != 0 {
		t.Errorf("%d corrupt and %d misordered samples", res.Corrupt, res.Misordered)
	}
	if res.Received != count || res.Lost != 0 || res.SeqLost != 0 {
		t.Errorf("received %d, lost %d (sequence gaps %d) of %d published; want all, none lost", res.Received, res.Lost, res.SeqLost, count)
	}
}

// checkAccounted checks that every sample published is received or
// counted lost, exactly.
func checkAccounted(t *testing.T, res verifyResult, imp ImportStats, count uint64) {
	t.Helper()
	if res.Corrupt != 0 || res.Misordered != 0 {
		t.Errorf("%d corrupt and %d misordered samples", res.Corrupt, res.Misordered)
	}
	if res.accounted() != count {
		t.Errorf("received %d + lost %d (sequence gaps %d) != %d published", res.Received, res.Lost, res.SeqLost, count)
	}
	if res.Lost != res.SeqLost {
		t.Errorf("the bus reported %d lost, the sequence numbers %d", res.Lost, res.SeqLost)
	}
	if imp.Received != res.Received || imp.Lost != res.SeqLost {
		t.Errorf("importer counted %d received and %d lost; the subscriber %d and %d", imp.Received, imp.Lost, res.Received, res.SeqLost)
	}
}

// runThrough publishes count samples on A at rate and returns what the
// subscriber on B saw, after the publisher closed. during, if not nil,
// runs once the subscriber has received mid samples.
func (h hostPair) runThrough(t *testing.T, count, rate int, mid uint64, during func()) verifyResult {
	t.Helper()
	v := startVerifier(t, h.B, h.topic, uint64(count), false)
	pub := startPublisher(t, h.A, h.topic, count, rate, testSlots)
	pub.Send("go")
	if during != nil {
		v.waitReceived(t, mid)
		during()
	}
	pub.Expect("published")
	res := v.result(t)
	pub.Send("close")
	var pr publishResult
	pub.Result(&pr)
	return res
}

func TestCoreNoLoss(t *testing.T) {
	srv := startNATS(t, natsConf{})
	h := newHostPair(t)
	imp := startBridge(t, Config{URL: srv.URL(), Host: "b", Imports: []string{"a/imu"}, Bus: h.B})
	exp := startBridge(t, Config{URL: srv.URL(), Host: "a", Exports: []string{"imu"}, Bus: h.A})
	res := h.runThrough(t, testCount, testRate, 0, nil)
	checkNoLoss(t, res, testCount)
	es, is := exp.stop().Stats, imp.stop().Stats
	if len(es.Exports) != 1 || es.Exports[0].Samples != testCount || es.Exports[0].Unsent != 0 {
		t.Errorf("exporter: %+v", es.Exports)
	}
	if e := es.Exports[0]; e.Messages >= e.Samples {
		t.Errorf("%d messages for %d samples: not batched", e.Messages, e.Samples)
	}
	if len(is.Imports) != 1 || is.Imports[0].Received != testCount || is.Imports[0].Lost != 0 || is.Imports[0].Dropped != 0 {
		t.Errorf("importer: %+v", is.Imports)
	}
}

// outage runs count samples through a server that is killed (SIGKILL) for
// two seconds once the subscriber has received a quarter of them.
func outage(t *testing.T, count int, cfg Config) (verifyResult, bridgeResult, bridgeResult) {
	srv := startNATS(t, natsConf{JetStream: cfg.JetStream != ""})
	h := newHostPair(t)
	// Reconnect attempts every 50 to 200ms: recovery soon after the restart.
	cfg.URL, cfg.MaxReconnectWait = srv.URL(), 200*time.Millisecond
	ci, ce := cfg, cfg
	ci.Host, ci.Imports, ci.Bus = "b", []string{"a/imu"}, h.B
	ce.Host, ce.Exports, ce.Bus = "a", []string{"imu"}, h.A
	imp := startBridge(t, ci)
	exp := startBridge(t, ce)
	res := h.runThrough(t, count, testRate, uint64(count/4), func() {
		srv.kill()
		// The outage itself: what is tested is the bridge across two
		// seconds without a server, not a wait for some event.
		time.Sleep(2 * time.Second)
		srv.restart()
	})
	return res, exp.stop(), imp.stop()
}

func TestCoreOutageCounted(t *testing.T) {
	// Four seconds of samples, so that some follow the outage and show
	// the gap; no reconnect buffer, so that the outage loses samples.
	const count = 4 * testRate
	res, exp, imp := outage(t, count, Config{ReconnectBufSize: -1})
	checkAccounted(t, res, imp.Stats.Imports[0], count)
	if imp.Stats.Reconnects == 0 || exp.Stats.Reconnects == 0 {
		t.Errorf("reconnects: exporter %d, importer %d; want both", exp.Stats.Reconnects, imp.Stats.Reconnects)
	}
	e := exp.Stats.Exports[0]
	if e.Unsent == 0 || res.SeqLost < e.Unsent || e.Samples+e.Unsent != count {
		t.Errorf("exporter sent %d and could not send %d of %d; %d lost in all", e.Samples, e.Unsent, count, res.SeqLost)
	}
	t.Logf("lost in the outage: %d of %d; exporter %+v", res.SeqLost, count, e)
}

func TestJetStreamOutageLosesNothing(t *testing.T) {
	res, exp, imp := outage(t, testCount, Config{JetStream: "SENSORBUS"})
	checkNoLoss(t, res, testCount)
	checkAccounted(t, res, imp.Stats.Imports[0], testCount)
	if e := exp.Stats.Exports[0]; e.Samples != testCount || e.Unsent != 0 {
		t.Errorf("exporter: %+v", e)
	}
	t.Logf("exporter %+v; importer %+v", exp.Stats.Exports[0], imp.Stats.Imports[0])
}

func TestClusterNoLoss(t *testing.T) {
	s1 := startNATS(t, natsConf{Name: "n1", Cluster: true})
	s2 := startNATS(t, natsConf{Name: "n2", Cluster: true, Routes: []string{s1.RouteURL()}})
	s3 := startNATS(t, natsConf{Name: "n3", Cluster: true, Routes: []string{s1.RouteURL(), s2.RouteURL()}})
	h := newHostPair(t)
	// The exporter knows the whole cluster but is on n1; the importer on n3.
	imp := startBridge(t, Config{URL: s3.URL() + "," + s1.URL(), Host: "b", Imports: []string{"a/imu"}, Bus: h.B})
	waitInterest(t, s3.URL(), s1.URL())
	exp := startBridge(t, Config{URL: s1.URL() + "," + s2.URL() + "," + s3.URL(), Host: "a", Exports: []string{"imu"}, Bus: h.A})
	if es, is := exp.stats(), imp.stats(); es.Server != s1.URL() || is.Server != s3.URL() {
		t.Errorf("exporter on %s, importer on %s; want %s and %s", es.Server, is.Server, s1.URL(), s3.URL())
	}
	res := h.runThrough(t, testCount, testRate, 0, nil)
	checkNoLoss(t, res, testCount)
	is := imp.stop().Stats
	exp.stop()
	checkAccounted(t, res, is.Imports[0], testCount)
}

// waitInterest returns once a subscription made on server sub is known
// to server pub: then so is every subscription made on sub before it,
// since a server forwards interest to its routes in order.
func waitInterest(t *testing.T, sub, pub string) {
	t.Helper()
	ns, err := nats.Connect(sub)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	s, err := ns.Subscribe("probe", func(m *nats.Msg) { m.Respond(nil) })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unsubscribe()
	if err := ns.Flush(); err != nil {
		t.Fatal(err)
	}
	np, err := nats.Connect(pub)
	if err != nil {
		t.Fatal(err)
	}
	defer np.Close()
	for i := 0; ; i++ {
		_, err := np.Request("probe", nil, 100*time.Millisecond)
		if err == nil {
			return
		}
		if i == 300 {
			t.Fatalf("interest from %s never reached %s: %v", sub, pub, err)
		}
	}
}

func TestRemotePublisherRestart(t *testing.T) {
	srv := startNATS(t, natsConf{})
	h := newHostPair(t)
	imp := startBridge(t, Config{URL: srv.URL(), Host: "b", Imports: []string{"a/imu"}, Bus: h.B})
	exp := startBridge(t, Config{URL: srv.URL(), Host: "a", Exports: []string{"imu"}, Bus: h.A})
	const first, second, slots = 500, 1000, 64
	v := startVerifier(t, h.B, h.topic, first+second, false)
	pub1 := startPublisher(t, h.A, h.topic, first, 0, 1024)
	pub1.Send("go")
	pub1.Expect("published")
	v.waitReceived(t, first)

	// With the exporter stopped, the publisher dies and its successor
	// publishes more than its ring holds: the exporter, resumed, finds the
	// first publisher dead and the second's first 936 samples gone.
	exp.signal(syscall.SIGSTOP)
	pub1.Kill9()
	pub2 := startPublisher(t, h.A, h.topic, second, 0, slots)
	pub2.Send("go")
	pub2.Expect("published")
	exp.signal(syscall.SIGCONT)

	res := v.result(t)
	if res.Corrupt != 0 || res.Misordered != 0 {
		t.Errorf("%d corrupt and %d misordered samples", res.Corrupt, res.Misordered)
	}
	lost := res.SeqLost
	if localSkip {
		lost = res.Lost
	}
	// The importer puts the second generation's 64 samples on B's 64-slot
	// ring in one burst, after marking the 936 lost: a subscriber slower
	// than that burst (a loaded machine) loses some of the 64 too, and
	// counts them.
	if res.Restarts != 1 || res.Received+lost != first+second || lost < second-slots || res.Received < first {
		t.Errorf("subscriber saw %d restarts, received %d, lost %d; want 1, received + lost = %d, lost at least %d",
			res.Restarts, res.Received, lost, first+second, second-slots)
	}
	pub2.Send("close")
	var pr publishResult
	pub2.Result(&pr)
	is := imp.stop().Stats.Imports[0]
	es := exp.stop().Stats.Exports[0]
	if is.Restarts != 1 || is.Lost != second-slots || is.Received != first+slots {
		t.Errorf("importer: %+v", is)
	}
	if es.Generations != 2 {
		t.Errorf("exporter saw %d generations, want 2", es.Generations)
	}
}

func TestExportAllPresentAndFuture(t *testing.T) {
	srv := startNATS(t, natsConf{})
	h := newHostPair(t)
	imp := startBridge(t, Config{URL: srv.URL(), Host: "b", Imports: []string{"a/imu", "a/temp=a-temp"}, Bus: h.B})
	const count = 2000
	vi := startVerifier(t, h.B, "imu", count, false)
	vt := startVerifier(t, h.B, "a-temp", count, false)
	// imu is there before the bridge, temp comes after: both are exported,
	// from their first sample (their rings hold them all).
	pi := startPublisher(t, h.A, "imu", count, 0, 4096)
	pi.Send("go")
	pi.Expect("published")
	exp := startBridge(t, Config{URL: srv.URL(), Host: "a", Exports: []string{"*"}, Bus: h.A, ScanInterval: 20 * time.Millisecond})
	pt := startPublisher(t, h.A, "temp", count, 0, 4096)
	pt.Send("go")
	pt.Expect("published")
	checkNoLoss(t, vi.result(t), count)
	checkNoLoss(t, vt.result(t), count)
	for _, p := range []*proctest.Child{pi, pt} {
		p.Send("close")
		var pr publishResult
		p.Result(&pr)
	}
	es := exp.stop().Stats
	imp.stop()
	if len(es.Exports) != 2 {
		t.Errorf("exported %+v, want imu and temp", es.Exports)
	}
}
