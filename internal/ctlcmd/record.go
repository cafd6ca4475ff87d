package ctlcmd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/app"
	"github.com/sensorbus/sensorbus/internal/sys"
	"github.com/sensorbus/sensorbus/record"
)

// busctl record, replay, export and info FILE.mcap: the command line of
// package record.

const recordShort = "Record topics into an MCAP file, or keep the last seconds as a flight recorder"

const recordLong = recordShort + `.

The file is one that any MCAP reader opens (Foxglove and Lichtblick
directly with --encoding json): a channel per topic, the samples as
published (or transcoded to JSON), chunked and compressed.
Named topics are recorded from the oldest sample their ring still holds,
so a recorder started before its publisher gets every sample; --all
records every live topic and those that appear while it runs. Samples the
recorder loses (ring overrun, publisher restart) are counted in the file,
where they happened.

Each chunk reaches the file at least every --flush-interval: a recorder
killed with kill -9 leaves a file that busctl info, export and replay read
up to its last complete chunk. SIGINT, SIGTERM and SIGHUP, --duration or
--count finish the file (summary and index written) and print what was
recorded, a line per topic (--json: one JSON line). Progress goes to
stderr, a line each: topics attached, files written; samples lost are
logged (level warn) with where they happened. With
--split-size or --split-duration the files are FILE-0001.mcap,
FILE-0002.mcap, ...

Flight recorder: with --snapshot WINDOW the last WINDOW of the topics (at
most --snapshot-bytes) stays in memory, and each SIGUSR1 writes it to a new
file in the directory -o, named snapshot-TIME.mcap (UTC); so does the end
of the recorder with --snapshot-on-exit.

Every value is checked before anything is created (exit 2); an existing
file is never overwritten. Exits 5 if a named topic has no publisher within
--wait-for-publisher, 1 if a file cannot be written.`

const recordExamples = `  busctl record -o run.mcap imu gps
  busctl record -o run.mcap --all --duration 10m --split-size 256MiB
  busctl record -o imu.mcap imu --encoding json --compression lz4 --count 100000
  busctl record --snapshot 30s --snapshot-on-exit -o /var/lib/blackbox imu   # then: kill -USR1 PID`

const replayShort = "Publish recorded samples on the bus at their recorded pace"

const replayLong = replayShort + `.

The samples keep their original schemas (the same type name and
fingerprint) and are paced at the recorded intervals divided by --speed
(0: as fast as possible). The files are played one after the other, the
parts of a split recording in order; a file cut short plays up to its last
complete chunk. Where the recording has a gap (samples the recorder lost,
a publisher restart), replay logs it and publishes the gap as lost, so
that subscribers are told of it as the recorder was and, on the first
pass, see the recorded ring indices. When done (or on SIGINT, SIGTERM,
SIGHUP) it closes its topics and prints what it published (-o json: one
JSON line).

A FILE that does not exist is a usage error (exit 2). Exits 1 if a file
is not a readable recording or holds a topic of a type this build does not
know, 6 if a live publisher owns a topic to replay (rename it with
--remap).`

const replayExamples = `  busctl replay run.mcap
  busctl replay run-0001.mcap run-0002.mcap --speed 2 --loop
  busctl replay run.mcap --topic imu --remap imu=imu.replay --start 1m30s
  busctl replay run.mcap --speed 0 --paused-until-subscribed -o json`

const exportShort = "Write a recording's samples as CSV or JSON lines, for pandas and spreadsheets"

const exportLong = exportShort + `.

The rows go to stdout, a sample each: topic, full ring index, log and
publish times (Unix ns), the samples lost right before it, and its decoded
fields. CSV has a column per field, named by its path (accel.x), and needs
the exported topics to share a type; JSON lines carry the fields as an
object under "data". Several files are read one after the other (the
parts of a split recording); a file cut short is read up to its last
complete chunk, with a line on stderr saying so.

A FILE that does not exist is a usage error (exit 2). Exits 1 if a file
is not a readable recording.`

