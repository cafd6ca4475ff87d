package schema

//go:generate go tool msgp -file types.go -o types_gen.go -tests=false

// The built-in sensor types. Every sample carries the sensor's own
// timestamp (Time, Unix nanoseconds from the sensor's clock; the ring adds
// the publish time) and a sensor/frame id (Sensor), which tells apart
// several sensors of one kind on one topic.
//
// They are encoded as MessagePack arrays (msgp's tuple form): field names
// are not repeated in every sample, which makes an IMU sample 57 bytes
// instead of 114 in msgp's map form, and every byte is copied per sample. The price is
// that a field's meaning is its position; the schema fingerprint covers
// names, order and types, so a subscriber never decodes a layout it was
// not built for. Fields are fixed-size numbers where the data allows, so
// decoding into a reused value allocates nothing; only Raw.Data varies.

//msgp:tuple Vec3 Scalar Vector3 IMU GPSFix Battery Raw

// Unit is the unit of a Scalar or Vector3 reading. It is encoded as a
// small integer and rendered as its symbol in JSON (units.go).
type Unit uint8

// FixQuality is the quality of a GPS fix (units.go).
type FixQuality uint8

// Vec3 is a three-axis quantity.
type Vec3 struct {
	X float32 `json:"x"`
	Y float32 `json:"y"`
	Z float32 `json:"z"`
}

// Scalar is one reading: a temperature, pressure, voltage, humidity…
type Scalar struct {
	Time   int64   `json:"time"`
	Sensor uint32  `json:"sensor"`
	Value  float64 `json:"value"`
	Unit   Unit    `json:"unit"`
}

// Vector3 is a three-axis reading (a magnetometer, a wind vector…).
type Vector3 struct {
	Time   int64  `json:"time"`
	Sensor uint32 `json:"sensor"`
	Value  Vec3   `json:"value"`
	Unit   Unit   `json:"unit"`
}

// IMU is an inertial measurement.
type IMU struct {
	Time   int64  `json:"time"`
	Sensor uint32 `json:"sensor"`
	Accel  Vec3   `json:"accel"` // m/s²
	Gyro   Vec3   `json:"gyro"`  // rad/s
	// Mag is the magnetic field in µT, valid only if HasMag.
	Mag    Vec3    `json:"mag"`
	HasMag bool    `json:"has_mag"`
	Temp   float32 `json:"temp"` // °C
}

// GPSFix is a position fix.
type GPSFix struct {
	Time       int64      `json:"time"`
	Sensor     uint32     `json:"sensor"`
	Lat        float64    `json:"lat"`     // degrees, WGS 84
	Lon        float64    `json:"lon"`     // degrees, WGS 84
	Alt        float32    `json:"alt"`     // metres above mean sea level
	Speed      float32    `json:"speed"`   // m/s over ground
	Heading    float32    `json:"heading"` // degrees from true north
	Quality    FixQuality `json:"quality"`
	Satellites uint8      `json:"satellites"`
	HDOP       float32    `json:"hdop"`
}

// Battery is the state of a battery or power supply.
type Battery struct {
	Time    int64   `json:"time"`
	Sensor  uint32  `json:"sensor"`
	Voltage float32 `json:"voltage"` // V
	Current float32 `json:"current"` // A, positive when discharging
	Charge  float32 `json:"charge"`  // state of charge, 0 to 1
	Temp    float32 `json:"temp"`    // °C
}

// Raw is an opaque payload.
type Raw struct {
	Time   int64  `json:"time"`
	Sensor uint32 `json:"sensor"`
	Data   []byte `json:"data"`
}
