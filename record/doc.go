// Package record records bus topics into MCAP files, replays them onto
// the bus, exports them for pandas and spreadsheets, and describes them:
// the library behind busctl record, replay, export and info FILE.mcap.
//
//	st, err := record.Record(ctx, record.RecordConfig{Topics: []string{"imu"}, Output: "run.mcap"})
//	sum, err := record.Inspect("run.mcap")
//	_, err = record.Replay(ctx, record.ReplayConfig{Files: []string{"run.mcap"}, Speed: 1})
//	_, err = record.Export(os.Stdout, record.ExportConfig{Files: []string{"run.mcap"}, Format: "csv"})
//
// Snapshot is the flight recorder: the last Window of its topics in
// memory, written to a file on each trigger.
//
// # The files
//
// Standard MCAP (profile "sensorbus"), chunked and compressed with zstd
// or lz4, which any MCAP reader opens:
//
//   - One channel per topic (a new one if a restarted publisher brings
//     another schema), whose metadata holds the schema's fingerprint,
//     version and layout, the publisher's pid and ring generation, the
//     ring's geometry and the full ring index of the channel's first
//     message in the file (Chan* keys).
//   - One schema record per type: its name, encoding "jsonschema", and a
//     JSON Schema of its fields with the sensorbus identity in
//     x-sensorbus-* keywords.
//   - Messages: the published bytes (encoding "msgpack") or, with
//     Encoding json, JSON objects that Foxglove and Lichtblick open.
//     log_time is when the recorder received the sample, publish_time the
//     sample's publish stamp, both Unix ns (CLOCK_MONOTONIC plus the
//     offset in the recording metadata); sequence is the low 32 bits of
//     the ring index, the full index recoverable as Message.Index says.
//   - Markers on the channel "sensorbus/markers" (JSON): every gap, right
//     before the first sample after it, with how many samples are missing
//     and the index where the topic resumes: samples the recorder lost
//     (ring overrun), publisher restarts, and samples gone from the ring
//     before the recorder attached.
//   - Metadata: "sensorbus.recording" after the header (host, version,
//     recorder pid, clock offset, options); "sensorbus.summary" when the
//     file is finished (per topic: messages, lost, restarts, first and
//     last index).
//
// Crash safety: Schema and Channel records precede, outside any chunk,
// the first chunk that needs them, and each chunk goes to the file, with
// its message indexes, as soon as it is cut, at least every FlushInterval
// (1 s by default). A recorder killed with kill -9 leaves a file without
// summary or footer whose complete chunks every MCAP reader that reads
// from the start reads; this package's Reader does, and so do Inspect,
// Replay and Export.
//
// # Concurrency
//
// Record and Snapshot run one goroutine per topic (each a bus subscriber)
// and one that compresses and writes chunks, so a slow disk never stalls
// the topics until a bounded queue of chunks (64 MiB) is full; then
// samples wait in their rings, and a ring that overflows is recorded as
// loss. Their Notify callback is called from those goroutines. A Reader
// belongs to one goroutine. Replay publishes from the calling goroutine.
package record
