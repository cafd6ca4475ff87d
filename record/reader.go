package record

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strconv"

	"github.com/foxglove/mcap/go/mcap"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

var (
	// ErrNotMCAP is returned for a file that is empty or does not start
	// with the MCAP magic.
	ErrNotMCAP = errors.New("not an MCAP file")

	// ErrCorrupt is returned for a file whose records cannot be read:
	// a bad length, a chunk that does not decompress or fails its CRC, a
	// record that does not parse. A file that merely ends early (a
	// recorder killed mid-write) is not corrupt: reading stops at its
	// last complete record and Truncated reports it.
	ErrCorrupt = errors.New("corrupt MCAP file")
)

// maxChunk bounds a chunk's uncompressed size; the recorder writes 1 MiB
// chunks by default and at most 32 MiB.
const maxChunk = 64 << 20

// Channel is a channel as a Reader found it.
type Channel struct {
	ID              uint16
	Topic           string
	MessageEncoding string
	SchemaName      string // "" without a schema
	SchemaEncoding  string
	SchemaData      []byte
	Metadata        map[string]string
	// Fingerprint of the sensorbus schema (ChanFingerprint); 0 if none.
	Fingerprint uint64
}

// Message is one message read from a file.
type Message struct {
	Channel     *Channel
	Sequence    uint32
	LogTime     uint64 // Unix ns: when the recorder received it
	PublishTime uint64 // Unix ns: the publisher's stamp
	// Data is valid until the next call to Next.
	Data []byte
	// Index is the sample's full ring index: the channel's first message
	// in the file has its ChanFirstIndex, a message right after a marker
	// has the marker's Index, and every other one is the previous one's
	// plus (Sequence - previous) modulo 2^32. For a file not written by
	// sensorbus it is the sequence.
	Index uint64
	// Gaps are the markers that precede this message of its topic, if
	// any: samples lost, or a publisher restart, right before it (at
	// most one of each kind). Index is the last one's.
	Gaps []*Marker
	// Marker is set for a message on the MarkerTopic channel: this
	// message is the marker itself.
	Marker *Marker

	channelID uint16
}

// Reader reads a recording's messages in file order, from its first byte:
// it needs no index, so it reads files cut short too. It is owned by one
// goroutine.
type Reader struct {
	name      string
	file      *os.File
	lex       *mcap.Lexer
	inner     *mcap.Lexer
	buf       []byte
	innerBuf  []byte
	chunkBuf  bytes.Buffer
	zstd      *zstd.Decoder
	lz4       *lz4.Reader
	maxRecord int
	maxChunk  uint64 // maxChunk, lowered by the fuzz test

	header    *mcap.Header
	schemas   map[uint16]*mcap.Schema
	channels  map[uint16]*Channel
	metadata  []mcap.Metadata
	pending   map[string][]*Marker
	last      map[uint16]uint64
	seen      map[uint16]bool
	msg       Message
	chunks    int
	dataEnd   bool
	complete  bool
	truncated bool
	done      bool
	err       error
}

// OpenFile opens a recording for reading; Close closes it.
func OpenFile(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", path)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("record: %w", err)
	}
	r, err := NewReader(bufio.NewReaderSize(f, 1<<16), path, fi.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	r.file = f
	return r, nil
}

// NewReader reads a recording of size bytes from rd; name names it in
// errors.
func NewReader(rd io.Reader, name string, size int64) (*Reader, error) {
	if size == 0 {
		return nil, fmt.Errorf("record: %s: %w: the file is empty", name, ErrNotMCAP)
	}
	maxRecord := int(min(size, 2*maxChunk))
	lex, err := mcap.NewLexer(rd, &mcap.LexerOptions{EmitChunks: true, MaxRecordSize: maxRecord})
	if err != nil {
		return nil, fmt.Errorf("record: %s: %w: %v", name, ErrNotMCAP, err)
	}
	return &Reader{name: name, lex: lex, maxRecord: maxRecord, maxChunk: maxChunk, schemas: map[uint16]*mcap.Schema{}, channels: map[uint16]*Channel{},
		pending: map[string][]*Marker{}, last: map[uint16]uint64{}, seen: map[uint16]bool{}}, nil
}

// Complete reports whether the file was finished (its footer was read);
// valid once Next returned io.EOF.
func (r *Reader) Complete() bool { return r.complete }

// Truncated reports whether the file ended before its footer, in or
// after a record; valid once Next returned io.EOF.
func (r *Reader) Truncated() bool { return r.truncated }

// Header returns the file's header record, once read.
func (r *Reader) Header() *mcap.Header { return r.header }

// Metadata returns the metadata records read so far.
func (r *Reader) Metadata() []mcap.Metadata { return r.metadata }

// Channels returns the channels read so far, by id.
func (r *Reader) Channels() map[uint16]*Channel { return r.channels }

