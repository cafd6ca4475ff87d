package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/sensorbus/sensorbus/internal/clock"
	"github.com/sensorbus/sensorbus/ring"
)

func runAll(cfg config) ([]Result, error) {
	work, err := os.MkdirTemp("/dev/shm", "ipcbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	var want map[string]bool
	if cfg.only != "" {
		want = map[string]bool{}
		for _, n := range strings.Split(cfg.only, ",") {
			n = strings.TrimSpace(n)
			if !slices.Contains(mechanismKeys(), n) {
				return nil, fmt.Errorf("--only: unknown mechanism %q; known: %s", n, strings.Join(mechanismKeys(), ","))
			}
			want[n] = true
		}
	}
	// A daemon (RouDi, mosquitto) is stopped after its mechanism's rows,
	// and also if the harness is interrupted: then the work directory
	// goes too.
	var daemonStop atomic.Pointer[func()]
	var child atomic.Int64 // process group of the sender process of an isolated row
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		<-sigs
		if pg := int(child.Load()); pg > 0 {
			// The sender and its receivers, before their daemon: they
			// are registered with it.
			syscall.Kill(-pg, syscall.SIGKILL)
			for i := 0; i < 200 && syscall.Kill(-pg, 0) == nil; i++ {
				time.Sleep(10 * time.Millisecond)
			}
		}
		if stop := daemonStop.Load(); stop != nil {
			(*stop)()
		}
		os.RemoveAll(work)
		fmt.Fprintln(os.Stderr, "ipcbench: interrupted")
		os.Exit(130)
	}()
	var out []Result
	for _, m := range mechanisms(work) {
		if want != nil && !want[m.key] {
			continue
		}
		sizes := cfg.sizes
		if m.noPayload {
			sizes = []int{0}
		}
		row := func(size int) Result {
			return Result{Key: m.key, Mechanism: m.name, Size: size, SizeLabel: m.sizeLabel, Stamp: m.stamp,
				Peer: m.peer, Floor: m.floor, Direction: m.direction, Fanout: m.fanout, Access: m.access}
		}
		report := func(r Result) {
			size := strconv.Itoa(r.Size) + " B"
			if r.SizeLabel != "" {
				size = r.SizeLabel
			}
			fmt.Fprintf(os.Stderr, "%-50s %7s  p50 %8.1f µs  %10.0f msg/s  %s\n", m.name, size, float64(r.P50Ns)/1e3, r.MsgPerSec, r.Error)
			out = append(out, r)
		}
		if m.unavailable != "" {
			r := row(0)
			r.SizeLabel = "all"
			r.Error = m.unavailable
			report(r)
			continue
		}
		stop := func() {}
		if m.daemon != nil {
			s, err := m.daemon(work)
			if err != nil {
				r := row(0)
				r.SizeLabel = "all"
				r.Error = err.Error()
				report(r)
				continue
			}
			stop = sync.OnceFunc(s) // here or by the interrupt handler
			daemonStop.Store(&stop)
		}
		for _, size := range sizes {
			r := row(size)
			var err error
			if m.isolate {
				err = measureIsolated(cfg, m, size, work, &r, &child)
			} else {
				err = measure(cfg, m, size, &r)
			}
			if err != nil {
				r.Error = err.Error()
			}
			report(r)
		}
		stop() // an interrupt handler calling it meanwhile waits for it
		daemonStop.Store(nil)
	}
	return out, nil
}

func measure(cfg config, m mechanism, size int, r *Result) error {
	lat, _, err := runOnce(m, size, "latency", cfg)
	if err != nil {
		return fmt.Errorf("latency run: %w", err)
	}
	r.P50Ns, r.P99Ns, r.P999Ns, r.MaxNs = lat[0].P50, lat[0].P99, lat[0].P999, lat[0].Max
	if m.latencyOnly {
		return nil
	}
	tp, sendCPU, err := runOnce(m, size, "throughput", cfg)
	if err != nil {
		return fmt.Errorf("throughput run: %w", err)
	}
	var rate, cpu float64
	var received, lost uint64
	for _, t := range tp {
		if d := t.LastNs - t.FirstNs; d > 0 && t.Received > 1 {
			rate += float64(t.Received-1) / (float64(d) / 1e9)
		}
		cpu += float64(t.CPUNs)
		received += t.Received
		lost += t.Lost
	}
	r.MsgPerSec = rate / float64(len(tp)) // per receiver
	r.MBPerSec = r.MsgPerSec * float64(size) / 1e6
	if sent := received + lost; sent > 0 {
		r.CPUNsPerMsg = (cpu + float64(sendCPU)*float64(len(tp))) / float64(received)
		r.LostPct = float64(lost) / float64(sent) * 100
	}
	return nil
}

