package main

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sensorbus/sensorbus/ring"
)

const roleEnv = "IPCBENCH_ROLE"

// header: sequence number and due time; the rest of a message is filler.
const headerSize = 16

const lastSeq = ^uint64(0)

func main() {
	switch os.Getenv(roleEnv) {
	case "recv":
		exit(receive())
	case "measure":
		exit(measureChild())
	}
	var cfg config
	var sizes string
	flag.StringVar(&sizes, "sizes", "64,1024,16384", "message sizes in bytes")
	flag.IntVar(&cfg.rate, "rate", 10_000, "messages per second in the latency runs")
	flag.DurationVar(&cfg.latencyFor, "latency-duration", 3*time.Second, "length of each latency run")
	flag.DurationVar(&cfg.throughputFor, "throughput-duration", 2*time.Second, "length of each throughput run")
	flag.StringVar(&cfg.only, "only", "", "comma-separated mechanisms to run (default all): "+strings.Join(mechanismKeys(), ","))
	flag.StringVar(&cfg.jsonPath, "json", "", "write the results as JSON to this file")
	flag.StringVar(&cfg.mdPath, "md", "", "write the Markdown table to this file")
	flag.IntVar(&cfg.rounds, "rounds", 1, "run the selected mechanisms this many times, one after another, and report each row's median p50 round and the median of each round's ratios")
	flag.Parse()
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < headerSize+8 || n > 1<<20 {
			fmt.Fprintf(os.Stderr, "ipcbench: --sizes: %q is not a size from %d to %d\n", f, headerSize+8, 1<<20)
			os.Exit(2)
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	if cfg.rate <= 0 || cfg.latencyFor <= 0 || cfg.throughputFor <= 0 || cfg.rounds <= 0 {
		fmt.Fprintln(os.Stderr, "ipcbench: --rate, --rounds and the durations must be positive")
		os.Exit(2)
	}
	host := hostInfo()
	var rounds [][]Result
	for range cfg.rounds {
		results, err := runAll(cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ipcbench:", err)
			os.Exit(1)
		}
		rounds = append(rounds, results)
	}
	host.LoadEnd = loadAvg()
	results, rat := mergeRounds(rounds)
	what := "this run"
	if cfg.rounds > 1 {
		what = fmt.Sprintf("%d rounds: each row is its round of median p50, each ratio the median of the rounds' ratios, every round's in brackets", cfg.rounds)
	}
	table := markdown(results) + "\nRatios (one-way p50, " + what + "):\n\n" + ratiosText(rat) +
		fmt.Sprintf("\nHost: Linux %s, %d CPUs, %s; load average (1 min) %s at the start, %s at the end.\n",
			host.Kernel, host.CPUs, host.Go, host.LoadStart, host.LoadEnd)
	fmt.Print(table)
	if cfg.mdPath != "" {
		if err := os.WriteFile(cfg.mdPath, []byte(table), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "ipcbench:", err)
			os.Exit(1)
		}
	}
	if cfg.jsonPath != "" {
		b, _ := json.MarshalIndent(struct {
			Host    hostFacts `json:"host"`
			Results []Result  `json:"results"`
			Ratios  []Ratio   `json:"ratios"`
		}{host, results, rat}, "", "  ")
		if err := os.WriteFile(cfg.jsonPath, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "ipcbench:", err)
			os.Exit(1)
		}
	}
	// A peer or a floor that could not be measured (not built, not
	// installed, broken) fails the run, so CI notices.
	failed := 0
	for _, r := range results {
		if (r.Peer || r.Floor) && r.Error != "" {
			fmt.Fprintf(os.Stderr, "ipcbench: %s (%s): %s\n", r.Mechanism, r.Key, r.Error)
			failed++
		}
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "ipcbench: %d peer or floor rows failed\n", failed)
		os.Exit(1)
	}
}

// mergeRounds reduces rounds of the same runs (in the same order) to one
// row each, the round with the median p50 (so that a row's figures come
// from one run), and the ratios to the median of each round's ratios:
// rows measured one after another meet a machine whose wake-up latency
// drifts between them, and rounds show how far.
func mergeRounds(rounds [][]Result) ([]Result, []Ratio) {
	merged := make([]Result, len(rounds[0]))
	for i := range merged {
		var rs []Result
		for _, round := range rounds {
			rs = append(rs, round[i])
		}
		slices.SortStableFunc(rs, func(a, b Result) int { return cmp.Compare(a.P50Ns, b.P50Ns) })
		merged[i] = rs[(len(rs)-1)/2]
	}
	rat := ratios(rounds[0])
	for k := range rat {
		var vs []float64
		for _, round := range rounds {
			vs = append(vs, ratios(round)[k].Value)
		}
		rat[k].Rounds = vs
		sorted := slices.Sorted(slices.Values(vs))
		rat[k].Value = sorted[(len(sorted)-1)/2]
	}
	return merged, rat
}

