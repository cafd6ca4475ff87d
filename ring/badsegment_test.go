package ring

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// segmentImage returns the bytes of a real ring file holding a few samples.
func segmentImage(t testing.TB, slots, slotSize, samples int) []byte {
	t.Helper()
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "img", SlotSize: slotSize, Slots: slots, SchemaName: "test.v1", SchemaFingerprint: 42})
	defer w.Close()
	for i := range samples {
		w.Publish(payload(uint64(i), min(slotSize, 8+i%slotSize)))
	}
	img, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestOpenRejectsBadSegments(t *testing.T) {
	good := segmentImage(t, 8, 64, 5)
	mutate := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), good...))
	}
	le := binary.LittleEndian
	cases := map[string][]byte{
		"empty":          {},
		"short header":   good[:100],
		"truncated":      good[:headerSize+10],
		"bad magic":      mutate(func(b []byte) []byte { copy(b, "NOTARING"); return b }),
		"future version": mutate(func(b []byte) []byte { le.PutUint32(b[offVersion:], 99); return b }),
		"header size":    mutate(func(b []byte) []byte { le.PutUint32(b[offHeaderSize:], 64); return b }),
		"slot count 3":   mutate(func(b []byte) []byte { le.PutUint32(b[offSlotCount:], 3); return b }),
		"huge slot size": mutate(func(b []byte) []byte { le.PutUint32(b[offSlotSize:], 1<<30); return b }),
		"stride":         mutate(func(b []byte) []byte { le.PutUint32(b[offSlotStride:], 8); return b }),
		"more slots than the file holds": mutate(func(b []byte) []byte {
			le.PutUint32(b[offSlotCount:], 1<<20)
			return b
		}),
		"size beyond file": mutate(func(b []byte) []byte { le.PutUint64(b[offTotalSize:], 1<<30); return b }),
		"schema length":    mutate(func(b []byte) []byte { le.PutUint32(b[offSchemaLen:], 1000); return b }),
		"zero generation":  mutate(func(b []byte) []byte { le.PutUint64(b[offGeneration:], 0); return b }),
	}
	dir := testDir(t)
	for name, data := range cases {
		p := filepath.Join(dir, "bad")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := Open(dir, "bad", ReaderConfig{Wait: WaitSpin})
		if err == nil {
			r.Close()
			t.Errorf("%s: Open succeeded", name)
		} else if !errors.Is(err, ErrBadSegment) {
			t.Errorf("%s: Open = %v, want ErrBadSegment", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
		os.Remove(p)
	}
}

// A stable slot that claims more bytes than a slot holds is reported, not
// read out of bounds.
func TestCorruptSlotLength(t *testing.T) {
	img := segmentImage(t, 8, 64, 3)
	binary.LittleEndian.PutUint32(img[headerSize+slotOffLen:], 1000) // slot 0
	dir := testDir(t)
	os.WriteFile(filepath.Join(dir, "c"), img, 0o600)
	defer os.Remove(filepath.Join(dir, "c"))
	r := mustOpen(t, dir, "c", ReaderConfig{Start: FromOldest, Wait: WaitSpin})
	if _, _, err := r.TryNext(); !errors.Is(err, ErrBadSegment) {
		t.Fatalf("TryNext on a corrupt slot = %v, want ErrBadSegment", err)
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add(segmentImage(f, 8, 64, 3)[:headerSize])
	f.Add(segmentImage(f, 1, 8, 0)[:headerSize])
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, size := range []int64{int64(len(b)), 1 << 20, MaxSegmentSize} {
			h, g, err := parseHeader(b, size, 4096)
			if err != nil {
				if !errors.Is(err, ErrBadSegment) {
					t.Fatalf("error %v is not ErrBadSegment", err)
				}
				continue
			}
			if int64(g.totalSize) > size || g.slotCount*g.slotStride+headerSize > g.totalSize ||
				g.slotSize > g.slotStride-slotOffData || h.Generation == 0 || len(h.SchemaName) > maxSchemaName {
				t.Fatalf("accepted inconsistent geometry %+v for a %d-byte file", g, size)
			}
		}
	})
}

// FuzzAttach attaches readers to arbitrary file contents and reads: they
// must fail with ErrBadSegment or read without crashing, whatever the
// slots hold.
func FuzzAttach(f *testing.F) {
	f.Add(segmentImage(f, 4, 16, 6))
	f.Add(segmentImage(f, 2, 8, 1))
	f.Add([]byte("garbage"))
	dir := testDir(f)
	p := filepath.Join(dir, "fz")
	f.Cleanup(func() { os.Remove(p) })
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, cfg := range []ReaderConfig{{Start: FromOldest, Wait: WaitSpin}, {Mode: Latest, Wait: WaitSpin}} {
			r, err := Open(dir, "fz", cfg)
			if err != nil {
				if !errors.Is(err, ErrBadSegment) {
					t.Fatalf("Open = %v, want ErrBadSegment", err)
				}
				continue
			}
			for range 64 {
				s, ok, err := r.TryNext()
				if err != nil {
					if !errors.Is(err, ErrBadSegment) {
						t.Fatalf("TryNext = %v", err)
					}
					break
				}
				if !ok {
					break
				}
				if len(s.Data) > r.Header().SlotSize {
					t.Fatalf("delivered %d bytes from %d-byte slots", len(s.Data), r.Header().SlotSize)
				}
			}
			r.Status()
			r.Close()
		}
	})
}
