// Package bridge carries bus topics between hosts over NATS.
//
// An exported topic is subscribed to locally (Stream mode, from the
// publisher's first sample) and published to the NATS subject
// sensorbus.HOST.TOPIC: the samples' bytes unchanged, with headers that
// carry their ring index, publish time, the topic's generation and its
// schema's name and fingerprint (see wire.go for the format). Samples are
// batched, several to a message, bounded by Config.BatchMaxBytes and by a
// latency budget, Config.BatchMaxDelay (1 ms by default).
//
// An imported topic becomes a local topic published by the bridge, with the
// remote schema and ring geometry, so local subscribers use it like any other
// topic (schema checks included). Loss is counted end to end: a gap in the
// remote ring index, whether the sample was lost on the remote ring, in NATS
// or in this bridge, is counted in ImportStats.Lost and marked lost on the
// local ring, and a new remote generation (the remote publisher restarted)
// makes the bridge create a new local publisher: a restart locally.
//
//	b, err := bridge.New(bridge.Config{
//		URL:     "nats://base:4222",
//		Host:    "rover1",
//		Exports: []string{"*"},
//		Imports: []string{"base/cmd"},
//	})
//	if err != nil { ... }        // errors.Is(err, bridge.ErrConnect): unreachable, bad credentials
//	err = b.Run(ctx)             // until ctx is done
//
// With core NATS (the default) a message lost in an outage is lost, and
// counted. With Config.JetStream the exports are stored in a stream and the
// imports read it through a durable consumer: an outage shorter than the
// stream's limits loses nothing, the exporter holding back (the local ring
// is its buffer) until the server acknowledges, and resending with the same
// Nats-Msg-Id so that nothing is stored twice. The importer also drops any
// sample it has already published, by index.
//
// # Concurrency
//
// Each exported topic has a goroutine of its own; each imported topic is
// served by the NATS client's delivery goroutine for its subscription.
// Stats and Close may be called from any goroutine.
package bridge
