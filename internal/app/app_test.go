package app

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/rt"
	"github.com/sensorbus/sensorbus/schema"
)

func TestCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{errors.New("x"), ExitError},
		{fmt.Errorf("wrapped: %w", Usagef("bad")), ExitUsage},
		{fmt.Errorf("a: %w", &schema.MismatchError{}), ExitSchema},
		{&bus.PermissionError{}, ExitPermission},
		{fmt.Errorf("rt: %w", rt.ErrNotPermitted), ExitPermission},
		{fmt.Errorf("open: %w", os.ErrPermission), ExitPermission},
		{fmt.Errorf("%w: x", bus.ErrNoPublisher), ExitNoPublisher},
		{&bus.TopicBusyError{}, ExitTopicBusy},
		{fmt.Errorf("%w: 1 of 2", ErrCorrupt), ExitCorrupt},
	} {
		if got := Code(c.err); got != c.want {
			t.Errorf("Code(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

func TestOneLine(t *testing.T) {
	if got := OneLine("a\n\n  b\nschema mismatch: schema mismatch: c\n"); got != "a; b; schema mismatch: c" {
		t.Errorf("OneLine: %q", got)
	}
}

func TestDurationFlag(t *testing.T) {
	var d, w time.Duration
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	DurationVar(fs, &d, "duration", 0, false, "")
	DurationVar(fs, &w, "wait", 5*time.Second, true, "")
	if err := fs.Parse([]string{"--duration", "1m30s", "--wait", "forever"}); err != nil || d != 90*time.Second || w != Forever {
		t.Errorf("parse: %v %v %v", err, d, w)
	}
	for _, bad := range [][]string{{"--duration", "1"}, {"--duration", "-1s"}, {"--duration", "forever"}, {"--wait", "always"}} {
		if err := fs.Parse(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if fs.Lookup("wait").Value.String() != "forever" {
		t.Errorf("forever prints as %q", fs.Lookup("wait").Value.String())
	}
}

func TestCheckTopic(t *testing.T) {
	for _, c := range []struct {
		topic, want string
	}{
		{"imu.raw_1-a", ""},
		{"", "is required"},
		{"a/b", `'/' at byte 1`},
		{"a\xffb", "not valid UTF-8"},
		{"-a", "must not start"},
		{"a.sock", `ends in ".sock"`},
		{strings.Repeat("t", 64), ""},
		{strings.Repeat("t", 65), "longer than 64"},
	} {
		err := CheckTopic("topic", c.topic)
		var ue *UsageError
		if c.want == "" && err != nil || c.want != "" && (!errors.As(err, &ue) || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("CheckTopic(%q): %v, want %q", c.topic, err, c.want)
		}
	}
}

func TestCheckRate(t *testing.T) {
	for r, ok := range map[float64]bool{0: true, 0.001: true, 1e7: true, 1e-4: false, 2e7: false, -1: false} {
		if err := CheckRate("rate", r); (err == nil) != ok {
			t.Errorf("CheckRate(%v): %v", r, err)
		}
	}
}

func TestOutputDue(t *testing.T) {
	var b bytes.Buffer
	o := NewOutput(&b)
	if o.Due() != 0 {
		t.Fatal("empty output is due")
	}
	o.WriteString("a\n")
	o.Line(1000)
	if o.Due() != 1000+int64(FlushEvery) || b.Len() != 0 {
		t.Errorf("due %d, written %q", o.Due(), b.String())
	}
	o.WriteString("b\n")
	o.Line(1000 + int64(FlushEvery)) // the oldest line is due: flush
	if b.String() != "a\nb\n" || o.Due() != 0 {
		t.Errorf("after the deadline: %q, due %d", b.String(), o.Due())
	}
}
