package record

import (
	"strconv"
	"time"

	"github.com/foxglove/mcap/go/mcap"

	"github.com/sensorbus/sensorbus/schema"
)

// synthFile describes a recording made without a bus: synthetic IMU
// samples with exact publish times, for fuzz seeds, bad-input tests and
// the replay benchmarks.
type synthFile struct {
	n           int
	interval    time.Duration
	compression Compression
	chunkSize   int
	gapAt       int    // a loss marker before sample gapAt (0: none)
	gapLen      uint64 // samples lost there
	unknown     bool   // a schema no registry knows
	truncate    bool   // leave the file without its summary and footer
}

func (f synthFile) write(path string) error {
	if f.compression == "" {
		f.compression = CompressZstd
	}
	if f.chunkSize == 0 {
		f.chunkSize = 64 << 10
	}
	z, err := newCompressor(f.compression)
	if err != nil {
		return err
	}
	defer z.close()
	s := schema.IMUSchema
	name, fp, known := s.Name, s.Fingerprint, s
	if f.unknown {
		name, fp, known = "acme.Thing", 42, nil
	}
	ms := &mcap.Schema{ID: 2, Name: name, Encoding: SchemaEncoding, Data: jsonSchema(name, fp, known)}
	ch := &channel{id: 2, topic: "imu", encoding: MessageEncodingMsgpack, schema: ms, known: known,
		meta: map[string]string{ChanFingerprint: hex16(fp), ChanSlotSize: "128", ChanSlots: "4096"}}
	mk := &channel{id: 1, topic: MarkerTopic, encoding: MessageEncodingJSON, meta: map[string]string{},
		schema: &mcap.Schema{ID: 1, Name: MarkerSchemaName, Encoding: SchemaEncoding, Data: markerSchema}}
	fw, err := createFile(path, z, map[string]string{MetaMode: "synthetic", MetaStarted: strconv.Itoa(0)}, 0)
	if err != nil {
		return err
	}
	g, err := newSynth()
	if err != nil {
		return err
	}
	t0 := uint64(time.Now().UnixNano())
	c := newChunk(f.chunkSize)
	idx := uint64(0)
	for i := range f.n {
		if i == f.gapAt && f.gapLen > 0 {
			idx += f.gapLen
		}
		pub := t0 + uint64(i)*uint64(f.interval)
		m, err := g.Make(idx, int64(pub))
		if err != nil {
			return err
		}
		data, err := m.MarshalMsg(nil)
		if err != nil {
			return err
		}
		if i == f.gapAt && f.gapLen > 0 {
			c.marker(mk, ch, &Marker{Kind: MarkerLoss, Topic: "imu", Lost: f.gapLen, Index: idx}, 0, pub+1000, pub, 0)
		}
		c.sample(ch, idx, pub+1000, pub, data, 0)
		idx++
		if len(c.buf) >= f.chunkSize {
			if err := fw.write(c); err != nil {
				return err
			}
			c = newChunk(f.chunkSize)
		}
	}
	if err := fw.write(c); err != nil {
		return err
	}
	if f.truncate {
		fw.bw.Flush()
		return fw.f.Close()
	}
	return fw.finish()
}