// Chunks returns how many chunks were read so far.
func (r *Reader) Chunks() int { return r.chunks }

func (r *Reader) corrupt(format string, args ...any) error {
	r.err = fmt.Errorf("record: %s: %w: %s", r.name, ErrCorrupt, fmt.Sprintf(format, args...))
	return r.err
}

// Next returns the next message; io.EOF at the end of the file, also of a
// file cut short (see Truncated). Errors are ErrCorrupt.
func (r *Reader) Next() (*Message, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.done {
		return nil, io.EOF
	}
	for {
		var tok mcap.TokenType
		var rec []byte
		var err error
		inChunk := r.inner != nil
		if inChunk {
			tok, rec, err = r.inner.Next(r.innerBuf)
			if err != nil {
				if errors.Is(err, io.EOF) {
					r.inner = nil
					continue
				}
				return nil, r.corrupt("in chunk %d: %v", r.chunks, err)
			}
			if cap(rec) > cap(r.innerBuf) {
				r.innerBuf = rec[:0]
			}
		} else {
			tok, rec, err = r.lex.Next(r.buf)
			if err != nil {
				var tr *mcap.ErrTruncatedRecord
				// A record that claims more bytes than the whole file
				// holds (MaxRecordSize) ends beyond its end: cut short.
				if errors.Is(err, io.EOF) || errors.As(err, &tr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, mcap.ErrRecordTooLarge) {
					r.done = true
					r.truncated = true
					return nil, io.EOF
				}
				return nil, r.corrupt("%v", err)
			}
			if cap(rec) > cap(r.buf) {
				r.buf = rec[:0]
			}
		}
		if r.dataEnd && tok != mcap.TokenFooter {
			continue // the summary repeats what the data section said
		}
		switch tok {
		case mcap.TokenHeader:
			h, err := mcap.ParseHeader(rec)
			if err != nil {
				return nil, r.corrupt("header: %v", err)
			}
			r.header = h
		case mcap.TokenSchema:
			s, err := mcap.ParseSchema(rec)
			if err != nil {
				return nil, r.corrupt("schema record: %v", err)
			}
			if s.ID == 0 {
				return nil, r.corrupt("schema record with id 0")
			}
			r.schemas[s.ID] = s
		case mcap.TokenChannel:
			if err := r.channel(rec); err != nil {
				return nil, err
			}
		case mcap.TokenMessage:
			m, err := r.message(rec)
			if err != nil || m != nil {
				return m, err
			}
		case mcap.TokenChunk:
			if inChunk {
				return nil, r.corrupt("a chunk inside chunk %d", r.chunks)
			}
			if err := r.openChunk(rec); err != nil {
				return nil, err
			}
		case mcap.TokenMetadata:
			m, err := mcap.ParseMetadata(rec)
			if err != nil {
				return nil, r.corrupt("metadata record: %v", err)
			}
			r.metadata = append(r.metadata, *m)
		case mcap.TokenDataEnd:
			r.dataEnd = true
		case mcap.TokenFooter:
			r.done, r.complete = true, true
			return nil, io.EOF
		}
	}
}

func (r *Reader) channel(rec []byte) error {
	c, err := mcap.ParseChannel(rec)
	if err != nil {
		return r.corrupt("channel record: %v", err)
	}
	ch := &Channel{ID: c.ID, Topic: c.Topic, MessageEncoding: c.MessageEncoding, Metadata: c.Metadata}
	if c.SchemaID != 0 {
		s := r.schemas[c.SchemaID]
		if s == nil {
			return r.corrupt("channel %d (%q) refers to schema %d, not defined before it", c.ID, c.Topic, c.SchemaID)
		}
		ch.SchemaName, ch.SchemaEncoding, ch.SchemaData = s.Name, s.Encoding, s.Data
	}
	if fp, ok := parseHex16(c.Metadata[ChanFingerprint]); ok {
		ch.Fingerprint = fp
	}
	if old := r.channels[c.ID]; old == nil || old.Topic != ch.Topic {
		delete(r.seen, c.ID) // a new channel (or a part of a split recording)
	}
	r.channels[c.ID] = ch
	return nil
}

