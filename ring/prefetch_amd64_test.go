package ring

import (
	"os"
	"strings"
	"testing"
)

// The kernel reports CPUID 0x80000001 ECX bit 8 as the 3dnowprefetch flag.
func TestHasPrefetchWMatchesKernel(t *testing.T) {
	info, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skip(err)
	}
	for line := range strings.SplitSeq(string(info), "\n") {
		if name, flags, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "flags" {
			want := strings.Contains(flags+" ", " 3dnowprefetch ")
			if hasPrefetchW != want {
				t.Errorf("hasPrefetchW = %v, /proc/cpuinfo says %v", hasPrefetchW, want)
			}
			return
		}
	}
	t.Skip("no flags line in /proc/cpuinfo")
}
