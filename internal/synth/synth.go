// Package synth makes synthetic sensor samples that are a pure function of
// their sequence number, and checks received samples against them: the
// publisher's default source and the subscriber's --verify.
//
//	g, _ := synth.New(schema.IMUSchema, 0)
//	m, _ := g.Make(seq, time.Now().UnixNano())
//	v, _ := synth.NewVerifier(schema.IMUSchema)
//	ok := v.Check(seq, encoded)
//
// A Synth and a Verifier each belong to one goroutine.
package synth

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/sensorbus/sensorbus/schema"
)

// Synthetic samples. Sample seq of a run is a pure function of seq (its
// index in the ring) except for Time, the wall clock when it was made: a
// subscriber recomputes it from the index and compares every other field
// bit for bit, so the whole message is its own checksum. Values move
// plausibly: triangle waves plus a little deterministic noise. Raw
// payloads carry the sequence number and a CRC-32C explicitly.
//
// Every product of floats is converted to float32 explicitly, which the Go
// spec says rounds it, so no fused multiply-add makes two builds disagree.

// MinRawPayload is the smallest --payload-size: sequence number and CRC.
const MinRawPayload = 12

// ErrPayloadSize is returned by New for a raw payload too small to carry
// the sequence number and checksum.
var ErrPayloadSize = errors.New("synth: raw payload too small")

// Synth makes synthetic samples of one type, reusing its storage.
type Synth struct {
	s           *schema.Schema
	payloadSize int
	imu         schema.IMU
	scalar      schema.Scalar
	vec         schema.Vector3
	gps         schema.GPSFix
	bat         schema.Battery
	raw         schema.Raw
}

// New returns a generator for s; payloadSize applies to Raw.
func New(s *schema.Schema, payloadSize int) (*Synth, error) {
	if s == schema.RawSchema && payloadSize < MinRawPayload {
		return nil, fmt.Errorf("%w: %d bytes, at least %d (sequence number and checksum)", ErrPayloadSize, payloadSize, MinRawPayload)
	}
	g := &Synth{s: s, payloadSize: payloadSize}
	g.raw.Data = make([]byte, payloadSize)
	if _, err := g.Make(0, 0); err != nil {
		return nil, err
	}
	return g, nil
}

var table = crc32.MakeTable(crc32.Castagnoli)

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// noise returns a value in [-1, 1) from 16 bits of h.
func noise(h uint64, k uint) float32 {
	return float32(int32(h>>(16*k)&0xffff)-32768) / 32768
}

