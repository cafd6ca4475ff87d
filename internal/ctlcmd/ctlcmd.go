// Package ctlcmd is busctl: list and describe a bus's topics, print,
// time and describe their samples, collect what dead publishers left, and
// report the host's real-time readiness.
package ctlcmd

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/app"
	"github.com/sensorbus/sensorbus/internal/subcmd"
	"github.com/sensorbus/sensorbus/rt"
)

const long = `Inspects and maintains a sensorbus bus: its topics, their samples and
rates, what dead publishers left behind, and this host's real-time
readiness. --bus-dir and --group go before or after the command.`

// Run runs busctl with args and returns its exit code.
func Run(args []string, stdout, stderr io.Writer) int {
	return app.Execute(Command(stdout, stderr), args, nil, stdout, stderr)
}

// Command returns busctl's command tree.
func Command(stdout, stderr io.Writer) *cobra.Command {
	var b app.Bus
	root := app.NewRoot("busctl", "Inspect and maintain a sensorbus bus", long,
		"  busctl list\n  busctl --bus-dir /run/sensorbus info imu -o json\n  busctl echo imu --count 5\n  busctl completion bash > /etc/bash_completion.d/busctl")
	root.RunE = func(*cobra.Command, []string) error {
		return app.Usagef("a command is required: list, info, echo, hz, schema, gc, doctor or completion")
	}
	b.Register(root.PersistentFlags())
	opts := func() (bus.Options, error) { return b.Options() }

	root.AddCommand(listCmd(opts), withRecordings(withSubscribers(infoCmd(opts), opts)), echoCmd(opts, stdout, stderr), hzCmd(opts), schemaCmd(opts), gcCmd(opts), doctorCmd(), bridgeCmd(opts, stderr), completionCmd(root), metricsCmd(opts), topCmd(opts), recordCmd(opts, stderr), replayCmd(opts, stderr), exportCmd())
	return root
}

// output is the -o flag (and --json, its older spelling).
type output struct {
	format    string
	json      bool
	noHeaders bool
	allowed   []string
}

func (o *output) register(fs *pflag.FlagSet, allowed ...string) {
	o.allowed = allowed
	fs.StringVarP(&o.format, "output", "o", "text", "output format: "+strings.Join(allowed, ", "))
	fs.BoolVar(&o.json, "json", false, "same as -o json")
}

func (o *output) get() (string, error) {
	if o.json {
		return "json", nil
	}
	for _, a := range o.allowed {
		if o.format == a {
			return a, nil
		}
	}
	return "", app.Usagef("-o %q: want %s", o.format, strings.Join(o.allowed, ", "))
}

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

func topicArg(c *cobra.Command, args []string, b func() (bus.Options, error)) (bus.Options, error) {
	o, err := b()
	if err != nil {
		return o, err
	}
	if err := app.CheckTopic("topic", args[0]); err != nil {
		return o, app.Usagef("%s: %s", c.Name(), strings.Replace(err.Error(), "--topic", "TOPIC", 1))
	}
	return o, nil
}

