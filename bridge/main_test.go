package bridge

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/clock"
	"github.com/sensorbus/sensorbus/ring"
	"github.com/sensorbus/sensorbus/schema"
	"github.com/sensorbus/sensorbus/testing/bustest"
	"github.com/sensorbus/sensorbus/testing/leakcheck"
	"github.com/sensorbus/sensorbus/testing/proctest"
)

// The test binary doubles as the processes of a two-host setup: a
// publisher on host A's bus and bridges on either side. The verifying
// subscriber on host B runs in the test itself.

const childEnv = "SENSORBUS_BRIDGE_TEST_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(runChild(role))
	}
	os.Exit(leakcheck.Run(m))
}

// testBus returns a fresh bus, standing for one host; the test fails if
// any topic file is left in it afterwards.
func testBus(t testing.TB) bus.Options { return bustest.New(t, "bridgetest-") }

// Test samples are 64-byte schema.Raw messages whose Data carries the
// sequence number, filler derived from it and a CRC-32C: a sample is its
// own checksum. Time is the publisher's CLOCK_MONOTONIC reading.
const (
	sampleBytes = 64
	dataBytes   = sampleBytes - 13 // fixarray, int64 (9), fixint, bin8 header (2)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func makeSample(r *schema.Raw, seq uint64) {
	if len(r.Data) != dataBytes {
		r.Data = make([]byte, dataBytes)
	}
	d := r.Data
	binary.LittleEndian.PutUint64(d, seq)
	for i := 8; i < len(d)-4; i++ {
		d[i] = byte(seq>>(i%8)) ^ byte(i)
	}
	binary.LittleEndian.PutUint32(d[len(d)-4:], crc32.Checksum(d[:len(d)-4], castagnoli))
	r.Time, r.Sensor = clock.Mono(), 1
}

// checkSample returns the sample's sequence number and whether it is whole.
func checkSample(b []byte, r *schema.Raw) (uint64, bool) {
	if len(b) != sampleBytes || schema.Decode(b, r) != nil || len(r.Data) != dataBytes || r.Sensor != 1 {
		return 0, false
	}
	d := r.Data
	seq := binary.LittleEndian.Uint64(d)
	if binary.LittleEndian.Uint32(d[len(d)-4:]) != crc32.Checksum(d[:len(d)-4], castagnoli) {
		return seq, false
	}
	for i := 8; i < len(d)-4; i++ {
		if d[i] != byte(seq>>(i%8))^byte(i) {
			return seq, false
		}
	}
	return seq, true
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func runChild(role string) int {
	switch role {
	case "publisher":
		return runPublisher()
	case "bridge":
		return runBridge()
	}
	return 2
}

// publishResult is what the publisher child reports.
type publishResult struct {
	Published uint64
	CPUNanos  int64
}

// runPublisher publishes TB_COUNT samples at TB_RATE per second (0: flat
// out) after "go", then closes the topic after "close".
func runPublisher() int {
	opts := bus.Options{Dir: os.Getenv("TB_BUS")}
	pub, err := bus.NewPublisher(bus.PublisherConfig{Options: opts, Topic: os.Getenv("TB_TOPIC"), Schema: schema.RawSchema,
		SlotSize: 128, Slots: envInt("TB_SLOTS", 1<<14)})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	w, err := schema.NewWriter[schema.Raw](pub.Ring(), schema.RawSchema)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() || in.Text() != "go" {
		return 1
	}
	count, rate := uint64(envInt("TB_COUNT", 0)), envInt("TB_RATE", 0)
	var r schema.Raw
	start := time.Now()
	for i := range count {
		if rate > 0 {
			if d := time.Duration(i)*time.Second/time.Duration(rate) - time.Since(start); d > 0 {
				time.Sleep(d)
			}
		}
		makeSample(&r, i)
		if err := w.Publish(&r); err != nil {
			fmt.Println("error:", err)
			return 1
		}
	}
	fmt.Println("published", count)
	in.Scan() // "close", or the end of input
	if err := pub.Close(); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	out, _ := json.Marshal(publishResult{Published: count, CPUNanos: cpuNanos()})
	fmt.Println(string(out))
	return 0
}

// bridgeResult is what the bridge child reports when stopped.
type bridgeResult struct {
	Stats    Stats
	CPUNanos int64
}

// runBridge runs a bridge configured by TB_CONFIG (JSON): "ready" once
// New returned, "stats {...}" for each "stats" line, and its final
// statistics after "stop" or the end of input.
func runBridge() int {
	var cfg Config
	if err := json.Unmarshal([]byte(os.Getenv("TB_CONFIG")), &cfg); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	logCfg := zap.NewDevelopmentConfig()
	level := zap.InfoLevel
	if os.Getenv("TB_QUIET") != "" {
		level = zap.ErrorLevel
	}
	logCfg.Level = zap.NewAtomicLevelAt(level)
	logCfg.DisableStacktrace = true
	log, _ := logCfg.Build()
	cfg.Logger = log.Named(cfg.Host)
	b, err := New(cfg)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("ready")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() && in.Text() != "stop" {
		if in.Text() == "stats" {
			out, _ := json.Marshal(b.Stats())
			fmt.Println("stats", string(out))
		}
	}
	cancel()
	if err := <-done; err != nil {
		fmt.Println("error:", err)
		return 1
	}
	out, _ := json.Marshal(bridgeResult{Stats: b.Stats(), CPUNanos: cpuNanos()})
	fmt.Println(string(out))
	return 0
}

func cpuNanos() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// bridgeProc is a bridge child process.
type bridgeProc struct {
	*proctest.Child
}

func startBridge(t testing.TB, cfg Config) *bridgeProc {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"TB_CONFIG=" + string(b)}
	if _, bench := t.(*testing.B); bench {
		env = append(env, "TB_QUIET=1") // keep the benchmark's output readable
	}
	c := proctest.Start(t, childEnv, "bridge", proctest.Options{Env: env})
	c.Expect("ready")
	return &bridgeProc{c}
}