const exportExamples = `  busctl export run.mcap > run.csv
  busctl export run.mcap --format jsonl --topic imu | jq .data.accel
  python3 -c 'import pandas; print(pandas.read_csv("run.csv").describe())'`

// recordFlags are busctl record's flags as given.
type recordFlags struct {
	output        string
	all           bool
	compression   string
	encoding      string
	duration      time.Duration
	count         uint64
	splitSize     int64
	splitDuration time.Duration
	chunkSize     int64
	flushInterval time.Duration
	wait          time.Duration
	snapshot      time.Duration
	snapshotBytes int64
	snapshotExit  bool
	json          bool
	logLevel      string

	flags   *pflag.FlagSet
	busOpts func() (bus.Options, error)
	stderr  io.Writer
}

func recordCmd(b func() (bus.Options, error), stderr io.Writer) *cobra.Command {
	f := &recordFlags{busOpts: b, stderr: stderr}
	c := &cobra.Command{
		Use:     "record -o FILE.mcap [TOPIC... | --all]",
		Short:   recordShort,
		Long:    recordLong,
		Example: recordExamples,
	}
	fs := c.Flags()
	fs.SortFlags = false
	f.flags = fs
	fs.StringVarP(&f.output, "output", "o", "", "the `FILE`.mcap to write (required; never overwritten); with --snapshot, the directory of the snapshots")
	fs.BoolVar(&f.all, "all", false, "record every live topic, and those that appear while recording")
	fs.StringVar(&f.compression, "compression", "zstd", "chunk compression: zstd, lz4 or none")
	fs.StringVar(&f.encoding, "encoding", "msgpack", "msgpack (the published bytes) or json (transcoded, for Foxglove)")
	app.DurationVar(fs, &f.duration, "duration", 0, false, "stop after this long (0: no limit)")
	fs.Uint64Var(&f.count, "count", 0, "stop after this many samples of all topics together (0: no limit)")
	sizeVar(fs, &f.splitSize, "split-size", 0, "start a new file once one is this large (0: never)")
	app.DurationVar(fs, &f.splitDuration, "split-duration", 0, false, "start a new file once one is this old (0: never)")
	sizeVar(fs, &f.chunkSize, "chunk-size", 1<<20, "the uncompressed size at which a chunk is cut (1KiB to 32MiB)")
	app.DurationVar(fs, &f.flushInterval, "flush-interval", time.Second, false, "the longest a sample waits in memory before its chunk is written")
	app.DurationVar(fs, &f.wait, "wait-for-publisher", app.Forever, true, "how long to wait for a named topic's publisher (0: fail at once; forever)")
	app.DurationVar(fs, &f.snapshot, "snapshot", 0, false, "flight recorder: keep the last `WINDOW` in memory, write it on SIGUSR1")
	sizeVar(fs, &f.snapshotBytes, "snapshot-bytes", 256<<20, "with --snapshot, the most memory the kept samples take (the oldest go first)")
	fs.BoolVar(&f.snapshotExit, "snapshot-on-exit", false, "with --snapshot, also write a snapshot when the recorder stops")
	fs.BoolVar(&f.json, "json", false, "print the final counts as one JSON line")
	fs.StringVar(&f.logLevel, "log-level", "warn", "debug, info, warn or error")
	c.MarkFlagFilename("output", "mcap")
	fixed := func(values ...string) cobra.CompletionFunc {
		return cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)
	}
	c.RegisterFlagCompletionFunc("compression", fixed("zstd", "lz4", "none"))
	c.RegisterFlagCompletionFunc("encoding", fixed("msgpack", "json"))
	c.RegisterFlagCompletionFunc("log-level", fixed("debug", "info", "warn", "error"))
	c.ValidArgsFunction = liveTopics(b)
	c.RunE = func(c *cobra.Command, args []string) error {
		rc, err := f.config(args)
		if err != nil {
			return err
		}
		return f.run(rc, c.OutOrStdout())
	}
	return c
}