// hostFacts is what the table depends on besides the code: the machine and
// how busy it was (other processes share the CPUs with the run).
type hostFacts struct {
	Kernel    string `json:"kernel"`
	CPUs      int    `json:"cpus"`
	Go        string `json:"go"`
	LoadStart string `json:"loadavg_start"` // 1-minute load average
	LoadEnd   string `json:"loadavg_end"`
}

func hostInfo() hostFacts {
	var u syscall.Utsname
	syscall.Uname(&u)
	var rel []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		rel = append(rel, byte(c))
	}
	return hostFacts{Kernel: string(rel), CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadStart: loadAvg()}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

type config struct {
	sizes                     []int
	rate                      int
	latencyFor, throughputFor time.Duration
	only, jsonPath, mdPath    string
	rounds                    int
}

// Result is one mechanism at one message size.
type Result struct {
	Key         string  `json:"key"`
	Mechanism   string  `json:"mechanism"`
	Size        int     `json:"size"`
	SizeLabel   string  `json:"size_label,omitempty"` // instead of Size, for a mechanism without payload
	Stamp       string  `json:"stamp"`                // where the sender's time stamp is taken
	Peer        bool    `json:"peer,omitempty"`
	Floor       bool    `json:"floor,omitempty"`
	P50Ns       int64   `json:"p50_ns"`
	P99Ns       int64   `json:"p99_ns"`
	P999Ns      int64   `json:"p999_ns"`
	MaxNs       int64   `json:"max_ns"`
	MsgPerSec   float64 `json:"msg_per_s"`
	MBPerSec    float64 `json:"mb_per_s"`
	CPUNsPerMsg float64 `json:"cpu_ns_per_msg"`
	LostPct     float64 `json:"lost_pct"` // lossy mechanisms, throughput run
	Direction   string  `json:"direction"`
	Fanout      string  `json:"fanout"`
	Access      string  `json:"access_control"`
	Error       string  `json:"error,omitempty"`
}

// recvResult is what a receiver reports.
type recvResult struct {
	Received uint64 `json:"received"`
	Lost     uint64 `json:"lost"`
	P50      int64  `json:"p50"`
	P99      int64  `json:"p99"`
	P999     int64  `json:"p999"`
	Max      int64  `json:"max"`
	FirstNs  int64  `json:"first_ns"`
	LastNs   int64  `json:"last_ns"`
	CPUNs    int64  `json:"cpu_ns"`
	Error    string `json:"error,omitempty"`
}

func cpuNs() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// channel is one set-up run of a mechanism: how the sender sends, and
// what its receivers need.
type channel struct {
	send    func(b []byte) error
	ready   func(info string) error // optional: what a receiver said after "ready"
	finish  func()                  // the sender is done: tell receivers (EOF, close)
	files   []*os.File
	env     []string
	cleanup func()
	// pin: the sending thread runs on senderCPU for the run (the
	// receiver pins itself, told by PIN_CPU in env).
	pin       bool
	senderCPU int
}

// receiverFunc opens a receiver for messages of size bytes; next returns
// each message (it may reuse the buffer).
type receiverFunc func(size int) (next func() ([]byte, error), err error)

// mechanism is one way of moving bytes between processes.
type mechanism struct {
	key                             string // for --only
	name, direction, fanout, access string
	stamp                           string // where the sender's time stamp is taken, for the table
	readers                         int
	lossy                           bool // may drop under load; the receiver counts gaps
	noPayload                       bool // carries no message: measured once, size "none"
	setup                           func(size int) (*channel, error)

	// peer: a system sensorbus is measured against; floor: what the
	// kernel or the hardware costs at least. A failed row of either
	// fails the run, so CI notices a peer that stopped working.
	peer, floor bool
	// latencyOnly: no throughput run (the floors move one word, not a
	// stream of messages).
	latencyOnly bool
	// sizeLabel replaces the size column of a mechanism without payload.
	sizeLabel string
	// isolate: each row is measured by a sender process of its own, for
	// libraries that keep per-process state (iceoryx's runtime, which
	// belongs to one RouDi and cannot be re-initialised).
	isolate bool
	// daemon, if set, starts a server the rows need (RouDi, mosquitto)
	// before the mechanism's first row; the returned stop runs after its
	// last row, on every path, and when the harness is interrupted.
	daemon func(work string) (stop func(), err error)
	// unavailable says why this build cannot measure the mechanism (a
	// peer built without its library): the row shows it and fails the run.
	unavailable string
}