// message turns a message record into a Message; nil, nil for a marker
// this reader keeps to itself (none yet: markers are returned too).
func (r *Reader) message(rec []byte) (*Message, error) {
	if err := r.msg.populate(rec); err != nil {
		return nil, r.corrupt("message record: %v", err)
	}
	m := &r.msg
	ch := r.channels[m.channelID]
	if ch == nil {
		return nil, r.corrupt("message on channel %d, not defined before it", m.channelID)
	}
	m.Channel, m.Gaps, m.Marker = ch, nil, nil
	if ch.Topic == MarkerTopic {
		var mk Marker
		if err := json.Unmarshal(m.Data, &mk); err != nil {
			return nil, r.corrupt("marker %d: %v", m.Sequence, err)
		}
		r.pending[mk.Topic] = append(r.pending[mk.Topic], &mk)
		m.Marker = &mk
		m.Index = uint64(m.Sequence)
		return m, nil
	}
	switch gaps := r.pending[ch.Topic]; {
	case len(gaps) > 0:
		m.Gaps = gaps
		m.Index = gaps[len(gaps)-1].Index
		delete(r.pending, ch.Topic)
	case !r.seen[ch.ID]:
		m.Index = uint64(m.Sequence)
		if v, ok := ch.Metadata[ChanFirstIndex]; ok {
			if first, err := strconv.ParseUint(v, 10, 64); err == nil {
				m.Index = first
			}
		}
	default:
		prev := r.last[ch.ID]
		m.Index = prev + uint64(m.Sequence-uint32(prev))
	}
	r.seen[ch.ID] = true
	r.last[ch.ID] = m.Index
	return m, nil
}

// populate parses a message record (channel id, sequence, log time,
// publish time, data) without copying the data.
func (m *Message) populate(rec []byte) error {
	if len(rec) < 22 {
		return fmt.Errorf("%d bytes, want at least 22", len(rec))
	}
	m.channelID = binary.LittleEndian.Uint16(rec)
	m.Sequence = binary.LittleEndian.Uint32(rec[2:])
	m.LogTime = binary.LittleEndian.Uint64(rec[6:])
	m.PublishTime = binary.LittleEndian.Uint64(rec[14:])
	m.Data = rec[22:]
	return nil
}

// openChunk decompresses a chunk record and starts reading its records.
// The chunk's length fields are checked against the record before
// anything is allocated for them.
func (r *Reader) openChunk(rec []byte) error {
	r.chunks++
	if len(rec) < 8+8+8+4+4 {
		return r.corrupt("chunk %d: %d bytes", r.chunks, len(rec))
	}
	usize := binary.LittleEndian.Uint64(rec[16:])
	crc := binary.LittleEndian.Uint32(rec[24:])
	clen := uint64(binary.LittleEndian.Uint32(rec[28:]))
	rest := rec[32:]
	if clen > uint64(len(rest)) || uint64(len(rest))-clen < 8 {
		return r.corrupt("chunk %d: compression name overruns the record", r.chunks)
	}
	compression := string(rest[:clen])
	rest = rest[clen:]
	n := binary.LittleEndian.Uint64(rest)
	rest = rest[8:]
	if n != uint64(len(rest)) {
		return r.corrupt("chunk %d: %d bytes of records in a record holding %d", r.chunks, n, len(rest))
	}
	if usize > r.maxChunk {
		return r.corrupt("chunk %d: uncompressed size %d exceeds %d", r.chunks, usize, r.maxChunk)
	}
	var src io.Reader
	switch mcap.CompressionFormat(compression) {
	case mcap.CompressionNone:
		src = bytes.NewReader(rest)
	case mcap.CompressionZSTD:
		if r.zstd == nil {
			d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxChunk))
			if err != nil {
				return r.corrupt("chunk %d: %v", r.chunks, err)
			}
			r.zstd = d
		}
		if err := r.zstd.Reset(bytes.NewReader(rest)); err != nil {
			return r.corrupt("chunk %d: zstd: %v", r.chunks, err)
		}
		src = r.zstd
	case mcap.CompressionLZ4:
		if r.lz4 == nil {
			r.lz4 = lz4.NewReader(nil)
		}
		r.lz4.Reset(bytes.NewReader(rest))
		src = r.lz4
	default:
		return r.corrupt("chunk %d: unknown compression %q", r.chunks, compression)
	}
	// Grow with what actually decompresses, never with what a header claims.
	r.chunkBuf.Reset()
	got, err := io.Copy(&r.chunkBuf, io.LimitReader(src, int64(usize)+1))
	if err != nil {
		return r.corrupt("chunk %d: %s: %v", r.chunks, compression, err)
	}
	if uint64(got) != usize {
		return r.corrupt("chunk %d: decompresses to %d bytes, its header says %d", r.chunks, got, usize)
	}
	data := r.chunkBuf.Bytes()
	if crc != 0 && crc32.ChecksumIEEE(data) != crc {
		return r.corrupt("chunk %d: CRC mismatch", r.chunks)
	}
	inner, err := mcap.NewLexer(bytes.NewReader(data), &mcap.LexerOptions{SkipMagic: true, EmitChunks: true, MaxRecordSize: len(data)})
	if err != nil {
		return r.corrupt("chunk %d: %v", r.chunks, err)
	}
	r.inner = inner
	return nil
}

// Close releases the decompressors and closes the file OpenFile opened.
func (r *Reader) Close() error {
	if r.zstd != nil {
		r.zstd.Close()
		r.zstd = nil
	}
	if r.file != nil {
		err := r.file.Close()
		r.file = nil
		return err
	}
	return nil
}