// liveTopics completes the names of the bus's live topics.
func liveTopics(b func() (bus.Options, error)) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		var names []string
		if opts, err := b(); err == nil {
			topics, _ := bus.List(opts)
			for _, t := range topics {
				if t.State == bus.StateLive {
					names = append(names, t.Topic)
				}
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// splitPart is the name of the first part of a split recording, as package
// record names the parts (FILE-0001.mcap).
func splitPart(output string) string {
	ext := filepath.Ext(output)
	return strings.TrimSuffix(output, ext) + "-0001" + ext
}

// config checks every flag and argument; nothing is created.
func (f *recordFlags) config(topics []string) (record.SnapshotConfig, error) {
	var sc record.SnapshotConfig
	rc := &sc.RecordConfig
	snapshot := f.flags.Changed("snapshot")
	if snapshot && f.snapshot <= 0 {
		return sc, app.Usagef("--snapshot %v: want the window to keep, more than 0", f.snapshot)
	}
	for _, name := range []string{"snapshot-bytes", "snapshot-on-exit"} {
		if !snapshot && f.flags.Changed(name) {
			return sc, app.Usagef("--%s applies to --snapshot", name)
		}
	}
	if snapshot {
		for _, name := range []string{"count", "split-size", "split-duration", "flush-interval"} {
			if f.flags.Changed(name) {
				return sc, app.Usagef("--%s does not apply to --snapshot", name)
			}
		}
	}
	switch {
	case len(topics) > 0 && f.all:
		return sc, app.Usagef("record: name topics or give --all, not both")
	case len(topics) == 0 && !f.all:
		return sc, app.Usagef("record: nothing to record: name topics or give --all (usage: busctl record -o FILE.mcap [TOPIC... | --all])")
	}
	for _, t := range topics {
		if err := app.CheckTopic("topic", t); err != nil {
			return sc, app.Usagef("record: %s", strings.Replace(err.Error(), "--topic", "TOPIC", 1))
		}
	}
	rc.Topics, rc.All = topics, f.all
	if err := f.checkOutput(snapshot); err != nil {
		return sc, err
	}
	switch f.compression {
	case "zstd", "lz4", "none":
	default:
		return sc, app.Usagef("--compression %q: want zstd, lz4 or none", f.compression)
	}
	rc.Compression = record.Compression(f.compression)
	switch f.encoding {
	case record.MessageEncodingMsgpack, record.MessageEncodingJSON:
	default:
		return sc, app.Usagef("--encoding %q: want msgpack or json", f.encoding)
	}
	rc.Encoding = f.encoding
	if f.chunkSize < 1<<10 || f.chunkSize > 32<<20 {
		return sc, app.Usagef("--chunk-size %s: want 1KiB to 32MiB", f.flags.Lookup("chunk-size").Value)
	}
	if f.flushInterval <= 0 {
		return sc, app.Usagef("--flush-interval 0: want more than 0")
	}
	if snapshot && f.snapshotBytes <= 0 {
		return sc, app.Usagef("--snapshot-bytes 0: want more than 0")
	}
	rc.Duration, rc.Count = f.duration, f.count
	rc.SplitSize, rc.SplitDuration = f.splitSize, f.splitDuration
	if f.flags.Changed("chunk-size") || !snapshot {
		rc.ChunkSize = int(f.chunkSize)
	}
	if !snapshot {
		rc.FlushInterval = f.flushInterval
	}
	rc.WaitForPublisher = f.wait
	if rc.WaitForPublisher == 0 {
		rc.WaitForPublisher = time.Nanosecond // 0 is "until the end" to the recorder; here it fails at once
	}
	if snapshot {
		sc.Dir, sc.Window, sc.MaxBytes, sc.OnExit = f.output, f.snapshot, f.snapshotBytes, f.snapshotExit
	} else {
		rc.Output = f.output
	}
	var err error
	if rc.Bus, err = f.busOpts(); err != nil {
		return sc, err
	}
	if rc.Logger, _, err = app.Logger(f.logLevel, f.stderr); err != nil {
		return sc, err
	}
	return sc, nil
}

// checkOutput checks -o: a new FILE.mcap in an existing directory, or with
// --snapshot an existing directory.
func (f *recordFlags) checkOutput(snapshot bool) error {
	out := f.output
	if out == "" {
		if snapshot {
			return app.Usagef("-o is required: the directory of the snapshots")
		}
		return app.Usagef("-o is required: the FILE.mcap to write")
	}
	if snapshot {
		fi, err := os.Stat(out)
		if err != nil {
			return app.Usagef("-o %q: %v (with --snapshot, -o is an existing directory)", out, pathErr(err))
		}
		if !fi.IsDir() {
			return app.Usagef("-o %q: not a directory (with --snapshot, -o is the directory of the snapshots)", out)
		}
		return nil
	}
	if filepath.Ext(out) != ".mcap" {
		return app.Usagef("-o %q: a recording's name ends in .mcap (-o names the file; --json prints the report as JSON)", out)
	}
	if fi, err := os.Stat(filepath.Dir(out)); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return app.Usagef("-o %q: directory %s: %v", out, filepath.Dir(out), pathErr(err))
	}
	first := out
	if f.splitSize > 0 || f.splitDuration > 0 {
		first = splitPart(out)
	}
	if _, err := os.Lstat(first); err == nil {
		return app.Usagef("-o %q: %s exists; busctl record never overwrites a file", out, first)
	}
	return nil
}

// notices prints the recorder's progress on stderr, a line each; Notify
// calls it from the recorder's goroutines. Loss is left to the recorder's
// log (level warn), which says where it happened.
type notices struct {
	mu sync.Mutex
	w  io.Writer
}

func (n *notices) event(ev record.Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch ev.Kind {
	case record.EventAttached:
		fmt.Fprintf(n.w, "busctl record: recording %s\n", ev.Topic)
	case record.EventTopicDone:
		fmt.Fprintf(n.w, "busctl record: %s: publisher gone\n", ev.Topic)
	case record.EventFile:
		fmt.Fprintf(n.w, "busctl record: wrote %s\n", ev.Path)
	}
}

func (f *recordFlags) run(sc record.SnapshotConfig, stdout io.Writer) error {
	defer sc.Logger.Sync()
	ctx, stop := app.SignalContext()
	defer stop()
	n := &notices{w: f.stderr}
	sc.Notify = n.event
	var st record.Stats
	var err error
	if sc.Dir == "" {
		st, err = record.Record(ctx, sc.RecordConfig)
	} else {
		// SIGUSR1 asks for a snapshot; registered before any topic is
		// attached (and announced), so that a signal after the first
		// "recording" line is never the default action (the end).
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, sys.SnapshotSignal)
		defer signal.Stop(usr1)
		trigger := make(chan struct{})
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-usr1:
					select {
					case trigger <- struct{}{}:
					case <-done:
						return
					}
				case <-done:
					return
				}
			}
		}()
		sc.Trigger = trigger
		st, err = record.Snapshot(ctx, sc)
		close(done)
		wg.Wait()
	}
	if st.Topics == nil && err != nil {
		return err
	}
	if f.json {
		if st.Files == nil {
			st.Files = []string{}
		}
		printJSONLine(stdout, st)
	} else if werr := writeRecordText(stdout, st, sc.Dir != ""); err == nil {
		err = werr
	}
	return err
}