func mechanisms(work string) []mechanism {
	ms := floorMechanisms(work)
	ms = append(ms, baseMechanisms(work)...)
	return append(ms, peerMechanisms(work)...)
}

func baseMechanisms(work string) []mechanism {
	return []mechanism{
		{key: "pipe", stamp: "due, before write", name: "pipe", direction: "one-way", fanout: "1:1", access: "descriptor inheritance", setup: setupPipe},
		{key: "fifo", stamp: "due, before write", name: "named pipe (FIFO)", direction: "one-way", fanout: "1:1", access: "file mode", setup: func(size int) (*channel, error) { return setupFIFO(work) }},
		{key: "uds-stream", stamp: "due, before write", name: "Unix socket (stream)", direction: "two-way", fanout: "1:1", access: "file mode, SO_PEERCRED", setup: func(int) (*channel, error) { return setupSocketpair(syscall.SOCK_STREAM, "uds-stream") }},
		{key: "uds-seqpacket", stamp: "due, before write", name: "Unix socket (seqpacket)", direction: "two-way", fanout: "1:1", access: "file mode, SO_PEERCRED", setup: func(int) (*channel, error) { return setupSocketpair(syscall.SOCK_SEQPACKET, "uds-seqpacket") }},
		{key: "tcp", stamp: "due, before write", name: "TCP loopback", direction: "two-way", fanout: "1:1", access: "none (any local process)", setup: setupTCP},
		{key: "udp", stamp: "due, before write", name: "UDP loopback", direction: "one-way", fanout: "1:1", access: "none (any local process)", lossy: true, setup: setupUDP},
		{key: "posix-mq", stamp: "due, before mq_timedsend", name: "POSIX message queue", direction: "one-way", fanout: "1:1", access: "file mode (mqueue fs)", setup: setupPosixMQ},
		{key: "sysv-mq", stamp: "due, before msgsnd", name: "System V message queue", direction: "one-way", fanout: "1:1", access: "IPC permissions", setup: setupSysVMQ},
		{key: "shm-sem", stamp: "due, before semop (free slot)", name: "shared memory + System V semaphores", direction: "one-way", fanout: "1:1", access: "file mode, IPC permissions", setup: setupShmSem(work)},
		{key: "signal", stamp: "due, before rt_tgsigqueueinfo", name: "signal (real-time, queued)", direction: "one-way", fanout: "1:1", access: "same user or CAP_KILL", noPayload: true, setup: setupSignal},
		{key: "mmap", stamp: "due, before the sequence store", name: "memory-mapped file (polled)", direction: "one-way", fanout: "1:N", access: "file mode", lossy: true, setup: setupMmap},
		{key: "ring-spin", stamp: "due, before Publish", name: "sensorbus ring (spin, 1 reader)", direction: "one-way", fanout: "1:N", access: ringAccess, readers: 1, lossy: true, setup: ringSetup("spin", false)},
		{key: "ring-futex", stamp: "due, before Publish", name: "sensorbus ring (futex, 1 reader)", direction: "one-way", fanout: "1:N", access: ringAccess, readers: 1, lossy: true, setup: ringSetup("block", false)},
		{key: "ring-futex-pinned", stamp: "due, before Publish", name: "sensorbus ring (futex, 1 reader, both pinned as floor-futex)", direction: "one-way", fanout: "1:N", access: ringAccess, readers: 1, lossy: true, setup: ringSetup("block", true)},
		{key: "ring-spin-4", stamp: "due, before Publish", name: "sensorbus ring (spin, 4 readers)", direction: "one-way", fanout: "1:N", access: ringAccess, readers: 4, lossy: true, setup: ringSetup("spin", false)},
		{key: "ring-futex-4", stamp: "due, before Publish", name: "sensorbus ring (futex, 4 readers)", direction: "one-way", fanout: "1:N", access: ringAccess, readers: 4, lossy: true, setup: ringSetup("block", false)},
	}
}

func mechanismKeys() []string {
	var keys []string
	for _, m := range mechanisms("") {
		keys = append(keys, m.key)
	}
	return keys
}

func setupPipe(int) (*channel, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	return &channel{send: writeAll(w), finish: func() { w.Close() }, files: []*os.File{r}, env: []string{"MECH=stream-fd"},
		cleanup: func() { r.Close(); w.Close() }}, nil
}

