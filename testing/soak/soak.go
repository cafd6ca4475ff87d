package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/ring"
)

type config struct {
	duration, faultEvery time.Duration
	seed                 int64
	jsonPath             string
	fastRate             float64
}

// topicSpec is one topic of the soak.
type topicSpec struct {
	name, typ string
	rate      float64
	subs      []subSpec
}

type subSpec struct {
	args []string
}

// proc is a running program.
type proc struct {
	name    string
	cmd     *exec.Cmd
	out     bytes.Buffer
	errb    bytes.Buffer
	done    chan struct{}
	samples []usage // descriptor and memory samples
}

type usage struct{ fds, rssKB int }

// sub is a subscriber slot: the process now in it and what its earlier
// (killed) processes reported.
type sub struct {
	topic    *topic
	spec     subSpec
	p        *proc
	restarts int // times the process was killed and restarted
	stopped  bool
}

type topic struct {
	spec        topicSpec
	pub         *proc
	published   uint64 // summed over finished generations
	generations int
	subs        []*sub
	// witness holds the current generation's ring without reading it:
	// after a kill -9 it still maps the ring, whose cursor then tells how
	// many samples the dead publisher published.
	witness *bus.Subscriber
}

// Summary is the outcome, printed as text and written as JSON.
type Summary struct {
	DurationS     float64        `json:"duration_s"`
	Faults        map[string]int `json:"faults"`
	Topics        []TopicResult  `json:"topics"`
	ReattachP50Ms float64        `json:"reattach_p50_ms"`
	ReattachMaxMs float64        `json:"reattach_max_ms"`
	Leftovers     []string       `json:"leftovers"`
	Violations    []string       `json:"violations"`
}

type TopicResult struct {
	Topic       string      `json:"topic"`
	Published   uint64      `json:"published"`
	Generations int         `json:"generations"`
	Subscribers []SubResult `json:"subscribers"`
}

type SubResult struct {
	Args     string `json:"args"`
	Received uint64 `json:"received"`
	Lost     uint64 `json:"lost"`
	Corrupt  uint64 `json:"corrupt"`
	Restarts uint64 `json:"publisher_restarts"`
	Killed   int    `json:"killed"`
	Exact    bool   `json:"exact_accounting"` // lived through the whole run: received + lost must equal published
	MaxFDs   int    `json:"max_fds"`
	MaxRSSKB int    `json:"max_rss_kb"`
}

type soak struct {
	cfg      config
	bin      string
	dir      string
	opts     bus.Options
	topics   []*topic
	rng      *rand.Rand
	faults   map[string]int
	reattach []time.Duration
	viol     []string
}

func (s *soak) violate(format string, args ...any) {
	s.viol = append(s.viol, fmt.Sprintf(format, args...))
}

