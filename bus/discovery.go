package bus

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sensorbus/sensorbus/internal/sys"
)

// InspectTimeout bounds how long List and Info wait for one publisher's
// answer: a publisher that does not answer within it is shown "hung".
const InspectTimeout = 250 * time.Millisecond

// Topic states, as TopicInfo.State gives them.
const (
	StateLive = "live" // the publisher answers
	StateHung = "hung" // the publisher holds the topic but does not answer (stopped, stuck, or flooded)
	StateDead = "dead" // the publisher is gone without closing: GC or the next publisher removes its files
)

// TopicInfo describes a topic found on the bus.
type TopicInfo struct {
	Topic       string  `json:"topic"`
	State       string  `json:"state"` // StateLive, StateHung or StateDead
	Error       string  `json:"error,omitempty"`
	Schema      string  `json:"schema,omitempty"`
	Fingerprint string  `json:"fingerprint,omitempty"`
	SlotSize    int     `json:"slot_size,omitempty"`
	Slots       int     `json:"slots,omitempty"`
	WriterPID   int     `json:"writer_pid,omitempty"`
	Published   uint64  `json:"published"`
	RateHz      float64 `json:"rate_hz"`
	Subscribers int     `json:"subscribers"`
	Peers       []Peer  `json:"subscribers_list,omitempty"`
	PeerPIDs    []int   `json:"subscriber_pids,omitempty"`
	Generation  string  `json:"generation,omitempty"`
	Started     string  `json:"started,omitempty"`
	Socket      string  `json:"socket,omitempty"`
	Origin      string  `json:"origin,omitempty"` // a relayed topic's source (PublisherConfig.Origin)

	BytesPublished      uint64 `json:"bytes_published"`
	LastPublishUnixNano int64  `json:"last_publish_unix_ns,omitempty"`
	ReportsDropped      uint64 `json:"reports_dropped,omitempty"`
	Skipped             uint64 `json:"skipped,omitempty"` // samples a relaying publisher accounted lost (Publisher.Skip)
	GenerationID        uint64 `json:"-"`                 // Generation as a number
}

// List returns every topic on the bus, sorted by name. Each publisher is
// asked for at most InspectTimeout, one after another.
func List(opts Options) ([]TopicInfo, error) {
	b, err := opts.open(false)
	if err != nil {
		return nil, err
	}
	defer b.close()
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
		return TopicInfo{}, err
	}
	defer b.close()
	ti := b.inspect(topic)
	if ti.State == "" {
		return TopicInfo{}, fmt.Errorf("%w: no topic %q on the bus %s", ErrNoPublisher, topic, b.dir)
	}
	return ti, nil
}

// Files lists every file the bus directory holds for its topics. After a
// clean shutdown, or after GC once every publisher is gone, it is empty.
// The bus's own lock file, which stays with the directory, is not listed.
// A bus directory that does not exist holds nothing.
func Files(opts Options) ([]string, error) {
	b, err := opts.open(false)
	if errors.Is(err, ErrNoBus) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer b.close()
	names, err := b.names()
	if err != nil {
		return nil, err
	}
	var files []string
	for _, n := range names {
		if n != lockName {
			files = append(files, b.path(n))
		}
	}
	sort.Strings(files)
	return files, nil
}

