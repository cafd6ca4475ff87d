package ring

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
)

// A segment file is a header followed by slotCount slots:
//
//	0    static header: written once before the file gets its name,
//	     read-only afterwards (offsets off*)
//	192  closed flag                        (written once, at Close)
//	256  heartbeat (u32, ms)                (written ≤ 10 times a second)
//	384  write cursor (split64)             (written once per sample)
//	512  slot 0, slot 1, ... each slotStride bytes, cache-line aligned
//
// The per-sample cursor sits alone in a 128-byte block, so a reader polling
// it never shares a cache line (or an adjacent-line prefetch pair) with the
// heartbeat or the static fields.
//
// Every value that crosses processes while it changes is a 32-bit word
// accessed with sync/atomic. 64-bit values that change (cursor, heartbeat)
// are split into 32-bit words (see split64): on 32-bit ARM before ARMv7,
// Go implements 64-bit atomics with a process-local lock, which does not
// exclude another process. Static fields need no atomics: the file is
// initialised before it is linked into the directory, and opening and
// mapping it happen after the link in every reader.
//
// All multi-byte fields are in the host's byte order (every process on a
// host shares it); the static ones are written and read with
// binary.LittleEndian, which is the host order on every supported target.
const (
	magic   = "SNSRRING"
	version = 1

	offMagic       = 0  // [8]byte
	offVersion     = 8  // u32
	offHeaderSize  = 12 // u32: offset of slot 0
	offSlotSize    = 16 // u32: payload capacity of a slot
	offSlotStride  = 20 // u32: bytes from one slot to the next
	offSlotCount   = 24 // u32: power of two
	offSchemaLen   = 28 // u32: bytes used of the schema name
	offTotalSize   = 32 // u64: bytes the writer made the file
	offFingerprint = 40 // u64: schema fingerprint (0: untyped)
	offGeneration  = 48 // u64: random, never 0; new for every Create
	offCreated     = 56 // i64: wall-clock creation time, Unix ns
	offWriterPID   = 64 // u32
	offWriterStart = 72 // u64: writer's start time, clock ticks after boot (/proc/PID/stat field 22)
	offSchemaName  = 80 // [maxSchemaName]byte

	offClosed    = 192 // u32: 1 once the writer closed gracefully
	offHeartbeat = 256 // u32: CLOCK_MONOTONIC ms (mod 2^32) of the writer's last sign of life
	offCursor    = 384 // split64: samples published so far

	headerSize = 512

	maxSchemaName = 64

	// A slot: seq, len, index, publish time, then the payload.
	slotOffSeq   = 0  // u32: seqlock; 0 never written, odd while being written
	slotOffLen   = 4  // u32: payload length, or voidLen
	slotOffIndex = 8  // u64: the sample number this slot holds
	slotOffTime  = 16 // i64: CLOCK_MONOTONIC ns at publish
	slotOffData  = 24
	slotAlign    = 64 // slots start on cache lines

	// voidLen marks a slot whose payload was destroyed by an aborted
	// reservation: the sample it held is lost.
	voidLen = math.MaxUint32

	// Bounds on geometry, checked at Create and at attach.
	MinSlotSize = 8
	MaxSlotSize = 16 << 20
	MaxSlots    = 1 << 22
	// MaxSegmentSize keeps a segment mappable on 32-bit systems.
	MaxSegmentSize = 1<<31 - 1
)

// The wake file: a small file readers may write, holding the futex word
// readers sleep on and the flag by which a reader about to sleep asks the
// writer to wake it. It is a file of its own because readers map the ring
// read-only; a reader that scribbles on it can only cause extra or late
// wake-ups (waits are bounded by the liveness interval), never a wrong
// sample.
const (
	wakeMagic      = "SNSRWAKE"
	offWakeMagic   = 0  // [8]byte
	offWakeVersion = 8  // u32
	offWakeGen     = 16 // u64: generation of the ring it belongs to
	offWaiting     = 64 // u32: set to 1 by a reader about to sleep, cleared by the writer when it wakes
	offWakeSeq     = 68 // u32: futex word; bumped by whoever wakes the sleepers
	wakeSize       = 128
)

// Lock bytes. A writer holds a write lock on lockWriter for its lifetime;
// a process removing or replacing a file holds lockJanitor while it checks
// and unlinks, so two removers never act on the same file at once. Both are
// open-file-description locks (see internal/sys).
const (
	lockWriter  = 0
	lockJanitor = 1
)

// geometry is the validated shape of a ring.
type geometry struct {
	slotSize   int // payload capacity
	slotStride int
	slotCount  int
	totalSize  int // header + slots, rounded up to the page size
}

func slotStride(slotSize int) int {
	return (slotOffData + slotSize + slotAlign - 1) &^ (slotAlign - 1)
}

// newGeometry checks a requested shape and computes the layout.
func newGeometry(slotSize, slotCount, pageSize int) (geometry, error) {
	if slotSize < MinSlotSize || slotSize > MaxSlotSize {
		return geometry{}, fmt.Errorf("slot size %d out of range [%d, %d]", slotSize, MinSlotSize, MaxSlotSize)
	}
	if slotCount < 1 || slotCount > MaxSlots || bits.OnesCount(uint(slotCount)) != 1 {
		return geometry{}, fmt.Errorf("slot count %d is not a power of two in [1, %d]", slotCount, MaxSlots)
	}
	stride := slotStride(slotSize)
	total := uint64(headerSize) + uint64(stride)*uint64(slotCount)
	total = (total + uint64(pageSize) - 1) &^ uint64(pageSize-1)
	if total > MaxSegmentSize {
		return geometry{}, fmt.Errorf("segment of %d slots of %d bytes needs %d bytes, more than %d", slotCount, slotSize, total, MaxSegmentSize)
	}
	return geometry{slotSize: slotSize, slotStride: stride, slotCount: slotCount, totalSize: int(total)}, nil
}

