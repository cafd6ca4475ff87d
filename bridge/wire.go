package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// The wire format: what a bridge puts on NATS for one exported topic.
//
// Every message goes to the subject SubjectPrefix + "." + HOST + "." + TOPIC
// and carries these headers (values in ASCII):
//
//	Sensorbus-Format       "sample/1", "batch/1" or "end/1" (see below)
//	Sensorbus-Generation   the topic's generation, 16 hex digits: new for every publisher
//	Sensorbus-Index        ring index of the (first) sample, decimal; for end/1 the
//	                       index the generation's next sample would have had
//	Sensorbus-Count        samples in the message, decimal (1 for sample/1, 0 for end/1)
//	Sensorbus-Time         publish time of the (first) sample, Unix ns, decimal
//	Sensorbus-Schema       schema name; absent for an untyped topic
//	Sensorbus-Fingerprint  schema fingerprint, 16 hex digits (0 for untyped)
//	Sensorbus-Slot-Size    the remote ring's slot size, decimal
//	Sensorbus-Slots        the remote ring's number of slots, decimal
//	Nats-Msg-Id            JetStream mode only: HOST.TOPIC.GENERATION.INDEX, for de-duplication
//
// Formats:
//
//	sample/1  the body is one sample's bytes, unchanged (a topic's samples
//	          are readable by any NATS client that knows the schema)
//	batch/1   the body is several samples (below)
//	end/1     no body: the remote publisher closed or died; nothing of this
//	          generation follows
//
// The body of a batch/1 message, version 1:
//
//	offset 0  u8      version, 1
//	offset 1  u32 LE  count: number of records, 1 to MaxBatchSamples
//	offset 5  count records, each:
//	            uvarint  index delta: the first record's absolute ring
//	                     index; for the others at least 1, added to the
//	                     previous record's index
//	            varint   time delta: the first record's publish time (Unix
//	                     ns); for the others added to the previous one's
//	            uvarint  length of the sample in bytes
//	            bytes    the sample, unchanged
//
// Varints are as encoding/binary writes them, in their shortest form.
// A decoder must consume the body exactly: a short, long or inconsistent
// body is refused whole (ErrBadBatch), never delivered in part.

// Header names. None starts with the reserved "Nats-" prefix except
// HeaderMsgID, which is JetStream's de-duplication header.
const (
	HeaderFormat      = "Sensorbus-Format"
	HeaderGeneration  = "Sensorbus-Generation"
	HeaderIndex       = "Sensorbus-Index"
	HeaderCount       = "Sensorbus-Count"
	HeaderTime        = "Sensorbus-Time"
	HeaderSchema      = "Sensorbus-Schema"
	HeaderFingerprint = "Sensorbus-Fingerprint"
	HeaderSlotSize    = "Sensorbus-Slot-Size"
	HeaderSlots       = "Sensorbus-Slots"
	HeaderMsgID       = "Nats-Msg-Id"
)

// Values of HeaderFormat.
const (
	FormatSample = "sample/1"
	FormatBatch  = "batch/1"
	FormatEnd    = "end/1"
)

// SubjectPrefix is the first token of every bridge subject.
const SubjectPrefix = "sensorbus"

// BatchVersion is the version of the batch body this package writes and reads.
const BatchVersion = 1

// MaxBatchSamples bounds the records of one batch.
const MaxBatchSamples = 1 << 16

// batchHeaderLen is the fixed part of a batch body: version and count.
const batchHeaderLen = 5

// minRecordLen is the smallest record: three one-byte varints, no data.
const minRecordLen = 3

// ErrBadBatch is returned for a batch body that breaks the format.
var ErrBadBatch = errors.New("bridge: malformed batch")

// Record is one sample of a batch.
type Record struct {
	Index             uint64 // ring index on the remote topic
	PublishedUnixNano int64  // publish time on the remote host
	Data              []byte // the sample's bytes; aliases the decoded body
}

