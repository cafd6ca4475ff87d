package record_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sensorbus/sensorbus/record"
)

// Record two topics until Ctrl-C, in files of at most 256 MiB, and print
// what each holds.
func ExampleRecord() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := record.Record(ctx, record.RecordConfig{Topics: []string{"imu", "gps"}, Output: "run.mcap", SplitSize: 256 << 20})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	for topic, ts := range st.Topics {
		fmt.Printf("%s: %d samples, %d lost\n", topic, ts.Messages, ts.Lost)
	}
	for _, f := range st.Files {
		sum, err := record.Inspect(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			continue
		}
		fmt.Printf("%s: %d samples over %v\n", f, sum.Messages, time.Duration(sum.Duration))
	}
}

// A flight recorder: the last 30 s of every topic, written to /var/log/bus
// on SIGUSR1 and when the program ends.
func ExampleSnapshot() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	trigger := make(chan struct{})
	go func() {
		for range usr1 {
			trigger <- struct{}{}
		}
	}()
	_, err := record.Snapshot(ctx, record.SnapshotConfig{RecordConfig: record.RecordConfig{All: true},
		Dir: "/var/log/bus", Window: 30 * time.Second, Trigger: trigger, OnExit: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}

// Replay a recording into "imu.replay" at its recorded pace, once a
// subscriber is there.
func ExampleReplay() {
	st, err := record.Replay(context.Background(), record.ReplayConfig{Files: []string{"run.mcap"}, Speed: 1,
		Remap: map[string]string{"imu": "imu.replay"}, PausedUntilSubscribed: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err) // one line: not an MCAP file, unknown schema, topic busy, ...
		return
	}
	fmt.Printf("%d samples replayed, %d recorded as lost\n", st.Messages, st.Lost)
}

// Export the IMU samples for pandas: pd.read_csv("imu.csv").
func ExampleExport() {
	f, err := os.Create("imu.csv")
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := record.Export(f, record.ExportConfig{Files: []string{"run.mcap"}, Format: "csv", Topics: []string{"imu"}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}