// writeRecordText prints the final counts: a line for the whole, a line
// per topic.
func writeRecordText(w io.Writer, st record.Stats, snapshot bool) error {
	verb, files := "recorded", strings.Join(st.Files, ", ")
	if snapshot {
		verb = "kept"
		switch len(st.Files) {
		case 0:
			files = "no snapshot written"
		case 1:
			files = "1 snapshot: " + files
		default:
			files = fmt.Sprintf("%d snapshots: %s", len(st.Files), files)
		}
	}
	fmt.Fprintf(w, "%s %d samples of %s in %s, lost %d: %s\n", verb, st.Messages, plural(len(st.Topics), "topic"),
		st.Duration.Round(time.Millisecond), st.Lost, files)
	if len(st.Topics) == 0 {
		return nil
	}
	names := make([]string, 0, len(st.Topics))
	for t := range st.Topics {
		names = append(names, t)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tSAMPLES\tLOST\tBEFORE\tRESTARTS\tMALFORMED\tBYTES")
	for _, name := range names {
		t := st.Topics[name]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\n", name, t.Messages, t.Lost, t.Before, t.Restarts, t.Malformed, t.Bytes)
	}
	return tw.Flush()
}

// plural says n things: "1 topic", "2 topics", "3 passes".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	if strings.HasSuffix(what, "s") {
		return fmt.Sprintf("%d %ses", n, what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// checkFiles checks that each recording argument is a file that exists.
func checkFiles(cmd string, files []string) error {
	if len(files) == 0 {
		return app.Usagef("%s: missing FILE.mcap (usage: busctl %s FILE.mcap...)", cmd, cmd)
	}
	for _, p := range files {
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return app.Usagef("%s: %s: no such file", cmd, p)
		case err != nil:
			return app.Usagef("%s: %s: %v", cmd, p, pathErr(err))
		case fi.IsDir():
			return app.Usagef("%s: %s is a directory, not a recording", cmd, p)
		}
	}
	return nil
}

// mcapFiles completes recordings' file names.
func mcapFiles(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return []string{"mcap"}, cobra.ShellCompDirectiveFilterFileExt
}

func replayCmd(b func() (bus.Options, error), stderr io.Writer) *cobra.Command {
	var (
		cfg      record.ReplayConfig
		remaps   []string
		logLevel string
		o        output
	)
	c := &cobra.Command{
		Use:               "replay FILE.mcap... [--speed X] [--loop] [--topic T]... [--remap FROM=TO]...",
		Short:             replayShort,
		Long:              replayLong,
		Example:           replayExamples,
		ValidArgsFunction: mcapFiles,
	}
	fs := c.Flags()
	fs.SortFlags = false
	fs.Float64Var(&cfg.Speed, "speed", 1, "play at this multiple of the recorded pace (0: as fast as possible)")
	fs.BoolVar(&cfg.Loop, "loop", false, "play the files again and again until stopped")
	fs.StringArrayVar(&cfg.Topics, "topic", nil, "play this recorded `TOPIC` (repeatable; default: every one)")
	fs.StringArrayVar(&remaps, "remap", nil, "publish recorded topic FROM as TO: `FROM=TO` (repeatable)")
	app.DurationVar(fs, &cfg.Start, "start", 0, false, "skip this much of the recording, from its first sample")
	fs.BoolVar(&cfg.PausedUntilSubscribed, "paused-until-subscribed", false, "create the topics, then wait until each has a subscriber before the first sample")
	o.register(fs, "text", "json")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error (info shows each recorded gap passed)")
	fixed := func(values ...string) cobra.CompletionFunc {
		return cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)
	}
	c.RegisterFlagCompletionFunc("output", fixed("text", "json"))
	c.RegisterFlagCompletionFunc("log-level", fixed("debug", "info", "warn", "error"))
	c.RunE = func(c *cobra.Command, args []string) error {
		format, err := o.get()
		if err != nil {
			return err
		}
		if err := checkFiles("replay", args); err != nil {
			return err
		}
		cfg.Files = args
		if math.IsNaN(cfg.Speed) || math.IsInf(cfg.Speed, 0) || cfg.Speed < 0 || cfg.Speed > 1e6 {
			return app.Usagef("--speed %v: want 0 (as fast as possible) or a multiple of the recorded pace up to 1000000", cfg.Speed)
		}
		for _, t := range cfg.Topics {
			if err := app.CheckTopic("topic", t); err != nil {
				return err
			}
		}
		for _, r := range remaps {
			from, to, ok := strings.Cut(r, "=")
			if !ok {
				return app.Usagef("--remap %q: want FROM=TO", r)
			}
			for _, t := range []string{from, to} {
				if err := app.CheckTopic("remap", t); err != nil {
					return app.Usagef("--remap %q: %s", r, strings.TrimPrefix(err.Error(), "--remap "))
				}
			}
			if cfg.Remap == nil {
				cfg.Remap = map[string]string{}
			}
			if _, dup := cfg.Remap[from]; dup {
				return app.Usagef("--remap %q: %s is remapped twice", r, from)
			}
			cfg.Remap[from] = to
		}
		if cfg.Bus, err = b(); err != nil {
			return err
		}
		if cfg.Logger, _, err = app.Logger(logLevel, stderr); err != nil {
			return err
		}
		defer cfg.Logger.Sync()
		ctx, stop := app.SignalContext()
		defer stop()
		st, err := record.Replay(ctx, cfg)
		if err != nil {
			return err
		}
		w := c.OutOrStdout()
		if format == "json" {
			printJSONLine(w, st)
			return nil
		}
		return writeReplayText(w, st)
	}
	return c
}

