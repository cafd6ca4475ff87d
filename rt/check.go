package rt

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/sensorbus/sensorbus/internal/sys"
)

// Verdict grades one item of a readiness report.
type Verdict string

const (
	OK   Verdict = "ok"   // ready for real-time work
	Warn Verdict = "warn" // works, but latency will suffer
	Fail Verdict = "fail" // a real-time setting will be refused
	Info Verdict = "info" // for the record
)

// Item is one finding about the host.
type Item struct {
	Name    string  `json:"name"`
	Value   string  `json:"value"`
	Verdict Verdict `json:"verdict"`
	Advice  string  `json:"advice,omitempty"`
}

// Report is what Check found, item by item.
type Report struct {
	Items []Item `json:"items"`
}

// Ready reports whether no item failed.
func (r Report) Ready() bool {
	for _, it := range r.Items {
		if it.Verdict == Fail {
			return false
		}
	}
	return true
}

// WriteText writes the report as an aligned table with advice lines.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, it := range r.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.ToUpper(string(it.Verdict)), it.Name, it.Value)
		if it.Advice != "" {
			fmt.Fprintf(tw, "\t\t→ %s\n", it.Advice)
		}
	}
	return tw.Flush()
}

// JSON returns the report as JSON.
func (r Report) JSON() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }

// Check inspects the host for real-time readiness: kernel, CPUs and their
// isolation, this process's scheduling and memory-locking rights, RT
// throttling and the CPU frequency governor. It never fails: what it
// cannot read it reports as unknown.
func Check() Report {
	s := readSelf()
	var r Report
	add := func(it Item) { r.Items = append(r.Items, it) }

	add(checkKernel())
	online, err := onlineCPUs()
	if err != nil {
		add(Item{Name: "online CPUs", Value: "unknown: " + err.Error(), Verdict: Info})
	} else {
		it := Item{Name: "online CPUs", Value: fmt.Sprintf("%d (%s)%s", len(online), FormatCPUList(online), topology()), Verdict: OK}
		if len(online) < 2 {
			it.Verdict, it.Advice = Warn, "one CPU: a real-time loop shares it with everything else"
		}
		add(it)
	}
	if allowed, err := allowedCPUs(); err == nil {
		add(Item{Name: "allowed CPUs", Value: FormatCPUList(allowed), Verdict: Info})
	}
	add(isolatedCPUs("no CPU is isolated: add isolcpus=N nohz_full=N rcu_nocbs=N to the kernel command line and pin the loop there (--cpu N)"))
	add(cpuListFile("nohz_full CPUs", "/sys/devices/system/cpu/nohz_full",
		"the scheduler tick interrupts every CPU: add nohz_full=N for the real-time CPU"))
	add(checkRTPrio(s))
	add(checkMemlock(s))
	add(checkCaps(s))
	add(checkThrottling(s))
	add(checkGovernor())
	return r
}

func checkKernel() Item {
	release, version := sys.Kernel()
	it := Item{Name: "kernel", Value: release}
	rt := strings.Contains(version, "PREEMPT_RT")
	if b, err := os.ReadFile("/sys/kernel/realtime"); err == nil && strings.TrimSpace(string(b)) == "1" {
		rt = true
	}
	switch {
	case release == "":
		it.Value, it.Verdict = "unknown", Info
	case rt:
		it.Value += " (PREEMPT_RT)"
		it.Verdict = OK
	default:
		it.Value += " (not PREEMPT_RT)"
		it.Verdict = Warn
		it.Advice = "worst-case latency is in milliseconds without PREEMPT_RT; install a real-time kernel (Debian: linux-image-rt-amd64 or linux-image-rt-arm64; Raspberry Pi OS: an RT kernel build)"
	}
	return it
}

func cpuListFile(name, path, advice string) Item {
	b, err := os.ReadFile(path)
	if err != nil {
		return Item{Name: name, Value: "not available (" + path + ")", Verdict: Info, Advice: advice}
	}
	cpus, err := parseCPUList(strings.TrimSpace(string(b)))
	if err != nil || len(cpus) == 0 {
		return Item{Name: name, Value: "none", Verdict: Warn, Advice: advice}
	}
	return Item{Name: name, Value: FormatCPUList(cpus), Verdict: OK}
}

func checkRTPrio(s self) Item {
	it := Item{Name: "SCHED_FIFO allowed"}
	switch {
	case s.has(capSysNice):
		it.Value, it.Verdict = "yes (CAP_SYS_NICE)", OK
	case s.limitsKnown && s.rtprio > 0:
		it.Value, it.Verdict = "up to priority "+limitString(s.rtprio)+" (RLIMIT_RTPRIO)", OK
	case !s.limitsKnown:
		it.Value, it.Verdict = "unknown", Info
	default:
		it.Value, it.Verdict = "no: no CAP_SYS_NICE and RLIMIT_RTPRIO is 0", Fail
		it.Advice = "sudo setcap cap_sys_nice+ep BINARY, or LimitRTPRIO=90 in the systemd unit"
	}
	return it
}

func checkMemlock(s self) Item {
	it := Item{Name: "memory locking"}
	switch {
	case s.has(capIPCLock):
		it.Value, it.Verdict = "unlimited (CAP_IPC_LOCK)", OK
	case !s.limitsKnown:
		it.Value, it.Verdict = "unknown", Info
	default:
		it.Value = "RLIMIT_MEMLOCK " + limitString(s.memlock) + " bytes"
		it.Verdict = OK
		if s.memlock < 256<<20 {
			it.Verdict = Fail
			it.Advice = "too little to lock a Go process (--mlock): sudo setcap cap_ipc_lock+ep BINARY, or LimitMEMLOCK=infinity in the systemd unit"
		}
	}
	return it
}

func checkCaps(s self) Item {
	if !s.capsKnown {
		return Item{Name: "capabilities", Value: "unknown", Verdict: Info}
	}
	var have []string
	for bit, name := range capNames {
		if s.has(bit) {
			have = append(have, name)
		}
	}
	sort.Strings(have)
	v := strings.Join(have, " ")
	if v == "" {
		v = "none of CAP_SYS_NICE, CAP_IPC_LOCK, CAP_SYS_RESOURCE, CAP_SYS_ADMIN"
	}
	return Item{Name: "capabilities", Value: fmt.Sprintf("%s (CapEff %016x)", v, s.capEff), Verdict: Info}
}

func checkThrottling(s self) Item {
	it := Item{Name: "RT throttling"}
	switch {
	case !s.rtRuntimeRead:
		it.Value, it.Verdict = "unknown", Info
	case s.rtRuntimeUs < 0:
		it.Value, it.Verdict = "off (sched_rt_runtime_us = -1)", OK
		it.Advice = "a runaway SCHED_FIFO loop can now starve the CPU it runs on; keep a CPU free for the rest"
	case s.rtRuntimeUs == 0:
		it.Value, it.Verdict = "real-time tasks get no runtime (sched_rt_runtime_us = 0)", Fail
		it.Advice = "sysctl kernel.sched_rt_runtime_us=950000"
	default:
		it.Value = fmt.Sprintf("real-time tasks get %d µs of every second", s.rtRuntimeUs)
		it.Verdict = OK
	}
	return it
}