// runOnce runs one sender (this process) and the mechanism's receivers.
func runOnce(m mechanism, size int, mode string, cfg config) ([]recvResult, int64, error) {
	ch, err := m.setup(size)
	if err != nil {
		return nil, 0, err
	}
	defer ch.cleanup()
	readers := max(m.readers, 1)
	type rcv struct {
		cmd *exec.Cmd
		out *bufio.Scanner
	}
	var rs []rcv
	defer func() {
		// A receiver that reported exits by itself (an iceoryx one
		// deregisters from RouDi on the way out): give it a moment, then
		// kill it (one that failed may never end).
		for _, r := range rs {
			done := make(chan struct{})
			go func() { r.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				r.cmd.Process.Kill()
				<-done
			}
		}
	}()
	for range readers {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), append([]string{roleEnv + "=recv", "SIZE=" + strconv.Itoa(size), "MODE=" + mode}, ch.env...)...)
		cmd.ExtraFiles = ch.files
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no receiver outlives a crashed sender
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, 0, err
		}
		if err := cmd.Start(); err != nil {
			return nil, 0, err
		}
		r := rcv{cmd: cmd, out: bufio.NewScanner(stdout)}
		rs = append(rs, r)
		line, ok := scanFor(r.out, startTimeout)
		word, info, _ := strings.Cut(line, " ")
		if !ok || word != "ready" {
			return nil, 0, fmt.Errorf("receiver did not start: %q", line)
		}
		if ch.ready != nil {
			if err := ch.ready(info); err != nil {
				return nil, 0, err
			}
		}
	}
	for _, f := range ch.files {
		f.Close() // the receivers have their copies
	}
	msg := make([]byte, max(size, headerSize)) // a mechanism without payload gets the header's values some other way
	put := func(seq uint64, due int64) {
		binary.LittleEndian.PutUint64(msg, seq)
		binary.LittleEndian.PutUint64(msg[8:], uint64(due))
	}
	if ch.pin {
		restore, err := pinThread(ch.senderCPU)
		if err != nil {
			return nil, 0, err
		}
		defer restore()
	}
	cpu0 := cpuNs()
	t0 := clock.Mono()
	if mode == "latency" {
		interval := int64(time.Second) / int64(cfg.rate)
		n := uint64(int64(cfg.latencyFor) / interval)
		for i := range n {
			due := t0 + int64(i)*interval
			// Spin to the due time. Yielding here (runtime.Gosched) to let
			// an embedded NATS server share this P made NATS's p50 worse,
			// 0.28 -> 2.4 ms: a yielded-to goroutine keeps the P for long.
			for clock.Mono() < due {
			}
			put(i, due) // the due time, not the send time: stalls are charged
			if err := ch.send(msg); err != nil {
				return nil, 0, err
			}
		}
	} else {
		end := t0 + int64(cfg.throughputFor)
		for i := uint64(0); ; i++ {
			now := clock.Mono()
			if now >= end {
				break
			}
			put(i, now)
			if err := ch.send(msg); err != nil {
				return nil, 0, err
			}
		}
	}
	put(lastSeq, 0)
	ch.send(msg)
	ch.finish()
	sendCPU := cpuNs() - cpu0
	var results []recvResult
	for _, r := range rs {
		var res recvResult
		line, ok := scanFor(r.out, resultTimeout)
		if !ok {
			return nil, 0, fmt.Errorf("receiver gave no result within %v (the end marker lost?)", resultTimeout)
		}
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			return nil, 0, fmt.Errorf("receiver result %q: %w", line, err)
		}
		if res.Error != "" {
			return nil, 0, errors.New(res.Error)
		}
		results = append(results, res)
	}
	return results, sendCPU, nil
}

const (
	startTimeout  = 10 * time.Second
	resultTimeout = 30 * time.Second
)

