package ring

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// isReadOnlyMapping reports whether /proc/self/maps shows the mapping
// starting at b[0] without write permission.
func isReadOnlyMapping(t *testing.T, b []byte) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	addr := uint64(uintptr(unsafe.Pointer(&b[0])))
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		lo, _ := strconv.ParseUint(strings.Split(f[0], "-")[0], 16, 64)
		if lo == addr {
			return !strings.Contains(f[1], "w")
		}
	}
	t.Fatalf("mapping at %#x not in /proc/self/maps", addr)
	return false
}
