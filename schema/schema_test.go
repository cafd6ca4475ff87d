package schema

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/tinylib/msgp/msgp"

	"github.com/sensorbus/sensorbus/ring"
	"github.com/sensorbus/sensorbus/schema/internal/windtype"
	"github.com/sensorbus/sensorbus/testing/leakcheck"
)

func TestMain(m *testing.M) { os.Exit(leakcheck.Run(m)) }

var samples = []Message{
	&Scalar{Time: 1700000000123456789, Sensor: 3, Value: 21.75, Unit: UnitCelsius},
	&Vector3{Time: 1, Sensor: 9, Value: Vec3{1.5, -2.25, 3}, Unit: UnitMicroTesla},
	&IMU{Time: 2, Sensor: 1, Accel: Vec3{0.1, 0.2, 9.81}, Gyro: Vec3{-0.01, 0.02, 0.5}, Mag: Vec3{20, -5, 40}, HasMag: true, Temp: 36.5},
	&GPSFix{Time: 3, Sensor: 2, Lat: 59.3293235, Lon: 18.0685808, Alt: 28.5, Speed: 1.2, Heading: 271.5, Quality: FixRTK, Satellites: 14, HDOP: 0.7},
	&Battery{Time: 4, Sensor: 0, Voltage: 12.6, Current: -1.5, Charge: 0.87, Temp: 25},
	&Raw{Time: 5, Sensor: 7, Data: []byte{0, 1, 2, 0xff}},
}

func TestRoundTripBinaryAndJSON(t *testing.T) {
	for _, in := range samples {
		s := schemaOf(t, in)
		b, err := in.MarshalMsg(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > in.Msgsize() {
			t.Errorf("%s: encoded %d bytes, Msgsize says at most %d", s.Name, len(b), in.Msgsize())
		}
		out, err := s.Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Errorf("%s: binary round trip %+v → %+v", s.Name, in, out)
		}
		j, err := s.ToJSON(b)
		if err != nil {
			t.Fatal(err)
		}
		back, err := s.FromJSON(j)
		if err != nil {
			t.Fatalf("%s: FromJSON(%s): %v", s.Name, j, err)
		}
		if !reflect.DeepEqual(in, back) {
			t.Errorf("%s: JSON round trip %s → %+v", s.Name, j, back)
		}
		t.Logf("%s: %d bytes; %s", s.Name, len(b), j)
	}
}

func schemaOf(t *testing.T, m Message) *Schema {
	t.Helper()
	for _, s := range Builtins() {
		if s.goType == reflect.TypeOf(m).Elem() {
			return s
		}
	}
	t.Fatalf("no schema for %T", m)
	return nil
}

func TestJSONNamesUnitsAndFix(t *testing.T) {
	b, _ := (&Scalar{Value: 1013.25, Unit: UnitPascal}).MarshalMsg(nil)
	j, _ := ScalarSchema.ToJSON(b)
	if !bytes.Contains(j, []byte(`"unit":"Pa"`)) || !bytes.Contains(j, []byte(`"value":1013.25`)) {
		t.Errorf("scalar JSON %s", j)
	}
	b, _ = (&GPSFix{Quality: FixDGPS}).MarshalMsg(nil)
	if j, _ := GPSFixSchema.ToJSON(b); !bytes.Contains(j, []byte(`"quality":"dgps"`)) {
		t.Errorf("gps JSON %s", j)
	}
}

func TestFromJSONErrorsNameTheProblem(t *testing.T) {
	cases := map[string]string{
		`{"time":1,"sensr":2}`:         "unknown field",
		`{"time":"soon"}`:              "cannot unmarshal",
		`{"value":1,"unit":"furlong"}`: "unknown unit",
		`{"value":1} {"value":2}`:      "after the JSON object",
		`not json`:                     "invalid character",
		``:                             "EOF",
	}
	for line, want := range cases {
		_, err := ScalarSchema.FromJSON([]byte(line))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("FromJSON(%q) = %v, want an error containing %q", line, err, want)
		}
	}
}

