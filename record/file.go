package record

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"

	"github.com/foxglove/mcap/go/mcap"
)

// fileWriter writes one MCAP file from cut chunks. Schema and Channel
// records go into the data section, outside chunks, right before the first
// chunk that uses them; each chunk is compressed, written with its message
// indexes and flushed to the file at once, so a process killed at any
// moment leaves every chunk written before it complete.
type fileWriter struct {
	path    string
	f       *os.File
	bw      *bufio.Writer
	w       *mcap.Writer
	z       *compressor
	opened  int64 // CLOCK_MONOTONIC at creation, for split durations
	schemas map[uint16]bool
	chans   map[uint16]bool
	totals  map[uint16]*chanStats // per channel, this file
	order   []uint16
}

// createFile creates path (which must not exist) and writes the header and
// the recording's metadata.
func createFile(path string, z *compressor, meta map[string]string, mono int64) (*fileWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	fw := &fileWriter{path: path, f: f, bw: bufio.NewWriterSize(f, 1<<20), z: z, opened: mono,
		schemas: map[uint16]bool{}, chans: map[uint16]bool{}, totals: map[uint16]*chanStats{}}
	fw.w, err = mcap.NewWriter(fw.bw, &mcap.WriterOptions{IncludeCRC: true, Chunked: false})
	if err == nil {
		err = fw.w.WriteHeader(&mcap.Header{Profile: Profile, Library: "sensorbus record"})
	}
	if err == nil {
		err = fw.w.WriteMetadata(&mcap.Metadata{Name: MetaRecording, Metadata: meta})
	}
	if err == nil {
		err = fw.bw.Flush()
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("record: %s: %w", path, err)
	}
	return fw, nil
}

// size is the file's length so far.
func (fw *fileWriter) size() int64 { return int64(fw.w.Offset()) }

// write appends chunk c and flushes it to the file.
func (fw *fileWriter) write(c *chunk) error {
	if c.empty() {
		return nil
	}
	for _, id := range c.order {
		st := c.chans[id]
		if err := fw.declare(st.ch, st.firstIdx); err != nil {
			return err
		}
		t := fw.totals[id]
		if t == nil {
			t = &chanStats{ch: st.ch, firstIdx: st.firstIdx}
			fw.totals[id] = t
			fw.order = append(fw.order, id)
		}
		if t.messages == 0 && st.messages > 0 {
			t.firstIdx = st.firstIdx
		}
		t.messages += st.messages
		t.lost += st.lost
		t.restarts += st.restarts
		t.before += st.before
		t.bytes += st.bytes
		if st.messages > 0 {
			t.lastIdx = st.lastIdx
		}
		fw.w.Statistics.ChannelMessageCounts[id] += uint64(len(c.index[id].Entries()))
	}
	rec, err := fw.z.compress(c)
	if err != nil {
		return err
	}
	if err := fw.w.WriteChunkWithIndexes(rec, c.indexes()); err != nil {
		return fmt.Errorf("record: %s: %w", fw.path, err)
	}
	fw.w.Statistics.MessageCount += c.messages
	if err := fw.bw.Flush(); err != nil {
		return fmt.Errorf("record: %s: %w", fw.path, err)
	}
	return nil
}

// declare writes ch's schema and channel records unless this file has
// them already. first is the full index of ch's first message here.
func (fw *fileWriter) declare(ch *channel, first uint64) error {
	if fw.chans[ch.id] {
		return nil
	}
	var schemaID uint16
	if ch.schema != nil {
		schemaID = ch.schema.ID
		if !fw.schemas[schemaID] {
			if err := fw.w.WriteSchema(ch.schema); err != nil {
				return fmt.Errorf("record: %s: %w", fw.path, err)
			}
			fw.schemas[schemaID] = true
		}
	}
	meta := make(map[string]string, len(ch.meta)+1)
	for k, v := range ch.meta {
		meta[k] = v
	}
	if ch.topic != MarkerTopic {
		meta[ChanFirstIndex] = strconv.FormatUint(first, 10)
	}
	if err := fw.w.WriteChannel(&mcap.Channel{ID: ch.id, SchemaID: schemaID, Topic: ch.topic,
		MessageEncoding: ch.encoding, Metadata: meta}); err != nil {
		return fmt.Errorf("record: %s: %w", fw.path, err)
	}
	fw.chans[ch.id] = true
	return nil
}

// finish writes the summary metadata, the summary section and the footer,
// and closes the file.
func (fw *fileWriter) finish() error {
	meta := map[string]string{}
	ids := append([]uint16(nil), fw.order...)
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		t := fw.totals[id]
		if t.ch.topic == MarkerTopic {
			continue
		}
		// Two channels of one topic (a restart with another schema) add up.
		add := func(k string, v uint64) {
			old, _ := strconv.ParseUint(meta[k+"."+t.ch.topic], 10, 64)
			meta[k+"."+t.ch.topic] = strconv.FormatUint(old+v, 10)
		}
		add("messages", t.messages)
		add("lost", t.lost)
		add("restarts", t.restarts)
		add("before", t.before)
		if _, ok := meta["first_index."+t.ch.topic]; !ok && t.messages > 0 {
			meta["first_index."+t.ch.topic] = strconv.FormatUint(t.firstIdx, 10)
		}
		if t.messages > 0 {
			meta["last_index."+t.ch.topic] = strconv.FormatUint(t.lastIdx, 10)
		}
	}
	err := fw.w.WriteMetadata(&mcap.Metadata{Name: MetaSummary, Metadata: meta})
	if err == nil {
		err = fw.w.Close()
	}
	if err == nil {
		err = fw.bw.Flush()
	}
	if cerr := fw.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("record: finish %s: %w", fw.path, err)
	}
	return nil
}
