package bridge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
)

func encodeBatch(recs []Record) []byte {
	var w batchWriter
	w.reset()
	for _, r := range recs {
		w.add(r.Index, r.PublishedUnixNano, r.Data)
	}
	return append([]byte(nil), w.body()...)
}

func TestBatchRoundTrip(t *testing.T) {
	recs := []Record{
		{Index: 1 << 40, PublishedUnixNano: 1_700_000_000_000_000_000, Data: []byte("first")},
		{Index: 1<<40 + 1, PublishedUnixNano: 1_700_000_000_000_000_500, Data: nil},
		{Index: 1<<40 + 9, PublishedUnixNano: 1_699_999_999_999_999_000, Data: bytes.Repeat([]byte{0xc1}, 300)},
	}
	b := encodeBatch(recs)
	got, err := DecodeBatch(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("%d records, want %d", len(got), len(recs))
	}
	for i := range recs {
		if got[i].Index != recs[i].Index || got[i].PublishedUnixNano != recs[i].PublishedUnixNano || !bytes.Equal(got[i].Data, recs[i].Data) {
			t.Errorf("record %d: %+v, want %+v", i, got[i], recs[i])
		}
	}
	// Data aliases the body and cannot grow into the next record.
	if cap(got[0].Data) != len(got[0].Data) {
		t.Errorf("record 0's Data has capacity %d beyond its %d bytes", cap(got[0].Data), len(got[0].Data))
	}
}

func TestDecodeBatchRefuses(t *testing.T) {
	good := encodeBatch([]Record{{Index: 5, PublishedUnixNano: 10, Data: []byte("abc")}, {Index: 6, PublishedUnixNano: 11, Data: []byte("de")}})
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := map[string][]byte{
		"empty":          {},
		"short header":   good[:4],
		"version 2":      mut(func(b []byte) []byte { b[0] = 2; return b }),
		"count 0":        mut(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[1:], 0); return b }),
		"count too big":  mut(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[1:], MaxBatchSamples+1); return b }),
		"count 3 of 2":   mut(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[1:], 3); return b }),
		"truncated":      good[:len(good)-1],
		"trailing byte":  append(append([]byte(nil), good...), 0),
		"count 1 of 2":   mut(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[1:], 1); return b }),
		"length too big": mut(func(b []byte) []byte { b[batchHeaderLen+2] = 0x7f; return b }),
		"index repeats": encodeBatchRaw(func(b []byte) []byte {
			b = binary.AppendUvarint(b, 7)
			b = binary.AppendVarint(b, 0)
			b = binary.AppendUvarint(b, 0)
			b = binary.AppendUvarint(b, 0) // delta 0: the same index again
			b = binary.AppendVarint(b, 0)
			return binary.AppendUvarint(b, 0)
		}, 2),
		"index wraps": encodeBatchRaw(func(b []byte) []byte {
			b = binary.AppendUvarint(b, ^uint64(0))
			b = binary.AppendVarint(b, 0)
			b = binary.AppendUvarint(b, 0)
			b = binary.AppendUvarint(b, 1)
			b = binary.AppendVarint(b, 0)
			return binary.AppendUvarint(b, 0)
		}, 2),
		"bad varint": encodeBatchRaw(func(b []byte) []byte {
			return append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
		}, 1),
	}
	for name, b := range cases {
		prefix := []Record{{Index: 99}}
		got, err := DecodeBatch(b, prefix)
		if !errors.Is(err, ErrBadBatch) {
			t.Errorf("%s: err %v, want ErrBadBatch", name, err)
		}
		if len(got) != 1 {
			t.Errorf("%s: %d records returned, want the caller's 1 alone", name, len(got))
		}
	}
}

// encodeBatchRaw builds a body with the given record bytes and count.
func encodeBatchRaw(records func([]byte) []byte, count uint32) []byte {
	b := []byte{BatchVersion, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(b[1:], count)
	return records(b)
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(encodeBatch([]Record{{Index: 0, PublishedUnixNano: 1, Data: []byte{0x93, 1, 2, 3}}}))
	f.Add(encodeBatch([]Record{{Index: 3, Data: []byte("x")}, {Index: 4, Data: []byte("yz")}, {Index: 100, PublishedUnixNano: -5}}))
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 255, 255, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := DecodeBatch(b, nil)
		if err != nil {
			if !errors.Is(err, ErrBadBatch) || len(recs) != 0 {
				t.Fatalf("error %v with %d records", err, len(recs))
			}
			return
		}
		if len(recs) == 0 || len(recs) > MaxBatchSamples {
			t.Fatalf("%d records", len(recs))
		}
		for i := 1; i < len(recs); i++ {
			if recs[i].Index <= recs[i-1].Index {
				t.Fatalf("record %d: index %d after %d", i, recs[i].Index, recs[i-1].Index)
			}
		}
		// What decodes re-encodes to the same bytes: one meaning per body.
		if again := encodeBatch(recs); !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x, decoded from %x", again, b)
		}
	})
}