func listCmd(b func() (bus.Options, error)) *cobra.Command {
	var o output
	c := &cobra.Command{
		Use:     "list",
		Short:   "List the bus's topics: type, rate, subscribers, writer pid, state",
		Example: "  busctl list\n  busctl list -o wide --no-headers\n  busctl list -o json",
		Args:    app.ExactArgs(0),
	}
	o.register(c.Flags(), "text", "json", "wide")
	c.Flags().BoolVar(&o.noHeaders, "no-headers", false, "leave out the header line of text and wide output")
	c.RunE = func(c *cobra.Command, _ []string) error {
		format, err := o.get()
		if err != nil {
			return err
		}
		opts, err := b()
		if err != nil {
			return err
		}
		topics, err := bus.List(opts)
		if err != nil {
			return err
		}
		w := c.OutOrStdout()
		if format == "json" {
			if topics == nil {
				topics = []bus.TopicInfo{}
			}
			return printJSON(w, topics)
		}
		if len(topics) == 0 {
			if !o.noHeaders {
				fmt.Fprintln(w, "no topics on the bus")
			}
			return nil
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		if !o.noHeaders {
			if format == "wide" {
				fmt.Fprintln(tw, "TOPIC\tTYPE\tRATE\tSUBSCRIBERS\tWRITER PID\tSTATE\tSLOTS\tSLOT SIZE\tPUBLISHED\tFINGERPRINT\tSTARTED\tORIGIN")
			} else {
				fmt.Fprintln(tw, "TOPIC\tTYPE\tRATE\tSUBSCRIBERS\tWRITER PID\tSTATE")
			}
		}
		for _, t := range topics {
			typ := t.Schema
			if typ == "" {
				typ = "untyped"
			}
			fmt.Fprintf(tw, "%s\t%s\t%.0f/s\t%d\t%d\t%s", t.Topic, typ, t.RateHz, t.Subscribers, t.WriterPID, t.State)
			if format == "wide" {
				fmt.Fprintf(tw, "\t%d\t%d\t%d\t%s\t%s\t%s", t.Slots, t.SlotSize, t.Published, t.Fingerprint, t.Started, t.Origin)
			}
			fmt.Fprintln(tw)
		}
		return tw.Flush()
	}
	return c
}

func infoCmd(b func() (bus.Options, error)) *cobra.Command {
	var o output
	c := &cobra.Command{
		Use:     "info TOPIC",
		Short:   "Describe one topic: state, type, geometry, rate, subscribers, files",
		Example: "  busctl info imu\n  busctl info imu -o json",
		Args:    app.ExactArgs(1, "TOPIC"),
	}
	o.register(c.Flags(), "text", "json", "wide")
	c.RunE = func(c *cobra.Command, args []string) error {
		format, err := o.get()
		if err != nil {
			return err
		}
		opts, err := topicArg(c, args, b)
		if err != nil {
			return err
		}
		t, err := bus.Info(opts, args[0])
		if err != nil {
			return err
		}
		w := c.OutOrStdout()
		if format == "json" {
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
		row("subscribers", t.Subscribers)
		row("writer pid", t.WriterPID)
		row("started", t.Started)
		if t.Origin != "" {
			row("origin", t.Origin)
		}
		if t.Error != "" {
			row("error", t.Error)
		}
		if format == "wide" {
			row("subscriber pids", t.PeerPIDs)
			row("generation", t.Generation)
			row("socket", t.Socket)
		}
		return tw.Flush()
	}
	return c
}

func gcCmd(b func() (bus.Options, error)) *cobra.Command {
	var o output
	c := &cobra.Command{
		Use:     "gc",
		Short:   "Remove what dead publishers left behind, and print it",
		Long:    "Removes the control sockets and liveness files of topics whose publisher is gone (their rings have no name and went with it); a live publisher's files are never touched.",
		Example: "  busctl gc\n  busctl gc -o json",
		Args:    app.ExactArgs(0),
	}
	o.register(c.Flags(), "text", "json", "wide")
	c.Flags().BoolVar(&o.noHeaders, "no-headers", false, "print only the removed paths")
	c.RunE = func(c *cobra.Command, _ []string) error {
		format, err := o.get()
		if err != nil {
			return err
		}
		opts, err := b()
		if err != nil {
			return err
		}
		removed, err := bus.GC(opts)
		w := c.OutOrStdout()
		if format == "json" {
			if removed == nil {
				removed = []string{}
			}
			if perr := printJSON(w, struct {
				Removed []string `json:"removed"`
			}{removed}); err == nil {
				err = perr
			}
			return err
		}
		for _, p := range removed {
			if o.noHeaders {
				fmt.Fprintln(w, p)
			} else {
				fmt.Fprintln(w, "removed", p)
			}
		}
		if err == nil && len(removed) == 0 && !o.noHeaders {
			fmt.Fprintln(w, "nothing to remove")
		}
		return err
	}
	return c
}

// errCheckFailed is doctor's exit 1.
type errCheckFailed struct{ n int }

func (e errCheckFailed) Error() string {
	return fmt.Sprintf("%d check(s) failed: a real-time setting will be refused", e.n)
}

func doctorCmd() *cobra.Command {
	var o output
	c := &cobra.Command{
		Use:   "doctor",
		Short: "Report this host's real-time readiness; exit 1 if a check fails",
		Long: `Checks the kernel, CPUs and their isolation, SCHED_FIFO and memory-locking
rights, RT throttling and the CPU frequency governor, each with a verdict
(OK, WARN, FAIL, INFO) and advice. Exits 1 if any check fails.`,
		Example: "  busctl doctor\n  busctl doctor -o json",
		Args:    app.ExactArgs(0),
	}
	o.register(c.Flags(), "text", "json")
	c.RunE = func(c *cobra.Command, _ []string) error {
		format, err := o.get()
		if err != nil {
			return err
		}
		r := rt.Check()
		if format == "json" {
			err = printJSON(c.OutOrStdout(), r)
		} else {
			err = r.WriteText(c.OutOrStdout())
		}
		if err != nil {
			return err
		}
		if !r.Ready() {
			n := 0
			for _, it := range r.Items {
				if it.Verdict == rt.Fail {
					n++
				}
			}
			return errCheckFailed{n}
		}
		return nil
	}
	return c
}

func echoCmd(b func() (bus.Options, error), stdout, stderr io.Writer) *cobra.Command {
	var e subcmd.EchoConfig
	c := &cobra.Command{
		Use:   "echo TOPIC",
		Short: "Print a topic's samples, as subscriber does",
		Example: "  busctl echo imu\n  busctl echo imu --count 10 --format json\n" +
			"  busctl echo temp --format csv --fields seq,sensor,value",
		Args: app.ExactArgs(1, "TOPIC"),
	}
	fs := c.Flags()
	fs.StringVar(&e.Format, "format", "text", "text, json, csv or none")
	fs.StringVar(&e.Fields, "fields", "", "comma-separated fields to print")
	fs.StringVar(&e.From, "from", "newest", "newest or oldest (the ring's history first)")
	fs.Uint64Var(&e.Count, "count", 0, "stop after this many samples (0: no limit)")
	app.DurationVar(fs, &e.Duration, "duration", 0, false, "stop after this long (0: no limit)")
	app.DurationVar(fs, &e.WaitForPublisher, "wait-for-publisher", 0, true, "how long to wait for the publisher (0: fail at once; forever)")
	c.RunE = func(c *cobra.Command, args []string) error {
		opts, err := topicArg(c, args, b)
		if err != nil {
			return err
		}
		e.Topic, e.Bus = args[0], opts
		return subcmd.Echo(e, stdout, stderr)
	}
	return c
}

func printJSONLine(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintln(w, string(b))
}

func completionCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print busctl's shell completion script for bash, zsh or fish",
		Long: `Prints a script that makes the shell complete busctl's commands and
flags. Load it in the current shell with
  source <(busctl completion bash)
or install it where the shell looks for completions.`,
		Example: "  source <(busctl completion bash)\n  busctl completion bash > /etc/bash_completion.d/busctl\n" +
			"  busctl completion zsh > \"${fpath[1]}/_busctl\"\n  busctl completion fish > ~/.config/fish/completions/busctl.fish",
		Args:      app.ExactArgs(1, "SHELL"),
		ValidArgs: []string{"bash", "zsh", "fish"},
		RunE: func(c *cobra.Command, args []string) error {
			w := c.OutOrStdout()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(w, true)
			case "zsh":
				return root.GenZshCompletion(w)
			case "fish":
				return root.GenFishCompletion(w, true)
			}
			return app.Usagef("completion: unknown shell %q: want bash, zsh or fish", args[0])
		},
	}
}
