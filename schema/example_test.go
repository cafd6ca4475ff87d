package schema_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/sensorbus/sensorbus/ring"
	"github.com/sensorbus/sensorbus/schema"
	"github.com/sensorbus/sensorbus/schema/internal/windtype"
)

// A user-defined type works like a built-in one: write the struct, run
// msgp's generator on it (see windtype/wind.go), describe it with Define.
func Example_userType() {
	windSchema := schema.MustDefine[windtype.Wind]("acme.Wind", 1)

	dir, _ := os.MkdirTemp("/dev/shm", "example-")
	defer os.RemoveAll(dir)
	w, err := ring.Create(windSchema.RingConfig(ring.Config{Dir: dir, Name: "wind", SlotSize: 64, Slots: 16}))
	if err != nil {
		log.Fatal(err)
	}
	pub, err := schema.NewWriter[windtype.Wind](w, windSchema)
	if err != nil {
		log.Fatal(err)
	}
	r, err := ring.Open(dir, "wind", ring.ReaderConfig{Start: ring.FromOldest})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	// A subscriber built for another type is refused at attach.
	_, err = schema.NewReader[schema.IMU](r, schema.IMUSchema)
	fmt.Println("IMU subscriber:", errors.Is(err, schema.ErrSchemaMismatch))

	sub, err := schema.NewReader[windtype.Wind](r, windSchema)
	if err != nil {
		log.Fatal(err)
	}
	pub.Publish(&windtype.Wind{Sensor: 1, Speed: 7.5, Direction: 225, Gust: 11})
	w.Close()

	var v windtype.Wind
	s, err := sub.Next(context.Background(), &v)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%.1f m/s from %.0f°, gusts %.0f m/s\n", v.Speed, v.Direction, v.Gust)
	j, _ := windSchema.ToJSON(s.Data)
	fmt.Println(string(j))
	// Output:
	// IMU subscriber: true
	// 7.5 m/s from 225°, gusts 11 m/s
	// {"time":0,"sensor":1,"speed":7.5,"direction":225,"gust":11}
}
