// Package ctlcmd is busctl: list and describe a bus's topics, collect what
// dead publishers left, and report the host's real-time readiness.
package ctlcmd

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/app"
	"github.com/sensorbus/sensorbus/rt"
)

const prog = "busctl"

const synopsis = `busctl COMMAND [flags]

Commands:
  list [--json]         the bus's topics: type, rate, subscribers, writer pid, state
  info TOPIC [--json]   one topic in detail
  gc                    remove what dead publishers left behind, and print it
  doctor [--json]       this host's real-time readiness

Every command takes --bus-dir.`

// Run runs busctl with args and returns its exit code.
func Run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		if len(args) == 0 {
			fmt.Fprintf(stderr, "Usage: %s\n\n%s\n", synopsis, app.ExitCodesHelp)
			return app.ExitUsage
		}
		fmt.Fprintf(stdout, "Usage: %s\n\n%s\n", synopsis, app.ExitCodesHelp)
		return app.ExitOK
	}
	cmd, rest := args[0], args[1:]
	fs := app.NewFlagSet(prog+" "+cmd, "busctl "+cmd+" [flags]", stdout)
	busDir := fs.String("bus-dir", "", "bus directory (none: $SENSORBUS_DIR, else $XDG_RUNTIME_DIR/sensorbus, else /run/sensorbus for root, else /tmp/sensorbus-UID)")
	asJSON := fs.Bool("json", false, "print JSON")
	// The topic of info may come before or after the flags.
	var topic string
	if cmd == "info" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		topic, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return app.ExitOK
		}
		return app.Fail(stderr, prog, err)
	}
	opts := bus.Options{Dir: *busDir}
	var err error
	switch cmd {
	case "list":
		err = list(opts, *asJSON, stdout)
	case "info":
		if topic == "" {
			err = app.Usagef("info needs a topic: busctl info TOPIC")
			break
		}
		err = info(opts, topic, *asJSON, stdout)
	case "gc":
		err = gc(opts, stdout)
	case "doctor":
		err = doctor(*asJSON, stdout)
	default:
		err = app.Usagef("unknown command %q: want list, info, gc or doctor", cmd)
	}
	if err != nil {
		return app.Fail(stderr, prog, err)
	}
	return app.ExitOK
}

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

func list(opts bus.Options, asJSON bool, w io.Writer) error {
	topics, err := bus.List(opts)
	if err != nil {
		return err
	}
	if asJSON {
		if topics == nil {
			topics = []bus.TopicInfo{}
		}
		return printJSON(w, topics)
	}
	if len(topics) == 0 {
		fmt.Fprintln(w, "no topics on the bus")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tTYPE\tRATE\tSUBSCRIBERS\tWRITER PID\tSTATE")
	for _, t := range topics {
		typ := t.Schema
		if typ == "" {
			typ = "untyped"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f/s\t%d\t%d\t%s\n", t.Topic, typ, t.RateHz, t.Subscribers, t.WriterPID, t.State)
	}
	return tw.Flush()
}

func info(opts bus.Options, topic string, asJSON bool, w io.Writer) error {
	t, err := bus.Info(opts, topic)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(w, t)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("topic", t.Topic)
	row("state", t.State)
	row("type", t.Schema+" ("+t.Fingerprint+")")
	row("geometry", fmt.Sprintf("%d slots of %d bytes", t.Slots, t.SlotSize))
	row("published", t.Published)
	row("rate", fmt.Sprintf("%.1f/s", t.RateHz))
	row("subscribers", fmt.Sprintf("%d %v", t.Subscribers, t.PeerPIDs))
	row("writer pid", t.WriterPID)
	row("started", t.Started)
	row("generation", t.Generation)
	row("socket", t.Socket)
	if t.Error != "" {
		row("error", t.Error)
	}
	return tw.Flush()
}

func gc(opts bus.Options, w io.Writer) error {
	removed, err := bus.GC(opts)
	for _, p := range removed {
		fmt.Fprintln(w, "removed", p)
	}
	if err == nil && len(removed) == 0 {
		fmt.Fprintln(w, "nothing to remove")
	}
	return err
}

func doctor(asJSON bool, w io.Writer) error {
	r := rt.Check()
	if asJSON {
		return printJSON(w, r)
	}
	return r.WriteText(w)
}