// writeReplayText prints what a replay published.
func writeReplayText(w io.Writer, st record.ReplayStats) error {
	fmt.Fprintf(w, "replayed %d samples of %s in %s (%s); recorded gaps passed %d, samples lost in them %d\n",
		st.Messages, plural(len(st.Topics), "topic"), st.Duration.Round(time.Millisecond), plural(st.Loops, "pass"), st.Gaps, st.Lost)
	names := make([]string, 0, len(st.Topics))
	for t := range st.Topics {
		names = append(names, t)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tSAMPLES")
	for _, name := range names {
		fmt.Fprintf(tw, "%s\t%d\n", name, st.Topics[name])
	}
	return tw.Flush()
}

func exportCmd() *cobra.Command {
	var cfg record.ExportConfig
	c := &cobra.Command{
		Use:               "export FILE.mcap... [--format csv|jsonl] [--topic T]...",
		Short:             exportShort,
		Long:              exportLong,
		Example:           exportExamples,
		ValidArgsFunction: mcapFiles,
	}
	fs := c.Flags()
	fs.StringVar(&cfg.Format, "format", "csv", "csv or jsonl")
	fs.StringArrayVar(&cfg.Topics, "topic", nil, "export this `TOPIC` (repeatable; default: every one)")
	c.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"csv", "jsonl"}, cobra.ShellCompDirectiveNoFileComp))
	c.RunE = func(c *cobra.Command, args []string) error {
		if cfg.Format != "csv" && cfg.Format != "jsonl" {
			return app.Usagef("--format %q: want csv or jsonl", cfg.Format)
		}
		for _, t := range cfg.Topics {
			if err := app.CheckTopic("topic", t); err != nil {
				return err
			}
		}
		if err := checkFiles("export", args); err != nil {
			return err
		}
		cfg.Files = args
		for _, p := range args {
			if cutShort(p) {
				fmt.Fprintf(c.ErrOrStderr(), "busctl export: %s was cut short (no summary or index); reading up to its last complete chunk\n", p)
			}
		}
		_, err := record.Export(c.OutOrStdout(), cfg)
		return err
	}
	return c
}