// topics lists the names with a socket or a liveness file in the bus
// directory.
func (b *bus) topics() ([]string, error) {
	names, err := b.names()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, n := range names {
		for _, suffix := range []string{sockSuffix, pubSuffix} {
			if t, ok := strings.CutSuffix(n, suffix); ok && ValidTopic(t) == nil {
				seen[t] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	sort.Strings(out)
	return out, nil
}

// inspect asks the topic's publisher, and for the bus's owner its liveness
// file, what the topic is. State is "" if the topic has neither socket nor
// liveness file.
func (b *bus) inspect(topic string) TopicInfo {
	ti := TopicInfo{Topic: topic}
	sock := topic + sockSuffix
	if st, err := sys.StatAt(b.fd, sock); err == nil && st.IsSocket() {
		ti.Socket = b.path(sock)
	}
	held, known := b.held(topic)
	if ti.Socket == "" && !known {
		return ti
	}
	if known && !held {
		ti.State = StateDead
		return ti
	}
	if ti.Socket == "" {
		ti.State = StateHung
		ti.Error = "no control socket"
		return ti
	}
	ctx, cancel := context.WithTimeout(context.Background(), InspectTimeout)
	defer cancel()
	d, err := describe(ctx, b, topic)
	switch {
	case err == nil:
		ti.State = StateLive
		ti.Schema, ti.SlotSize, ti.Slots, ti.WriterPID = d.Schema, int(d.SlotSize), int(d.Slots), int(d.WriterPID)
		ti.Fingerprint = fmt.Sprintf("%016x", d.Fingerprint)
		ti.Generation = fmt.Sprintf("%016x", d.Generation)
		ti.Started = time.Unix(0, d.StartedUnixNano).UTC().Format(time.RFC3339)
		ti.Published, ti.RateHz, ti.Subscribers, ti.Peers, ti.Origin = d.Published, d.RateHz, int(d.Subscribers), d.Peers, d.Origin
		ti.BytesPublished, ti.LastPublishUnixNano, ti.ReportsDropped, ti.GenerationID = d.BytesPublished, d.LastPublishUnixNano, d.ReportsDropped, d.Generation
		ti.Skipped = d.Skipped
		for _, p := range d.Peers {
			ti.PeerPIDs = append(ti.PeerPIDs, int(p.PID))
		}
	case errors.Is(err, ErrPermission):
		ti.State = StateLive
		ti.Error = err.Error()
	case errors.Is(err, ErrNoPublisher) && !errors.Is(err, errNotAccepting) && !held:
		ti.State = StateDead
	default:
		ti.State = StateHung
		ti.Error = err.Error()
	}
	return ti
}

// held reports whether the topic's liveness file is locked by a publisher;
// known is false where that cannot be told (no such file, or not this
// user's bus). It takes no lock.
func (b *bus) held(topic string) (held, known bool) {
	if !b.owner {
		return false, false
	}
	fd, err := sys.OpenAt(b.fd, topic+pubSuffix, false, false, 0)
	if err != nil {
		return false, false
	}
	defer sys.Close(fd)
	locked, err := sys.Locked(fd, 0)
	return locked, err == nil
}

// describe asks a topic's publisher for its description.
func describe(ctx context.Context, b *bus, topic string) (TopicDesc, error) {
	c, err := dial(ctx, b, topic)
	if err != nil {
		return TopicDesc{}, err
	}
	defer c.Close()
	timeout := requestTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	resp, fds, err := roundTrip(c, Request{Op: OpDescribe, Untyped: true}, 0, timeout)
	closeFDs(fds)
	if err != nil {
		return TopicDesc{}, err
	}
	if err := responseError(topic, resp); err != nil {
		return TopicDesc{}, err
	}
	return resp.Topic, nil
}

// GC removes what dead publishers left on the bus: their sockets and
// liveness files. It never removes a live publisher's files: it holds the
// bus lock, which every publisher holds while it creates or removes its
// files, and a topic's files are removed only if its liveness lock proves
// the publisher dead. It returns the paths it removed.
func GC(opts Options) ([]string, error) {
	b, err := opts.open(false)
	if err != nil {
		return nil, err
	}
	defer b.close()
	if !b.owner {
		return nil, fmt.Errorf("%w: %s belongs to another user; only its owner (or root) can collect it", ErrPermission, b.dir)
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
	pub, sock := topic+pubSuffix, topic+sockSuffix
	fd, err := sys.OpenAt(b.fd, pub, false, false, 0)
	switch {
	case err == nil:
		defer sys.Close(fd)
		if err := sys.TryLock(fd, 0); err != nil {
			if errors.Is(err, sys.EAGAIN) {
				return nil, nil // live: not ours to touch
			}
			return nil, fmt.Errorf("bus: topic %q: lock %s: %w", topic, b.path(pub), err)
		}
	case !errors.Is(err, sys.ENOENT):
		return nil, fmt.Errorf("bus: topic %q: %w", topic, err)
	default:
		// No liveness file: a socket alone is a dead publisher's if
		// nobody answers on it.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := dial(ctx, b, topic)
		cancel()
		if err == nil {
			c.Close()
			return nil, nil
		}
		if !errors.Is(err, ErrNoPublisher) || errors.Is(err, errNotAccepting) {
			return nil, nil
		}
	}
	var removed []string
	for _, n := range []string{sock, tmpSocket(topic), pub} {
		if err := sys.UnlinkAt(b.fd, n); err == nil {
			removed = append(removed, b.path(n))
		}
	}
	return removed, nil
}
