package rt

import (
	"fmt"
	"sort"
	"strings"

	"github.com/prometheus/procfs/sysfs"
)

func sysFS() (sysfs.FS, error) { return sysfs.NewDefaultFS() }

func topology() string {
	fs, err := sysFS()
	if err != nil {
		return ""
	}
	cpus, err := fs.CPUs()
	if err != nil {
		return ""
	}
	packages, cores := map[string]bool{}, map[string]bool{}
	for _, c := range cpus {
		t, err := c.Topology()
		if err != nil {
			return ""
		}
		packages[t.PhysicalPackageID] = true
		cores[t.PhysicalPackageID+"/"+t.CoreID] = true
	}
	return fmt.Sprintf(", %d package(s), %d core(s)", len(packages), len(cores))
}

func checkGovernor() Item {
	it := Item{Name: "CPU frequency governor"}
	fs, err := sysFS()
	if err != nil {
		it.Value, it.Verdict = "unknown", Info
		return it
	}
	stats, err := fs.SystemCpufreq()
	if err != nil || len(stats) == 0 {
		it.Value, it.Verdict = "not available (no cpufreq: a VM, or fixed frequency)", Info
		return it
	}
	govs := map[string]bool{}
	for _, st := range stats {
		if st.Governor != "" {
			govs[st.Governor] = true
		}
	}
	if len(govs) == 0 {
		it.Value, it.Verdict = "not available (cpufreq has no governor: a VM, or fixed frequency)", Info
		return it
	}
	var names []string
	for g := range govs {
		names = append(names, g)
	}
	sort.Strings(names)
	it.Value = strings.Join(names, ", ")
	if len(names) == 1 && names[0] == "performance" {
		it.Verdict = OK
	} else {
		it.Verdict = Warn
		it.Advice = "frequency changes add latency: use the performance governor (cpupower frequency-set -g performance)"
	}
	return it
}

// isolatedCPUs reports the CPUs isolated from the scheduler (isolcpus).
func isolatedCPUs(advice string) Item {
	it := Item{Name: "isolated CPUs", Advice: advice}
	fs, err := sysFS()
	if err != nil {
		it.Value, it.Verdict = "unknown", Info
		return it
	}
	iso, err := fs.IsolatedCPUs()
	if err != nil {
		it.Value, it.Verdict = "not available", Info
		return it
	}
	if len(iso) == 0 {
		it.Value, it.Verdict = "none", Warn
		return it
	}
	cpus := make([]int, len(iso))
	for i, c := range iso {
		cpus[i] = int(c)
	}
	it.Value, it.Verdict, it.Advice = FormatCPUList(cpus), OK, ""
	return it
}
