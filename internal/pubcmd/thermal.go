package pubcmd

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/schema"
)

// thermal reads the host's temperature sensors: /sys/class/thermal zones
// and hwmon temperature inputs. Each tick publishes one Scalar per sensor;
// Sensor is the sensor's position in the sorted list, and names maps it
// to the sensor's name.
type thermal struct {
	sensors []sensor
	msg     schema.Scalar
}

type sensor struct{ path, name string }

func newThermal(root string) (*thermal, error) {
	var t thermal
	z, _ := filepath.Glob(filepath.Join(root, "thermal", "thermal_zone*", "temp"))
	for _, p := range z {
		dir := filepath.Dir(p)
		t.sensors = append(t.sensors, sensor{p, filepath.Base(dir) + " " + readLine(filepath.Join(dir, "type"))})
	}
	h, _ := filepath.Glob(filepath.Join(root, "hwmon", "hwmon*", "temp*_input"))
	for _, p := range h {
		dir := filepath.Dir(p)
		name := filepath.Base(dir) + " " + readLine(filepath.Join(dir, "name"))
		if label := readLine(strings.TrimSuffix(p, "_input") + "_label"); label != "" {
			name += ": " + label
		} else {
			name += ": " + strings.TrimSuffix(filepath.Base(p), "_input")
		}
		t.sensors = append(t.sensors, sensor{p, name})
	}
	sort.Slice(t.sensors, func(i, j int) bool { return t.sensors[i].path < t.sensors[j].path })
	if len(t.sensors) == 0 {
		return nil, fmt.Errorf("--source thermal: this host has no temperature sensors (nothing in %s/thermal/thermal_zone*/temp or %s/hwmon/hwmon*/temp*_input; a VM usually has none)", root, root)
	}
	return &t, nil
}

func readLine(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

func (t *thermal) names() []string {
	n := make([]string, len(t.sensors))
	for i, s := range t.sensors {
		n[i] = strings.TrimSpace(s.name)
	}
	return n
}

func (t *thermal) next(seq uint64) (schema.Message, bool, error) {
	i := int(seq % uint64(len(t.sensors)))
	p := t.sensors[i].path
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", p, err)
	}
	milli, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %q is not millidegrees", p, b)
	}
	t.msg = schema.Scalar{Time: time.Now().UnixNano(), Sensor: uint32(i), Value: float64(milli) / 1000, Unit: schema.UnitCelsius}
	return &t.msg, true, nil
}

// publishNames publishes the sensors' names on their own untyped topic as
// one MessagePack map from sensor number (a string) to name, which
// subscribers render as JSON.
func publishNames(p *plan, topic string, names []string) (*bus.Publisher, error) {
	b := msgp.AppendMapHeader(nil, uint32(len(names)))
	for i, n := range names {
		b = msgp.AppendString(b, strconv.Itoa(i))
		b = msgp.AppendString(b, n)
	}
	size := 256
	for size < len(b) {
		size *= 2
	}
	np, err := bus.NewPublisher(bus.PublisherConfig{Options: p.opts, Topic: topic, SlotSize: size, Slots: 1,
		AllowUIDs: p.uids, AllowGIDs: p.gids})
	if err != nil {
		return nil, err
	}
	if err := np.Publish(b); err != nil {
		np.Close()
		return nil, fmt.Errorf("publish the sensor names on %s: %w", topic, err)
	}
	return np, nil
}