// mcapMagic ends every finished MCAP file.
const mcapMagic = "\x89MCAP0\r\n"

// cutShort reports whether the file at path is an MCAP file (it starts
// with the magic) that does not end with it: a recorder stopped before it
// finished the file. Whatever it cannot read, it leaves to the reader to
// say.
func cutShort(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, len(mcapMagic))
	if _, err := io.ReadFull(f, head); err != nil || string(head) != mcapMagic {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() < 2*int64(len(mcapMagic)) {
		return err == nil
	}
	tail := make([]byte, len(mcapMagic))
	if _, err := f.ReadAt(tail, fi.Size()-int64(len(tail))); err != nil {
		return false
	}
	return string(tail) != mcapMagic
}

// isRecording tells busctl info's argument apart: a recording if it ends
// in .mcap or names an existing regular file; otherwise a topic (whose
// check then names what is wrong with it).
func isRecording(arg string) bool {
	if strings.HasSuffix(arg, ".mcap") {
		return true
	}
	fi, err := os.Stat(arg)
	return err == nil && fi.Mode().IsRegular()
}

// withRecordings makes busctl info describe a recording when given one.
func withRecordings(c *cobra.Command) *cobra.Command {
	run := c.RunE
	c.Use = "info TOPIC|FILE.mcap"
	c.Short = "Describe one topic (state, type, rate, subscribers) or a recording (topics, counts, loss, times)"
	c.Long = c.Short + `.

For a live topic: its state, type, geometry, rate, subscribers and their
reports. For a recording (an argument that ends in .mcap or names an
existing file): its topics, their types, sample counts and loss, its
duration, start and end times, and whether it was finished or cut short
(then read up to its last complete chunk); -o wide also lists every
recorded gap. Exits 1 if the file is not a readable recording, 2 if it
does not exist.`
	c.Example += "\n  busctl info run.mcap\n  busctl info run.mcap -o json"
	c.ValidArgsFunction = func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"mcap"}, cobra.ShellCompDirectiveFilterFileExt
	}
	c.RunE = func(c *cobra.Command, args []string) error {
		if len(args) != 1 || !isRecording(args[0]) {
			return run(c, args)
		}
		format := "json"
		if j, _ := c.Flags().GetBool("json"); !j {
			format, _ = c.Flags().GetString("output")
		}
		switch format {
		case "text", "json", "wide":
		default:
			return app.Usagef("-o %q: want text, json, wide", format)
		}
		if err := checkFiles("info", args); err != nil {
			return err
		}
		sum, err := record.Inspect(args[0])
		if err != nil {
			return err
		}
		w := c.OutOrStdout()
		if format == "json" {
			return printJSON(w, sum)
		}
		return writeSummary(w, sum, format == "wide")
	}
	return c
}

