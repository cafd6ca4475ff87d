package pubcmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/ring"
	"github.com/sensorbus/sensorbus/schema"
)

// fakeSysfs makes a /sys/class with a thermal zone and a labelled hwmon
// sensor.
func fakeSysfs(t *testing.T) string {
	root := t.TempDir()
	write := func(p, s string) {
		p = filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("thermal/thermal_zone0/temp", "45500")
	write("thermal/thermal_zone0/type", "x86_pkg_temp")
	write("hwmon/hwmon1/temp2_input", "-1250")
	write("hwmon/hwmon1/temp2_label", "Core 0")
	write("hwmon/hwmon1/name", "coretemp")
	return root
}

// --source thermal implies --type scalar and 1 Hz, and sweeps all sensors.
func TestThermalDefaults(t *testing.T) {
	c := &config{thermalRoot: fakeSysfs(t)}
	cmd := newCommand(c, nil, nil, nil)
	if err := cmd.ParseFlags([]string{"--topic", "temp", "--source", "thermal", "--bus-dir", t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	p, err := prepare(cmd, *c, nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if p.schema != schema.ScalarSchema || p.c.rate != 1 || p.perTick != 2 {
		t.Errorf("schema %v, rate %v, %d per tick; want scalar, 1 Hz, 2", p.schema.Name, p.c.rate, p.perTick)
	}
	want := []string{"hwmon1 coretemp: Core 0", "thermal_zone0 x86_pkg_temp"}
	if strings.Join(p.names, "|") != strings.Join(want, "|") {
		t.Errorf("names %q, want %q", p.names, want)
	}
}

// The readings go out as Scalars numbered like the name table on
// TOPIC.names.
func TestThermalPublishesNames(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bus")
	c := &config{thermalRoot: fakeSysfs(t)}
	cmd := newCommand(c, nil, &bytes.Buffer{}, &bytes.Buffer{})
	cmd.SetArgs([]string{"--topic", "temp", "--source", "thermal", "--rate", "50", "--bus-dir", dir})
	cmd.SilenceErrors = true
	done := make(chan error, 1)
	go func() { done <- cmd.Execute() }()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	read := func(topic string, n int) [][]byte {
		sub, err := bus.Subscribe(ctx, bus.SubscriberConfig{Options: bus.Options{Dir: dir}, Topic: topic, Untyped: true,
			Start: ring.FromOldest, WaitForPublisher: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		var out [][]byte
		for range n {
			s, err := sub.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, append([]byte(nil), s.Data...))
		}
		return out
	}
	names, err := schema.AnyToJSON(read("temp.names", 1)[0])
	if err != nil || string(names) != `{"0":"hwmon1 coretemp: Core 0","1":"thermal_zone0 x86_pkg_temp"}` {
		t.Errorf("names %s, %v", names, err)
	}
	for i, b := range read("temp", 2) {
		var s schema.Scalar
		if err := schema.Decode(b, &s); err != nil {
			t.Fatal(err)
		}
		want := []float64{-1.25, 45.5}[s.Sensor]
		if s.Value != want || s.Unit != schema.UnitCelsius {
			t.Errorf("sample %d: %+v, want %v degC", i, s, want)
		}
	}
	// The publisher ends on SIGTERM, which its run catches.
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
