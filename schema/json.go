package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/tinylib/msgp/msgp"
)

// ToJSON decodes one message of this schema from b and renders it as a
// JSON object with the fields' JSON names.
func (s *Schema) ToJSON(b []byte) ([]byte, error) {
	v, err := s.Decode(b)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// Decode decodes one message of this schema from b into a new value
// (a pointer to the schema's Go type).
func (s *Schema) Decode(b []byte) (Message, error) {
	if s.newValue == nil {
		return nil, ErrOpaque
	}
	if err := s.checkSize(b); err != nil {
		return nil, err
	}
	v := s.newValue()
	rest, err := v.UnmarshalMsg(b)
	if err != nil {
		return nil, &DecodeError{Schema: s.Name, Err: err}
	}
	if len(rest) != 0 {
		return nil, &DecodeError{Schema: s.Name, Err: fmt.Errorf("%d bytes after the message", len(rest))}
	}
	return v, nil
}

// FromJSON parses one JSON object into a new value of this schema's type.
// Unknown fields, a wrong type, and anything after the object are errors
// that name the problem.
func (s *Schema) FromJSON(line []byte) (Message, error) {
	if s.newValue == nil {
		return nil, ErrOpaque
	}
	v := s.newValue()
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s: unexpected data after the JSON object", s.Name)
	}
	return v, nil
}

// DecodeAny decodes a MessagePack value of any type from b, for samples of
// an unknown schema: maps, arrays, numbers, strings and bytes as Go
// values. Lengths are checked against the bytes present, so the work is
// bounded by len(b).
func DecodeAny(b []byte) (any, error) {
	v, rest, err := msgp.ReadIntfBytes(b)
	if err != nil {
		return nil, &DecodeError{Schema: "untyped", Err: err}
	}
	if len(rest) != 0 {
		return nil, &DecodeError{Schema: "untyped", Err: fmt.Errorf("%d bytes after the message", len(rest))}
	}
	return v, nil
}

// AnyToJSON renders a MessagePack value of any type as JSON (a tuple-form
// message becomes an array), for samples of an unknown schema.
func AnyToJSON(b []byte) ([]byte, error) {
	var out bytes.Buffer
	rest, err := msgp.UnmarshalAsJSON(&out, b)
	if err != nil {
		return nil, &DecodeError{Schema: "untyped", Err: err}
	}
	if len(rest) != 0 {
		return nil, &DecodeError{Schema: "untyped", Err: fmt.Errorf("%d bytes after the message", len(rest))}
	}
	return out.Bytes(), nil
}
