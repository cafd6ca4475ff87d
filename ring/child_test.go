package ring

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/sensorbus/sensorbus/internal/clock"
	"github.com/sensorbus/sensorbus/testing/proctest"
)

// Multi-process tests re-execute the test binary with childEnv set to a
// role; TestMain runs the role instead of the tests. Children talk to the
// parent through stdin and stdout lines.
const childEnv = "SENSORBUS_RING_TEST_CHILD"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checkedPayload fills b with sample i: its index, a pattern derived from
// it, and a CRC-32C of both in the last four bytes. Its length varies with
// i, so a torn read that mixes two samples' lengths and bytes fails too.
func checkedPayload(b []byte, i uint64, maxLen int) []byte {
	n := 16 + int(i%uint64(maxLen-15))
	b = b[:n]
	binary.LittleEndian.PutUint64(b, i)
	for k := 8; k < n-4; k++ {
		b[k] = byte(i>>(k%8)) ^ byte(k)
	}
	binary.LittleEndian.PutUint32(b[n-4:], crc32.Checksum(b[:n-4], castagnoli))
	return b
}

// verifyPayload reports whether b is a whole, untorn sample i.
func verifyPayload(b []byte, i uint64, maxLen int) bool {
	n := 16 + int(i%uint64(maxLen-15))
	return len(b) == n && binary.LittleEndian.Uint64(b) == i &&
		binary.LittleEndian.Uint32(b[n-4:]) == crc32.Checksum(b[:n-4], castagnoli)
}