// tri is a triangle wave in [-1, 1] of the given period in samples.
func tri(seq, period uint64) float32 {
	p := int64(seq % period)
	return float32(2*abs64(2*p-int64(period)))/float32(period) - 1
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func mul(a, b float32) float32 { return float32(a * b) }

// Make returns synthetic sample seq, stamped with time now (Unix ns). The
// returned message is reused by the next call.
func (g *Synth) Make(seq uint64, now int64) (schema.Message, error) {
	h := splitmix(seq)
	switch g.s {
	case schema.IMUSchema:
		g.imu = schema.IMU{Time: now, Sensor: 1,
			Accel:  schema.Vec3{X: mul(0.3, tri(seq, 2000)) + mul(0.02, noise(h, 0)), Y: mul(0.3, tri(seq+500, 2000)) + mul(0.02, noise(h, 1)), Z: 9.81 + mul(0.05, noise(h, 2))},
			Gyro:   schema.Vec3{X: mul(0.05, tri(seq, 5000)), Y: mul(0.01, noise(h, 3)), Z: mul(0.2, tri(seq+1000, 8000))},
			Mag:    schema.Vec3{X: 22 + mul(0.5, tri(seq, 10000)), Y: -5 + mul(0.2, noise(h, 1)), Z: 40},
			HasMag: true, Temp: 35 + tri(seq, 100000)}
		return &g.imu, nil
	case schema.ScalarSchema:
		g.scalar = schema.Scalar{Time: now, Sensor: 1, Value: float64(21.5 + mul(2, tri(seq, 60000)) + mul(0.05, noise(h, 0))), Unit: schema.UnitCelsius}
		return &g.scalar, nil
	case schema.Vector3Schema:
		g.vec = schema.Vector3{Time: now, Sensor: 1, Unit: schema.UnitMicroTesla,
			Value: schema.Vec3{X: 22 + mul(3, tri(seq, 3000)), Y: -5 + mul(0.3, noise(h, 0)), Z: 40 + mul(1, tri(seq+700, 3000))}}
		return &g.vec, nil
	case schema.GPSFixSchema:
		g.gps = schema.GPSFix{Time: now, Sensor: 1,
			Lat: 59.3293 + float64(mul(1e-4, tri(seq, 20000))), Lon: 18.0686 + float64(mul(1e-4, tri(seq+5000, 20000))),
			Alt: 28 + mul(0.5, noise(h, 0)), Speed: 1.5 + mul(0.5, tri(seq, 4000)), Heading: float32(seq % 360),
			Quality: schema.FixGPS, Satellites: uint8(9 + seq%4), HDOP: 0.8 + mul(0.1, noise(h, 1))}
		return &g.gps, nil
	case schema.BatterySchema:
		g.bat = schema.Battery{Time: now, Sensor: 1,
			Voltage: 12.4 + mul(0.4, tri(seq, 1_000_000)), Current: 1.5 + mul(0.2, noise(h, 0)),
			Charge: 0.5 + mul(0.4, tri(seq, 1_000_000)), Temp: 25 + mul(0.5, noise(h, 1))}
		return &g.bat, nil
	case schema.RawSchema:
		d := g.raw.Data
		binary.LittleEndian.PutUint64(d, seq)
		for i := 8; i < len(d)-4; i++ {
			d[i] = byte(h >> (8 * (i % 8)))
		}
		binary.LittleEndian.PutUint32(d[len(d)-4:], crc32.Checksum(d[:len(d)-4], table))
		g.raw.Time, g.raw.Sensor = now, 1
		return &g.raw, nil
	}
	return nil, fmt.Errorf("no synthetic source for %s", g.s.Name)
}

// Verifier checks received samples against the synthetic source.
type Verifier struct {
	want *Synth
}

// NewVerifier returns a checker for samples of s.
func NewVerifier(s *schema.Schema) (*Verifier, error) {
	if s == nil {
		return nil, errors.New("synth: not a built-in type")
	}
	// A raw payload's size is read from each sample.
	g := &Synth{s: s}
	if s != schema.RawSchema {
		if _, err := g.Make(0, 0); err != nil {
			return nil, err
		}
	}
	return &Verifier{want: g}, nil
}

// Check reports whether data is synthetic sample seq, whole and untouched.
func (v *Verifier) Check(seq uint64, data []byte) bool {
	g := v.want
	switch g.s {
	case schema.IMUSchema:
		var got schema.IMU
		if schema.Decode(data, &got) != nil {
			return false
		}
		g.Make(seq, got.Time)
		return got == g.imu
	case schema.ScalarSchema:
		var got schema.Scalar
		if schema.Decode(data, &got) != nil {
			return false
		}
		g.Make(seq, got.Time)
		return got == g.scalar
	case schema.Vector3Schema:
		var got schema.Vector3
		if schema.Decode(data, &got) != nil {
			return false
		}
		g.Make(seq, got.Time)
		return got == g.vec
	case schema.GPSFixSchema:
		var got schema.GPSFix
		if schema.Decode(data, &got) != nil {
			return false
		}
		g.Make(seq, got.Time)
		return got == g.gps
	case schema.BatterySchema:
		var got schema.Battery
		if schema.Decode(data, &got) != nil {
			return false
		}
		g.Make(seq, got.Time)
		return got == g.bat
	case schema.RawSchema:
		var got schema.Raw
		if schema.Decode(data, &got) != nil || len(got.Data) < MinRawPayload {
			return false
		}
		d := got.Data
		if binary.LittleEndian.Uint64(d) != seq || binary.LittleEndian.Uint32(d[len(d)-4:]) != crc32.Checksum(d[:len(d)-4], table) {
			return false
		}
		h := splitmix(seq)
		for i := 8; i < len(d)-4; i++ {
			if d[i] != byte(h>>(8*(i%8))) {
				return false
			}
		}
		return got.Sensor == 1
	}
	return false
}