func (p *bridgeProc) stop() bridgeResult {
	p.Send("stop")
	var r bridgeResult
	p.Result(&r)
	return r
}

func (p *bridgeProc) stats() Stats {
	p.Send("stats")
	var st Stats
	if err := json.Unmarshal([]byte(strings.TrimPrefix(p.Expect("stats "), "stats ")), &st); err != nil {
		panic(err)
	}
	return st
}

func (p *bridgeProc) signal(sig syscall.Signal) {
	if err := p.Cmd.Process.Signal(sig); err != nil {
		panic(err)
	}
}

func startPublisher(t testing.TB, opts bus.Options, topic string, count, rate, slots int) *proctest.Child {
	t.Helper()
	c := proctest.Start(t, childEnv, "publisher", proctest.Options{Env: []string{"TB_BUS=" + opts.Dir,
		"TB_TOPIC=" + topic, "TB_COUNT=" + strconv.Itoa(count), "TB_RATE=" + strconv.Itoa(rate), "TB_SLOTS=" + strconv.Itoa(slots)}})
	c.Expect("ready")
	return c
}

// localSkip says that the importer marks gaps lost on the local ring
// (ring.Writer.Skip), keeping the local index the remote one: the
// subscriber's own loss count is checked, and every sample's index
// against its sequence number.
const localSkip = true

// verifyResult is what the subscriber on host B saw.
type verifyResult struct {
	Received   uint64
	Lost       uint64 // as the bus reported it
	SeqLost    uint64 // gaps in the samples' sequence numbers
	Corrupt    uint64
	Misordered uint64 // a sequence number not after the previous one, or not the ring index
	Restarts   uint64
	Latencies  []int64 // publish on A to receipt on B, ns, if asked for
	Err        error
}

// accounted is received + lost, by the best loss count available.
func (r *verifyResult) accounted() uint64 {
	if localSkip {
		return r.Received + r.Lost
	}
	return r.Received + r.SeqLost
}

// verifier is the subscriber on host B: it checks every sample and counts.
type verifier struct {
	mu       sync.Mutex
	cond     *sync.Cond
	res      verifyResult
	finished bool
	done     chan struct{}
}

// startVerifier subscribes to topic on opts's bus (waiting for the
// bridge to create it) and verifies samples until want are accounted for.
func startVerifier(t testing.TB, opts bus.Options, topic string, want uint64, latencies bool) *verifier {
	t.Helper()
	v := &verifier{done: make(chan struct{})}
	v.cond = sync.NewCond(&v.mu)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(func() {
		cancel()
		<-v.done
	})
	go func() {
		err := v.run(ctx, opts, topic, want, latencies)
		v.mu.Lock()
		v.res.Err, v.finished = err, true
		v.mu.Unlock()
		v.cond.Broadcast()
		close(v.done)
	}()
	return v
}

func (v *verifier) run(ctx context.Context, opts bus.Options, topic string, want uint64, latencies bool) error {
	sub, err := bus.Subscribe(ctx, bus.SubscriberConfig{Options: opts, Topic: topic, Schema: schema.RawSchema,
		Start: ring.FromOldest, WaitForPublisher: time.Minute, LivenessInterval: 20 * time.Millisecond})
	if err != nil {
		return err
	}
	defer sub.Close()
	var raw schema.Raw
	next := uint64(0)
	for {
		s, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		now := clock.Mono()
		seq, ok := checkSample(s.Data, &raw)
		v.mu.Lock()
		r := &v.res
		r.Received++
		r.Lost += s.Lost
		if s.Restarted {
			r.Restarts++
			next = 0
		}
		switch {
		case !ok:
			r.Corrupt++
		case seq < next || localSkip && seq != s.Index:
			r.Misordered++
		default:
			r.SeqLost += seq - next
			next = seq + 1
		}
		if latencies && ok {
			r.Latencies = append(r.Latencies, now-raw.Time)
		}
		done := r.accounted() >= want
		v.mu.Unlock()
		v.cond.Broadcast()
		if done {
			return nil
		}
	}
}

// waitReceived blocks until n samples arrived or the verifier ended.
func (v *verifier) waitReceived(t testing.TB, n uint64) {
	t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	for v.res.Received < n {
		if v.finished {
			t.Fatalf("verifier ended after %d samples, before %d: %v", v.res.Received, n, v.res.Err)
		}
		v.cond.Wait()
	}
}

func (v *verifier) result(t testing.TB) verifyResult {
	t.Helper()
	<-v.done
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.res.Err != nil && !errors.Is(v.res.Err, context.Canceled) {
		t.Fatalf("verifier: %v (after %+v)", v.res.Err, v.res)
	}
	return v.res
}
