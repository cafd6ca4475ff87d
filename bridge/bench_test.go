package bridge

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// The benchmarks run the two-host setup of the tests (publisher and
// bridges as processes, a loopback nats-server, the verifying subscriber
// on host B in the benchmark's process) for a fixed time at a fixed rate,
// ignoring b.N, and report:
//
//	samples/s     what the subscriber on B received per second
//	lost          samples lost end to end (sequence gaps)
//	p50-µs p99-µs publish on A to receipt on B (one clock: the same machine)
//	exp-ns/sample exporter process CPU time per sample (start-up included)
//	imp-ns/sample importer process CPU time per sample
//
// make bench-bridge runs them; quote medians of several runs.

type benchResult struct {
	res      verifyResult
	elapsed  time.Duration
	exporter bridgeResult
	importer bridgeResult
}

func runBench(b *testing.B, rate int, d time.Duration, delay time.Duration, latency bool) benchResult {
	count := int(float64(rate) * d.Seconds())
	srv := startNATS(b, natsConf{})
	A, B := testBus(b), testBus(b)
	imp := startBridge(b, Config{URL: srv.URL(), Host: "b", Imports: []string{"a/imu"}, Bus: B})
	exp := startBridge(b, Config{URL: srv.URL(), Host: "a", Exports: []string{"imu"}, Bus: A, BatchMaxDelay: delay})
	v := startVerifier(b, B, "imu", uint64(count), latency)
	pub := startPublisher(b, A, "imu", count, rate, 1<<16)
	t0 := time.Now()
	pub.Send("go")
	pub.Expect("published")
	res := v.result(b)
	elapsed := time.Since(t0)
	pub.Send("close")
	var pr publishResult
	pub.Result(&pr)
	return benchResult{res: res, elapsed: elapsed, exporter: exp.stop(), importer: imp.stop()}
}

func (r benchResult) report(b *testing.B) {
	n := float64(r.res.Received + r.res.SeqLost)
	b.ReportMetric(float64(r.res.Received)/r.elapsed.Seconds(), "samples/s")
	b.ReportMetric(float64(r.res.SeqLost), "lost")
	b.ReportMetric(float64(r.exporter.CPUNanos)/n, "exp-ns/sample")
	b.ReportMetric(float64(r.importer.CPUNanos)/n, "imp-ns/sample")
	if l := r.res.Latencies; len(l) > 0 {
		slices.Sort(l)
		b.ReportMetric(float64(l[len(l)/2])/1e3, "p50-µs")
		b.ReportMetric(float64(l[len(l)*99/100])/1e3, "p99-µs")
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkThroughput runs 64-byte samples at rising rates for 2 s each.
func BenchmarkThroughput(b *testing.B) {
	for _, rate := range []int{100_000, 400_000, 800_000, 1_200_000} {
		b.Run(fmt.Sprintf("rate=%dk", rate/1000), func(b *testing.B) {
			for range b.N {
				runBench(b, rate, 2*time.Second, 0, false).report(b)
			}
		})
	}
}

// BenchmarkLatency runs 64-byte samples at 10 kHz for 3 s, with the
// default latency budget (1 ms) and with none (send as soon as the ring
// is drained).
func BenchmarkLatency(b *testing.B) {
	for _, delay := range []time.Duration{0, -1} {
		name := "budget=1ms"
		if delay < 0 {
			name = "budget=none"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				runBench(b, 10_000, 3*time.Second, delay, true).report(b)
			}
		})
	}
}
