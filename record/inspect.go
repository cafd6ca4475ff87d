package record

import (
	"errors"
	"io"
	"os"
	"sort"
	"strconv"
)

// Summary describes a recording: what busctl info FILE.mcap prints.
type Summary struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	// Complete: the file was finished (footer read). A file cut short
	// (Truncated) is read up to its last complete record.
	Complete  bool   `json:"complete"`
	Truncated bool   `json:"truncated"`
	Profile   string `json:"profile"`
	Library   string `json:"library"`
	// Recording is the MetaRecording metadata: host, version, ...
	Recording map[string]string `json:"recording,omitempty"`
	// Start and End are the first and last log times (Unix ns) of the
	// samples; Duration is End - Start.
	Start    uint64 `json:"start_ns"`
	End      uint64 `json:"end_ns"`
	Duration uint64 `json:"duration_ns"`
	Messages uint64 `json:"messages"` // samples, markers not included
	Lost     uint64 `json:"lost"`     // samples the recorder lost (markers of kind loss and restart)
	Markers  uint64 `json:"markers"`
	Chunks   int    `json:"chunks"`
	// Topics, sorted by name; Channels, by id (markers included), as an
	// MCAP reader sees them.
	Topics   []TopicSummary   `json:"topics"`
	Channels []ChannelSummary `json:"channels"`
}

// TopicSummary describes one recorded topic.
type TopicSummary struct {
	Topic       string `json:"topic"`
	Schema      string `json:"schema"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Encoding    string `json:"encoding"`
	Messages    uint64 `json:"messages"`
	Lost        uint64 `json:"lost"`
	Before      uint64 `json:"before"` // gone from the ring before the recorder attached
	Restarts    uint64 `json:"restarts"`
	FirstIndex  uint64 `json:"first_index"`
	LastIndex   uint64 `json:"last_index"`
	Start       uint64 `json:"start_ns"`
	End         uint64 `json:"end_ns"`
	// From the channel: the ring's geometry and the publisher.
	SlotSize     int    `json:"slot_size,omitempty"`
	Slots        int    `json:"slots,omitempty"`
	PublisherPID int    `json:"publisher_pid,omitempty"`
	Generation   string `json:"generation,omitempty"`
	// Gaps lists where samples are missing, in file order.
	Gaps []Marker `json:"gaps,omitempty"`
}

// ChannelSummary is one MCAP channel: what any MCAP reader counts.
type ChannelSummary struct {
	ID              uint16 `json:"id"`
	Topic           string `json:"topic"`
	MessageEncoding string `json:"message_encoding"`
	SchemaName      string `json:"schema_name"`
	SchemaEncoding  string `json:"schema_encoding"`
	Messages        uint64 `json:"messages"`
	FirstLogTime    uint64 `json:"first_log_time"`
	LastLogTime     uint64 `json:"last_log_time"`
}

// Inspect reads a whole recording, finished or cut short, and describes
// it. It reads every message rather than trusting the summary section, so
// it says the same of a file with or without one.
func Inspect(path string) (Summary, error) {
	r, err := OpenFile(path)
	if err != nil {
		return Summary{}, err
	}
	defer r.Close()
	sum := Summary{Path: path}
	if fi, err := os.Stat(path); err == nil {
		sum.Size = fi.Size()
	}
	topics := map[string]*TopicSummary{}
	chans := map[uint16]*ChannelSummary{}
	for {
		m, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Summary{}, err
		}
		ch := m.Channel
		cs := chans[ch.ID]
		if cs == nil {
			cs = &ChannelSummary{ID: ch.ID, Topic: ch.Topic, MessageEncoding: ch.MessageEncoding, SchemaName: ch.SchemaName,
				SchemaEncoding: ch.SchemaEncoding, FirstLogTime: m.LogTime}
			chans[ch.ID] = cs
		}
		cs.Messages++
		cs.FirstLogTime = min(cs.FirstLogTime, m.LogTime)
		cs.LastLogTime = max(cs.LastLogTime, m.LogTime)
		if m.Marker != nil {
			sum.Markers++
			continue
		}
		ts := topics[ch.Topic]
		if ts == nil {
			ts = &TopicSummary{Topic: ch.Topic, Schema: ch.SchemaName, Encoding: ch.MessageEncoding, FirstIndex: m.Index, Start: m.LogTime}
			if ch.Fingerprint != 0 {
				ts.Fingerprint = hex16(ch.Fingerprint)
			}
			ts.SlotSize, _ = strconv.Atoi(ch.Metadata[ChanSlotSize])
			ts.Slots, _ = strconv.Atoi(ch.Metadata[ChanSlots])
			ts.PublisherPID, _ = strconv.Atoi(ch.Metadata[ChanPID])
			ts.Generation = ch.Metadata[ChanGeneration]
			topics[ch.Topic] = ts
		}
		for _, g := range m.Gaps {
			switch g.Kind {
			case MarkerBefore:
				ts.Before += g.Lost
			case MarkerRestart:
				ts.Restarts++
				ts.Lost += g.Lost
				ts.PublisherPID, ts.Generation = g.PublisherPID, g.Generation
			default:
				ts.Lost += g.Lost
			}
			ts.Gaps = append(ts.Gaps, *g)
		}
		ts.Messages++
		ts.LastIndex = m.Index
		ts.Start = min(ts.Start, m.LogTime)
		ts.End = max(ts.End, m.LogTime)
		if sum.Messages == 0 || m.LogTime < sum.Start {
			sum.Start = m.LogTime
		}
		sum.End = max(sum.End, m.LogTime)
		sum.Messages++
	}
	sum.Complete, sum.Truncated, sum.Chunks = r.Complete(), r.Truncated(), r.Chunks()
	if h := r.Header(); h != nil {
		sum.Profile, sum.Library = h.Profile, h.Library
	}
	for _, md := range r.Metadata() {
		if md.Name == MetaRecording {
			sum.Recording = md.Metadata
		}
	}
	if sum.Messages > 0 {
		sum.Duration = sum.End - sum.Start
	}
	for _, ts := range topics {
		sum.Lost += ts.Lost
		sum.Topics = append(sum.Topics, *ts)
	}
	sort.Slice(sum.Topics, func(i, j int) bool { return sum.Topics[i].Topic < sum.Topics[j].Topic })
	for _, cs := range chans {
		sum.Channels = append(sum.Channels, *cs)
	}
	sort.Slice(sum.Channels, func(i, j int) bool { return sum.Channels[i].ID < sum.Channels[j].ID })
	return sum, nil
}
