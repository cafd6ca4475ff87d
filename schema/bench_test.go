package schema

import (
	"testing"

	"github.com/sensorbus/sensorbus/ring"
)

// BenchmarkEncodeIMUIntoSlot publishes an IMU sample by encoding it
// straight into the reserved slot: reserve, encode, commit (the commit
// includes the ring's clock read and cursor update).
func BenchmarkEncodeIMUIntoSlot(b *testing.B) {
	dir := testDir(b)
	w, err := ring.Create(IMUSchema.RingConfig(ring.Config{Dir: dir, Name: "imu", SlotSize: 96, Slots: 4096}))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	tw, _ := NewWriter[IMU](w, IMUSchema)
	v := *samples[2].(*IMU)
	b.ReportAllocs()
	for b.Loop() {
		v.Time++
		tw.Publish(&v)
	}
}

// BenchmarkEncodeIMU is the encoding alone, into a reused buffer.
func BenchmarkEncodeIMU(b *testing.B) {
	v := *samples[2].(*IMU)
	buf := make([]byte, 0, 96)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = v.MarshalMsg(buf[:0])
	}
}

// BenchmarkDecodeIMU decodes into a caller-owned value.
func BenchmarkDecodeIMU(b *testing.B) {
	enc, _ := samples[2].MarshalMsg(nil)
	var v IMU
	b.ReportAllocs()
	for b.Loop() {
		if err := Decode(enc, &v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkToJSONIMU(b *testing.B) {
	enc, _ := samples[2].MarshalMsg(nil)
	b.ReportAllocs()
	for b.Loop() {
		IMUSchema.ToJSON(enc)
	}
}
