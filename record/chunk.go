package record

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/foxglove/mcap/go/mcap"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/sensorbus/sensorbus/schema"
)

// Compression is how chunks are compressed.
type Compression string

// Compressions.
const (
	CompressZstd Compression = "zstd" // the default: about as fast as lz4 at its fastest level here, and smaller
	CompressLZ4  Compression = "lz4"
	CompressNone Compression = "none"
)

func (c Compression) validate() error {
	switch c {
	case CompressZstd, CompressLZ4, CompressNone:
		return nil
	}
	return fmt.Errorf("record: unknown compression %q (zstd, lz4 or none)", string(c))
}

// format is the name in the chunk record.
func (c Compression) format() mcap.CompressionFormat {
	switch c {
	case CompressZstd:
		return mcap.CompressionZSTD
	case CompressLZ4:
		return mcap.CompressionLZ4
	}
	return mcap.CompressionNone
}

// channel is one recorded channel: a topic with one schema. It never
// changes once made, so chunks and files share it without locks.
type channel struct {
	id       uint16
	topic    string
	encoding string // MessageEncodingMsgpack or MessageEncodingJSON
	meta     map[string]string
	schema   *mcap.Schema   // nil for an untyped topic
	known    *schema.Schema // the type, if this build knows it
}

// chanStats is what one chunk holds of one channel.
type chanStats struct {
	ch                *channel
	messages          uint64
	lost, restarts    uint64 // counted by the markers in this chunk
	before            uint64 // samples gone before the recorder attached
	firstIdx, lastIdx uint64 // full ring indices
	bytes             uint64
}

// chunk gathers records, uncompressed, until it is written. Only its
// builder touches it until it is cut; after that it is immutable, so a
// snapshot may write it while newer chunks are built.
type chunk struct {
	buf        []byte
	start, end uint64 // log times
	messages   uint64 // every message, markers included
	opened     int64  // CLOCK_MONOTONIC of the first record
	chans      map[uint16]*chanStats
	order      []uint16 // channels in order of first use
	index      map[uint16]*mcap.MessageIndex
}

func newChunk(size int) *chunk {
	return &chunk{buf: make([]byte, 0, size+size/8), start: math.MaxUint64,
		chans: map[uint16]*chanStats{}, index: map[uint16]*mcap.MessageIndex{}}
}

// reset empties c for reuse, keeping its buffers.
func (c *chunk) reset() {
	c.buf = c.buf[:0]
	c.start, c.end, c.messages, c.opened = math.MaxUint64, 0, 0, 0
	clear(c.chans)
	c.order = c.order[:0]
	for _, idx := range c.index {
		idx.Reset()
	}
}

func (c *chunk) empty() bool { return c.messages == 0 }

// stats returns the channel's entry in this chunk, creating it.
func (c *chunk) stats(ch *channel) *chanStats {
	st := c.chans[ch.id]
	if st == nil {
		st = &chanStats{ch: ch}
		c.chans[ch.id] = st
		c.order = append(c.order, ch.id)
		if c.index[ch.id] == nil {
			c.index[ch.id] = &mcap.MessageIndex{ChannelID: ch.id}
		}
	}
	return st
}

// message appends one Message record (MCAP opcode 0x05: channel id,
// sequence, log time, publish time, data).
func (c *chunk) message(ch *channel, seq uint32, logTime, pubTime uint64, data []byte, mono int64) {
	if c.messages == 0 {
		c.opened = mono
	}
	c.stats(ch)
	off := len(c.buf)
	n := 2 + 4 + 8 + 8 + len(data)
	c.buf = append(c.buf, byte(mcap.OpMessage))
	c.buf = binary.LittleEndian.AppendUint64(c.buf, uint64(n))
	c.buf = binary.LittleEndian.AppendUint16(c.buf, ch.id)
	c.buf = binary.LittleEndian.AppendUint32(c.buf, seq)
	c.buf = binary.LittleEndian.AppendUint64(c.buf, logTime)
	c.buf = binary.LittleEndian.AppendUint64(c.buf, pubTime)
	c.buf = append(c.buf, data...)
	c.index[ch.id].Add(logTime, uint64(off))
	c.messages++
	c.start = min(c.start, logTime)
	c.end = max(c.end, logTime)
}

// sample appends a recorded sample of ch with its full ring index.
func (c *chunk) sample(ch *channel, index uint64, logTime, pubTime uint64, data []byte, mono int64) {
	st := c.stats(ch)
	if st.messages == 0 {
		st.firstIdx = index
	}
	st.messages++
	st.lastIdx = index
	st.bytes += uint64(len(data))
	c.message(ch, uint32(index), logTime, pubTime, data, mono)
}

// marker appends m on the marker channel mc, right before the sample of
// ch it describes, and counts it for ch.
func (c *chunk) marker(mc, ch *channel, m *Marker, seq uint32, logTime, pubTime uint64, mono int64) {
	st := c.stats(ch)
	switch m.Kind {
	case MarkerLoss:
		st.lost += m.Lost
	case MarkerRestart:
		st.lost += m.Lost
		st.restarts++
	case MarkerBefore:
		st.before += m.Lost
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // strings and numbers only
	}
	c.message(mc, seq, logTime, pubTime, b, mono)
}

// compressor compresses chunks; one per goroutine that writes files.
type compressor struct {
	c    Compression
	zstd *zstd.Encoder
	lz4  *lz4.Writer
	out  bytes.Buffer
}

func newCompressor(c Compression) (*compressor, error) {
	z := &compressor{c: c}
	switch c {
	case CompressZstd:
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		z.zstd = enc
	case CompressLZ4:
		z.lz4 = lz4.NewWriter(nil)
		// The chunk record carries a CRC of the uncompressed records:
		// the frame's own content checksum would cost 5 % more CPU for
		// nothing.
		if err := z.lz4.Apply(lz4.ChecksumOption(false)); err != nil {
			return nil, err
		}
	}
	return z, nil
}

func (z *compressor) close() {
	if z.zstd != nil {
		z.zstd.Close()
	}
}

// compress returns c as an MCAP chunk record; its Records are valid until
// the next call.
func (z *compressor) compress(c *chunk) (*mcap.Chunk, error) {
	out := &mcap.Chunk{MessageStartTime: c.start, MessageEndTime: c.end, UncompressedSize: uint64(len(c.buf)),
		UncompressedCRC: crc32.ChecksumIEEE(c.buf), Compression: string(z.c.format())}
	if c.messages == 0 {
		out.MessageStartTime = 0
	}
	switch z.c {
	case CompressZstd:
		out.Records = z.zstd.EncodeAll(c.buf, z.out.Bytes()[:0])
		z.out = *bytes.NewBuffer(out.Records)
	case CompressLZ4:
		z.out.Reset()
		z.lz4.Reset(&z.out)
		if _, err := z.lz4.Write(c.buf); err != nil {
			return nil, fmt.Errorf("record: lz4: %w", err)
		}
		if err := z.lz4.Close(); err != nil {
			return nil, fmt.Errorf("record: lz4: %w", err)
		}
		out.Records = z.out.Bytes()
	default:
		out.Records = c.buf
	}
	return out, nil
}

// indexes returns the chunk's message indexes in channel order.
func (c *chunk) indexes() []*mcap.MessageIndex {
	out := make([]*mcap.MessageIndex, 0, len(c.order))
	for _, id := range c.order {
		out = append(out, c.index[id])
	}
	return out
}
