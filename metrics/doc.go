// Package metrics exports a sensorbus bus to Prometheus: custom
// collectors that ask at scrape time, so the values live where they are
// counted (the publishers, and the subscribers' reports to them) and
// nothing is polled between scrapes.
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(metrics.NewBusCollector(bus.Options{Dir: "/run/sensorbus"}), metrics.NewBuildInfoCollector())
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// A program that embeds a publisher registers NewPublisherCollector(pub)
// instead (no control socket round trip), one that embeds a subscriber
// NewSubscriberCollector(sub). All of them emit the same names, so one
// dashboard serves both:
//
//	sensorbus_up{topic}                                   1 if the publisher answers, else 0
//	sensorbus_topic_state{topic,state}                    1 for the topic's state (live, hung, dead), 0 for the others
//	sensorbus_published_total{topic}                      samples published by the current publisher
//	sensorbus_bytes_published_total{topic}                their payload bytes (Publish and PublishMessage)
//	sensorbus_subscribers{topic}                          attached subscribers
//	sensorbus_publisher_restarts_total{topic}             new publishers (generations) seen by this collector
//	sensorbus_last_publish_timestamp_seconds{topic}       when the cursor last moved (heartbeat resolution)
//	sensorbus_reports_dropped_total{topic}                subscriber messages the publisher dropped (malformed, too many)
//	sensorbus_subscriber_received_total{topic,subscriber} as the subscribers named so report it (summed)
//	sensorbus_subscriber_lost_total{topic,subscriber}
//	sensorbus_subscriber_lag{topic,subscriber}            samples published, not yet read (the largest)
//	sensorbus_subscriber_latency_p50_seconds{topic,subscriber} where measured (the largest)
//	sensorbus_subscriber_latency_p99_seconds{topic,subscriber}
//	sensorbus_subscriber_last_report_timestamp_seconds{topic,subscriber}
//	sensorbus_build_info{version,revision,goversion}      1
//
// Labels are bounded: a topic name and a subscriber's chosen name, never a
// pid. Subscribers that share a name on a topic are one series (counts
// summed, lag and latency the largest); a subscriber that has not reported
// yet has none. The counters are the current publisher's and the
// subscribers' own: they restart from zero with them, which Prometheus's
// rate() handles.
//
// Collectors are safe for concurrent scrapes. BusCollector bounds a scrape
// by bus.InspectTimeout per topic: a publisher that does not answer shows
// as sensorbus_up 0 with state hung, and costs the scrape at most that.
package metrics
