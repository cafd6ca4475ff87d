package metrics

import (
	"errors"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sensorbus/sensorbus/bus"
)

const ns = "sensorbus"

var (
	topicL = []string{"topic"}
	subL   = []string{"topic", "subscriber"}

	descUp          = prometheus.NewDesc(ns+"_up", "1 if the topic's publisher answers, else 0 (hung or dead).", topicL, nil)
	descState       = prometheus.NewDesc(ns+"_topic_state", "1 for the topic's state: live, hung (holds the topic, does not answer) or dead (gone without closing).", []string{"topic", "state"}, nil)
	descPublished   = prometheus.NewDesc(ns+"_published_total", "Samples published by the topic's current publisher.", topicL, nil)
	descBytes       = prometheus.NewDesc(ns+"_bytes_published_total", "Payload bytes published by the topic's current publisher through Publish and PublishMessage.", topicL, nil)
	descSubscribers = prometheus.NewDesc(ns+"_subscribers", "Subscribers attached to the topic.", topicL, nil)
	descRestarts    = prometheus.NewDesc(ns+"_publisher_restarts_total", "New publishers of the topic (a new ring generation) this collector saw replace an earlier one.", topicL, nil)
	descLastPublish = prometheus.NewDesc(ns+"_last_publish_timestamp_seconds", "When the topic's publisher last published, to within its heartbeat interval.", topicL, nil)
	descSkipped     = prometheus.NewDesc(ns+"_skipped_total", "Samples the topic's publisher accounted as lost without publishing them: a relay (a bridge's import, a replay) never received them.", topicL, nil)
	descDropped     = prometheus.NewDesc(ns+"_reports_dropped_total", "Messages from attached subscribers the publisher dropped: malformed, not a report, or over the rate limit.", topicL, nil)
	descReceived    = prometheus.NewDesc(ns+"_subscriber_received_total", "Samples the subscribers of this name received, as they report it.", subL, nil)
	descLost        = prometheus.NewDesc(ns+"_subscriber_lost_total", "Samples the subscribers of this name lost (overrun) or skipped (latest mode), as they report it.", subL, nil)
	descLag         = prometheus.NewDesc(ns+"_subscriber_lag", "Samples published but not yet read by a subscriber of this name when it last reported (the largest).", subL, nil)
	descP50         = prometheus.NewDesc(ns+"_subscriber_latency_p50_seconds", "Median publish-to-receipt latency the subscribers of this name measure (the largest).", subL, nil)
	descP99         = prometheus.NewDesc(ns+"_subscriber_latency_p99_seconds", "99th percentile of the publish-to-receipt latency the subscribers of this name measure (the largest).", subL, nil)
	descReported    = prometheus.NewDesc(ns+"_subscriber_last_report_timestamp_seconds", "When a subscriber of this name last reported.", subL, nil)
	descBuild       = prometheus.NewDesc(ns+"_build_info", "The sensorbus build: module version, VCS revision, Go version.", []string{"version", "revision", "goversion"}, nil)
)

var topicDescs = []*prometheus.Desc{descUp, descState, descPublished, descBytes, descSubscribers, descRestarts, descLastPublish, descDropped, descSkipped,
	descReceived, descLost, descLag, descP50, descP99, descReported}

// BusCollector collects every topic of a bus directory at scrape time,
// through bus.List.
type BusCollector struct {
	opts bus.Options

	mu       sync.Mutex
	gens     map[string]uint64 // the generation last seen per topic
	restarts map[string]uint64
}

// NewBusCollector returns a collector of the bus opts names.
func NewBusCollector(opts bus.Options) *BusCollector {
	return &BusCollector{opts: opts, gens: map[string]uint64{}, restarts: map[string]uint64{}}
}

// Describe sends the descriptors of every metric the collector emits.
func (c *BusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range topicDescs {
		ch <- d
	}
}

// Collect asks every publisher on the bus, each for at most
// bus.InspectTimeout. A bus that does not exist yet has no topics.
func (c *BusCollector) Collect(ch chan<- prometheus.Metric) {
	topics, err := bus.List(c.opts)
	if errors.Is(err, bus.ErrNoBus) {
		return
	}
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descUp, err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range topics {
		var restarts *uint64
		if t.State == bus.StateLive && t.Error == "" {
			if old, ok := c.gens[t.Topic]; ok && old != t.GenerationID {
				c.restarts[t.Topic]++
			}
			c.gens[t.Topic] = t.GenerationID
			n := c.restarts[t.Topic]
			restarts = &n
		}
		emit(ch, t, restarts)
	}
}

