package record

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/ring"
	"github.com/sensorbus/sensorbus/schema"
)

// Bad files give one clear line from Inspect, Export and Replay, never a
// panic.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.mcap")
	if err := (synthFile{n: 300, chunkSize: 2048}).write(good); err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(full)
	flipped[len(full)/3] ^= 0x55 // inside a chunk's compressed records
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(i*7919 + i>>3)
	}
	cases := []struct {
		name, content string
		want          error  // errors.Is, if not nil
		text          string // in the message
	}{
		{"empty", "", ErrNotMCAP, "empty"},
		{"text", "hello, this is not a recording\n", ErrNotMCAP, "not an MCAP file"},
		{"garbage", string(garbage), ErrNotMCAP, "not an MCAP file"},
		{"magic-then-garbage", string(full[:8]) + string(garbage), nil, ""},
		{"flipped-byte", string(flipped), ErrCorrupt, "chunk"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".mcap")
			if err := os.WriteFile(path, []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, ierr := Inspect(path)
			_, eerr := Export(io.Discard, ExportConfig{Files: []string{path}, Format: "jsonl"})
			_, rerr := Replay(context.Background(), ReplayConfig{Bus: testBus(t), Files: []string{path}})
			if c.want != nil {
				for _, err := range []error{ierr, eerr} {
					if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
						t.Errorf("got %v, want %v (%q)", err, c.want, c.text)
					}
				}
			}
			if rerr == nil {
				t.Fatal("Replay accepted it")
			}
			for _, err := range []error{ierr, eerr, rerr} {
				if err != nil && strings.Contains(err.Error(), "\n") {
					t.Errorf("error of more than one line: %q", err)
				}
			}
			t.Logf("inspect: %v; replay: %v", ierr, rerr)
		})
	}
	for _, path := range []string{filepath.Join(dir, "missing.mcap"), dir} {
		if _, err := Inspect(path); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("Inspect(%s): %v", path, err)
		}
	}
}

func TestReplayUnknownSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acme.mcap")
	if err := (synthFile{n: 10, unknown: true}).write(path); err != nil {
		t.Fatal(err)
	}
	_, err := Replay(context.Background(), ReplayConfig{Bus: testBus(t), Files: []string{path}})
	if !errors.Is(err, ErrUnknownSchema) || !strings.Contains(err.Error(), `"acme.Thing"`) {
		t.Fatalf("got %v", err)
	}
	// Inspect and Export still read it, in the generic form.
	var out bytes.Buffer
	if rows, err := Export(&out, ExportConfig{Files: []string{path}, Format: "jsonl"}); err != nil || rows != 10 {
		t.Fatalf("export: %d rows, %v", rows, err)
	}
}

func TestReplayBusyTopic(t *testing.T) {
	opts := testBus(t)
	path := filepath.Join(t.TempDir(), "run.mcap")
	if err := (synthFile{n: 10}).write(path); err != nil {
		t.Fatal(err)
	}
	pub, err := bus.NewPublisher(bus.PublisherConfig{Options: opts, Topic: "imu", Schema: schema.IMUSchema})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	_, err = Replay(context.Background(), ReplayConfig{Bus: opts, Files: []string{path}})
	if !errors.Is(err, bus.ErrTopicBusy) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("got %v", err)
	}
	t.Log(err)
}

// A recorded gap is reported on replay and, where the ring can mark
// samples lost, reproduced.
func TestReplayReportsGap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gap.mcap")
	if err := (synthFile{n: 100, gapAt: 40, gapLen: 25}).write(path); err != nil {
		t.Fatal(err)
	}
	sum, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Lost != 25 || len(sum.Topics[0].Gaps) != 1 || sum.Topics[0].LastIndex != 124 {
		t.Fatalf("%+v", sum.Topics)
	}
	st := replayAndVerify(t, testBus(t), 0, path)
	// Reproduced as lost samples (ring.Writer.Skip).
	if st.Gaps != 1 || st.Lost != 25 || st.Skipped != 25 {
		t.Fatalf("replay stats %+v", st)
	}
}

// Start skips into the recording, Topics picks topics, Loop plays again
// until the context ends.
func TestReplayStartTopicsLoop(t *testing.T) {
	opts := testBus(t)
	path := filepath.Join(t.TempDir(), "run.mcap")
	if err := (synthFile{n: 100, interval: time.Millisecond}).write(path); err != nil {
		t.Fatal(err)
	}
	if _, err := Replay(context.Background(), ReplayConfig{Bus: opts, Files: []string{path}, Topics: []string{"gps"}}); err == nil ||
		!strings.Contains(err.Error(), `"gps" is not in the recording`) {
		t.Fatalf("a topic not recorded: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		st  ReplayStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := Replay(ctx, ReplayConfig{Bus: opts, Files: []string{path}, Topics: []string{"imu"}, Start: 50 * time.Millisecond,
			Loop: true, PausedUntilSubscribed: true, Slots: 1 << 12})
		done <- result{st, err}
	}()
	sub, err := bus.Subscribe(ctx, bus.SubscriberConfig{Options: opts, Topic: "imu", Schema: schema.IMUSchema,
		Start: ring.FromOldest, WaitForPublisher: time.Minute, NoReattach: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	want := readAll(t, "imu", path)[50:]
	for i := range 3 * len(want) {
		s, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Flat out, the replay may lap this reader (s.Lost); what arrives
		// must still be the recorded sample of its position in a loop.
		if w := want[int(s.Index)%len(want)]; !bytes.Equal(s.Data, w.data) {
			t.Fatalf("sample %d (ring index %d) is not recorded sample %d", i, s.Index, w.index)
		}
	}
	cancel()
	r := <-done
	if r.err != nil || r.st.Loops < 3 {
		t.Fatalf("%+v %v", r.st, r.err)
	}
}
