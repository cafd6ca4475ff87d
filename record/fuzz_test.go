package record

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReader feeds arbitrary bytes to the reading path: Reader.Next must
// end with io.EOF or an error, never panic, and allocate in proportion to
// the input, not to the lengths it claims.
func FuzzReader(f *testing.F) {
	dir := f.TempDir()
	for i, sf := range []synthFile{
		{n: 20, chunkSize: 512},
		{n: 20, chunkSize: 512, compression: CompressLZ4},
		{n: 20, chunkSize: 512, compression: CompressNone, gapAt: 5, gapLen: 3},
		{n: 5, truncate: true},
	} {
		path := filepath.Join(dir, string(rune('a'+i))+".mcap")
		if err := sf.write(path); err != nil {
			f.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte("\x89MCAP0\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), "fuzz", int64(len(data)))
		if err != nil {
			return
		}
		defer r.Close()
		r.maxChunk = 1 << 20 // decompression bombs up to the real limit only slow the fuzzer down
		for range 1 << 16 {
			if _, err := r.Next(); err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, ErrCorrupt) {
					return
				}
				t.Fatalf("error neither EOF nor ErrCorrupt: %v", err)
			}
		}
	})
}