// Header is the static description of a segment.
type Header struct {
	SlotSize          int    // payload capacity of a slot
	Slots             int    // number of slots
	SchemaName        string // as given to Create
	SchemaFingerprint uint64 // as given to Create
	Generation        uint64 // random, new for every Create
	CreatedUnixNano   int64  // wall clock at Create
	WriterPID         int    // the writer's process id
	WriterStart       uint64 // the writer's start time (clock ticks after boot)
	Size              int    // bytes of the segment file
}

// writeHeader fills the static header of a new segment.
func writeHeader(b []byte, g geometry, h *Header) {
	le := binary.LittleEndian
	le.PutUint32(b[offVersion:], version)
	le.PutUint32(b[offHeaderSize:], headerSize)
	le.PutUint32(b[offSlotSize:], uint32(g.slotSize))
	le.PutUint32(b[offSlotStride:], uint32(g.slotStride))
	le.PutUint32(b[offSlotCount:], uint32(g.slotCount))
	le.PutUint32(b[offSchemaLen:], uint32(len(h.SchemaName)))
	le.PutUint64(b[offTotalSize:], uint64(g.totalSize))
	le.PutUint64(b[offFingerprint:], h.SchemaFingerprint)
	le.PutUint64(b[offGeneration:], h.Generation)
	le.PutUint64(b[offCreated:], uint64(h.CreatedUnixNano))
	le.PutUint32(b[offWriterPID:], uint32(h.WriterPID))
	le.PutUint64(b[offWriterStart:], h.WriterStart)
	copy(b[offSchemaName:offSchemaName+maxSchemaName], h.SchemaName)
	copy(b[offMagic:], magic) // last, though nobody can see the file yet
}

// parseHeader validates the static header of a segment whose file is
// fileSize bytes long. b holds at least the first headerSize bytes (or the
// whole file if shorter). It trusts nothing: every field is checked against
// the file size and the bounds before it is used.
func parseHeader(b []byte, fileSize int64, pageSize int) (Header, geometry, error) {
	if fileSize < headerSize || len(b) < headerSize {
		return Header{}, geometry{}, badSegment("file is %d bytes, shorter than the %d-byte header", fileSize, headerSize)
	}
	if string(b[offMagic:offMagic+len(magic)]) != magic {
		return Header{}, geometry{}, badSegment("magic %q, want %q", b[offMagic:offMagic+len(magic)], magic)
	}
	le := binary.LittleEndian
	if v := le.Uint32(b[offVersion:]); v != version {
		return Header{}, geometry{}, badSegment("layout version %d, this build reads version %d", v, version)
	}
	if hs := le.Uint32(b[offHeaderSize:]); hs != headerSize {
		return Header{}, geometry{}, badSegment("header size %d, want %d", hs, headerSize)
	}
	slotSize := le.Uint32(b[offSlotSize:])
	slotCount := le.Uint32(b[offSlotCount:])
	g, err := newGeometry(int(slotSize), int(slotCount), pageSize)
	if err != nil {
		return Header{}, geometry{}, badSegment("%v", err)
	}
	if s := le.Uint32(b[offSlotStride:]); s != uint32(g.slotStride) {
		return Header{}, geometry{}, badSegment("slot stride %d, want %d for %d-byte slots", s, g.slotStride, slotSize)
	}
	total := le.Uint64(b[offTotalSize:])
	need := uint64(headerSize) + uint64(g.slotStride)*uint64(g.slotCount)
	if total < need || total > MaxSegmentSize {
		return Header{}, geometry{}, badSegment("recorded size %d does not hold %d slots of stride %d", total, g.slotCount, g.slotStride)
	}
	if uint64(fileSize) < total {
		return Header{}, geometry{}, badSegment("file is %d bytes, header says %d: truncated", fileSize, total)
	}
	g.totalSize = int(total)
	nameLen := le.Uint32(b[offSchemaLen:])
	if nameLen > maxSchemaName {
		return Header{}, geometry{}, badSegment("schema name length %d exceeds %d", nameLen, maxSchemaName)
	}
	gen := le.Uint64(b[offGeneration:])
	if gen == 0 {
		return Header{}, geometry{}, badSegment("generation is 0")
	}
	h := Header{
		SlotSize:          g.slotSize,
		Slots:             g.slotCount,
		SchemaName:        string(b[offSchemaName : offSchemaName+int(nameLen)]),
		SchemaFingerprint: le.Uint64(b[offFingerprint:]),
		Generation:        gen,
		CreatedUnixNano:   int64(le.Uint64(b[offCreated:])),
		WriterPID:         int(le.Uint32(b[offWriterPID:])),
		WriterStart:       le.Uint64(b[offWriterStart:]),
		Size:              g.totalSize,
	}
	return h, g, nil
}

// parseWake validates a wake file and returns the generation it belongs to.
func parseWake(b []byte, fileSize int64) (uint64, error) {
	if fileSize < wakeSize || len(b) < wakeSize {
		return 0, badSegment("wake file is %d bytes, want at least %d", fileSize, wakeSize)
	}
	if string(b[offWakeMagic:offWakeMagic+len(wakeMagic)]) != wakeMagic {
		return 0, badSegment("wake file magic %q, want %q", b[offWakeMagic:offWakeMagic+len(wakeMagic)], wakeMagic)
	}
	if v := binary.LittleEndian.Uint32(b[offWakeVersion:]); v != version {
		return 0, badSegment("wake file version %d, want %d", v, version)
	}
	return binary.LittleEndian.Uint64(b[offWakeGen:]), nil
}
