package schema

import (
	"errors"
	"fmt"
	"hash/fnv"
	"reflect"
	"strconv"
	"strings"

	"github.com/tinylib/msgp/msgp"

	"github.com/sensorbus/sensorbus/ring"
)

var (
	// ErrSchemaMismatch is returned when a segment carries another type
	// than the one expected. The error is a *MismatchError naming both.
	ErrSchemaMismatch = errors.New("schema mismatch")

	// ErrDecode is returned for slot bytes that are not a valid message of
	// the expected type. Callers count such samples; nothing panics.
	ErrDecode = errors.New("schema: malformed message")

	// ErrTooLarge is ring.ErrTooLarge: the encoded message does not fit a slot.
	ErrTooLarge = ring.ErrTooLarge
)

// Message is what msgp generates for a type and schema uses.
type Message interface {
	msgp.Marshaler
	msgp.Unmarshaler
	msgp.Sizer
}

// Ptr constrains P to *T carrying msgp's generated methods, so generic
// functions can take a *T and call them without allocating.
type Ptr[T any] interface {
	*T
	Message
}

// Schema identifies a message type: its name, version and a fingerprint
// of its layout, which goes into the ring header so a subscriber can
// refuse a topic of another type. A Schema is immutable and safe for
// concurrent use.
type Schema struct {
	Name        string // e.g. "sensorbus.IMU"; at most 64 printable bytes
	Version     int
	Fingerprint uint64 // FNV-1a of Name, Version and Layout
	// Layout is the canonical description of the encoding the fingerprint
	// covers: the encoding form (tuple or map), then every encoded field's
	// name and type, in order, recursively.
	Layout string

	goType   reflect.Type
	newValue func() Message
	// checkLengths: the type has slices or maps (other than []byte), whose
	// msgp-generated decoders allocate what a length header claims before
	// reading the elements; such messages are walked first (msgp.Skip
	// fails on lengths the bytes cannot hold).
	checkLengths bool
}

// MaxNameLen bounds a schema name (it is stored in the ring header).
const MaxNameLen = 64

// Define describes the message type T (a struct with msgp-generated
// methods) as schema name, version. Two types with the same layout,
// name and version have the same fingerprint; changing a field's name,
// order or type, or the encoding form, changes it.
func Define[T any, P Ptr[T]](name string, version int) (*Schema, error) {
	if name == "" || len(name) > MaxNameLen {
		return nil, fmt.Errorf("schema: name %q must be 1 to %d bytes", name, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if b := name[i]; b <= ' ' || b > '~' {
			return nil, fmt.Errorf("schema: name %q has a space or non-printable byte at %d", name, i)
		}
	}
	if version < 0 {
		return nil, fmt.Errorf("schema: negative version %d", version)
	}
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("schema: %v is not a struct", t)
	}
	var zero T
	enc, err := P(&zero).MarshalMsg(nil)
	if err != nil || len(enc) == 0 {
		return nil, fmt.Errorf("schema: encode a zero %v: %v", t, err)
	}
	var form string
	switch msgp.NextType(enc) {
	case msgp.ArrayType:
		form = "tuple"
	case msgp.MapType:
		form = "map"
	default:
		return nil, fmt.Errorf("schema: %v encodes as %v, not an array or map", t, msgp.NextType(enc))
	}
	var b strings.Builder
	b.WriteString(form)
	b.WriteByte(' ')
	describe(&b, t, form == "map")
	s := &Schema{
		Name:     name,
		Version:  version,
		Layout:   b.String(),
		goType:   t,
		newValue: func() Message { return P(new(T)) },
	}
	s.checkLengths = strings.Contains(s.Layout, "[]") || strings.Contains(s.Layout, "map[")
	h := fnv.New64a()
	h.Write([]byte(name + "\x00" + strconv.Itoa(version) + "\x00" + s.Layout))
	s.Fingerprint = h.Sum64()
	return s, nil
}

// MustDefine is Define for package-level schemas; it panics on error.
func MustDefine[T any, P Ptr[T]](name string, version int) *Schema {
	s, err := Define[T, P](name, version)
	if err != nil {
		panic(err)
	}
	return s
}

