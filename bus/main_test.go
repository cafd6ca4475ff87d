package bus

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sensorbus/sensorbus/ring"
	"github.com/sensorbus/sensorbus/testing/leakcheck"
	"github.com/sensorbus/sensorbus/testing/proctest"
)

const childEnv = "SENSORBUS_BUS_TEST_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(runChild(role))
	}
	os.Exit(leakcheck.Run(m))
}

// testBus returns Options for a fresh bus whose directory is removed
// afterwards; the test fails if any topic file is left in it, or if
// anything appeared in /dev/shm under a name the bus once used.
func testBus(t testing.TB) Options {
	t.Helper()
	root, err := os.MkdirTemp("", "bustest-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(root, 0o755)
	opts := Options{Dir: filepath.Join(root, "bus")}
	t.Cleanup(func() {
		left, _ := Files(opts)
		left = append(left, shmNames(opts.Dir)...)
		os.RemoveAll(root)
		if len(left) > 0 && !t.Failed() {
			t.Errorf("files left behind: %v", left)
		}
	})
	return opts
}

// shmNames lists what /dev/shm holds under the names earlier versions of
// the bus gave the segments of the bus in dir (sensorbus-ID-TOPIC, ID the
// FNV-1a hash of the directory): there must be none.
func shmNames(dir string) []string {
	h := fnv.New32a()
	h.Write([]byte(dir))
	prefix := fmt.Sprintf("sensorbus-%08x-", h.Sum32())
	var names []string
	ents, _ := os.ReadDir("/dev/shm")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, "/dev/shm/"+e.Name())
		}
	}
	return names
}

func optsEnv(o Options) []string {
	return []string{"BUS_DIR=" + o.Dir}
}

func childOpts() Options {
	o := Options{Dir: os.Getenv("BUS_DIR")}
	if g, err := strconv.Atoi(os.Getenv("BUS_GID")); err == nil {
		o.SharedGID = g
	}
	return o
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// payload is sample i of generation gen: index, generation, filler, CRC.
func payload(b []byte, i uint64, gen uint32) []byte {
	b = b[:48]
	binary.LittleEndian.PutUint64(b, i)
	binary.LittleEndian.PutUint32(b[8:], gen)
	for k := 12; k < 44; k++ {
		b[k] = byte(i) ^ byte(k)
	}
	binary.LittleEndian.PutUint32(b[44:], crc32.Checksum(b[:44], castagnoli))
	return b
}

func validPayload(b []byte, i uint64) bool {
	return len(b) == 48 && binary.LittleEndian.Uint64(b) == i && binary.LittleEndian.Uint32(b[44:]) == crc32.Checksum(b[:44], castagnoli)
}

type subResult struct {
	Received, Lost, Corrupt, OutOfOrder, Restarts uint64
	FirstGen                                      uint64 // one past the last index of the first generation
	End                                           string
}

// allowed reads the allow list BUS_ALLOW (one id, for uid and gid lists).
func allowed() []int {
	if id, err := strconv.Atoi(os.Getenv("BUS_ALLOW")); err == nil {
		return []int{id}
	}
	return nil
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func runChild(role string) int {
	ctx := context.Background()
	topic := os.Getenv("BUS_TOPIC")
	switch role {
	case "publisher":
		p, err := NewPublisher(PublisherConfig{Options: childOpts(), Topic: topic, Slots: envInt("BUS_SLOTS", 1024), SlotSize: 64,
			AllowUIDs: allowed(), AllowGIDs: allowed()})
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Println("ready")
		in := bufio.NewScanner(os.Stdin)
		if os.Getenv("BUS_NOW") == "" && !in.Scan() { // "go"
			return 1
		}
		count, rate := uint64(envInt("BUS_COUNT", 0)), envInt("BUS_RATE", 0)
		gen := uint32(envInt("BUS_GEN", 1))
		buf := make([]byte, 64)
		start := time.Now()
		for i := uint64(0); count == 0 || i < count; i++ {
			if rate > 0 {
				for time.Since(start) < time.Duration(i)*time.Second/time.Duration(rate) {
					time.Sleep(50 * time.Microsecond)
				}
			}
			p.Publish(payload(buf, i, gen))
		}
		fmt.Println("published", count)
		in.Scan() // "close"
		if err := p.Close(); err != nil {
			fmt.Println("error:", err)
			return 1
		}
		return 0
	case "subscriber":
		fmt.Println("subscribing")
		cfg := SubscriberConfig{Options: childOpts(), Topic: topic, Untyped: true, Start: ring.FromOldest,
			WaitForPublisher: 20 * time.Second, NoReattach: os.Getenv("BUS_REATTACH") == "", LivenessInterval: 20 * time.Millisecond}
		if os.Getenv("BUS_START") == "newest" {
			cfg.Start = ring.FromNewest
		}
		// "waiting" once the subscriber found no publisher and waits for it.
		cfg.Logger = zap.NewNop().WithOptions(zap.WrapCore(func(zapcore.Core) zapcore.Core {
			return zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel)
		}), zap.Hooks(func(e zapcore.Entry) error {
			if e.Message == "waiting for the publisher" {
				fmt.Println("waiting")
			}
			return nil
		}))
		switch os.Getenv("BUS_WAIT") {
		case "spin":
			cfg.Wait = ring.WaitSpin
		case "adaptive":
			cfg.Wait = ring.WaitAdaptive
		}
		sub, err := Subscribe(ctx, cfg)
		if err != nil {
			fmt.Println("error:", err)
			if errors.Is(err, ErrPermission) || errors.Is(err, os.ErrPermission) {
				return 4
			}
			return 1
		}
		fmt.Println("attached")
		// "stop" on stdin closes the subscriber from another goroutine.
		go func() {
			in := bufio.NewScanner(os.Stdin)
			for in.Scan() {
				if in.Text() == "stop" {
					sub.Close()
					return
				}
			}
		}()
		var res subResult
		next := uint64(0)
		last := envInt("BUS_LAST", 0) // stop at this index of a restarted publisher
		progress := uint64(1000)
		for {
			s, err := sub.Next(ctx)
			if err != nil {
				res.End = err.Error()
				if errors.Is(err, ring.ErrWriterClosed) {
					res.End = "closed"
				} else if errors.Is(err, ErrClosed) {
					res.End = "stopped"
				}
				break
			}
			if s.Restarted {
				if res.Restarts == 0 {
					res.FirstGen = next
				}
				res.Restarts++
				next = 0
			}
			if s.Index != next+s.Lost {
				res.OutOfOrder++
			}
			if !validPayload(s.Data, s.Index) {
				res.Corrupt++
			}
			next = s.Index + 1
			res.Received++
			res.Lost += s.Lost
			if last > 0 && res.Restarts > 0 && next == uint64(last) {
				res.End = "stopped"
				break
			}
			if res.Received == progress {
				fmt.Println("progress")
				progress *= 10
			}
		}
		st := sub.Stats()
		if st.Received != res.Received || st.Lost != res.Lost || st.Restarts != res.Restarts {
			fmt.Printf("error: Stats %+v disagree with what Next delivered %+v\n", st, res)
			return 1
		}
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
		return 0
	}
	return runHostileChild(role)
}

func startChild(t testing.TB, bin, role string, env []string, cred *syscall.Credential) *proctest.Child {
	t.Helper()
	return proctest.Start(t, childEnv, role, proctest.Options{Binary: bin, Env: env, Cred: cred})
}

func result(t testing.TB, c *proctest.Child) subResult {
	t.Helper()
	var res subResult
	c.Result(&res)
	return res
}
