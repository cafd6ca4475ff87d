package bridge

import (
	"testing"

	"github.com/sensorbus/sensorbus/bus"
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