// emit sends one topic's metrics; restarts is nil where not known.
func emit(ch chan<- prometheus.Metric, t bus.TopicInfo, restarts *uint64) {
	live := t.State == bus.StateLive && t.Error == "" // a publisher that refuses us is live but tells nothing
	up := 0.0
	if live {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, t.Topic)
	for _, s := range []string{bus.StateLive, bus.StateHung, bus.StateDead} {
		v := 0.0
		if s == t.State {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, t.Topic, s)
	}
	if !live {
		return
	}
	ch <- prometheus.MustNewConstMetric(descPublished, prometheus.CounterValue, float64(t.Published), t.Topic)
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(t.BytesPublished), t.Topic)
	ch <- prometheus.MustNewConstMetric(descSubscribers, prometheus.GaugeValue, float64(t.Subscribers), t.Topic)
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(t.ReportsDropped), t.Topic)
	ch <- prometheus.MustNewConstMetric(descSkipped, prometheus.CounterValue, float64(t.Skipped), t.Topic)
	if restarts != nil {
		ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(*restarts), t.Topic)
	}
	if t.LastPublishUnixNano > 0 {
		ch <- prometheus.MustNewConstMetric(descLastPublish, prometheus.GaugeValue, float64(t.LastPublishUnixNano)/1e9, t.Topic)
	}
	emitPeers(ch, t.Topic, t.Peers)
}

// named is what the subscribers of one name on a topic reported.
type named struct {
	received, lost, lag uint64
	p50, p99, reported  int64
}

// emitPeers sends the per-subscriber metrics, one series per name.
func emitPeers(ch chan<- prometheus.Metric, topic string, peers []bus.Peer) {
	by := map[string]*named{}
	var order []string
	for _, p := range peers {
		if p.ReportUnixNano == 0 {
			continue
		}
		n := by[p.Name]
		if n == nil {
			n = &named{}
			by[p.Name] = n
			order = append(order, p.Name)
		}
		n.received += p.Received
		n.lost += p.Lost
		n.lag = max(n.lag, p.Lag)
		n.p50, n.p99, n.reported = max(n.p50, p.LatencyP50Ns), max(n.p99, p.LatencyP99Ns), max(n.reported, p.ReportUnixNano)
	}
	for _, name := range order {
		n := by[name]
		ch <- prometheus.MustNewConstMetric(descReceived, prometheus.CounterValue, float64(n.received), topic, name)
		ch <- prometheus.MustNewConstMetric(descLost, prometheus.CounterValue, float64(n.lost), topic, name)
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(n.lag), topic, name)
		ch <- prometheus.MustNewConstMetric(descReported, prometheus.GaugeValue, float64(n.reported)/1e9, topic, name)
		if n.p50 > 0 || n.p99 > 0 {
			ch <- prometheus.MustNewConstMetric(descP50, prometheus.GaugeValue, float64(n.p50)/1e9, topic, name)
			ch <- prometheus.MustNewConstMetric(descP99, prometheus.GaugeValue, float64(n.p99)/1e9, topic, name)
		}
	}
}

// PublisherCollector collects one in-process publisher's topic, without a
// round trip over its socket.
type PublisherCollector struct{ p *bus.Publisher }

// NewPublisherCollector returns a collector of p's topic.
func NewPublisherCollector(p *bus.Publisher) *PublisherCollector { return &PublisherCollector{p} }

// Describe sends the descriptors of every metric the collector emits.
func (c *PublisherCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range topicDescs {
		ch <- d
	}
}

// Collect sends the topic's metrics as its publisher counts them now.
func (c *PublisherCollector) Collect(ch chan<- prometheus.Metric) {
	d := c.p.Describe()
	emit(ch, bus.TopicInfo{Topic: d.Topic, State: bus.StateLive, Published: d.Published, BytesPublished: d.BytesPublished,
		Subscribers: int(d.Subscribers), Peers: d.Peers, LastPublishUnixNano: d.LastPublishUnixNano, ReportsDropped: d.ReportsDropped, Skipped: d.Skipped}, nil)
}

// SubscriberCollector collects what one in-process subscriber last
// reported of itself (Subscriber.Report), as the bus collector would see
// it through its publisher.
type SubscriberCollector struct {
	s     *bus.Subscriber
	topic string
}

// NewSubscriberCollector returns a collector of s, a subscriber of topic.
func NewSubscriberCollector(s *bus.Subscriber, topic string) *SubscriberCollector {
	return &SubscriberCollector{s: s, topic: topic}
}

// Describe sends the descriptors of the per-subscriber metrics.
func (c *SubscriberCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReceived, descLost, descLag, descP50, descP99, descReported} {
		ch <- d
	}
}

// Collect sends the subscriber's latest report.
func (c *SubscriberCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.s.Report()
	emitPeers(ch, c.topic, []bus.Peer{{Name: r.Name, Received: r.Received, Lost: r.Lost, Lag: r.Lag, Restarts: r.Restarts,
		LatencyP50Ns: r.LatencyP50Ns, LatencyP99Ns: r.LatencyP99Ns, ReportUnixNano: time.Now().UnixNano()}})
}

// NewBuildInfoCollector returns a collector of sensorbus_build_info.
func NewBuildInfoCollector() prometheus.Collector {
	version, revision, goversion := "unknown", "unknown", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goversion = bi.GoVersion
		version = bi.Main.Version
		for _, m := range bi.Deps {
			if m.Path == "github.com/sensorbus/sensorbus" {
				version = m.Version // embedded in another module's program
			}
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	if version == "" {
		version = "(devel)"
	}
	return constCollector{prometheus.MustNewConstMetric(descBuild, prometheus.GaugeValue, 1, version, revision, goversion)}
}

type constCollector struct{ m prometheus.Metric }

func (c constCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.Desc() }
func (c constCollector) Collect(ch chan<- prometheus.Metric) { ch <- c.m }
