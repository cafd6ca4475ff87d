package record

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/sensorbus/sensorbus/schema"
)

// What a sensorbus recording holds besides the MCAP records every reader
// knows. The names below are the file format: readers of old files rely
// on them, so they never change meaning.
const (
	// Profile is the MCAP header's profile.
	Profile = "sensorbus"

	// MessageEncodingMsgpack marks channels whose messages are the bytes
	// the publisher published (MessagePack, msgp's tuple form for the
	// built-in types).
	MessageEncodingMsgpack = "msgpack"
	// MessageEncodingJSON marks channels transcoded to JSON objects
	// (Encoding JSON), which Foxglove and Lichtblick open directly.
	MessageEncodingJSON = "json"
	// MessageEncodingUntyped marks a channel of an untyped topic: the
	// published bytes, whatever they are, with no schema.
	MessageEncodingUntyped = "sensorbus.untyped"
	// SchemaEncoding is the encoding of every schema record: a JSON Schema
	// of the type's fields, with the sensorbus schema's identity in
	// "x-sensorbus-*" keywords (see jsonSchema).
	SchemaEncoding = "jsonschema"

	// MarkerTopic is the channel of markers: JSON messages that say where
	// the recorder lost samples and where a publisher restarted. A bus
	// topic cannot contain '/', so it never collides with a recorded one.
	MarkerTopic = "sensorbus/markers"
	// MarkerSchemaName names the markers' schema.
	MarkerSchemaName = "sensorbus.Marker"

	// MetaRecording names the metadata record written after the header:
	// host, version, recorder, clock offset, options (keys Meta*).
	MetaRecording = "sensorbus.recording"
	// MetaSummary names the metadata record written when a file is
	// finished: per topic, messages, loss, first and last index,
	// restarts (keys "messages.TOPIC", "lost.TOPIC", ...). A file cut
	// short has none; its markers say the same.
	MetaSummary = "sensorbus.summary"
)

// Keys of a channel's metadata. Each channel is one topic of one schema;
// a publisher restart with another schema starts a new channel of the
// same topic.
const (
	ChanFingerprint = "sensorbus.fingerprint" // 16 hex digits
	ChanVersion     = "sensorbus.schema_version"
	ChanLayout      = "sensorbus.layout"
	ChanGeneration  = "sensorbus.generation" // 16 hex digits, the ring's generation when the channel began
	ChanPID         = "sensorbus.publisher_pid"
	ChanSlotSize    = "sensorbus.slot_size"
	ChanSlots       = "sensorbus.slots"
	// ChanFirstIndex is the full ring index of the channel's first message
	// in this file. See Message.Index for how the others are recovered.
	ChanFirstIndex = "sensorbus.first_index"
)

// Keys of the MetaRecording record.
const (
	MetaHost        = "host"
	MetaVersion     = "sensorbus_version"
	MetaRecorderPID = "recorder_pid"
	MetaStarted     = "started"        // RFC 3339, wall clock
	MetaMonoOffset  = "mono_offset_ns" // Unix ns minus CLOCK_MONOTONIC ns: times in the file are monotonic stamps plus this
	MetaMode        = "mode"           // "record" or "snapshot"
	MetaCompression = "compression"
	MetaEncoding    = "encoding"
	MetaPart        = "part" // split files: 1, 2, ...
)

// Marker kinds. Loss and restart count as the recorder's loss (Lost in
// the summary); before does not (Before).
const (
	MarkerLoss    = "loss"    // the recorder lost samples: overrun, or the publisher's ring had dropped them before it attached
	MarkerRestart = "restart" // the publisher restarted (a new generation); Lost counts what the new one published before the recorder re-attached
	// MarkerBefore counts samples the publisher had published before the
	// recorder attached and its ring no longer held: not lost by the
	// recorder, but missing from the file all the same.
	MarkerBefore = "before"
)

// Marker is one message on the MarkerTopic channel. It precedes, in the
// file, the message it describes: the next message of Topic, whose full
// index is Index. Its log and publish times are that message's. A topic's
// first message may have two: what was gone before the recorder attached
// (before), then what the recorder lost after (loss).
type Marker struct {
	Kind  string `json:"kind"`
	Topic string `json:"topic"`
	// Lost samples right before the next one. For a loss they are the
	// indices [Index-Lost, Index).
	Lost  uint64 `json:"lost"`
	Index uint64 `json:"index"`
	// Generation and PublisherPID: the new publisher's, for a restart.
	Generation   string `json:"generation,omitempty"`
	PublisherPID int    `json:"publisher_pid,omitempty"`
}