func TestParseMetaRefuses(t *testing.T) {
	good := func() nats.Header {
		return nats.Header{HeaderFormat: {FormatSample}, HeaderGeneration: {"00000000000000ab"}, HeaderIndex: {"7"},
			HeaderCount: {"1"}, HeaderTime: {"123"}, HeaderSchema: {"sensorbus.Raw"}, HeaderFingerprint: {"0123456789abcdef"},
			HeaderSlotSize: {"128"}, HeaderSlots: {"1024"}}
	}
	if m, err := parseMeta(good()); err != nil || m.index != 7 || m.gen != 0xab || m.slots != 1024 {
		t.Fatalf("good headers: %+v, %v", m, err)
	}
	cases := map[string]func(nats.Header){
		"no headers":         func(h nats.Header) { clear(h) },
		"unknown format":     func(h nats.Header) { h[HeaderFormat] = []string{"sample/2"} },
		"two formats":        func(h nats.Header) { h[HeaderFormat] = []string{FormatSample, FormatBatch} },
		"bad generation":     func(h nats.Header) { h[HeaderGeneration] = []string{"xyz"} },
		"negative index":     func(h nats.Header) { h[HeaderIndex] = []string{"-1"} },
		"count 2 sample":     func(h nats.Header) { h[HeaderCount] = []string{"2"} },
		"no time":            func(h nats.Header) { delete(h, HeaderTime) },
		"schema without fp":  func(h nats.Header) { h[HeaderFingerprint] = []string{"0"} },
		"fp without schema":  func(h nats.Header) { delete(h, HeaderSchema) },
		"long schema name":   func(h nats.Header) { h[HeaderSchema] = []string{string(bytes.Repeat([]byte("a"), 65))} },
		"slots not power 2":  func(h nats.Header) { h[HeaderSlots] = []string{"1000"} },
		"slot size too big":  func(h nats.Header) { h[HeaderSlotSize] = []string{"999999999"} },
		"batch count 0":      func(h nats.Header) { h[HeaderFormat] = []string{FormatBatch}; h[HeaderCount] = []string{"0"} },
		"batch count absurd": func(h nats.Header) { h[HeaderFormat] = []string{FormatBatch}; h[HeaderCount] = []string{"99999999"} },
	}
	for name, f := range cases {
		h := good()
		f(h)
		if _, err := parseMeta(h); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: %v, want ErrBadMessage", name, err)
		}
	}
}

func TestParseImport(t *testing.T) {
	for in, want := range map[string]Import{
		"rover/imu":          {Host: "rover", Topic: "imu", Local: "imu"},
		"rover/imu=rover-im": {Host: "rover", Topic: "imu", Local: "rover-im"},
		"r-1/imu.raw":        {Host: "r-1", Topic: "imu.raw", Local: "imu.raw"},
	} {
		got, err := ParseImport(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"imu", "/imu", "rover/", "ro.ver/imu", "rover/*", "rover/a..b", "rover/imu=", "rover/imu=a/b", "rover/>"} {
		if _, err := ParseImport(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestConfigRefuses(t *testing.T) {
	base := Config{URL: "nats://127.0.0.1:4222", Host: "a", Exports: []string{"imu"}}
	if _, err := base.validate(); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(*Config){
		"no url":           func(c *Config) { c.URL = "" },
		"bad host":         func(c *Config) { c.Host = "a.b" },
		"nothing":          func(c *Config) { c.Exports = nil },
		"bad export":       func(c *Config) { c.Exports = []string{"a..b"} },
		"import twice":     func(c *Config) { c.Imports = []string{"b/x", "c/x"} },
		"import exported":  func(c *Config) { c.Imports = []string{"b/imu"} },
		"two credentials":  func(c *Config) { c.Auth = Auth{User: "u", Token: "t"} },
		"password no user": func(c *Config) { c.Auth = Auth{Password: "p"} },
		"cert without key": func(c *Config) { c.TLS = TLS{CertFile: "c.pem"} },
		"negative delay":   func(c *Config) { c.ReconnectWait = -1 },
		"bad stream name":  func(c *Config) { c.JetStream = "a.b" },
	} {
		c := base
		f(&c)
		if _, err := c.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