func setupFIFO(work string) (*channel, error) {
	path := filepath.Join(work, "fifo")
	os.Remove(path)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		return nil, err
	}
	var w *os.File
	return &channel{
		send: func(b []byte) error {
			if w == nil { // opening blocks until the receiver opens its end
				var err error
				if w, err = os.OpenFile(path, os.O_WRONLY, 0); err != nil {
					return err
				}
			}
			_, err := w.Write(b)
			return err
		},
		finish: func() {
			if w != nil {
				w.Close()
			}
		},
		env:     []string{"MECH=fifo", "FIFO=" + path},
		cleanup: func() { os.Remove(path) },
	}, nil
}

func setupSocketpair(typ int, mech string) (*channel, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, typ|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	w := os.NewFile(uintptr(fds[0]), "send")
	r := os.NewFile(uintptr(fds[1]), "recv")
	m := "stream-fd"
	if typ == syscall.SOCK_SEQPACKET {
		m = "packet-fd"
	}
	return &channel{send: writeAll(w), finish: func() { w.Close() }, files: []*os.File{r}, env: []string{"MECH=" + m},
		cleanup: func() { r.Close(); w.Close() }}, nil
}

func setupTCP(int) (*channel, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var c net.Conn
	return &channel{
		send: func(b []byte) error {
			if c == nil {
				var err error
				if c, err = ln.Accept(); err != nil {
					return err
				}
				c.(*net.TCPConn).SetNoDelay(true)
			}
			_, err := c.Write(b)
			return err
		},
		finish: func() {
			if c != nil {
				c.Close()
			}
		},
		env:     []string{"MECH=tcp", "ADDR=" + ln.Addr().String()},
		cleanup: func() { ln.Close() },
	}, nil
}

func setupUDP(int) (*channel, error) {
	rc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	rc.SetReadBuffer(4 << 20)
	rf, err := rc.File()
	rc.Close()
	if err != nil {
		return nil, err
	}
	addr := rc.LocalAddr().(*net.UDPAddr)
	sc, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		rf.Close()
		return nil, err
	}
	return &channel{
		send: func(b []byte) error {
			_, err := sc.Write(b)
			if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOBUFS) {
				return nil // the datagram is lost; the receiver counts it
			}
			return err
		},
		finish: func() {
			// Datagrams may be lost: repeat the end marker.
			end := make([]byte, headerSize)
			binary.LittleEndian.PutUint64(end, lastSeq)
			for range 20 {
				sc.Write(end)
				time.Sleep(5 * time.Millisecond)
			}
		},
		files:   []*os.File{rf},
		env:     []string{"MECH=packet-fd"},
		cleanup: func() { sc.Close(); rf.Close() },
	}, nil
}

// ringAccess is who may read a ring: its sealed, read-only memfd goes
// only to the subscribers a publisher admits.
const ringAccess = "sealed memfd passed over a Unix socket; bus: SO_PEERCRED allow lists"

// ringSetup makes an anonymous ring, as package bus does, whose files the
// receivers get as descriptors 3 and 4 (bus passes them over its socket).
// pin: sender and receiver pinned to two CPUs, as floor-futex is.
func ringSetup(wait string, pin bool) func(size int) (*channel, error) {
	setup := func(size int) (*channel, error) {
		w, err := ring.Create(ring.Config{SlotSize: size, Slots: 4096})
		if err != nil {
			return nil, err
		}
		// As a real-time publisher would (see the README): otherwise the
		// first lap of a 64 MiB ring (16 KiB slots) measures page faults.
		if err := w.Prefault(); err != nil {
			w.Close()
			return nil, err
		}
		rf, wf, err := w.ReaderFiles()
		if err != nil {
			w.Close()
			return nil, err
		}
		return &channel{
			send:    w.Publish,
			finish:  func() { w.Close() },
			files:   []*os.File{rf, wf},
			env:     []string{"MECH=ring", "RING_WAIT=" + wait},
			cleanup: func() { w.Close(); rf.Close(); wf.Close() },
		}, nil
	}
	if pin {
		return pinnedSetup(setup)
	}
	return setup
}

// pinnedSetup is setup with the sender and the receivers pinned to two
// CPUs, as floor-futex is (nil stays nil: a mechanism not built).
func pinnedSetup(setup func(int) (*channel, error)) func(int) (*channel, error) {
	if setup == nil {
		return nil
	}
	return func(size int) (*channel, error) {
		cpus, err := twoCPUs()
		if err != nil {
			return nil, err
		}
		ch, err := setup(size)
		if err != nil {
			return nil, err
		}
		ch.pin, ch.senderCPU = true, cpus[0]
		ch.env = append(ch.env, "PIN_CPU="+strconv.Itoa(cpus[1]))
		return ch, nil
	}
}

func writeAll(w io.Writer) func([]byte) error {
	return func(b []byte) error { _, err := w.Write(b); return err }
}