func run(cfg config) (*Summary, error) {
	work, err := os.MkdirTemp("", "sensorbus-soak-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	s := &soak{cfg: cfg, bin: filepath.Join(work, "bin"), dir: filepath.Join(work, "bus"), rng: rand.New(rand.NewSource(cfg.seed)), faults: map[string]int{}}
	s.opts = bus.Options{Dir: s.dir}
	build := exec.Command("go", "build", "-o", s.bin+"/", "./cmd/publisher", "./cmd/subscriber", "./cmd/busctl")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("build the programs (run from the repository root): %w", err)
	}
	verify := []string{"--from", "oldest", "--verify", "--format", "none", "--stats-json"}
	specs := []topicSpec{
		{name: "fast", typ: "raw", rate: cfg.fastRate, subs: []subSpec{
			{append([]string{"--wait", "spin"}, verify...)}, {append([]string{"--wait", "block"}, verify...)}}},
		{name: "imu", typ: "imu", rate: 1000, subs: []subSpec{
			{append([]string{"--wait", "block"}, verify...)}, {append([]string{"--wait", "block"}, verify...)}}},
		{name: "gps", typ: "gps", rate: 10, subs: []subSpec{{append([]string{"--wait", "block"}, verify...)}}},
	}
	start := time.Now()
	defer s.killAll()
	for _, sp := range specs {
		t := &topic{spec: sp}
		for _, ss := range sp.subs {
			sb := &sub{topic: t, spec: ss}
			sb.p = s.startSub(t, ss)
			t.subs = append(t.subs, sb)
		}
		s.topics = append(s.topics, t)
		t.pub = s.startPub(t)
		if _, err := s.waitAttached(t); err != nil {
			return nil, err
		}
		if err := s.watch(t); err != nil {
			return nil, err
		}
	}
	end := time.Now().Add(cfg.duration)
	next := time.Now().Add(cfg.faultEvery)
	for time.Now().Before(end) {
		s.sampleUsage()
		if time.Now().Before(next) {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		next = time.Now().Add(cfg.faultEvery)
		if err := s.fault(); err != nil {
			return nil, err
		}
	}
	return s.finish(time.Since(start))
}

func (s *soak) start(name string, prog string, args ...string) *proc {
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(s.bin, prog), append(args, "--bus-dir", s.dir)...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.errb
	if err := p.cmd.Start(); err != nil {
		s.violate("start %s: %v", name, err)
		close(p.done)
		return p
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	return p
}

func (s *soak) startPub(t *topic) *proc {
	t.generations++
	return s.start(fmt.Sprintf("publisher %s #%d", t.spec.name, t.generations), "publisher",
		"--topic", t.spec.name, "--type", t.spec.typ, "--rate", strconv.FormatFloat(t.spec.rate, 'f', -1, 64), "--stats-json")
}

// watch attaches t's witness to its current publisher.
func (s *soak) watch(t *topic) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := bus.Subscribe(ctx, bus.SubscriberConfig{Options: s.opts, Topic: t.spec.name, Untyped: true,
		Mode: ring.Latest, NoReattach: true, WaitForPublisher: 30 * time.Second})
	if err != nil {
		return fmt.Errorf("%s: witness: %w", t.spec.name, err)
	}
	t.witness = w
	return nil
}

func (s *soak) startSub(t *topic, ss subSpec) *proc {
	return s.start("subscriber "+t.spec.name+" "+strings.Join(ss.args, " "), "subscriber",
		append([]string{"--topic", t.spec.name, "--wait-for-publisher", "30s"}, ss.args...)...)
}

// waitAttached waits until every running, not stopped subscriber of t is
// attached to its live publisher, and returns how long that took.
func (s *soak) waitAttached(t *topic) (time.Duration, error) {
	want := 0
	for _, sb := range t.subs {
		if !sb.stopped {
			want++
		}
	}
	t0 := time.Now()
	deadline := t0.Add(30 * time.Second)
	for time.Now().Before(deadline) {
		info, err := bus.Info(s.opts, t.spec.name)
		if err == nil && info.State == "live" && info.Subscribers >= want {
			return time.Since(t0), nil
		}
		time.Sleep(time.Millisecond)
	}
	return 0, fmt.Errorf("topic %s: subscribers did not attach within 30 s", t.spec.name)
}

func (s *soak) fault() error {
	t := s.topics[s.rng.Intn(len(s.topics))]
	switch k := s.rng.Intn(10); {
	case k < 4: // kill -9 the publisher mid-burst, gc, restart
		s.faults["publisher kill -9"]++
		t.pub.cmd.Process.Signal(syscall.SIGKILL)
		<-t.pub.done
		info, err := bus.Info(s.opts, t.spec.name)
		if err != nil || info.State != bus.StateDead {
			s.violate("%s after kill -9: %+v, %v", t.spec.name, info, err)
		}
		st, err := t.witness.PublisherStatus()
		if err != nil {
			return fmt.Errorf("%s: the dead publisher's count: %w", t.spec.name, err)
		}
		t.published += st.Published
		t.witness.Close()
		if s.rng.Intn(2) == 0 {
			s.faults["gc during restart"]++
			go s.gc() // races the restart on purpose
		}
		t.pub = s.startPub(t)
		d, err := s.waitAttached(t)
		if err != nil {
			return err
		}
		s.reattach = append(s.reattach, d)
		if err := s.watch(t); err != nil {
			return err
		}
	case k < 6: // kill -9 a subscriber and start it again
		sb := t.subs[s.rng.Intn(len(t.subs))]
		s.faults["subscriber kill -9"]++
		sb.p.cmd.Process.Signal(syscall.SIGKILL)
		<-sb.p.done
		sb.restarts++
		sb.p = s.startSubWith(sb)
		if _, err := s.waitAttached(t); err != nil {
			return err
		}
	case k < 8: // stop a subscriber for a while
		sb := t.subs[s.rng.Intn(len(t.subs))]
		s.faults["subscriber SIGSTOP/SIGCONT"]++
		sb.p.cmd.Process.Signal(syscall.SIGSTOP)
		time.Sleep(time.Duration(500+s.rng.Intn(1500)) * time.Millisecond)
		sb.p.cmd.Process.Signal(syscall.SIGCONT)
	default:
		s.faults["gc"]++
		s.gc()
	}
	return nil
}

// startSubWith restarts a subscriber slot; the new process starts from the
// newest sample, so its accounting is not compared exactly.
func (s *soak) startSubWith(sb *sub) *proc {
	args := make([]string, 0, len(sb.spec.args))
	for i := 0; i < len(sb.spec.args); i++ {
		if sb.spec.args[i] == "--from" {
			i++
			continue
		}
		args = append(args, sb.spec.args[i])
	}
	return s.startSub(sb.topic, subSpec{args: args})
}

func (s *soak) gc() {
	cmd := exec.Command(filepath.Join(s.bin, "busctl"), "gc", "--bus-dir", s.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		s.violate("busctl gc: %v: %s", err, out)
	}
}

// sampleUsage records descriptors and resident memory of every process.
func (s *soak) sampleUsage() {
	for _, t := range s.topics {
		for _, p := range append([]*proc{t.pub}, t.subProcs()...) {
			if p.cmd.Process == nil {
				continue
			}
			pid := strconv.Itoa(p.cmd.Process.Pid)
			ents, err := os.ReadDir("/proc/" + pid + "/fd")
			if err != nil {
				continue
			}
			p.samples = append(p.samples, usage{fds: len(ents), rssKB: rssKB(pid)})
		}
	}
}

func (t *topic) subProcs() []*proc {
	var ps []*proc
	for _, sb := range t.subs {
		ps = append(ps, sb.p)
	}
	return ps
}

func rssKB(pid string) int {
	b, _ := os.ReadFile("/proc/" + pid + "/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// checkUsage flags descriptor growth and unbounded memory in a process
// that ran long enough to be sampled several times.
func (s *soak) checkUsage(p *proc) (maxFDs, maxRSS int) {
	for _, u := range p.samples {
		maxFDs, maxRSS = max(maxFDs, u.fds), max(maxRSS, u.rssKB)
	}
	if len(p.samples) < 5 {
		return
	}
	warm := p.samples[2] // after start-up
	last := p.samples[len(p.samples)-1]
	if last.fds > warm.fds+2 {
		s.violate("%s: descriptors grew from %d to %d", p.name, warm.fds, last.fds)
	}
	if last.rssKB > max(2*warm.rssKB, warm.rssKB+64<<10) {
		s.violate("%s: resident memory grew from %d kB to %d kB", p.name, warm.rssKB, last.rssKB)
	}
	return
}

type subStats struct {
	Received, Lost, Corrupt uint64
	Restarts                uint64 `json:"publisher_restarts"`
}

func lastLine(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return lines[len(lines)-1]
}

// finish stops everything gracefully, checks, collects garbage and looks
// for leftovers.
func (s *soak) finish(d time.Duration) (*Summary, error) {
	sum := &Summary{DurationS: d.Seconds(), Faults: s.faults}
	for _, t := range s.topics {
		for _, sb := range t.subs {
			s.checkUsage(sb.p)
		}
		s.checkUsage(t.pub)
		t.pub.cmd.Process.Signal(syscall.SIGTERM)
		<-t.pub.done
		var ps struct{ Published uint64 }
		if err := json.Unmarshal(lastLine(t.pub.out.Bytes()), &ps); err != nil {
			s.violate("%s: no final stats (%v): %s", t.pub.name, err, t.pub.errb.String())
		}
		t.published += ps.Published
		t.witness.Close()
	}
	time.Sleep(time.Second) // subscribers drain the closed rings
	for _, t := range s.topics {
		tr := TopicResult{Topic: t.spec.name, Published: t.published, Generations: t.generations}
		for _, sb := range t.subs {
			maxFDs, maxRSS := 0, 0
			for _, u := range sb.p.samples {
				maxFDs, maxRSS = max(maxFDs, u.fds), max(maxRSS, u.rssKB)
			}
			sb.p.cmd.Process.Signal(syscall.SIGTERM)
			<-sb.p.done
			var st subStats
			if err := json.Unmarshal(lastLine(sb.p.out.Bytes()), &st); err != nil {
				s.violate("%s: no final stats (%v): %s", sb.p.name, err, sb.p.errb.String())
				continue
			}
			r := SubResult{Args: strings.Join(sb.spec.args, " "), Received: st.Received, Lost: st.Lost, Corrupt: st.Corrupt,
				Restarts: st.Restarts, Killed: sb.restarts, Exact: sb.restarts == 0, MaxFDs: maxFDs, MaxRSSKB: maxRSS}
			if st.Corrupt != 0 {
				s.violate("%s: %d corrupt samples", sb.p.name, st.Corrupt)
			}
			if r.Exact && st.Received+st.Lost != t.published {
				s.violate("%s: received %d + lost %d = %d, but %d were published over %d generations",
					sb.p.name, st.Received, st.Lost, st.Received+st.Lost, t.published, t.generations)
			}
			if !r.Exact && st.Received+st.Lost > t.published {
				s.violate("%s: received %d + lost %d exceeds the %d published", sb.p.name, st.Received, st.Lost, t.published)
			}
			tr.Subscribers = append(tr.Subscribers, r)
		}
		sum.Topics = append(sum.Topics, tr)
	}
	s.gc()
	sum.Leftovers = s.leftovers()
	for _, l := range sum.Leftovers {
		s.violate("left behind: %s", l)
	}
	if len(s.reattach) > 0 {
		sort.Slice(s.reattach, func(i, j int) bool { return s.reattach[i] < s.reattach[j] })
		sum.ReattachP50Ms = float64(s.reattach[len(s.reattach)/2].Microseconds()) / 1e3
		sum.ReattachMaxMs = float64(s.reattach[len(s.reattach)-1].Microseconds()) / 1e3
	}
	sum.Violations = s.viol
	return sum, nil
}

func (s *soak) leftovers() []string {
	files, err := bus.Files(s.opts)
	if err != nil {
		return []string{err.Error()}
	}
	return files
}

func (s *soak) killAll() {
	for _, t := range s.topics {
		for _, p := range append([]*proc{t.pub}, t.subProcs()...) {
			if p != nil && p.cmd.Process != nil {
				p.cmd.Process.Signal(syscall.SIGCONT)
				p.cmd.Process.Kill()
			}
		}
	}
}

func (sum *Summary) print(w io.Writer) {
	fmt.Fprintf(w, "soak: %.0f s, faults %v\n", sum.DurationS, sum.Faults)
	for _, t := range sum.Topics {
		fmt.Fprintf(w, "  %-5s published %d over %d generation(s)\n", t.Topic, t.Published, t.Generations)
		for _, sb := range t.Subscribers {
			exact := "exact"
			if !sb.Exact {
				exact = fmt.Sprintf("restarted %dx", sb.Killed)
			}
			fmt.Fprintf(w, "        received %-9d lost %-9d corrupt %d  restarts seen %d  (%s; fds ≤ %d, rss ≤ %d MB)  %s\n",
				sb.Received, sb.Lost, sb.Corrupt, sb.Restarts, exact, sb.MaxFDs, sb.MaxRSSKB>>10, sb.Args)
		}
	}
	fmt.Fprintf(w, "  re-attach after a publisher restart: p50 %.1f ms, max %.1f ms\n", sum.ReattachP50Ms, sum.ReattachMaxMs)
	fmt.Fprintf(w, "  left behind after the final gc: %d\n", len(sum.Leftovers))
	if len(sum.Violations) == 0 {
		fmt.Fprintln(w, "soak: PASS")
		return
	}
	for _, v := range sum.Violations {
		fmt.Fprintln(w, "  VIOLATION:", v)
	}
	fmt.Fprintf(w, "soak: FAIL (%d violations)\n", len(sum.Violations))
}

func (sum *Summary) writeJSON(path string) error {
	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
