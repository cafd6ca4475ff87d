package record

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/sensorbus/sensorbus/internal/clock"
)

// SnapshotConfig describes a flight recorder: the last Window of its
// topics kept in memory, written to a new file in Dir on each Trigger.
type SnapshotConfig struct {
	// RecordConfig says what to record and how (topics, encoding,
	// compression, Duration, logger, ...). Output, Count, SplitSize and
	// SplitDuration must be left unset; FlushInterval is not used.
	RecordConfig

	// Dir receives the snapshots, named snapshot-TIME.mcap (UTC).
	Dir string

	// Window is how much to keep (default 30s): whole chunks, each at
	// most Window/16 long, are dropped once newer than none of the last
	// Window's samples, so a snapshot holds the last Window and at most
	// Window/16 more.
	Window time.Duration

	// MaxBytes bounds the memory the samples take (default 256 MiB,
	// uncompressed); the oldest chunks go first, even inside Window.
	MaxBytes int64

	// Trigger writes a snapshot each time it receives (the program sends
	// on SIGUSR1). A trigger while a snapshot is being written writes
	// another one right after it.
	Trigger <-chan struct{}

	// OnExit also writes a snapshot when the recording ends.
	OnExit bool
}

func (c *SnapshotConfig) validate() (common, error) {
	if c.Output != "" || c.Count != 0 || c.SplitSize != 0 || c.SplitDuration != 0 {
		return common{}, errors.New("record: snapshot: Output, Count, SplitSize and SplitDuration do not apply (use Dir)")
	}
	cc := c.common()
	if err := cc.validate(); err != nil {
		return cc, err
	}
	if c.Dir == "" {
		return cc, errors.New("record: snapshot: no directory")
	}
	if fi, err := os.Stat(c.Dir); err != nil || !fi.IsDir() {
		return cc, fmt.Errorf("record: snapshot: %s is not a directory", c.Dir)
	}
	if c.Window < 0 || c.MaxBytes < 0 || c.Duration < 0 {
		return cc, errors.New("record: snapshot: negative window, size or duration")
	}
	if c.Window == 0 {
		c.Window = 30 * time.Second
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 256 << 20
	}
	if c.ChunkSize == 0 {
		cc.ChunkSize = int(min(1<<20, max(4096, c.MaxBytes/16)))
	}
	return cc, nil
}

// Snapshot runs a flight recorder until ctx ends, the Duration passes or,
// with StopWhenGone, every named topic's publisher is gone. Stats.Files
// lists the snapshots written.
func Snapshot(ctx context.Context, cfg SnapshotConfig) (Stats, error) {
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
	r := newRecorder(cc, "snapshot", 0, cancel)
	var st Stats
	done := make(chan struct{})
	sinkErr := make(chan error, 1)
	go func() { sinkErr <- r.snapshots(&cfg, &st, done) }()
	err = r.runAndCollect(ctx, &st, done, sinkErr)
	return st, err
}

// memory is the flight recorder's store: cut chunks, oldest first.
type memory struct {
	chunks []*chunk
	bytes  int64
}

func (m *memory) add(cs []*chunk) {
	for _, c := range cs {
		m.chunks = append(m.chunks, c)
		m.bytes += int64(cap(c.buf))
	}
}

// evict drops the oldest chunks while over maxBytes or entirely older than
// oldest (a log time).
func (m *memory) evict(maxBytes int64, oldest uint64) {
	n := 0
	for n < len(m.chunks) && (m.bytes > maxBytes || m.chunks[n].end < oldest) {
		m.bytes -= int64(cap(m.chunks[n].buf))
		m.chunks[n] = nil
		n++
	}
	m.chunks = m.chunks[n:]
}

// snapshots keeps the last window of chunks and writes them on triggers.
func (r *recorder) snapshots(cfg *SnapshotConfig, st *Stats, done <-chan struct{}) error {
	var mem memory
	tick := time.NewTicker(max(cfg.Window/16, 10*time.Millisecond))
	defer tick.Stop()
	var writing chan error // non-nil while a snapshot is being written
	pending := false
	var failed error
	keep := func(cs []*chunk) {
		mem.add(cs)
		mem.evict(cfg.MaxBytes, uint64(clock.Mono()+r.monoOffset-int64(cfg.Window)))
	}
	start := func() {
		chunks := append([]*chunk(nil), mem.chunks...)
		writing = make(chan error, 1)
		go func(out chan<- error) {
			path, err := r.writeSnapshot(cfg.Dir, chunks)
			if err == nil {
				st.Files = append(st.Files, path) // only this goroutine appends while it runs
				r.cfg.Notify(Event{Kind: EventFile, Path: path})
			}
			out <- err
		}(writing)
	}
	finished := func(err error) {
		writing = nil
		if err != nil {
			r.cfg.Logger.Error("snapshot not written", zap.Error(err))
			failed = errors.Join(failed, err)
		}
	}
	for {
		select {
		case <-r.kick:
			keep(r.take(false))
		case <-tick.C:
			keep(r.take(true))
		case <-cfg.Trigger:
			keep(r.take(true))
			if writing != nil {
				pending = true
			} else {
				start()
			}
		case err := <-writing:
			finished(err)
			if pending {
				pending = false
				start()
			}
		case <-done:
			keep(r.take(true))
			if writing != nil {
				finished(<-writing)
			}
			if cfg.OnExit || pending {
				start()
				finished(<-writing)
			}
			return failed
		}
	}
}

// writeSnapshot writes chunks to a new file in dir named by the time.
func (r *recorder) writeSnapshot(dir string, chunks []*chunk) (string, error) {
	z, err := newCompressor(r.cfg.Compression)
	if err != nil {
		return "", err
	}
	defer z.close()
	now := time.Now().UTC()
	base := filepath.Join(dir, "snapshot-"+now.Format("20060102T150405.000Z"))
	var fw *fileWriter
	for i := 0; ; i++ {
		path := base + ".mcap"
		if i > 0 {
			path = fmt.Sprintf("%s-%d.mcap", base, i)
		}
		fw, err = createFile(path, z, r.fileMeta(0), clock.Mono())
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) || i > 100 {
			return "", err
		}
	}
	for _, c := range chunks {
		if err := fw.write(c); err != nil {
			fw.finish()
			return "", err
		}
	}
	if err := fw.finish(); err != nil {
		return "", err
	}
	return fw.path, nil
}