// describe writes the canonical layout of t. Field names are those msgp
// encodes (its msg tag, or the Go name); fields msgp skips are left out.
func describe(b *strings.Builder, t reflect.Type, mapForm bool) {
	switch t.Kind() {
	case reflect.Struct:
		b.WriteByte('{')
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name := f.Name
			if tag, _, _ := strings.Cut(f.Tag.Get("msg"), ","); tag == "-" {
				continue
			} else if tag != "" && mapForm {
				name = tag
			}
			b.WriteString(name)
			b.WriteByte(' ')
			describe(b, f.Type, mapForm)
			b.WriteByte(';')
		}
		b.WriteByte('}')
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			b.WriteString("bin")
			return
		}
		b.WriteString("[]")
		describe(b, t.Elem(), mapForm)
	case reflect.Array:
		b.WriteString("[" + strconv.Itoa(t.Len()) + "]")
		describe(b, t.Elem(), mapForm)
	case reflect.Map:
		b.WriteString("map[")
		describe(b, t.Key(), mapForm)
		b.WriteByte(']')
		describe(b, t.Elem(), mapForm)
	case reflect.Pointer:
		b.WriteByte('*')
		describe(b, t.Elem(), mapForm)
	default:
		b.WriteString(t.Kind().String())
	}
}

// ErrOpaque is returned by Decode and FromJSON of a schema made by Opaque.
var ErrOpaque = errors.New("schema: type known only by name and fingerprint")

// Opaque describes a type known only by its name and fingerprint, as a
// relay (a bridge, a replay) that carries samples without decoding them
// knows it: enough to publish a topic of that type and to check
// subscribers against it. Decode and FromJSON return ErrOpaque, New nil.
func Opaque(name string, fingerprint uint64) (*Schema, error) {
	if name == "" || len(name) > MaxNameLen {
		return nil, fmt.Errorf("schema: name of %d bytes (want 1 to %d)", len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if b := name[i]; b < 0x20 || b > 0x7e {
			return nil, fmt.Errorf("schema: name %q has a non-printable byte at %d", name, i)
		}
	}
	if fingerprint == 0 {
		return nil, errors.New("schema: zero fingerprint (it means untyped)")
	}
	return &Schema{Name: name, Fingerprint: fingerprint}, nil
}

// IsOpaque reports whether s was made by Opaque.
func (s *Schema) IsOpaque() bool { return s.newValue == nil }

// String returns "name/vVERSION (fingerprint)".
func (s *Schema) String() string {
	return fmt.Sprintf("%s/v%d (%016x)", s.Name, s.Version, s.Fingerprint)
}

// New returns a new zero value of the schema's type, as a Message.
// It returns nil for an opaque schema.
func (s *Schema) New() Message {
	if s.newValue == nil {
		return nil
	}
	return s.newValue()
}

// MismatchError says what a subscriber expected and what a topic carries.
type MismatchError struct {
	WantName, GotName               string
	WantFingerprint, GotFingerprint uint64
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("schema mismatch: expected %s (%016x), the topic carries %s (%016x)",
		orUntyped(e.WantName), e.WantFingerprint, orUntyped(e.GotName), e.GotFingerprint)
}

// Unwrap makes errors.Is(err, ErrSchemaMismatch) true.
func (e *MismatchError) Unwrap() error { return ErrSchemaMismatch }

func orUntyped(name string) string {
	if name == "" {
		return "untyped"
	}
	return name
}

// Check returns a *MismatchError unless the ring header h carries s.
func (s *Schema) Check(h ring.Header) error {
	if h.SchemaFingerprint == s.Fingerprint && h.SchemaName == s.Name {
		return nil
	}
	return &MismatchError{WantName: s.Name, WantFingerprint: s.Fingerprint, GotName: h.SchemaName, GotFingerprint: h.SchemaFingerprint}
}

// RingConfig fills cfg's schema fields with s.
func (s *Schema) RingConfig(cfg ring.Config) ring.Config {
	cfg.SchemaName, cfg.SchemaFingerprint = s.Name, s.Fingerprint
	return cfg
}

// checkSize refuses a message whose length headers claim more than its
// bytes hold, before a generated decoder allocates for them.
func (s *Schema) checkSize(b []byte) error {
	if !s.checkLengths {
		return nil
	}
	if _, err := msgp.Skip(b); err != nil {
		return &DecodeError{Schema: s.Name, Err: err}
	}
	return nil
}

// DecodeError is an ErrDecode with the reason.
type DecodeError struct {
	Schema string
	Err    error
}

func (e *DecodeError) Error() string { return fmt.Sprintf("schema: malformed %s: %v", e.Schema, e.Err) }

// Unwrap makes errors.Is(err, ErrDecode) true and exposes msgp's error.
func (e *DecodeError) Unwrap() []error { return []error{ErrDecode, e.Err} }
