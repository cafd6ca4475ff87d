package bus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sensorbus/sensorbus/ring"
)

// TopicInfo describes a topic found on the bus.
type TopicInfo struct {
	Topic       string  `json:"topic"`
	State       string  `json:"state"` // "live", "dead" (publisher gone without closing), "closed", or "orphan" (a socket without a ring)
	Schema      string  `json:"schema"`
	Fingerprint string  `json:"fingerprint"`
	SlotSize    int     `json:"slot_size"`
	Slots       int     `json:"slots"`
	WriterPID   int     `json:"writer_pid"`
	Published   uint64  `json:"published"`
	RateHz      float64 `json:"rate_hz"`
	Subscribers int     `json:"subscribers"`
	PeerPIDs    []int   `json:"subscriber_pids,omitempty"`
	Generation  string  `json:"generation"`
	Started     string  `json:"started,omitempty"`
	HeartbeatMs int64   `json:"heartbeat_age_ms"`
	Segment     string  `json:"segment,omitempty"`
	Socket      string  `json:"socket,omitempty"`
}

// List returns every topic on the bus, live or not, sorted by name. A bus
// directory that does not exist yet holds no topics.
func List(opts Options) ([]TopicInfo, error) {
	b, err := opts.open(false)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names, err := b.topics()
	if err != nil {
		return nil, err
	}
	out := make([]TopicInfo, 0, len(names))
	for _, t := range names {
		out = append(out, b.inspect(t))
	}
	return out, nil
}

// Info returns one topic's description; ErrNoPublisher if the bus has no
// trace of it.
func Info(opts Options, topic string) (TopicInfo, error) {
	if err := ValidTopic(topic); err != nil {
		return TopicInfo{}, err
	}
	b, err := opts.open(false)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return TopicInfo{}, fmt.Errorf("%w: topic %q (no bus at %s)", ErrNoPublisher, topic, opts.Dir)
		}
		return TopicInfo{}, err
	}
	ti := b.inspect(topic)
	if ti.State == "" {
		return TopicInfo{}, fmt.Errorf("%w: no topic %q on the bus %s", ErrNoPublisher, topic, b.dir)
	}
	return ti, nil
}

// Files lists every file the bus holds: its directory's entries and its
// segments in the shared-memory directory (any other bus's and any other
// program's files there are left out). After a clean shutdown, or after
// GC once every publisher is gone, it is empty. A bus directory that does
// not exist holds nothing.
func Files(opts Options) ([]string, error) {
	b, err := opts.open(false)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var files []string
	ents, err := os.ReadDir(b.dir)
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	for _, e := range ents {
		files = append(files, filepath.Join(b.dir, e.Name()))
	}
	shm, err := os.ReadDir(b.shm)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return files, fmt.Errorf("bus: %w", err)
	}
	for _, e := range shm {
		if strings.HasPrefix(e.Name(), b.segmentPrefix()) {
			files = append(files, filepath.Join(b.shm, e.Name()))
		}
	}
	return files, nil
}

// topics lists the names with a socket in the bus directory or a segment
// in the shared-memory directory.
func (b *bus) topics() ([]string, error) {
	seen := map[string]bool{}
	ents, err := os.ReadDir(b.dir)
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	for _, e := range ents {
		if t, ok := strings.CutSuffix(e.Name(), ".sock"); ok && ValidTopic(t) == nil {
			seen[t] = true
		}
	}
	if ents, err := os.ReadDir(b.shm); err == nil {
		for _, e := range ents {
			name, ok := strings.CutPrefix(e.Name(), b.segmentPrefix())
			if !ok {
				continue
			}
			name = strings.TrimSuffix(name, ring.WakeSuffix)
			if ValidTopic(name) == nil {
				seen[name] = true
			}
		}
	}
	names := make([]string, 0, len(seen))
	for t := range seen {
		names = append(names, t)
	}
	sort.Strings(names)
	return names, nil
}

