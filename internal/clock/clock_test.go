package clock_test

import (
	"runtime"
	"testing"

	"github.com/sensorbus/sensorbus/internal/clock"
	"github.com/sensorbus/sensorbus/internal/sys"
)

// Mono must be CLOCK_MONOTONIC itself, not a clock with its own epoch:
// other processes compare their readings with it.
func TestMonoIsClockMonotonic(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("CLOCK_MONOTONIC equivalence holds on Linux only")
	}
	for range 5 {
		before, err := sys.ClockMonotonic()
		if err != nil {
			t.Fatal(err)
		}
		got := clock.Mono()
		after, err := sys.ClockMonotonic()
		if err != nil {
			t.Fatal(err)
		}
		if got < before || got > after {
			t.Fatalf("Mono() = %d, not between two CLOCK_MONOTONIC readings %d and %d", got, before, after)
		}
	}
}

func BenchmarkMono(b *testing.B) {
	for b.Loop() {
		_ = clock.Mono()
	}
}
