package rt

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// Capability bits (linux/capability.h).
const (
	capIPCLock  = 14
	capSysNice  = 23
	capSysAdmin = 21
	capSysRes   = 24
)

var capNames = map[int]string{capIPCLock: "CAP_IPC_LOCK", capSysNice: "CAP_SYS_NICE", capSysAdmin: "CAP_SYS_ADMIN", capSysRes: "CAP_SYS_RESOURCE"}

// self reads what the kernel says of this process.
type self struct {
	capEff        uint64
	rtprio        uint64 // RLIMIT_RTPRIO soft limit
	memlock       uint64 // RLIMIT_MEMLOCK soft limit, bytes
	limitsKnown   bool
	capsKnown     bool
	rtRuntimeUs   int64 // /proc/sys/kernel/sched_rt_runtime_us
	rtRuntimeRead bool
}

func readSelf() self {
	var s self
	if p, err := procfs.Self(); err == nil {
		if st, err := p.NewStatus(); err == nil {
			s.capEff, s.capsKnown = st.CapEff, true
		}
		if l, err := p.Limits(); err == nil {
			s.rtprio, s.memlock, s.limitsKnown = l.RealtimePriority, l.LockedMemory, true
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/sched_rt_runtime_us"); err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
			s.rtRuntimeUs, s.rtRuntimeRead = v, true
		}
	}
	return s
}

func (s self) has(capBit int) bool { return s.capsKnown && s.capEff&(1<<capBit) != 0 }

func limitString(v uint64) string {
	if v == math.MaxUint64 {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

// allowedCPUs returns the CPUs the process may run on (its main thread's
// Cpus_allowed_list: taskset, cgroup cpusets and systemd CPUAffinity all
// show there), not the calling thread's, which Run may have narrowed.
func allowedCPUs() ([]int, error) {
	p, err := procfs.Self()
	if err != nil {
		return nil, err
	}
	st, err := p.NewStatus()
	if err != nil {
		return nil, err
	}
	cpus := make([]int, len(st.CpusAllowedList))
	for i, c := range st.CpusAllowedList {
		cpus[i] = int(c)
	}
	return cpus, nil
}

// onlineCPUs returns the online CPUs from sysfs.
func onlineCPUs() ([]int, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil, err
	}
	return parseCPUList(strings.TrimSpace(string(b)))
}

// parseCPUList parses a kernel CPU list such as "0-3,6".
func parseCPUList(s string) ([]int, error) {
	var cpus []int
	if s == "" {
		return nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("cpu list %q: %v", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("cpu list %q: bad range %q", s, part)
			}
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// FormatCPUList renders cpus as a kernel CPU list ("0-3,6").
func FormatCPUList(cpus []int) string {
	if len(cpus) == 0 {
		return "none"
	}
	c := append([]int(nil), cpus...)
	sort.Ints(c)
	var parts []string
	for i := 0; i < len(c); {
		j := i
		for j+1 < len(c) && c[j+1] == c[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(c[i]))
		} else {
			parts = append(parts, strconv.Itoa(c[i])+"-"+strconv.Itoa(c[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// ParseCPUList parses a CPU list as users write it ("2", "0-3,6").
func ParseCPUList(s string) ([]int, error) { return parseCPUList(strings.TrimSpace(s)) }