// inspect reads what the ring and, for a live topic, the publisher say.
// State is "" if the topic has neither socket nor segment.
func (b *bus) inspect(topic string) TopicInfo {
	ti := TopicInfo{Topic: topic}
	if _, err := os.Lstat(b.socketPath(topic)); err == nil {
		ti.Socket = b.socketPath(topic)
	}
	r, err := ring.Open(b.shm, b.segment(topic), ring.ReaderConfig{Wait: ring.WaitSpin})
	if err != nil {
		if ti.Socket != "" {
			ti.State = "orphan"
		}
		if !errors.Is(err, os.ErrNotExist) && ti.State == "" {
			ti.State = "unreadable: " + err.Error()
		}
		return ti
	}
	defer r.Close()
	h := r.Header()
	ti.Segment = b.shm + "/" + b.segment(topic)
	ti.Schema, ti.SlotSize, ti.Slots, ti.WriterPID = h.SchemaName, h.SlotSize, h.Slots, h.WriterPID
	ti.Fingerprint = fmt.Sprintf("%016x", h.SchemaFingerprint)
	ti.Generation = fmt.Sprintf("%016x", h.Generation)
	ti.Started = time.Unix(0, h.CreatedUnixNano).UTC().Format(time.RFC3339)
	st, err := r.Status()
	if err != nil {
		ti.State = "unreadable: " + err.Error()
		return ti
	}
	ti.State = st.State.String()
	ti.Published = st.Published
	ti.HeartbeatMs = st.HeartbeatAge.Milliseconds()
	if st.State == ring.WriterAlive {
		ti.State = "live"
		if d, err := describe(b, topic); err == nil {
			ti.RateHz, ti.Subscribers = d.RateHz, int(d.Subscribers)
			for _, p := range d.Peers {
				ti.PeerPIDs = append(ti.PeerPIDs, int(p.PID))
			}
		}
	}
	return ti
}

// describe asks a topic's publisher for its description.
func describe(b *bus, topic string) (TopicDesc, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := dial(ctx, b, topic)
	if err != nil {
		return TopicDesc{}, err
	}
	defer c.Close()
	resp, fds, err := roundTrip(c, Request{Op: OpDescribe, Untyped: true}, 0)
	closeFDs(fds)
	if err != nil {
		return TopicDesc{}, err
	}
	if err := responseError(topic, resp); err != nil {
		return TopicDesc{}, err
	}
	return resp.Topic, nil
}

// GC removes what dead publishers left on the bus: their rings, wake files
// and sockets. It never removes a live publisher's files: it holds the bus
// lock, which every publisher holds while it creates or removes its files,
// and a ring is removed only if its writer lock proves the writer dead. It
// returns the paths it removed.
func GC(opts Options) ([]string, error) {
	b, err := opts.open(false)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	unlock, err := b.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	names, err := b.topics()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, t := range names {
		paths, err := b.collect(t)
		removed = append(removed, paths...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// collect removes one topic's leftovers if its publisher is gone. The
// caller holds the bus lock.
func (b *bus) collect(topic string) ([]string, error) {
	paths, err := ring.RemoveStale(b.shm, b.segment(topic))
	if err != nil {
		if errors.Is(err, ring.ErrBusy) {
			return nil, nil // live: not ours to touch
		}
		return paths, fmt.Errorf("bus: topic %q: %w", topic, err)
	}
	// The ring is gone or dead. A socket with nobody listening is a dead
	// publisher's; one that answers belongs to a live publisher whose
	// ring someone removed by hand, and stays.
	sock := b.socketPath(topic)
	if _, err := os.Lstat(sock); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := dial(ctx, b, topic)
		cancel()
		if err == nil {
			c.Close()
			return paths, nil
		}
		if errors.Is(err, ErrNoPublisher) {
			if err := os.Remove(sock); err == nil {
				paths = append(paths, sock)
			}
		}
	}
	return paths, nil
}