// markerSchema is the JSON Schema of Marker.
var markerSchema = []byte(`{"$schema":"https://json-schema.org/draft/2020-12/schema","title":"sensorbus.Marker",` +
	`"description":"Samples lost by the recorder, or a publisher restart, right before the next message of topic, whose ring index is index.",` +
	`"type":"object","properties":{"kind":{"type":"string","enum":["loss","restart","before"]},"topic":{"type":"string"},` +
	`"lost":{"type":"integer","minimum":0},"index":{"type":"integer","minimum":0},"generation":{"type":"string"},"publisher_pid":{"type":"integer"}},` +
	`"required":["kind","topic","lost","index"]}`)

// jsonSchema describes s as a JSON Schema (draft 2020-12) of the JSON form
// of its messages (Schema.ToJSON), with the sensorbus identity alongside:
// x-sensorbus-fingerprint, -version, -layout, and -msgpack, the form of
// the msgpack bytes ("tuple": an array of the fields in order, or "map").
// A schema this build does not know (nil s) is described by name only.
func jsonSchema(name string, fp uint64, s *schema.Schema) []byte {
	doc := map[string]any{
		"$schema":                 "https://json-schema.org/draft/2020-12/schema",
		"title":                   name,
		"x-sensorbus-fingerprint": fmt.Sprintf("%016x", fp),
	}
	if s != nil {
		doc["x-sensorbus-version"] = s.Version
		doc["x-sensorbus-layout"] = s.Layout
		form, _, _ := strings.Cut(s.Layout, " ")
		doc["x-sensorbus-msgpack"] = form
		t := reflect.TypeOf(s.New()).Elem()
		for k, v := range typeSchema(t) {
			doc[k] = v
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		// Only maps of strings, numbers and nested maps: cannot fail.
		panic(err)
	}
	return b
}

// typeSchema returns the JSON Schema of t's JSON encoding.
func typeSchema(t reflect.Type) map[string]any {
	// A type with its own JSON or text form: take the JSON type of its
	// zero value's encoding (Unit and FixQuality render as strings).
	if t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler) ||
		t.Implements(textMarshaler) || reflect.PointerTo(t).Implements(textMarshaler) {
		b, err := json.Marshal(reflect.New(t).Interface())
		if err == nil && len(b) > 0 {
			switch b[0] {
			case '"':
				return map[string]any{"type": "string"}
			case '{':
				return map[string]any{"type": "object"}
			case '[':
				return map[string]any{"type": "array"}
			case 't', 'f':
				return map[string]any{"type": "boolean"}
			}
			return map[string]any{"type": "number"}
		}
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "contentEncoding": "base64"}
		}
		return map[string]any{"type": "array", "items": typeSchema(t.Elem())}
	case reflect.Array:
		return map[string]any{"type": "array", "items": typeSchema(t.Elem()), "minItems": t.Len(), "maxItems": t.Len()}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": typeSchema(t.Elem())}
	case reflect.Pointer:
		s := typeSchema(t.Elem())
		if typ, ok := s["type"].(string); ok {
			s["type"] = []string{typ, "null"}
		}
		return s
	case reflect.Struct:
		props := map[string]any{}
		var order []string
		for i := range t.NumField() {
			f := t.Field(i)
			name, ok := jsonName(f)
			if !ok {
				continue
			}
			props[name] = typeSchema(f.Type)
			order = append(order, name)
		}
		// "required" lists the fields in order, which JSON objects
		// (and so "properties") do not keep.
		return map[string]any{"type": "object", "properties": props, "required": order}
	}
	return map[string]any{}
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[interface{ MarshalText() ([]byte, error) }]()
)

// jsonName is the name encoding/json gives field f, and whether it is
// encoded at all.
func jsonName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", false
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name, true
}

func hex16(v uint64) string { return fmt.Sprintf("%016x", v) }

func parseHex16(s string) (uint64, bool) {
	v, err := strconv.ParseUint(s, 16, 64)
	return v, err == nil
}
