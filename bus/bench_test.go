package bus

import (
	"testing"

	"github.com/sensorbus/sensorbus/schema"
)

// BenchmarkPublish compares, in one run, the publish path before and
// after the publisher counted bytes: "ring" is what Publisher.Publish
// was (the ring's Publish alone), "bus" is Publish now; "encode-ring" is
// schema.EncodeMessage straight into the ring, "encode-bus" the
// publisher's PublishMessage, both with an IMU sample.
func BenchmarkPublish(b *testing.B) {
	opts := testBus(b)
	p, err := NewPublisher(PublisherConfig{Options: opts, Topic: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	data := make([]byte, 64)
	imu := &schema.IMU{Sensor: 1, Accel: schema.Vec3{X: 0.1, Y: 0.2, Z: 9.81}, Gyro: schema.Vec3{X: 1, Y: 2, Z: 3}}
	b.Run("ring/64B", func(b *testing.B) {
		for b.Loop() {
			p.Ring().Publish(data)
		}
	})
	b.Run("bus/64B", func(b *testing.B) {
		for b.Loop() {
			p.Publish(data)
		}
	})
	b.Run("encode-ring/IMU", func(b *testing.B) {
		for b.Loop() {
			schema.EncodeMessage(p.Ring(), imu)
		}
	})
	b.Run("encode-bus/IMU", func(b *testing.B) {
		for b.Loop() {
			p.PublishMessage(imu)
		}
	})
}
