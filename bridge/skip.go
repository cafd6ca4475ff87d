package bridge

import "github.com/sensorbus/sensorbus/ring"

// skipLocal marks the next n samples of an imported topic's ring lost, so
// that local subscribers count them and the local index stays the remote
// one.
//
// It waits for ring.Writer.Skip: until then the gaps are counted in the
// bridge's ImportStats.Lost only, and local subscribers see the samples
// around a gap as consecutive.
func skipLocal(w *ring.Writer, n uint64) error {
	_, _ = w, n
	return nil
}