// Golden fingerprints: a change here means the wire format of a built-in
// type changed, and every deployed subscriber will refuse the new
// publishers. Bump the version on purpose, or revert.
func TestGoldenFingerprints(t *testing.T) {
	golden := map[string]uint64{
		"sensorbus.Scalar":  0x752ca326c8c27b02,
		"sensorbus.Vector3": 0x134b67721a92a6e1,
		"sensorbus.IMU":     0xadb319212cb26c7c,
		"sensorbus.GPSFix":  0x8a530c77fa09f73a,
		"sensorbus.Battery": 0x2c0fb545bd9e2ce3,
		"sensorbus.Raw":     0xfd24a7d4db001753,
	}
	for _, s := range Builtins() {
		if golden[s.Name] != s.Fingerprint {
			t.Errorf("%s: fingerprint %#016x, golden %#016x; layout %s", s.Name, s.Fingerprint, golden[s.Name], s.Layout)
		}
	}
}

func TestFingerprintFollowsLayout(t *testing.T) {
	base := IMUSchema
	same := MustDefine[IMU]("sensorbus.IMU", 1)
	if same.Fingerprint != base.Fingerprint {
		t.Fatal("same type, name and version gave another fingerprint")
	}
	if v2 := MustDefine[IMU]("sensorbus.IMU", 2); v2.Fingerprint == base.Fingerprint {
		t.Fatal("version does not change the fingerprint")
	}
	// Layouts that differ only in a field's name, order or type.
	var b1, b2, b3 strings.Builder
	describe(&b1, reflect.TypeFor[struct{ X, Y float32 }](), false)
	describe(&b2, reflect.TypeFor[struct{ Y, X float32 }](), false)
	describe(&b3, reflect.TypeFor[struct {
		X float32
		Y float64
	}](), false)
	var b4 strings.Builder
	describe(&b4, reflect.TypeFor[struct{ X, Z float32 }](), false)
	if l := []string{b1.String(), b2.String(), b3.String(), b4.String()}; l[0] == l[1] || l[0] == l[2] || l[0] == l[3] {
		t.Fatalf("layouts do not tell the types apart: %q", l)
	}
}

func TestDefineRejects(t *testing.T) {
	for _, name := range []string{"", "has space", strings.Repeat("x", MaxNameLen+1), "tab\tname"} {
		if _, err := Define[IMU](name, 1); err == nil {
			t.Errorf("Define(%q) succeeded", name)
		}
	}
	if _, err := Define[IMU]("ok", -1); err == nil {
		t.Error("negative version accepted")
	}
}

func testDir(t testing.TB) string {
	dir, err := os.MkdirTemp("/dev/shm", "schema-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestTypedPublishAndReceive(t *testing.T) {
	dir := testDir(t)
	w, err := ring.Create(IMUSchema.RingConfig(ring.Config{Dir: dir, Name: "imu", SlotSize: 96, Slots: 16}))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	tw, err := NewWriter[IMU](w, IMUSchema)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ring.Open(dir, "imu", ring.ReaderConfig{Wait: ring.WaitSpin})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tr, err := NewReader[IMU](r, IMUSchema)
	if err != nil {
		t.Fatal(err)
	}
	in := samples[2].(*IMU)
	if err := tw.Publish(in); err != nil {
		t.Fatal(err)
	}
	var got IMU
	if _, err := tr.Next(context.Background(), &got); err != nil || got != *in {
		t.Fatalf("got %+v, %v; want %+v", got, err, *in)
	}
}

func TestTypedReaderRefusesOtherSchema(t *testing.T) {
	dir := testDir(t)
	w, err := ring.Create(IMUSchema.RingConfig(ring.Config{Dir: dir, Name: "imu", SlotSize: 96, Slots: 16}))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := ring.Open(dir, "imu", ring.ReaderConfig{Wait: ring.WaitSpin})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = NewReader[Scalar](r, ScalarSchema)
	var me *MismatchError
	if !errors.Is(err, ErrSchemaMismatch) || !errors.As(err, &me) {
		t.Fatalf("NewReader[Scalar] on an IMU ring = %v, want ErrSchemaMismatch", err)
	}
	for _, want := range []string{"sensorbus.Scalar", "sensorbus.IMU"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("mismatch error %q does not name %s", err, want)
		}
	}
	// A schema that does not describe the type is refused too.
	if _, err := NewReader[Scalar](r, IMUSchema); err == nil {
		t.Fatal("NewReader[Scalar] with the IMU schema succeeded")
	}
	// An untyped ring is a mismatch for a typed reader.
	w2, _ := ring.Create(ring.Config{Dir: dir, Name: "raw", SlotSize: 64, Slots: 4})
	defer w2.Close()
	r2, _ := ring.Open(dir, "raw", ring.ReaderConfig{Wait: ring.WaitSpin})
	defer r2.Close()
	if _, err := NewReader[IMU](r2, IMUSchema); !errors.Is(err, ErrSchemaMismatch) || !strings.Contains(err.Error(), "untyped") {
		t.Fatalf("typed reader on an untyped ring: %v", err)
	}
}

