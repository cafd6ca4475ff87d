// Package schema gives the bytes in a ring's slots a type: message types
// as Go structs encoded with MessagePack by code that
// github.com/tinylib/msgp generates, a fingerprint of each type's layout
// stored in the ring header and checked when a subscriber attaches, and
// JSON rendering for display and logging.
//
// Built-in types cover what edge devices publish: Scalar, Vector3, IMU,
// GPSFix, Battery and Raw, with schemas ScalarSchema … RawSchema. A user
// type is a struct run through msgp's generator and described with Define:
//
//	//go:generate go tool msgp -file wind.go -o wind_gen.go -tests=false
//	//msgp:tuple Wind
//	type Wind struct{ Time int64; Sensor uint32; Speed, Direction float32 }
//
//	var WindSchema = schema.MustDefine[Wind]("acme.Wind", 1)
//
// Publishing encodes straight into the ring's slot and reading decodes
// into a value the caller owns, both without allocating:
//
//	w, _ := ring.Create(schema.IMUSchema.RingConfig(ring.Config{Name: "imu", SlotSize: 128, Slots: 4096}))
//	tw, _ := schema.NewWriter[schema.IMU](w, schema.IMUSchema)
//	tw.Publish(&sample)
//
//	tr, err := schema.NewReader[schema.IMU](r, schema.IMUSchema) // ErrSchemaMismatch for another type
//	var imu schema.IMU
//	s, err := tr.Next(ctx, &imu)
//
// Schemas are immutable and safe for concurrent use. Writer and Reader are
// owned by one goroutine each, like the ring types they wrap.
package schema
