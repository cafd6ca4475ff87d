// Package windtype is a user-defined message type, as a user of sensorbus
// would write one: a struct, msgp's generator, and schema.Define. The
// schema package's examples and tests use it.
package windtype

//go:generate go tool msgp -file wind.go -o wind_gen.go -tests=false

//msgp:tuple Wind

// Wind is an anemometer reading.
type Wind struct {
	Time      int64   `json:"time"`
	Sensor    uint32  `json:"sensor"`
	Speed     float32 `json:"speed"`     // m/s
	Direction float32 `json:"direction"` // degrees from north, where it blows from
	Gust      float32 `json:"gust"`      // m/s, highest over the last 10 s
}

//msgp:tuple Gusts

// Gusts carries a variable number of readings: a slice field, decoded
// safely through schema.Reader or Schema.Decode even without a limit.
type Gusts struct {
	Time   int64     `json:"time"`
	Sensor uint32    `json:"sensor"`
	Speeds []float32 `json:"speeds"`
}
