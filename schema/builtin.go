package schema

// The built-in schemas.
var (
	ScalarSchema  = MustDefine[Scalar]("sensorbus.Scalar", 1)
	Vector3Schema = MustDefine[Vector3]("sensorbus.Vector3", 1)
	IMUSchema     = MustDefine[IMU]("sensorbus.IMU", 1)
	GPSFixSchema  = MustDefine[GPSFix]("sensorbus.GPSFix", 1)
	BatterySchema = MustDefine[Battery]("sensorbus.Battery", 1)
	RawSchema     = MustDefine[Raw]("sensorbus.Raw", 1)
)

// Builtins returns the built-in schemas.
func Builtins() []*Schema {
	return []*Schema{ScalarSchema, Vector3Schema, IMUSchema, GPSFixSchema, BatterySchema, RawSchema}
}
