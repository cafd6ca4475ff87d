package record

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/schema"
	"github.com/sensorbus/sensorbus/testing/proctest"
)

// Children: the test binary re-executed with childEnv set to a role.
//
//	recorder   Record(REC_TOPIC or imu -> REC_OUT), flushing every 20ms; prints
//	           "attached" when it has attached, its Stats as JSON at the end.
//	           SIGTERM ends it gracefully.
//	publisher  publishes IMU samples on PUB_TOPIC at PUB_RATE Hz for
//	           PUB_DURATION after "go" on stdin; prints "ready" first and
//	           {"published":N} at the end.
func runChild(role string) int {
	opts := bus.Options{Dir: os.Getenv("BUS_DIR")}
	switch role {
	case "recorder":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		topic := os.Getenv("REC_TOPIC")
		if topic == "" {
			topic = "imu"
		}
		chunk, _ := strconv.Atoi(os.Getenv("REC_CHUNK"))
		st, err := Record(ctx, RecordConfig{Bus: opts, Output: os.Getenv("REC_OUT"), Topics: []string{topic}, StopWhenGone: true,
			FlushInterval: 20 * time.Millisecond, ChunkSize: chunk, Compression: Compression(os.Getenv("REC_COMPRESSION")),
			Notify: func(e Event) {
				if e.Kind == EventAttached {
					fmt.Println("attached")
				}
			}})
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		b, _ := json.Marshal(st)
		fmt.Println(string(b))
		return 0
	case "publisher":
		rate, _ := strconv.ParseFloat(os.Getenv("PUB_RATE"), 64)
		d, _ := time.ParseDuration(os.Getenv("PUB_DURATION"))
		p, err := newChildPublisher(opts, os.Getenv("PUB_TOPIC"))
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		defer p.pub.Close()
		fmt.Println("ready")
		var line [16]byte
		os.Stdin.Read(line[:])
		n, err := p.paced(rate, d)
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Printf("{\"published\":%d}\n", n)
		return 0
	}
	fmt.Println("error: unknown role", role)
	return 2
}

func newChildPublisher(opts bus.Options, topic string) (*synthPublisher, error) {
	pub, err := bus.NewPublisher(bus.PublisherConfig{Options: opts, Topic: topic, Schema: schema.IMUSchema, SlotSize: 128})
	if err != nil {
		return nil, err
	}
	p := &synthPublisher{pub: pub}
	if p.gen, err = newSynth(); err != nil {
		pub.Close()
		return nil, err
	}
	return p, nil
}

func childEnvOf(o bus.Options, kv ...string) []string {
	return append([]string{"BUS_DIR=" + o.Dir}, kv...)
}

