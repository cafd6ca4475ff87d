// Package app holds what the three programs (publisher, subscriber,
// busctl) share: exit codes, flag parsing with GNU-style help, logging,
// real-time setup and the synthetic sample source. The programs' logic
// lives in internal/pubcmd, internal/subcmd and internal/ctlcmd.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/sys"
	"github.com/sensorbus/sensorbus/ring"
	"github.com/sensorbus/sensorbus/rt"
	"github.com/sensorbus/sensorbus/schema"
)

// Exit codes, the same for every program.
const (
	ExitOK          = 0
	ExitError       = 1
	ExitUsage       = 2
	ExitSchema      = 3
	ExitPermission  = 4
	ExitNoPublisher = 5
	ExitTopicBusy   = 6
)

// ExitCodesHelp documents the exit codes for --help.
const ExitCodesHelp = `Exit codes: 0 ok, 1 other error, 2 usage, 3 schema mismatch,
4 permission denied, 5 no publisher within --wait-for-publisher, 6 topic busy.`

// Code maps an error to the exit code that describes it.
func Code(err error) int {
	var ue *UsageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue), errors.Is(err, bus.ErrInvalid), errors.Is(err, ring.ErrInvalidConfig):
		return ExitUsage
	case errors.Is(err, schema.ErrSchemaMismatch):
		return ExitSchema
	case errors.Is(err, bus.ErrPermission), errors.Is(err, rt.ErrNotPermitted), errors.Is(err, os.ErrPermission):
		return ExitPermission
	case errors.Is(err, bus.ErrNoPublisher), errors.Is(err, bus.ErrNoBus):
		return ExitNoPublisher
	case errors.Is(err, bus.ErrTopicBusy):
		return ExitTopicBusy
	}
	return ExitError
}

// UsageError is a wrong flag or argument.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a *UsageError.
func Usagef(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }

// Fail prints err as one line on stderr, prefixed by the program's name,
// and returns its exit code.
func Fail(stderr io.Writer, prog string, err error) int {
	fmt.Fprintf(stderr, "%s: %v\n", prog, err)
	var ue *UsageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "Run '%s --help' for the flags.\n", prog)
	}
	return Code(err)
}

// Flags is a flag set that reports errors instead of exiting and prints
// GNU-style help (--flag value) with every default.
type Flags struct {
	*flag.FlagSet
	help func()
}

// NewFlagSet returns the flags of program prog; --help prints synopsis and
// the flags to out.
func NewFlagSet(prog, synopsis string, out io.Writer) *Flags {
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // a wrong flag gets one line, not the help
	f := &Flags{FlagSet: fs}
	f.help = func() {
		fmt.Fprintf(out, "Usage: %s\n\n", synopsis)
		var lines [][2]string
		fs.VisitAll(func(f *flag.Flag) {
			name, usage := flag.UnquoteUsage(f)
			left := "--" + f.Name
			if name != "" {
				left += " " + name
			}
			def := f.DefValue
			if def == "" {
				def = "none"
			}
			usage += " (default " + def + ")"
			lines = append(lines, [2]string{left, usage})
		})
		sort.Slice(lines, func(i, j int) bool { return lines[i][0] < lines[j][0] })
		width := 0
		for _, l := range lines {
			width = max(width, len(l[0]))
		}
		for _, l := range lines {
			fmt.Fprintf(out, "  %-*s  %s\n", width, l[0], l[1])
		}
		fmt.Fprintf(out, "\n%s\n", ExitCodesHelp)
	}
	return f
}

// Parse parses args; --help prints the help and returns flag.ErrHelp.
func (fs *Flags) Parse(args []string) error {
	err := fs.FlagSet.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.help()
		return err
	}
	if err != nil {
		return Usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return Usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// Logger builds the programs' logger: on stderr, console-encoded on a
// terminal and JSON otherwise, at level ("debug", "info", "warn", "error").
func Logger(level string, stderr io.Writer) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, Usagef("--log-level %q: want debug, info, warn or error", level)
	}
	cfg := zap.NewProductionEncoderConfig()
	cfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder = zapcore.NewJSONEncoder(cfg)
	if IsTerminal(stderr) {
		cfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(cfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(stderr), lvl)), nil
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && sys.IsTerminal(int(f.Fd()))
}

// SignalContext returns a context canceled by SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// ParseIDs parses a comma-separated list of uids or gids.
func ParseIDs(flagName, s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var ids []int
	for _, f := range strings.Split(s, ",") {
		id, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || id < 0 {
			return nil, Usagef("--%s: %q is not a numeric id", flagName, f)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// RT is the real-time setup the --cpu, --fifo and --mlock flags ask for.
type RT struct {
	CPU   string
	FIFO  int
	MLock bool
}

// Register adds the flags to fs.
func (r *RT) Register(fs *Flags) {
	fs.StringVar(&r.CPU, "cpu", "", "run the hot loop on these CPUs (e.g. 3 or 2-3)")
	fs.IntVar(&r.FIFO, "fifo", 0, "run the hot loop under SCHED_FIFO at this priority (1-99)")
	fs.BoolVar(&r.MLock, "mlock", false, "lock all memory in RAM (mlockall) and pre-fault the ring")
}

// Thread validates the flags and returns the thread to run the loop on.
func (r *RT) Thread() (rt.Thread, error) {
	var t rt.Thread
	if r.CPU != "" {
		cpus, err := rt.ParseCPUList(r.CPU)
		if err != nil || len(cpus) == 0 {
			return t, Usagef("--cpu %q: want a CPU list such as 3 or 0-1,4", r.CPU)
		}
		t.CPUs = cpus
	}
	if r.FIFO < 0 || r.FIFO > rt.MaxPriority {
		return t, Usagef("--fifo %d: want a priority from 1 to %d", r.FIFO, rt.MaxPriority)
	}
	t.Priority = r.FIFO
	return t, nil
}

// TypeNames lists the --type values.
var TypeNames = []string{"imu", "scalar", "vector3", "gps", "battery", "raw"}

// SchemaOf returns the built-in schema a --type names.
func SchemaOf(name string) (*schema.Schema, error) {
	switch name {
	case "imu":
		return schema.IMUSchema, nil
	case "scalar":
		return schema.ScalarSchema, nil
	case "vector3":
		return schema.Vector3Schema, nil
	case "gps":
		return schema.GPSFixSchema, nil
	case "battery":
		return schema.BatterySchema, nil
	case "raw":
		return schema.RawSchema, nil
	}
	return nil, Usagef("unknown type %q: want one of %s", name, strings.Join(TypeNames, ", "))
}
