// Package app holds what the three programs (publisher, subscriber,
// busctl) share: exit codes and the mapping of errors to them, the cobra
// command setup (GNU flags, help with exit codes, --version), flag values
// that check themselves, logging, signals, real-time flags and the output
// writer that flushes on time. The programs' logic lives in
// internal/pubcmd, internal/subcmd and internal/ctlcmd.
//
// Nothing here keeps global state; each program builds its command tree
// per run, so the packages can be run many times in one test binary.
package app

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sensorbus/sensorbus/bus"
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
	ExitCorrupt     = 7
)

// ExitCodesHelp documents the exit codes at the end of every help text.
const ExitCodesHelp = `Exit codes: 0 ok, 1 other error (busctl doctor: a check failed), 2 usage,
3 schema mismatch, 4 permission denied, 5 no publisher, 6 topic busy,
7 corrupt samples seen.`

// ErrCorrupt is returned by a run that saw a corrupt sample.
var ErrCorrupt = errors.New("corrupt samples")

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
	case errors.Is(err, ErrCorrupt):
		return ExitCorrupt
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
	fmt.Fprintf(stderr, "%s: %s\n", prog, OneLine(err.Error()))
	return Code(err)
}

// OneLine joins the lines of msg with "; " and drops a repeated
// "schema mismatch: " that wrapping may have doubled.
func OneLine(msg string) string {
	var parts []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	msg = strings.Join(parts, "; ")
	for strings.Contains(msg, "schema mismatch: schema mismatch: ") {
		msg = strings.Replace(msg, "schema mismatch: schema mismatch: ", "schema mismatch: ", 1)
	}
	return msg
}

// TypeNames lists the --type values.
var TypeNames = []string{"imu", "scalar", "vector3", "gps", "battery", "raw"}

// SchemaOf returns the built-in schema a --type names; flag is the flag's
// name for the error.
func SchemaOf(flag, name string) (*schema.Schema, error) {
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
	return nil, Usagef("--%s %q: want one of %s", flag, name, strings.Join(TypeNames, ", "))
}
