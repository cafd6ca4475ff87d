package metrics_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/metrics"
)

// The bus collector and the in-process collectors emit the same series
// for a publisher with a reporting subscriber, and pass the registry's
// consistency checks and promlint.
func TestCollectors(t *testing.T) {
	root, err := os.MkdirTemp("", "metricstest-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	opts := bus.Options{Dir: filepath.Join(root, "bus")}
	pub, err := bus.NewPublisher(bus.PublisherConfig{Options: opts, Topic: "m"})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub, err := bus.Subscribe(context.Background(), bus.SubscriberConfig{Options: opts, Topic: "m", Untyped: true, Name: "logger", ReportInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for range 5 {
		pub.Publish([]byte("abcd"))
	}
	for range 5 {
		if _, err := sub.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	sub.Next(ctx) // waits: the report now counts all five
	cancel()

	busC := metrics.NewBusCollector(opts)
	want := `
# HELP sensorbus_subscriber_received_total Samples the subscribers of this name received, as they report it.
# TYPE sensorbus_subscriber_received_total counter
sensorbus_subscriber_received_total{subscriber="logger",topic="m"} 5
`
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		err := testutil.CollectAndCompare(busC, strings.NewReader(want), "sensorbus_subscriber_received_total")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	for name, c := range map[string]prometheus.Collector{"bus": busC, "publisher": metrics.NewPublisherCollector(pub)} {
		exp := `
# HELP sensorbus_bytes_published_total Payload bytes published by the topic's current publisher through Publish and PublishMessage.
# TYPE sensorbus_bytes_published_total counter
sensorbus_bytes_published_total{topic="m"} 20
# HELP sensorbus_published_total Samples published by the topic's current publisher.
# TYPE sensorbus_published_total counter
sensorbus_published_total{topic="m"} 5
# HELP sensorbus_up 1 if the topic's publisher answers, else 0 (hung or dead).
# TYPE sensorbus_up gauge
sensorbus_up{topic="m"} 1
`
		if err := testutil.CollectAndCompare(c, strings.NewReader(exp), "sensorbus_published_total", "sensorbus_bytes_published_total", "sensorbus_up"); err != nil {
			t.Errorf("%s collector: %v", name, err)
		}
		if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
			t.Errorf("%s collector lint: %v %v", name, problems, err)
		}
	}
	if n := testutil.CollectAndCount(metrics.NewSubscriberCollector(sub, "m"), "sensorbus_subscriber_received_total"); n != 1 {
		t.Errorf("subscriber collector: %d received series", n)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(busC, metrics.NewBuildInfoCollector())
	if _, err := reg.Gather(); err != nil {
		t.Errorf("pedantic gather: %v", err)
	}
	// A bus that does not exist has no topics, and no error.
	if n := testutil.CollectAndCount(metrics.NewBusCollector(bus.Options{Dir: filepath.Join(root, "none")})); n != 0 {
		t.Errorf("%d metrics from no bus", n)
	}
}