func TestEncodeTooLargePublishesNothing(t *testing.T) {
	dir := testDir(t)
	w, _ := ring.Create(RawSchema.RingConfig(ring.Config{Dir: dir, Name: "raw", SlotSize: 32, Slots: 4}))
	defer w.Close()
	if err := Encode(w, &Raw{Data: make([]byte, 64)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Encode of 64 bytes into 32-byte slots = %v", err)
	}
	if w.Published() != 0 {
		t.Fatal("a refused message was published")
	}
	if err := Encode(w, &Raw{Data: make([]byte, 8)}); err != nil {
		t.Fatal(err)
	}
}

func TestMalformedInputIsAnError(t *testing.T) {
	good, _ := samples[2].MarshalMsg(nil)
	cases := map[string][]byte{
		"empty":       {},
		"truncated":   good[:len(good)-3],
		"trailing":    append(append([]byte(nil), good...), 0xc0),
		"wrong arity": msgp.AppendArrayHeader(nil, 3),
		"map form":    msgp.AppendMapHeader(nil, 1),
		"garbage":     []byte("this is not msgpack at all"),
		// An array header claiming 4 billion elements in 5 bytes.
		"absurd length": {0xdd, 0xff, 0xff, 0xff, 0xff},
	}
	var imu IMU
	for name, b := range cases {
		if err := Decode(b, &imu); !errors.Is(err, ErrDecode) {
			t.Errorf("%s: Decode = %v, want ErrDecode", name, err)
		}
		if _, err := DecodeAny(b); name != "wrong arity" && name != "map form" && err == nil {
			t.Errorf("%s: DecodeAny accepted it", name)
		}
	}
	// A bin header claiming more bytes than present.
	raw := msgp.AppendArrayHeader(nil, 3)
	raw = msgp.AppendInt64(raw, 1)
	raw = msgp.AppendUint32(raw, 2)
	raw = append(raw, 0xc6, 0x7f, 0xff, 0xff, 0xff) // bin32 of 2 GiB
	var r Raw
	if err := Decode(raw, &r); !errors.Is(err, ErrDecode) {
		t.Errorf("absurd bin length: %v", err)
	}
}

func TestZeroAllocEncodeDecode(t *testing.T) {
	dir := testDir(t)
	w, _ := ring.Create(IMUSchema.RingConfig(ring.Config{Dir: dir, Name: "imu", SlotSize: 96, Slots: 64}))
	defer w.Close()
	tw, _ := NewWriter[IMU](w, IMUSchema)
	in := *samples[2].(*IMU)
	if n := testing.AllocsPerRun(1000, func() { tw.Publish(&in) }); n != 0 {
		t.Errorf("Publish allocates %v times", n)
	}
	b, _ := in.MarshalMsg(nil)
	var out IMU
	if n := testing.AllocsPerRun(1000, func() { Decode(b, &out) }); n != 0 {
		t.Errorf("Decode allocates %v times", n)
	}
	// Raw reuses the destination's buffer once it is big enough.
	rb, _ := (&Raw{Data: make([]byte, 40)}).MarshalMsg(nil)
	var raw Raw
	Decode(rb, &raw)
	if n := testing.AllocsPerRun(1000, func() { Decode(rb, &raw) }); n != 0 {
		t.Errorf("Decode of Raw into a reused value allocates %v times", n)
	}
}

func TestRegistry(t *testing.T) {
	wind := MustDefine[windtype.Wind]("acme.Wind", 1)
	reg, err := NewRegistry(wind)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := reg.ByFingerprint(wind.Fingerprint); !ok || s != wind {
		t.Fatal("user type not found by fingerprint")
	}
	if s, ok := reg.Lookup("sensorbus.IMU"); !ok || s != IMUSchema {
		t.Fatal("built-in not found by name")
	}
	if err := reg.Register(MustDefine[windtype.Wind]("acme.Wind", 2)); err == nil {
		t.Fatal("a second version under the same name was accepted")
	}
	if len(reg.Schemas()) != len(Builtins())+1 {
		t.Fatalf("%d schemas", len(reg.Schemas()))
	}
}

func TestAnyToJSON(t *testing.T) {
	b, _ := (&Scalar{Time: 7, Sensor: 1, Value: 2.5, Unit: UnitVolt}).MarshalMsg(nil)
	j, err := AnyToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	var arr []any
	if err := json.Unmarshal(j, &arr); err != nil || len(arr) != 4 {
		t.Fatalf("untyped JSON %s: %v", j, err)
	}
	v, err := DecodeAny(b)
	if err != nil || len(v.([]any)) != 4 {
		t.Fatalf("DecodeAny = %v, %v", v, err)
	}
}

// A length header claiming a billion elements is refused before the
// generated decoder allocates for it.
func TestAbsurdSliceLengthIsRefused(t *testing.T) {
	gusts := MustDefine[windtype.Gusts]("acme.Gusts", 1)
	if !gusts.checkLengths || IMUSchema.checkLengths {
		t.Fatal("length checking should apply to types with slices only")
	}
	b := msgp.AppendArrayHeader(nil, 3)
	b = msgp.AppendInt64(b, 1)
	b = msgp.AppendUint32(b, 2)
	b = append(b, 0xdd, 0x3b, 0x9a, 0xca, 0x00) // array32 of 1e9 floats, none present
	if _, err := gusts.Decode(b); !errors.Is(err, ErrDecode) {
		t.Fatalf("Decode = %v, want ErrDecode", err)
	}
	ok, _ := (&windtype.Gusts{Speeds: []float32{1, 2.5}}).MarshalMsg(nil)
	if v, err := gusts.Decode(ok); err != nil || len(v.(*windtype.Gusts).Speeds) != 2 {
		t.Fatalf("a valid message: %v %v", v, err)
	}
}

func TestOpaque(t *testing.T) {
	s, err := Opaque("remote.Thing", 42)
	if err != nil {
		t.Fatal(err)
	}
	if !s.IsOpaque() || s.New() != nil {
		t.Fatal("opaque schema makes values")
	}
	if _, err := s.Decode([]byte{0x90}); !errors.Is(err, ErrOpaque) {
		t.Fatalf("Decode: %v", err)
	}
	if _, err := s.FromJSON([]byte("{}")); !errors.Is(err, ErrOpaque) {
		t.Fatalf("FromJSON: %v", err)
	}
	for _, bad := range []struct {
		name string
		fp   uint64
	}{{"", 1}, {"x", 0}, {"bad\nname", 1}, {strings.Repeat("x", MaxNameLen+1), 1}} {
		if _, err := Opaque(bad.name, bad.fp); err == nil {
			t.Errorf("Opaque(%q, %d) accepted", bad.name, bad.fp)
		}
	}
	if IMUSchema.IsOpaque() {
		t.Fatal("IMU is opaque")
	}
}
