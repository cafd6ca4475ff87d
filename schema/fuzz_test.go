package schema

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzDecode feeds arbitrary bytes to a type's decoder: it must return
// ErrDecode or a value that encodes and decodes to itself.
func fuzzDecode[T any, P Ptr[T]](f *testing.F, seeds ...Message) {
	for _, s := range seeds {
		b, _ := s.MarshalMsg(nil)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var v T
		if err := Decode[T, P](b, &v); err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("error %v is not ErrDecode", err)
			}
			return
		}
		again, err := P(&v).MarshalMsg(nil)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var w T
		if err := Decode[T, P](again, &w); err != nil {
			t.Fatalf("decode of re-encoded value: %v", err)
		}
		// Compare encodings rather than values: NaN != NaN.
		twice, _ := P(&w).MarshalMsg(nil)
		if !bytes.Equal(again, twice) {
			t.Fatalf("round trip changed the value: %+v → %+v", v, w)
		}
	})
}

func FuzzDecodeScalar(f *testing.F)  { fuzzDecode[Scalar](f, samples[0]) }
func FuzzDecodeVector3(f *testing.F) { fuzzDecode[Vector3](f, samples[1]) }
func FuzzDecodeIMU(f *testing.F)     { fuzzDecode[IMU](f, samples[2]) }
func FuzzDecodeGPSFix(f *testing.F)  { fuzzDecode[GPSFix](f, samples[3]) }
func FuzzDecodeBattery(f *testing.F) { fuzzDecode[Battery](f, samples[4]) }
func FuzzDecodeRaw(f *testing.F)     { fuzzDecode[Raw](f, samples[5]) }

// FuzzDecodeAny covers the untyped path: dynamic decode and JSON.
func FuzzDecodeAny(f *testing.F) {
	for _, s := range samples {
		b, _ := s.MarshalMsg(nil)
		f.Add(b)
	}
	f.Add([]byte{0x91, 0x91, 0x91, 0x91, 0x91})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err1 := DecodeAny(b)
		_, err2 := AnyToJSON(b)
		for _, err := range []error{err1, err2} {
			if err != nil && !errors.Is(err, ErrDecode) {
				t.Fatalf("error %v is not ErrDecode", err)
			}
		}
	})
}
