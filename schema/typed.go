package schema

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/sensorbus/sensorbus/ring"
)

// Encode encodes v straight into the writer's next slot and publishes it,
// without allocating. A message that does not fit gives ErrTooLarge and
// publishes nothing.
func Encode[T any, P Ptr[T]](w *ring.Writer, v *T) error { return EncodeMessage(w, P(v)) }

// EncodeMessage is Encode for a message whose type is known only at run
// time (a program that publishes any built-in type).
func EncodeMessage(w *ring.Writer, m Message) error {
	// Msgsize is an upper bound: a message it admits always fits, so
	// MarshalMsg never has to grow (allocate) the slot buffer.
	if m.Msgsize() > w.SlotSize() {
		return ErrTooLarge
	}
	buf, err := w.Reserve()
	if err != nil {
		return err
	}
	out, err := m.MarshalMsg(buf[:0])
	if err != nil {
		w.Abort()
		return fmt.Errorf("schema: encode: %w", err)
	}
	if len(out) > len(buf) || len(out) > 0 && unsafe.SliceData(out) != unsafe.SliceData(buf) {
		w.Abort() // msgp grew the buffer: the message did not fit after all
		return ErrTooLarge
	}
	return w.Commit(len(out))
}

// Decode decodes a whole message of type T from b into dst, reusing dst's
// storage: for types without variable-length fields it allocates nothing.
// Bytes that are not exactly one valid message give a *DecodeError
// (errors.Is ErrDecode). For a type with slices or maps of other than
// bytes, put a //msgp:limit directive on it, or decode through a Reader or
// Schema.Decode, which check length headers first.
func Decode[T any, P Ptr[T]](b []byte, dst *T) error {
	rest, err := P(dst).UnmarshalMsg(b)
	if err != nil {
		return &DecodeError{Schema: reflect.TypeFor[T]().Name(), Err: err}
	}
	if len(rest) != 0 {
		return &DecodeError{Schema: reflect.TypeFor[T]().Name(), Err: fmt.Errorf("%d bytes after the message", len(rest))}
	}
	return nil
}

// Writer publishes values of type T into a ring created for schema s.
// It is owned by one goroutine, like the ring.Writer it wraps.
type Writer[T any, P Ptr[T]] struct {
	w *ring.Writer
}

// NewWriter wraps w, which must have been created with s (see
// Schema.RingConfig); s must describe T.
func NewWriter[T any, P Ptr[T]](w *ring.Writer, s *Schema) (*Writer[T, P], error) {
	if err := s.bind(reflect.TypeFor[T]()); err != nil {
		return nil, err
	}
	if err := s.Check(w.Header()); err != nil {
		return nil, err
	}
	return &Writer[T, P]{w: w}, nil
}

// Publish encodes v into the next slot (see Encode).
func (tw *Writer[T, P]) Publish(v *T) error { return Encode[T, P](tw.w, v) }

// Ring returns the underlying ring writer.
func (tw *Writer[T, P]) Ring() *ring.Writer { return tw.w }

// Reader receives values of type T from a ring of schema s.
// It is owned by one goroutine, like the ring.Reader it wraps.
type Reader[T any, P Ptr[T]] struct {
	r      *ring.Reader
	schema *Schema
	errors uint64
}

// NewReader wraps r after checking that the ring carries s: a ring of
// another schema gives a *MismatchError (errors.Is ErrSchemaMismatch).
func NewReader[T any, P Ptr[T]](r *ring.Reader, s *Schema) (*Reader[T, P], error) {
	if err := s.bind(reflect.TypeFor[T]()); err != nil {
		return nil, err
	}
	if err := s.Check(r.Header()); err != nil {
		return nil, err
	}
	return &Reader[T, P]{r: r, schema: s}, nil
}

// Next waits for the next sample (see ring.Reader.Next) and decodes it
// into dst. A sample that does not decode is counted (DecodeErrors) and
// returned as a *DecodeError with its ring.Sample, so the caller may log
// it and go on; dst is then unspecified.
func (tr *Reader[T, P]) Next(ctx context.Context, dst *T) (ring.Sample, error) {
	s, err := tr.r.Next(ctx)
	if err != nil {
		return s, err
	}
	err = tr.schema.checkSize(s.Data)
	if err == nil {
		err = Decode[T, P](s.Data, dst)
	}
	if err != nil {
		tr.errors++
		var de *DecodeError
		if errors.As(err, &de) {
			de.Schema = tr.schema.Name
		}
		return s, err
	}
	return s, nil
}

// DecodeErrors returns how many samples failed to decode.
func (tr *Reader[T, P]) DecodeErrors() uint64 { return tr.errors }

// Ring returns the underlying ring reader.
func (tr *Reader[T, P]) Ring() *ring.Reader { return tr.r }

func (s *Schema) bind(t reflect.Type) error {
	if s.goType != t {
		return fmt.Errorf("schema: %s describes %v, not %v", s.Name, s.goType, t)
	}
	return nil
}