// waitFile polls a recording being written until it holds a sample of
// index at least idx (the recorder flushes every 20ms).
func waitFile(t *testing.T, path string, idx uint64) Summary {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		sum, err := Inspect(path)
		if err == nil && len(sum.Topics) == 1 && sum.Topics[0].LastIndex >= idx {
			return sum
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds no sample %d after a minute: %+v %v", path, idx, sum, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitStopped waits until process pid is stopped (state T in /proc).
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	for range 10000 {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		// pid (comm) STATE ...; comm may hold spaces, so look after the last ')'.
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i > 0 && len(s) > i+2 && s[i+2] == 'T' {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the recorder did not stop")
}

// A recorder stopped long enough for the publisher to lap it records the
// loss the ring reported, exactly, where it happened: the recorded samples
// and the gaps together are every published sample, once.
func TestRecordLossExact(t *testing.T) {
	opts := testBus(t)
	out := t.TempDir() + "/loss.mcap"
	rec := proctest.Start(t, childEnv, "recorder", proctest.Options{Env: childEnvOf(opts, "REC_OUT="+out, "REC_CHUNK=16384")})
	pub, err := bus.NewPublisher(bus.PublisherConfig{Options: opts, Topic: "imu", Schema: schema.IMUSchema, Slots: 64, SlotSize: 128})
	if err != nil {
		t.Fatal(err)
	}
	p := &synthPublisher{pub: pub}
	if p.gen, err = newSynth(); err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			pub.Close()
		}
	}()
	rec.Expect("attached")
	// Paced so that a recorder that is not stopped keeps up.
	const before, during, after = 500, 2000, 500
	if err := p.publish(before, 50*time.Microsecond); err != nil {
		t.Fatal(err)
	}
	waitFile(t, out, before-1)
	rec.Cmd.Process.Signal(syscall.SIGSTOP)
	waitStopped(t, rec.Cmd.Process.Pid)
	if err := p.publish(during, 0); err != nil {
		t.Fatal(err)
	}
	rec.Cmd.Process.Signal(syscall.SIGCONT)
	if err := p.publish(after, 50*time.Microsecond); err != nil {
		t.Fatal(err)
	}
	pub.Close()
	closed = true
	var st Stats
	rec.Result(&st)

	const total = before + during + after
	sum, err := Inspect(out)
	if err != nil {
		t.Fatal(err)
	}
	ts := sum.Topics[0]
	if !sum.Complete || ts.Lost != st.Lost || st.Lost < during-64 || ts.Messages != st.Messages || ts.Messages+ts.Lost != total || ts.Before != 0 {
		t.Fatalf("published %d; recorder stats %+v; file %+v", total, st, ts)
	}
	// Every index from 0 to total-1 is either recorded or inside a gap,
	// and a gap begins right where the recorder was stopped.
	covered := make([]int, total)
	for _, s := range readAll(t, "imu", out) {
		covered[s.index]++
	}
	inStop := false
	for _, g := range ts.Gaps {
		for i := g.Index - g.Lost; i < g.Index; i++ {
			covered[i]++
		}
		// It had recorded up to before-1 when stopped, and was lapped.
		if g.Index-g.Lost == before {
			inStop = true
		}
	}
	for i, c := range covered {
		if c != 1 {
			t.Fatalf("index %d recorded or lost %d times", i, c)
		}
	}
	if !inStop {
		t.Fatalf("no gap within the samples published while the recorder was stopped: %+v", ts.Gaps)
	}
	t.Logf("lost %d of %d in %d gaps", ts.Lost, total, len(ts.Gaps))
	checkWithNode(t, out)
	replayAndVerify(t, opts, 0, out)
}

// A recorder killed with kill -9 leaves a file whose complete chunks
// every reader reads, and that replays.
func TestRecordKill9(t *testing.T) {
	opts := testBus(t)
	out := t.TempDir() + "/killed.mcap"
	rec := proctest.Start(t, childEnv, "recorder", proctest.Options{Env: childEnvOf(opts, "REC_OUT="+out, "REC_CHUNK=8192")})
	p := newSynthPublisher(t, opts, "imu", schema.IMUSchema, 8192)
	defer p.pub.Close()
	rec.Expect("attached")
	const n = 3000
	if err := p.publish(n, 0); err != nil {
		t.Fatal(err)
	}
	waitFile(t, out, n-1)
	rec.Kill9()
	sum, err := Inspect(out)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Complete || !sum.Truncated || sum.Messages != n || sum.Topics[0].LastIndex != n-1 || sum.Chunks < 2 {
		t.Fatalf("after kill -9: %+v", sum)
	}
	checkWithNode(t, out)
	replayAndVerify(t, opts, 0, out)
}

// Every prefix of a finished file reads as a file cut short: no error, and
// never more samples than a longer prefix.
func TestReadEveryPrefix(t *testing.T) {
	out := t.TempDir() + "/full.mcap"
	recordSynth(t, RecordConfig{Bus: testBus(t), Output: out, ChunkSize: 2048}, 200)
	full, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	cut := t.TempDir() + "/cut.mcap"
	prev := uint64(0)
	// Up to the footer (a file missing only its closing magic has its
	// summary and counts as finished).
	for n := 8; n < len(full)-8; n += 53 {
		if err := os.WriteFile(cut, full[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		sum, err := Inspect(cut)
		if err != nil {
			t.Fatalf("prefix of %d bytes: %v", n, err)
		}
		if sum.Complete || !sum.Truncated || sum.Messages < prev {
			t.Fatalf("prefix of %d bytes: %+v (a shorter one had %d samples)", n, sum, prev)
		}
		prev = sum.Messages
	}
	if prev != 200 {
		t.Fatalf("the longest prefix holds %d samples", prev)
	}
	if _, err := Inspect(out); err != nil {
		t.Fatal(err)
	}
}