// DecodeBatch decodes a batch/1 body, appending its records to dst. The
// records' Data alias b. Any violation of the format gives an error that
// wraps ErrBadBatch and says what is wrong; dst is then returned as given.
// The work and the memory taken are bounded by len(b).
func DecodeBatch(b []byte, dst []Record) ([]Record, error) {
	if len(b) < batchHeaderLen {
		return dst, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrBadBatch, len(b), batchHeaderLen)
	}
	if b[0] != BatchVersion {
		return dst, fmt.Errorf("%w: version %d, want %d", ErrBadBatch, b[0], BatchVersion)
	}
	count := binary.LittleEndian.Uint32(b[1:])
	if count == 0 || count > MaxBatchSamples {
		return dst, fmt.Errorf("%w: count %d outside 1..%d", ErrBadBatch, count, MaxBatchSamples)
	}
	if rest := len(b) - batchHeaderLen; uint64(count) > uint64(rest/minRecordLen) {
		return dst, fmt.Errorf("%w: count %d cannot fit in %d bytes", ErrBadBatch, count, rest)
	}
	orig := len(dst)
	var index uint64
	var t int64
	p := b[batchHeaderLen:]
	for i := range int(count) {
		di, n := uvarint(p)
		if n <= 0 {
			return dst[:orig], fmt.Errorf("%w: record %d: bad index delta", ErrBadBatch, i)
		}
		p = p[n:]
		udt, n := uvarint(p)
		dt := int64(udt>>1) ^ -int64(udt&1) // zig-zag, as binary.Varint
		if n <= 0 {
			return dst[:orig], fmt.Errorf("%w: record %d: bad time delta", ErrBadBatch, i)
		}
		p = p[n:]
		size, n := uvarint(p)
		if n <= 0 {
			return dst[:orig], fmt.Errorf("%w: record %d: bad length", ErrBadBatch, i)
		}
		p = p[n:]
		if size > uint64(len(p)) {
			return dst[:orig], fmt.Errorf("%w: record %d: length %d exceeds the %d bytes left", ErrBadBatch, i, size, len(p))
		}
		if i == 0 {
			index, t = di, dt
		} else {
			if di == 0 || index+di < index {
				return dst[:orig], fmt.Errorf("%w: record %d: index delta %d does not advance from %d", ErrBadBatch, i, di, index)
			}
			if (dt > 0 && t > math.MaxInt64-dt) || (dt < 0 && t < math.MinInt64-dt) {
				return dst[:orig], fmt.Errorf("%w: record %d: time overflows", ErrBadBatch, i)
			}
			index += di
			t += dt
		}
		dst = append(dst, Record{Index: index, PublishedUnixNano: t, Data: p[:size:size]})
		p = p[size:]
	}
	if len(p) != 0 {
		return dst[:orig], fmt.Errorf("%w: %d bytes after the last record", ErrBadBatch, len(p))
	}
	return dst, nil
}

// uvarint is binary.Uvarint restricted to the shortest encoding, so that a
// body has one meaning and one spelling.
func uvarint(p []byte) (uint64, int) {
	v, n := binary.Uvarint(p)
	if n <= 0 || n != max(1, (bits.Len64(v)+6)/7) {
		return 0, -1
	}
	return v, n
}

// batchWriter builds a batch body in a buffer it reuses.
type batchWriter struct {
	buf       []byte
	count     int
	first     Record // the first record's index and time; Data unused
	lastIndex uint64
	lastTime  int64
	lastLen   int // length of the last record's data, at the end of buf
}

func (w *batchWriter) reset() {
	w.buf = append(w.buf[:0], BatchVersion, 0, 0, 0, 0)
	w.count = 0
}

// size returns the body's length with one more record of n data bytes (at most).
func (w *batchWriter) sizeWith(n int) int {
	return len(w.buf) + 3*binary.MaxVarintLen64 + n
}

// add appends a record. The caller keeps index increasing.
func (w *batchWriter) add(index uint64, t int64, data []byte) {
	if w.count == 0 {
		w.first = Record{Index: index, PublishedUnixNano: t}
		w.buf = binary.AppendUvarint(w.buf, index)
		w.buf = binary.AppendVarint(w.buf, t)
	} else {
		w.buf = binary.AppendUvarint(w.buf, index-w.lastIndex)
		w.buf = binary.AppendVarint(w.buf, t-w.lastTime)
	}
	w.buf = binary.AppendUvarint(w.buf, uint64(len(data)))
	w.buf = append(w.buf, data...)
	w.count++
	w.lastIndex, w.lastTime, w.lastLen = index, t, len(data)
}

// body returns the finished batch.
func (w *batchWriter) body() []byte {
	binary.LittleEndian.PutUint32(w.buf[1:], uint32(w.count))
	return w.buf
}

// single returns the data of the only record.
func (w *batchWriter) single() []byte {
	return w.buf[len(w.buf)-w.lastLen:]
}