// readerResult is what a reader child reports.
type readerResult struct {
	Received   uint64 `json:"received"`
	Lost       uint64 `json:"lost"`
	Corrupt    uint64 `json:"corrupt"`
	OutOfOrder uint64 `json:"out_of_order"`
	Position   uint64 `json:"position"`
	End        string `json:"end"`
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func runChild(role string) int {
	if code := runBenchChild(role); code >= 0 {
		return code
	}
	dir, name := os.Getenv("RING_DIR"), os.Getenv("RING_NAME")
	maxLen := envInt("RING_PAYLOAD", 64)
	switch role {
	case "writer", "writer-hang":
		w, err := Create(Config{Dir: dir, Name: name, SlotSize: maxLen, Slots: envInt("RING_SLOTS", 1024)})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("ready")
		// Wait for the parent's go-ahead.
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return 1
		}
		count := uint64(envInt("RING_COUNT", 0))
		buf := make([]byte, maxLen)
		gap := newGaps(os.Getenv("RING_PATTERN"), time.Duration(envInt("RING_INTERVAL_US", 0))*time.Microsecond)
		next := clock.Mono()
		for i := uint64(0); count == 0 || i < count; i++ {
			if d := gap(i); d > 0 {
				next += int64(d)
				pace(next)
			}
			if err := w.Publish(checkedPayload(buf, i, maxLen)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		if role == "writer-hang" {
			// Die (by the parent's kill -9) in the middle of a write:
			// the slot is half-written and its seq stays odd.
			b, _ := w.Reserve()
			copy(b, "half-written garbage")
			fmt.Println("reserved")
			select {}
		}
		return exitOn(w.Close())
	case "reader":
		wait := benchWait(os.Getenv("RING_WAIT"))
		r, err := Open(dir, name, ReaderConfig{Start: FromOldest, Wait: wait, LivenessInterval: 20 * time.Millisecond})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("ready")
		var res readerResult
		next := uint64(0)
		for {
			s, err := r.Next(context.Background())
			if err != nil {
				switch {
				case errors.Is(err, ErrWriterClosed):
					res.End = "closed"
				case errors.Is(err, ErrWriterDead):
					res.End = "dead"
				default:
					res.End = err.Error()
				}
				break
			}
			if s.Index != next+s.Lost {
				res.OutOfOrder++
			}
			if !verifyPayload(s.Data, s.Index, maxLen) {
				res.Corrupt++
			}
			next = s.Index + 1
			res.Received++
			res.Lost += s.Lost
		}
		res.Position = r.Position()
		json.NewEncoder(os.Stdout).Encode(res)
		r.Close()
		return 0
	}
	fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
	return 2
}

// newGaps returns the time to wait before each sample i: none without an
// interval; the interval itself ("regular", the default); exponentially
// distributed gaps of that mean ("irregular"); or bursts of 50 samples
// back to back, 20 intervals apart ("bursty").
func newGaps(pattern string, interval time.Duration) func(i uint64) time.Duration {
	rnd := rand.New(rand.NewPCG(19, 3))
	return func(i uint64) time.Duration {
		switch {
		case interval <= 0:
			return 0
		case pattern == "irregular":
			return time.Duration(rnd.ExpFloat64() * float64(interval))
		case pattern == "bursty" && i%50 == 0:
			return 20 * interval
		case pattern == "bursty":
			return 0
		}
		return interval
	}
}

func exitOn(err error) int {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func startChild(t testing.TB, role string, env ...string) *proctest.Child {
	t.Helper()
	return proctest.Start(t, childEnv, role, proctest.Options{Env: env})
}

func result(t testing.TB, c *proctest.Child) readerResult {
	t.Helper()
	var res readerResult
	c.Result(&res)
	return res
}

// One writer publishes checksummed samples of varying length to six
// reader processes (two of each wait mode). Each must see no corrupt
// sample, keep order, and account for every sample: received + lost =
// published.
func TestMultiProcessStream(t *testing.T) {
	count := 1_000_000
	if testing.Short() {
		count = 100_000
	}
	dir := testDir(t)
	env := []string{"RING_DIR=" + dir, "RING_NAME=mp", "RING_PAYLOAD=120", "RING_SLOTS=256", "RING_COUNT=" + strconv.Itoa(count)}
	w := startChild(t, "writer", env...)
	w.Expect("ready")
	var readers []*proctest.Child
	for _, wait := range []string{"spin", "block", "adaptive", "spin", "block", "adaptive"} {
		r := startChild(t, "reader", append(env, "RING_WAIT="+wait)...)
		r.Expect("ready")
		readers = append(readers, r)
	}
	w.Send("go")
	for k, r := range readers {
		res := result(t, r)
		t.Logf("reader %d: %+v", k, res)
		if res.Corrupt != 0 || res.OutOfOrder != 0 {
			t.Errorf("reader %d: %d corrupt, %d out of order", k, res.Corrupt, res.OutOfOrder)
		}
		if res.Received+res.Lost != uint64(count) {
			t.Errorf("reader %d: received %d + lost %d != published %d", k, res.Received, res.Lost, count)
		}
		if res.Received == 0 || res.End != "closed" {
			t.Errorf("reader %d: received %d, ended %q", k, res.Received, res.End)
		}
	}
	if err := w.Cmd.Wait(); err != nil {
		t.Fatalf("writer: %v", err)
	}
}

// A reader that keeps up loses nothing: in a ring larger than the whole
// run, no sample can be overwritten, so any loss is a false lap.
func TestMultiProcessNoLossWithoutLapping(t *testing.T) {
	const count = 60_000
	dir := testDir(t)
	env := []string{"RING_DIR=" + dir, "RING_NAME=nolap", "RING_PAYLOAD=64", "RING_SLOTS=65536", "RING_COUNT=" + strconv.Itoa(count)}
	w := startChild(t, "writer", env...)
	w.Expect("ready")
	readers := startReaders(t, env)
	w.Send("go")
	for k, r := range readers {
		if res := result(t, r); res.Received != count || res.Lost != 0 || res.Corrupt != 0 || res.End != "closed" {
			t.Errorf("reader %d: %+v; want all %d samples, none lost", k, res, count)
		}
	}
	w.Cmd.Wait()
}

// A writer killed -9 in the middle of a write: readers deliver every
// complete sample, never the half-written one, and see the writer dead.
// The dead writer's files are then removed as stale.
func TestKillWriterMidWrite(t *testing.T) {
	dir := testDir(t)
	env := []string{"RING_DIR=" + dir, "RING_NAME=hang", "RING_PAYLOAD=64", "RING_SLOTS=64", "RING_COUNT=40"}
	w := startChild(t, "writer-hang", env...)
	w.Expect("ready")
	readers := startReaders(t, env)
	w.Send("go")
	w.Expect("reserved")
	w.Kill9()
	for k, r := range readers {
		res := result(t, r)
		if res.End != "dead" || res.Received != 40 || res.Lost != 0 || res.Corrupt != 0 || res.OutOfOrder != 0 {
			t.Errorf("reader %d after kill -9 mid-write: %+v; want 40 intact samples, then dead", k, res)
		}
	}
	// The files stay until someone removes them; only a dead writer's go.
	if names := dirEntries(t, dir); len(names) != 2 {
		t.Fatalf("after kill -9: %v", names)
	}
	removed, err := RemoveStale(dir, "hang")
	if err != nil || len(removed) != 2 {
		t.Fatalf("RemoveStale = %v, %v", removed, err)
	}
}

// A writer killed -9 while publishing flat out: no torn sample reaches a
// reader, each reader accounts for every sample up to the last published,
// and the next writer of the name replaces the dead one's files.
func TestKillWriterWhilePublishing(t *testing.T) {
	dir := testDir(t)
	env := []string{"RING_DIR=" + dir, "RING_NAME=kill", "RING_PAYLOAD=200", "RING_SLOTS=128", "RING_COUNT=0"}
	w := startChild(t, "writer", env...)
	w.Expect("ready")
	readers := startReaders(t, env)
	probe := mustOpen(t, dir, "kill", ReaderConfig{Wait: WaitSpin})
	w.Send("go")
	// Let it publish a while, then kill it wherever it is.
	for probe.cursor.load() < 200_000 {
		time.Sleep(time.Millisecond)
	}
	w.Kill9()
	st, err := probe.Status()
	if err != nil {
		t.Fatal(err)
	}
	published := st.Published
	for k, r := range readers {
		res := result(t, r)
		t.Logf("reader %d: %+v of %d published", k, res, published)
		if res.End != "dead" || res.Corrupt != 0 || res.OutOfOrder != 0 {
			t.Errorf("reader %d: %+v", k, res)
		}
		if res.Received+res.Lost != published || res.Position != published {
			t.Errorf("reader %d: received %d + lost %d, position %d; published %d", k, res.Received, res.Lost, res.Position, published)
		}
	}
	if st.State != WriterDead {
		t.Fatalf("Status after kill = %+v; want WriterDead", st)
	}
	// The next writer takes over the dead writer's name.
	w2 := mustCreate(t, Config{Dir: dir, Name: "kill", SlotSize: 200, Slots: 128})
	if w2.Header().Generation == probe.Header().Generation {
		t.Fatal("new writer reused the dead writer's generation")
	}
	w2.Close()
}

// startReaders starts a reader child of each wait mode with env and waits
// until all are attached.
func startReaders(t *testing.T, env []string) []*proctest.Child {
	t.Helper()
	var readers []*proctest.Child
	for _, wait := range []string{"spin", "block", "adaptive"} {
		r := startChild(t, "reader", append(env, "RING_WAIT="+wait)...)
		r.Expect("ready")
		readers = append(readers, r)
	}
	return readers
}