// unixTime formats Unix ns as UTC with milliseconds.
func unixTime(ns uint64) string {
	if ns == 0 {
		return "-"
	}
	return time.Unix(0, int64(ns)).UTC().Format("2006-01-02T15:04:05.000Z")
}

// writeSummary prints what busctl info FILE.mcap says of a recording.
func writeSummary(w io.Writer, s record.Summary, wide bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("file", s.Path)
	row("size", fmt.Sprintf("%d bytes", s.Size))
	switch {
	case s.Complete:
		row("complete", "yes (summary and index written)")
	default:
		row("complete", "no: cut short; read up to its last complete chunk")
	}
	if h := s.Recording[record.MetaHost]; h != "" {
		row("host", h)
	}
	if v := s.Recording[record.MetaVersion]; v != "" {
		row("recorded by", "sensorbus "+v)
	}
	if m := s.Recording[record.MetaMode]; m != "" {
		row("mode", m)
	}
	if p := s.Recording[record.MetaPart]; p != "" && p != "0" {
		row("part", p)
	}
	row("start", unixTime(s.Start))
	row("end", unixTime(s.End))
	row("duration", time.Duration(s.Duration).Round(time.Millisecond))
	row("samples", s.Messages)
	row("lost", s.Lost)
	row("chunks", s.Chunks)
	if wide {
		row("profile", s.Profile)
		row("library", s.Library)
		row("markers", s.Markers)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(s.Topics) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tTYPE\tENCODING\tSAMPLES\tLOST\tBEFORE\tRESTARTS\tINDICES\tSTART\tEND")
	for _, t := range s.Topics {
		typ := t.Schema
		if typ == "" {
			typ = "untyped"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d-%d\t%s\t%s\n", t.Topic, typ, t.Encoding, t.Messages, t.Lost, t.Before,
			t.Restarts, t.FirstIndex, t.LastIndex, unixTime(t.Start), unixTime(t.End))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !wide {
		return nil
	}
	var gaps []record.Marker
	for _, t := range s.Topics {
		gaps = append(gaps, t.Gaps...)
	}
	if len(gaps) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GAP IN\tKIND\tSAMPLES MISSING\tBEFORE INDEX")
	for _, g := range gaps {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", g.Topic, g.Kind, g.Lost, g.Index)
	}
	return tw.Flush()
}