// scanFor returns the next line of sc, or false if there is none within d.
// On a timeout the scanner is left to a goroutine that ends when the
// caller kills the receiver (closing its output).
func scanFor(sc *bufio.Scanner, d time.Duration) (string, bool) {
	type line struct {
		s  string
		ok bool
	}
	c := make(chan line, 1)
	go func() {
		ok := sc.Scan()
		c <- line{sc.Text(), ok}
	}()
	select {
	case l := <-c:
		return l.s, l.ok
	case <-time.After(d):
		return "", false
	}
}

// receive is the receiver process: it reads messages until the end
// marker, EOF or a closed ring, and prints its result as JSON.
func receive() int {
	size, _ := strconv.Atoi(os.Getenv("SIZE"))
	res := recvResult{}
	report := func() int {
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
		return 0
	}
	fail := func(err error) int { res.Error = err.Error(); return report() }
	if c := os.Getenv("PIN_CPU"); c != "" {
		n, _ := strconv.Atoi(c)
		if _, err := pinThread(n); err != nil { // for good: this goroutine receives
			fmt.Println("ready")
			return fail(err)
		}
	}
	buf := make([]byte, size)
	var next func() ([]byte, error)
	switch os.Getenv("MECH") {
	case "stream-fd", "tcp", "fifo":
		var rd io.Reader
		switch os.Getenv("MECH") {
		case "stream-fd":
			rd = os.NewFile(3, "recv")
		case "tcp":
			c, err := net.Dial("tcp", os.Getenv("ADDR"))
			if err != nil {
				return fail(err)
			}
			rd = c
		}
		fmt.Println("ready")
		if os.Getenv("MECH") == "fifo" {
			f, err := os.Open(os.Getenv("FIFO")) // blocks until the sender opens its end
			if err != nil {
				return fail(err)
			}
			rd = f
		}
		next = func() ([]byte, error) { _, err := io.ReadFull(rd, buf); return buf, err }
	case "packet-fd":
		f := os.NewFile(3, "recv")
		fmt.Println("ready")
		next = func() ([]byte, error) {
			f.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := f.Read(buf)
			return buf[:n], err
		}
	case "signal":
		info, n, err := signalReceiver()
		fmt.Println("ready", info)
		if err != nil {
			return fail(err)
		}
		next = n
	case "posix-mq", "sysv-mq", "mmap", "shm-sem":
		open := map[string]receiverFunc{
			"posix-mq": posixMQReceiver, "sysv-mq": sysvMQReceiver, "mmap": mmapReceiver, "shm-sem": shmSemReceiver,
		}[os.Getenv("MECH")]
		n, err := open(size)
		fmt.Println("ready")
		if err != nil {
			return fail(err)
		}
		next = n
	case "ring":
		wait := ring.WaitBlock
		if os.Getenv("RING_WAIT") == "spin" {
			wait = ring.WaitSpin
		}
		r, err := ring.Attach(os.NewFile(3, "ring"), os.NewFile(4, "wake"), ring.ReaderConfig{Start: ring.FromOldest, Wait: wait})
		if err != nil {
			fmt.Println("ready")
			return fail(err)
		}
		defer r.Close()
		if err := r.Prefault(); err != nil {
			fmt.Println("ready")
			return fail(err)
		}
		fmt.Println("ready")
		next = func() ([]byte, error) {
			s, err := r.Next(context.Background())
			return s.Data, err
		}
	default:
		open := otherReceivers()[os.Getenv("MECH")]
		if open == nil {
			fmt.Println("ready")
			return fail(fmt.Errorf("unknown mechanism %q", os.Getenv("MECH")))
		}
		n, err := open(size)
		fmt.Println("ready")
		if err != nil {
			return fail(err)
		}
		next = n
	}
	h := hdrhistogram.New(1, int64(10*time.Second), 3)
	cpu0 := cpuNs()
	expect := uint64(0)
	for {
		m, err := next()
		if err != nil || len(m) < headerSize {
			break // EOF, a closed ring, a read deadline: the sender is done
		}
		seq := binary.LittleEndian.Uint64(m)
		if seq == lastSeq {
			break
		}
		now := clock.Mono()
		if res.Received == 0 {
			res.FirstNs = now
		}
		res.LastNs = now
		h.RecordValue(max(now-int64(binary.LittleEndian.Uint64(m[8:])), 1))
		if seq > expect {
			res.Lost += seq - expect
		}
		expect = seq + 1
		res.Received++
	}
	res.CPUNs = cpuNs() - cpu0
	res.P50, res.P99, res.P999, res.Max = h.ValueAtQuantile(50), h.ValueAtQuantile(99), h.ValueAtQuantile(99.9), h.Max()
	return report()
}

