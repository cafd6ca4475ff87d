package record

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/clock"
	"github.com/sensorbus/sensorbus/rt"
	"github.com/sensorbus/sensorbus/schema"
)

// RecordConfig describes a recording.
type RecordConfig struct {
	// Bus locates the bus.
	Bus bus.Options

	// Topics are recorded from their publisher's oldest sample still in
	// its ring: a recorder started before its publisher gets every
	// sample. All also records every topic that is live or appears while
	// recording (found every DiscoverInterval).
	Topics []string
	All    bool

	// Output is the file to write; it must not exist. With SplitSize or
	// SplitDuration the files are Output's name with -0001, -0002, ...
	// before its extension.
	Output string

	// Encoding of the messages: MessageEncodingMsgpack (default, the
	// published bytes) or MessageEncodingJSON (transcoded, for Foxglove).
	Encoding string

	// Compression of the chunks (default CompressZstd).
	Compression Compression

	// Duration and Count end the recording after that long or that many
	// samples (of all topics together); 0 means no limit.
	Duration time.Duration
	Count    uint64

	// SplitSize and SplitDuration start a new file once the current one
	// is that large or that old (checked before each chunk is written, so
	// a file may exceed SplitSize by one chunk); 0 means never.
	SplitSize     int64
	SplitDuration time.Duration

	// ChunkSize is the uncompressed size at which a chunk is cut (default
	// 1 MiB).
	ChunkSize int

	// FlushInterval bounds how long a received sample waits in memory:
	// the chunk being built is cut and written at least this often
	// (default 1s), so a recorder killed with kill -9 loses at most the
	// last FlushInterval, plus the time to compress and write one chunk.
	FlushInterval time.Duration

	// WaitForPublisher is how long to wait for each named topic's
	// publisher; 0 waits until the recording ends.
	WaitForPublisher time.Duration

	// StopWhenGone ends a topic when its publisher closes or dies (after
	// recording what was left in its ring) instead of waiting for it to
	// come back, and the recording once every named topic has ended.
	StopWhenGone bool

	// DiscoverInterval is how often All looks for new topics (default
	// 250ms).
	DiscoverInterval time.Duration

	// Thread, if set, reads each topic on an OS thread of its own with
	// these real-time settings (rt.Run: pinned CPUs, SCHED_FIFO
	// priority), so that a busy machine does not keep the recorder off the
	// CPU until a fast topic's ring overflows. Not permitted: an error
	// naming what is missing (rt.ErrNotPermitted).
	Thread rt.Thread

	// Registry knows the schemas whose JSON Schema and JSON form the
	// recorder writes; nil means the built-in ones. A topic of a schema it
	// does not know is recorded all the same, described by name and
	// fingerprint.
	Registry *schema.Registry

	// Logger receives log lines (default none). Notify, if set, receives
	// events from the recorder's goroutines; it must not block for long.
	Logger *zap.Logger
	Notify func(Event)

	// Version goes into the file's metadata (default: the build's).
	Version string
}

func (c *RecordConfig) common() common {
	return common{Bus: c.Bus, Topics: c.Topics, All: c.All, Encoding: c.Encoding, Compression: c.Compression,
		ChunkSize: c.ChunkSize, WaitForPublisher: c.WaitForPublisher, StopWhenGone: c.StopWhenGone,
		DiscoverInterval: c.DiscoverInterval, Thread: c.Thread, Registry: c.Registry, Logger: c.Logger, Notify: c.Notify, Version: c.Version}
}

func (c *RecordConfig) validate() (common, error) {
	cc := c.common()
	if err := cc.validate(); err != nil {
		return cc, err
	}
	if c.Output == "" {
		return cc, errors.New("record: no output file")
	}
	if c.Duration < 0 || c.SplitSize < 0 || c.SplitDuration < 0 || c.FlushInterval < 0 {
		return cc, errors.New("record: negative duration, split size, split duration or flush interval")
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = time.Second
	}
	return cc, nil
}

// splitName is the name of part n (from 1) of a split recording.
func splitName(output string, n int) string {
	ext := filepath.Ext(output)
	return fmt.Sprintf("%s-%04d%s", strings.TrimSuffix(output, ext), n, ext)
}

// Record records topics into an MCAP file (or several, when split) until
// ctx ends, the Duration or Count is reached, or, with StopWhenGone, every
// named topic's publisher is gone. Every file it returns is finished
// (summary and index written), also when it returns an error.
func Record(ctx context.Context, cfg RecordConfig) (Stats, error) {
	cc, err := cfg.validate()
	if err != nil {
		return Stats{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Duration > 0 {
		var c context.CancelFunc
		ctx, c = context.WithTimeout(ctx, cfg.Duration)
		defer c()
	}
	r := newRecorder(cc, "record", cfg.Count, cancel)
	z, err := newCompressor(cc.Compression)
	if err != nil {
		return Stats{}, err
	}
	defer z.close()
	split := cfg.SplitSize > 0 || cfg.SplitDuration > 0
	part := 0
	var st Stats
	open := func() (*fileWriter, error) {
		path := cfg.Output
		if split {
			part++
			path = splitName(cfg.Output, part)
		}
		return createFile(path, z, r.fileMeta(part), clock.Mono())
	}
	fw, err := open()
	if err != nil {
		return Stats{}, err
	}
	finish := func() error {
		err := fw.finish()
		if err == nil {
			st.Files = append(st.Files, fw.path)
			cc.Notify(Event{Kind: EventFile, Path: fw.path})
		}
		fw = nil
		return err
	}

	done := make(chan struct{})
	sinkErr := make(chan error, 1)
	go func() {
		tick := time.NewTicker(cfg.FlushInterval)
		defer tick.Stop()
		var failed error
		for final := false; !final; {
			var chunks []*chunk
			select {
			case <-r.kick:
				chunks = r.take(false)
			case <-tick.C:
				chunks = r.take(true)
			case <-done:
				chunks = r.take(true)
				final = true
			}
			for _, c := range chunks {
				if failed != nil {
					break // keep taking chunks, so the recorder never waits on us
				}
				if split && fw.w.Statistics.ChunkCount > 0 &&
					(cfg.SplitSize > 0 && fw.size() >= cfg.SplitSize || cfg.SplitDuration > 0 && clock.Since(fw.opened) >= cfg.SplitDuration) {
					if failed = finish(); failed == nil {
						fw, failed = open()
					}
					if failed != nil {
						break
					}
				}
				failed = fw.write(c)
			}
			if failed == nil {
				r.recycle(chunks)
			}
			if failed != nil {
				r.stop()
			}
		}
		if fw != nil {
			if err := finish(); failed == nil {
				failed = err
			}
		}
		sinkErr <- failed
	}()

	err = r.runAndCollect(ctx, &st, done, sinkErr)
	return st, err
}

// runAndCollect reads the topics until ctx ends, then tells the sink
// (done), waits for its error and completes st, which the sink may fill
// in too until it returns.
func (r *recorder) runAndCollect(ctx context.Context, st *Stats, done chan struct{}, sinkErr <-chan error) error {
	t0 := time.Now()
	runErr := r.run(ctx)
	close(done)
	err := <-sinkErr
	st.Duration = time.Since(t0)
	r.mu.Lock()
	st.Topics = r.statsLocked()
	r.mu.Unlock()
	for _, t := range st.Topics {
		st.Messages += t.Messages
		st.Lost += t.Lost
	}
	return errors.Join(runErr, err)
}
