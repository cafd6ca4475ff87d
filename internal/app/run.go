package app

import (
	"context"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sensorbus/sensorbus/internal/sys"
	"github.com/sensorbus/sensorbus/rt"
)

// Logger builds the programs' logger: on stderr, console-encoded on a
// terminal and JSON otherwise, at level ("debug", "info", "warn", "error").
func Logger(level string, stderr io.Writer) (*zap.Logger, zapcore.Level, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil || lvl < zapcore.DebugLevel || lvl > zapcore.ErrorLevel {
		return nil, 0, Usagef("--log-level %q: want debug, info, warn or error", level)
	}
	cfg := zap.NewProductionEncoderConfig()
	cfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder = zapcore.NewJSONEncoder(cfg)
	if IsTerminal(stderr) {
		cfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(cfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(stderr), lvl)), lvl, nil
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && sys.IsTerminal(int(f.Fd()))
}

// SignalContext returns a context canceled by SIGINT, SIGTERM or SIGHUP.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), sys.TermSignals...)
}

// RT is the real-time setup the --cpu, --fifo and --mlock flags ask for.
type RT struct {
	CPU   string
	FIFO  int
	MLock bool
}

// Register adds the flags to fs.
func (r *RT) Register(fs *pflag.FlagSet) {
	fs.StringVar(&r.CPU, "cpu", "", "run the hot loop on these CPUs (e.g. 3 or 2-3)")
	fs.IntVar(&r.FIFO, "fifo", 0, "run the hot loop under SCHED_FIFO at this priority (1-99)")
	fs.BoolVar(&r.MLock, "mlock", false, "lock all memory in RAM (mlockall) and pre-fault the ring")
}

// Thread checks the flags, the CPUs against those online and allowed to
// this process, and returns the thread to run the loop on.
func (r *RT) Thread() (rt.Thread, error) {
	var t rt.Thread
	if r.FIFO < 0 || r.FIFO > rt.MaxPriority {
		return t, Usagef("--fifo %d: want a priority from 1 to %d (0 for none)", r.FIFO, rt.MaxPriority)
	}
	t.Priority = r.FIFO
	if r.CPU == "" {
		return t, nil
	}
	cpus, err := rt.ParseCPUList(r.CPU)
	if err != nil || len(cpus) == 0 {
		return t, Usagef("--cpu %q: want a CPU list such as 3 or 0-1,4", r.CPU)
	}
	online := cpuList("/sys/devices/system/cpu/online", "")
	allowed := cpuList("/proc/self/status", "Cpus_allowed_list:")
	for _, c := range cpus {
		if online != nil && !slices.Contains(online, c) {
			return t, Usagef("--cpu %q: CPU %d is not online (online: %s)", r.CPU, c, rt.FormatCPUList(online))
		}
		if allowed != nil && !slices.Contains(allowed, c) {
			return t, Usagef("--cpu %q: CPU %d is outside the CPUs this process may use (%s)", r.CPU, c, rt.FormatCPUList(allowed))
		}
	}
	t.CPUs = cpus
	return t, nil
}

// cpuList reads a CPU list from a file, after prefix on its line if
// prefix is set; nil if it cannot.
func cpuList(path, prefix string) []int {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			cpus, err := rt.ParseCPUList(v)
			if err != nil {
				return nil
			}
			return cpus
		}
	}
	return nil
}