func markdown(rs []Result) string {
	var b strings.Builder
	b.WriteString("| mechanism | size | sender's stamp | p50 | p99 | p99.9 | max | msg/s | MB/s | CPU/msg | lost | direction | fan-out | access control |\n")
	b.WriteString("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|\n")
	us := func(ns int64) string {
		if ns < 10_000 { // the floors and the ring: tens of ns matter
			return fmt.Sprintf("%.2f µs", float64(ns)/1e3)
		}
		return fmt.Sprintf("%.1f µs", float64(ns)/1e3)
	}
	for _, r := range rs {
		size := strconv.Itoa(r.Size)
		if r.SizeLabel != "" {
			size = r.SizeLabel
		} else if r.Size == 0 {
			size = "none"
		}
		if r.Error != "" {
			fmt.Fprintf(&b, "| %s | %s | %s | error: %s | | | | | | | | %s | %s | %s |\n", r.Mechanism, size, r.Stamp, r.Error, r.Direction, r.Fanout, r.Access)
			continue
		}
		tp := fmt.Sprintf("%.0f | %.1f | %.2f µs | %.2f %%", r.MsgPerSec, r.MBPerSec, r.CPUNsPerMsg/1e3, r.LostPct)
		if r.Floor {
			tp = "| | |" // latency only
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Mechanism, size, r.Stamp, us(r.P50Ns), us(r.P99Ns), us(r.P999Ns), us(r.MaxNs), tp, r.Direction, r.Fanout, r.Access)
	}
	return b.String()
}

// Ratio is one of the comparisons issue 19 asks for, from the 64-byte
// latency rows of one run.
type Ratio struct {
	What  string  `json:"what"`
	Num   string  `json:"numerator"`
	Den   string  `json:"denominator"`
	Value float64 `json:"value"` // 0 when a row is missing or failed
	// Rounds are the ratio in each round (--rounds), Value their median.
	Rounds []float64 `json:"rounds,omitempty"`
}

// ratios compares the blocking ring reader's p50 with its floor and with
// iceoryx's waitset subscriber, and the spinning reader's with its floor
// and iceoryx's polling subscriber.
func ratios(rs []Result) []Ratio {
	p50 := func(key string) int64 {
		for _, r := range rs {
			if r.Key == key && r.Error == "" && (r.Size == 64 || r.Size == 0) {
				return r.P50Ns
			}
		}
		return 0
	}
	var out []Ratio
	for _, q := range [][3]string{
		{"blocking ring reader p50 / futex-wake floor p50, both pinned", "ring-futex-pinned", "floor-futex"},
		{"blocking ring reader p50 / futex-wake floor p50, not pinned", "ring-futex", "floor-futex-unpinned"},
		{"blocking ring reader p50 / iceoryx waitset subscriber p50", "ring-futex", "iceoryx-waitset"},
		{"blocking ring reader p50 / iceoryx waitset subscriber p50, both pinned", "ring-futex-pinned", "iceoryx-waitset-pinned"},
		{"spinning ring reader p50 / cache-line floor p50", "ring-spin", "floor-cacheline"},
		{"spinning ring reader p50 / iceoryx polling subscriber p50", "ring-spin", "iceoryx-poll"},
	} {
		r := Ratio{What: q[0], Num: q[1], Den: q[2]}
		if n, d := p50(q[1]), p50(q[2]); n > 0 && d > 0 {
			r.Value = float64(n) / float64(d)
		}
		out = append(out, r)
	}
	return out
}

func ratiosText(rs []Ratio) string {
	var b strings.Builder
	for _, r := range rs {
		v := "n/a (a row is missing or failed)"
		if r.Value > 0 {
			v = fmt.Sprintf("%.2f", r.Value)
		}
		if len(r.Rounds) > 1 && r.Value > 0 {
			var each []string
			for _, x := range r.Rounds {
				each = append(each, fmt.Sprintf("%.2f", x))
			}
			v += " (" + strings.Join(each, ", ") + ")"
		}
		fmt.Fprintf(&b, "- %s (64 B, `%s` / `%s`): %s\n", r.What, r.Num, r.Den, v)
	}
	return b.String()
}
