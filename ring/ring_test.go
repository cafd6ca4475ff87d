package ring

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

func payload(i uint64, n int) []byte {
	b := make([]byte, n)
	binary.LittleEndian.PutUint64(b, i)
	for k := 8; k < n; k++ {
		b[k] = byte(i) + byte(k)
	}
	return b
}

func TestPublishAndStreamInOrder(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "t", SlotSize: 64, Slots: 16})
	defer w.Close()
	r := mustOpen(t, dir, "t", ReaderConfig{Wait: WaitSpin})

	if _, ok, err := r.TryNext(); ok || err != nil {
		t.Fatalf("TryNext on empty ring = %v, %v; want nothing", ok, err)
	}
	for i := range uint64(10) {
		if err := w.Publish(payload(i, 8+int(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range uint64(10) {
		s, ok, err := r.TryNext()
		if !ok || err != nil {
			t.Fatalf("sample %d: ok=%v err=%v", i, ok, err)
		}
		if s.Index != i || s.Lost != 0 || !bytes.Equal(s.Data, payload(i, 8+int(i))) {
			t.Fatalf("sample %d: got index %d lost %d data %x", i, s.Index, s.Lost, s.Data)
		}
		if s.PublishedAt <= 0 {
			t.Fatalf("sample %d: publish time %d", i, s.PublishedAt)
		}
	}
	if _, ok, _ := r.TryNext(); ok {
		t.Fatal("read past the last published sample")
	}
	if st := r.Stats(); st.Received != 10 || st.Lost != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLappedReaderCountsExactLoss(t *testing.T) {
	for _, slots := range []int{1, 2, 8, 64} {
		dir := testDir(t)
		w := mustCreate(t, Config{Dir: dir, Name: "lap", SlotSize: 16, Slots: slots})
		r := mustOpen(t, dir, "lap", ReaderConfig{Wait: WaitSpin})
		const total = 1000
		var received, lost uint64
		next := uint64(0)
		for i := range uint64(total) {
			w.Publish(payload(i, 16))
			// Read now and then, so the reader is lapped many times.
			if i%uint64(3*slots+1) == 0 {
				for {
					s, ok, err := r.TryNext()
					if err != nil {
						t.Fatal(err)
					}
					if !ok {
						break
					}
					if s.Index != next+s.Lost {
						t.Fatalf("slots=%d: index %d after lost %d, expected %d", slots, s.Index, s.Lost, next+s.Lost)
					}
					if binary.LittleEndian.Uint64(s.Data) != s.Index {
						t.Fatalf("slots=%d: sample %d holds %d", slots, s.Index, binary.LittleEndian.Uint64(s.Data))
					}
					next = s.Index + 1
					received++
					lost += s.Lost
				}
			}
		}
		for {
			s, ok, _ := r.TryNext()
			if !ok {
				break
			}
			received++
			lost += s.Lost
		}
		st := r.Stats()
		if st.Received != received || st.Lost != lost {
			t.Fatalf("slots=%d: stats %+v, counted received %d lost %d", slots, st, received, lost)
		}
		if received+lost != total {
			t.Fatalf("slots=%d: received %d + lost %d != published %d", slots, received, lost, total)
		}
		w.Close()
	}
}

func TestLatestMode(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "latest", SlotSize: 16, Slots: 4})
	defer w.Close()
	r := mustOpen(t, dir, "latest", ReaderConfig{Mode: Latest, Wait: WaitSpin})
	if _, ok, _ := r.TryNext(); ok {
		t.Fatal("latest on an empty ring delivered a sample")
	}
	for i := range uint64(7) {
		w.Publish(payload(i, 16))
	}
	s, ok, err := r.TryNext()
	if !ok || err != nil || s.Index != 6 || s.Lost != 6 {
		t.Fatalf("latest = %+v %v %v; want index 6 having skipped 6", s, ok, err)
	}
	if _, ok, _ := r.TryNext(); ok {
		t.Fatal("latest delivered the same sample twice")
	}
	w.Publish(payload(7, 16))
	if s, ok, _ := r.TryNext(); !ok || s.Index != 7 || s.Lost != 0 {
		t.Fatalf("latest after one more = %+v %v", s, ok)
	}
}

func TestStartFromOldestAndNewest(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "hist", SlotSize: 16, Slots: 8})
	defer w.Close()
	for i := range uint64(3) {
		w.Publish(payload(i, 16))
	}
	old := mustOpen(t, dir, "hist", ReaderConfig{Start: FromOldest, Wait: WaitSpin})
	if s, ok, _ := old.TryNext(); !ok || s.Index != 0 {
		t.Fatalf("FromOldest with 3 samples in an 8-slot ring: %+v %v, want index 0", s, ok)
	}
	for i := uint64(3); i < 20; i++ {
		w.Publish(payload(i, 16))
	}
	late := mustOpen(t, dir, "hist", ReaderConfig{Start: FromOldest, Wait: WaitSpin})
	if s, ok, _ := late.TryNext(); !ok || s.Index != 12 || s.Lost != 0 {
		t.Fatalf("FromOldest with 20 samples in an 8-slot ring: %+v %v, want index 12", s, ok)
	}
	newest := mustOpen(t, dir, "hist", ReaderConfig{Wait: WaitSpin})
	if _, ok, _ := newest.TryNext(); ok {
		t.Fatal("FromNewest delivered a sample published before attach")
	}
	w.Publish(payload(20, 16))
	if s, ok, _ := newest.TryNext(); !ok || s.Index != 20 {
		t.Fatalf("FromNewest: %+v %v, want index 20", s, ok)
	}
}

func TestTooLargeWritesNothing(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "big", SlotSize: 32, Slots: 4})
	defer w.Close()
	r := mustOpen(t, dir, "big", ReaderConfig{Wait: WaitSpin})
	if err := w.Publish(make([]byte, 33)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Publish(33 bytes) into 32-byte slots = %v, want ErrTooLarge", err)
	}
	if err := w.Publish(make([]byte, 32)); err != nil {
		t.Fatalf("Publish(32 bytes) = %v", err)
	}
	if s, ok, _ := r.TryNext(); !ok || s.Index != 0 || len(s.Data) != 32 {
		t.Fatalf("after a refused publish: %+v %v", s, ok)
	}
}

func TestReserveCommitAbort(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "rsv", SlotSize: 64, Slots: 2})
	defer w.Close()
	r := mustOpen(t, dir, "rsv", ReaderConfig{Wait: WaitSpin})

	buf, err := w.Reserve()
	if err != nil || len(buf) != 64 {
		t.Fatalf("Reserve = %d bytes, %v", len(buf), err)
	}
	if err := w.Publish([]byte("x")); !errors.Is(err, ErrReserved) {
		t.Fatalf("Publish during a reservation = %v", err)
	}
	n := copy(buf, "in place")
	if _, ok, _ := r.TryNext(); ok {
		t.Fatal("reader saw a reserved, uncommitted slot")
	}
	if err := w.Commit(n); err != nil {
		t.Fatal(err)
	}
	if s, ok, _ := r.TryNext(); !ok || string(s.Data) != "in place" {
		t.Fatalf("after commit: %+v %v", s, ok)
	}

	// Abort on a never-written slot leaves it empty.
	w.Reserve()
	w.Abort()
	if _, ok, _ := r.TryNext(); ok {
		t.Fatal("aborted reservation was delivered")
	}
	if w.Published() != 1 {
		t.Fatalf("abort advanced the cursor to %d", w.Published())
	}
	if err := w.Abort(); !errors.Is(err, ErrNoReservation) {
		t.Fatalf("Abort without Reserve = %v", err)
	}

	// Abort on a slot holding an unread sample destroys that sample: a
	// reader still behind it counts it lost rather than reading garbage.
	behind := mustOpen(t, dir, "rsv", ReaderConfig{Start: FromOldest, Wait: WaitSpin})
	w.Publish([]byte("one")) // sample 1 in slot 1
	w.Publish([]byte("two")) // sample 2 in slot 0, overwriting sample 0
	buf, _ = w.Reserve()     // sample 3 would go to slot 1, over sample 1
	copy(buf, "garbage")
	w.Abort()
	s, ok, _ := behind.TryNext()
	if !ok || s.Index != 2 || string(s.Data) != "two" || s.Lost != 2 {
		t.Fatalf("reader behind an aborted slot: %+v %v; want sample 2 after losing 0 and 1", s, ok)
	}
	w.Publish([]byte("three"))
	if s, ok, _ := behind.TryNext(); !ok || s.Index != 3 || string(s.Data) != "three" {
		t.Fatalf("after abort then publish: %+v %v", s, ok)
	}
}

// The cursor is a split64; make it cross 2^32 and check readers follow.
func TestCursorWrapsPast32Bits(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "wrap", SlotSize: 16, Slots: 4})
	defer w.Close()
	start := uint64(1)<<32 - 3
	w.cursor.store(start, w.next)
	w.next = start
	r := mustOpen(t, dir, "wrap", ReaderConfig{Wait: WaitSpin})
	if r.Position() != start {
		t.Fatalf("reader starts at %d, want %d", r.Position(), start)
	}
	for i := start; i < start+6; i++ {
		w.Publish(payload(i, 16))
		s, ok, err := r.TryNext()
		if !ok || err != nil || s.Index != i || binary.LittleEndian.Uint64(s.Data) != i {
			t.Fatalf("at %d: %+v %v %v", i, s, ok, err)
		}
	}
	if got := r.cursor.load(); got != start+6 {
		t.Fatalf("cursor %d, want %d", got, start+6)
	}
}

// A slot's sequence word wraps after 2^31 writes; 0 must stay "never written".
func TestSlotSequenceWraps(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "seq", SlotSize: 16, Slots: 1})
	defer w.Close()
	r := mustOpen(t, dir, "seq", ReaderConfig{Wait: WaitSpin})
	atomic.StoreUint32(w.slot(0).seq(), ^uint32(0)-1)
	for i := range uint64(3) {
		w.Publish(payload(i, 16))
		if seq := atomic.LoadUint32(w.slot(0).seq()); seq == 0 || seq&1 != 0 {
			t.Fatalf("after publish %d seq = %d", i, seq)
		}
		if s, ok, _ := r.TryNext(); !ok || s.Index != i {
			t.Fatalf("sample %d: %+v %v", i, s, ok)
		}
	}
}

// A writer killed between its stores of hi1 and hi2 leaves them unequal
// for good; readers must still get the value, not spin.
func TestSplit64TornForever(t *testing.T) {
	b := make([]byte, 64)
	s := newSplit64(b, 0)
	s.store(1<<32-1, 0)
	// Killed after hi1 (new) but before lo: the value is still 2^32-1.
	atomic.StoreUint32(s.hi1, 1)
	if got := s.load(); got != 1<<32-1 {
		t.Fatalf("stopped after hi1: %d, want %d", got, uint64(1<<32-1))
	}
	// Killed after lo (new) but before hi2: the value is 2^32.
	atomic.StoreUint32(s.lo, 0)
	if got := s.load(); got != 1<<32 {
		t.Fatalf("stopped after lo: %d, want %d", got, uint64(1<<32))
	}
}

func TestSplit64(t *testing.T) {
	b := make([]byte, 64)
	s := newSplit64(b, 8)
	var prev uint64
	for _, v := range []uint64{1, 1<<32 - 1, 1 << 32, 1<<32 + 1, 1<<40 - 1, 1 << 40, 1<<63 + 5} {
		s.store(v, prev)
		prev = v
		if got := s.load(); got != v {
			t.Fatalf("stored %d, loaded %d", v, got)
		}
	}
}

func TestCloseDrainsThenErrWriterClosed(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "close", SlotSize: 16, Slots: 8})
	r := mustOpen(t, dir, "close", ReaderConfig{})
	w.Publish(payload(0, 16))
	w.Publish(payload(1, 16))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if names := dirEntries(t, dir); len(names) != 0 {
		t.Fatalf("Close left %v", names)
	}
	ctx := context.Background()
	for i := range uint64(2) {
		s, err := r.Next(ctx)
		if err != nil || s.Index != i {
			t.Fatalf("drain %d: %+v %v", i, s, err)
		}
	}
	if _, err := r.Next(ctx); !errors.Is(err, ErrWriterClosed) {
		t.Fatalf("after drain: %v, want ErrWriterClosed", err)
	}
	if err := w.Publish(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close = %v", err)
	}
}

func TestBlockingWaitIsWoken(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "block", SlotSize: 16, Slots: 8})
	defer w.Close()
	// A long liveness interval: only the writer's wake can end the wait early.
	r := mustOpen(t, dir, "block", ReaderConfig{Wait: WaitBlock, LivenessInterval: time.Hour})
	got := make(chan Sample)
	errc := make(chan error, 1)
	go func() {
		for range 3 {
			s, err := r.Next(context.Background())
			if err != nil {
				errc <- err
				return
			}
			got <- Sample{Index: s.Index}
		}
	}()
	for i := range uint64(3) {
		// Wait until the reader announced that it sleeps, so the wake path
		// (not a lucky poll) delivers the sample.
		for atomic.LoadUint32(w.waiting) == 0 {
			time.Sleep(100 * time.Microsecond)
		}
		w.Publish(payload(i, 16))
		select {
		case s := <-got:
			if s.Index != i {
				t.Fatalf("got %d, want %d", s.Index, i)
			}
		case err := <-errc:
			t.Fatal(err)
		case <-time.After(10 * time.Second):
			t.Fatal("a blocked reader was not woken by Publish")
		}
	}
}

func TestNextHonoursContext(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "ctx", SlotSize: 16, Slots: 8})
	defer w.Close()
	for _, wait := range []Wait{WaitBlock, WaitSpin, WaitAdaptive} {
		r := mustOpen(t, dir, "ctx", ReaderConfig{Wait: wait, LivenessInterval: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := r.Next(ctx)
			errc <- err
		}()
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("wait %v: Next = %v, want context.Canceled", wait, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("wait %v: cancel did not end Next", wait)
		}
		dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := r.Next(dctx)
		dcancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("wait %v: Next with a deadline = %v", wait, err)
		}
	}
}

func TestSecondWriterIsBusy(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "one", SlotSize: 16, Slots: 8})
	defer w.Close()
	_, err := Create(Config{Dir: dir, Name: "one", SlotSize: 16, Slots: 8})
	var be *BusyError
	if !errors.As(err, &be) || !errors.Is(err, ErrBusy) || be.PID != os.Getpid() {
		t.Fatalf("second Create = %v, want *BusyError naming pid %d", err, os.Getpid())
	}
	if _, err := RemoveStale(dir, "one"); !errors.Is(err, ErrBusy) {
		t.Fatalf("RemoveStale of a live ring = %v, want ErrBusy", err)
	}
	// The live writer's files are untouched.
	if names := dirEntries(t, dir); len(names) != 2 {
		t.Fatalf("files after refused attempts: %v", names)
	}
}

func TestRemoveStaleRefusesForeignFiles(t *testing.T) {
	dir := testDir(t)
	p := filepath.Join(dir, "notours")
	os.WriteFile(p, []byte("some other program's data"), 0o600)
	defer os.Remove(p)
	if _, err := RemoveStale(dir, "notours"); err == nil {
		t.Fatal("RemoveStale removed a file that is not a sensorbus segment")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal("foreign file gone")
	}
	if removed, err := RemoveStale(dir, "absent"); err != nil || len(removed) != 0 {
		t.Fatalf("RemoveStale of nothing = %v, %v", removed, err)
	}
}

func TestConfigValidation(t *testing.T) {
	dir := testDir(t)
	bad := []Config{
		{Dir: dir, Name: "", SlotSize: 16, Slots: 8}, // a Dir for an anonymous ring
		{Dir: dir, Name: ".hidden", SlotSize: 16, Slots: 8},
		{Dir: dir, Name: "a/b", SlotSize: 16, Slots: 8},
		{Dir: dir, Name: "x" + WakeSuffix, SlotSize: 16, Slots: 8},
		{Dir: dir, Name: "ok", SlotSize: 4, Slots: 8},
		{Dir: dir, Name: "ok", SlotSize: MaxSlotSize + 1, Slots: 8},
		{Dir: dir, Name: "ok", SlotSize: 16, Slots: 6},
		{Dir: dir, Name: "ok", SlotSize: 16, Slots: 0},
		{Dir: dir, Name: "ok", SlotSize: MaxSlotSize, Slots: 1024},
		{Dir: dir, Name: "ok", SlotSize: 16, Slots: 8, Perm: 0o200},
		{Dir: dir, Name: "ok", SlotSize: 16, Slots: 8, SchemaName: "bad\nname"},
	}
	for _, c := range bad {
		if w, err := Create(c); err == nil {
			w.Close()
			t.Errorf("Create(%+v) succeeded", c)
		}
	}
	if names := dirEntries(t, dir); len(names) != 0 {
		t.Fatalf("refused configs left %v", names)
	}
}

func TestModes(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "mode", SlotSize: 16, Slots: 8, Perm: 0o640})
	defer w.Close()
	for name, want := range map[string]os.FileMode{"mode": 0o640, "mode" + WakeSuffix: 0o660} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", name, st.Mode().Perm(), want)
		}
	}
}

// A reader maps the ring read-only: a write through its mapping faults.
func TestReaderMappingIsReadOnly(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "ro", SlotSize: 16, Slots: 8})
	defer w.Close()
	r := mustOpen(t, dir, "ro", ReaderConfig{})
	if !isReadOnlyMapping(t, r.mem) {
		t.Fatal("reader's ring mapping is writable")
	}
}

func TestReaderFilesAttach(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "fd", SlotSize: 16, Slots: 8})
	defer w.Close()
	rf, wf, err := w.ReaderFiles()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Attach(rf, wf, ReaderConfig{})
	rf.Close()
	wf.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !isReadOnlyMapping(t, r.mem) {
		t.Fatal("attached reader's mapping is writable")
	}
	w.Publish(payload(0, 16))
	if s, err := r.Next(context.Background()); err != nil || s.Index != 0 {
		t.Fatalf("%+v %v", s, err)
	}
}

func TestAllocations(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "alloc", SlotSize: 1024, Slots: 64})
	defer w.Close()
	r := mustOpen(t, dir, "alloc", ReaderConfig{Wait: WaitSpin})
	p := make([]byte, 1024)
	if n := testing.AllocsPerRun(1000, func() { w.Publish(p) }); n != 0 {
		t.Errorf("Publish allocates %v times", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		w.Publish(p)
		r.TryNext()
	}); n != 0 {
		t.Errorf("Publish+TryNext allocates %v times", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		b, _ := w.Reserve()
		w.Commit(copy(b, p))
	}); n != 0 {
		t.Errorf("Reserve+Commit allocates %v times", n)
	}
	for _, wait := range []Wait{WaitBlock, WaitSpin, WaitAdaptive} {
		nr := mustOpen(t, dir, "alloc", ReaderConfig{Wait: wait})
		ctx := context.Background()
		if n := testing.AllocsPerRun(1000, func() {
			w.Publish(p)
			nr.Next(ctx)
		}); n != 0 {
			t.Errorf("Publish+Next (wait %v) allocates %v times", wait, n)
		}
	}
}

func TestStatusAliveQuietClosed(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "st", SlotSize: 16, Slots: 8, HeartbeatInterval: time.Millisecond})
	r := mustOpen(t, dir, "st", ReaderConfig{})
	w.Publish(payload(0, 16))
	st, err := r.Status()
	if err != nil || st.State != WriterAlive || !st.ProcessAlive || st.Published != 1 {
		t.Fatalf("live writer: %+v, %v", st, err)
	}
	// A quiet writer's heartbeat ages; Heartbeat renews it.
	time.Sleep(20 * time.Millisecond)
	quiet, _ := r.Status()
	if quiet.HeartbeatAge < 20*time.Millisecond {
		t.Fatalf("heartbeat age %v after 20ms of silence", quiet.HeartbeatAge)
	}
	w.Heartbeat()
	if fresh, _ := r.Status(); fresh.HeartbeatAge >= quiet.HeartbeatAge {
		t.Fatalf("Heartbeat did not renew: age %v, was %v", fresh.HeartbeatAge, quiet.HeartbeatAge)
	}
	w.Close()
	if st, _ := r.Status(); st.State != WriterClosed {
		t.Fatalf("after Close: %v", st.State)
	}
}

func TestPrefault(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "pf", SlotSize: 1024, Slots: 256})
	defer w.Close()
	r := mustOpen(t, dir, "pf", ReaderConfig{})
	if err := w.Prefault(); err != nil {
		t.Fatal(err)
	}
	if err := r.Prefault(); err != nil {
		t.Fatal(err)
	}
	// Prefaulting publishes nothing and changes nothing a reader sees.
	if _, ok, _ := r.TryNext(); ok || w.Published() != 0 {
		t.Fatal("Prefault changed the ring")
	}
}

// Interrupt makes a waiting reader check the writer at once: with an hour
// between liveness checks, only Interrupt can end this wait on a writer
// that vanished without closing (here: its locks and mapping dropped, as
// at kill -9).
func TestInterruptChecksLivenessAtOnce(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "intr", SlotSize: 16, Slots: 8})
	r := mustOpen(t, dir, "intr", ReaderConfig{LivenessInterval: time.Hour})
	errc := make(chan error, 1)
	go func() {
		_, err := r.Next(context.Background())
		errc <- err
	}()
	for atomic.LoadUint32(w.waiting) == 0 {
		time.Sleep(100 * time.Microsecond)
	}
	w.release() // as if killed: no closed flag, locks gone
	r.Interrupt()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrWriterDead) {
			t.Fatalf("Next = %v, want ErrWriterDead", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Interrupt did not end the wait")
	}
}

func TestCancelEndsWait(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "cancel", SlotSize: 16, Slots: 8})
	defer w.Close()
	for _, wait := range []Wait{WaitBlock, WaitSpin, WaitAdaptive} {
		r := mustOpen(t, dir, "cancel", ReaderConfig{Wait: wait, LivenessInterval: time.Hour})
		errc := make(chan error, 1)
		go func() {
			_, err := r.Next(context.Background())
			errc <- err
		}()
		time.Sleep(5 * time.Millisecond)
		r.Cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, ErrCanceled) {
				t.Fatalf("wait %v: Next = %v, want ErrCanceled", wait, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("wait %v: Cancel did not end Next", wait)
		}
	}
}

func TestParseStartTime(t *testing.T) {
	// The command name may hold spaces and parentheses; numbers past 2^32
	// must parse on 32-bit systems too.
	line := []byte("4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 8 0 8589934599 4724510720 3000 18446744073709551615")
	got, err := parseStartTime(line)
	if err != nil || got != 8589934599 {
		t.Fatalf("parseStartTime = %d, %v; want 8589934599", got, err)
	}
	for _, bad := range []string{"", "1 (x) S 1", "no parens at all"} {
		if _, err := parseStartTime([]byte(bad)); err == nil {
			t.Errorf("parseStartTime(%q) succeeded", bad)
		}
	}
	own, err := processStart(os.Getpid())
	if err != nil || own == 0 {
		t.Fatalf("own start time %d, %v", own, err)
	}
}

// A writer killed after closing a slot's seqlock but before advancing the
// cursor published that sample: readers deliver it, so Status counts it.
func TestPublishedCountsACommittedSampleBeyondTheCursor(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "pub", SlotSize: 16, Slots: 8})
	defer w.Close()
	r := mustOpen(t, dir, "pub", ReaderConfig{Start: FromOldest, Wait: WaitSpin})
	w.Publish(payload(0, 16))
	w.Publish(payload(1, 16))
	// Sample 2, committed by hand without the cursor update.
	s := w.slot(2)
	seq := w.begin(s, 2)
	copy(s.data(16), payload(2, 16))
	s.setLength(16)
	s.setIndex(2)
	w.seqs[2] = evenAfter(seq)
	atomic.StoreUint32(s.seq(), w.seqs[2])
	if st, _ := r.Status(); st.Published != 3 {
		t.Fatalf("Published = %d, want 3 (two counted by the cursor, one complete in its slot)", st.Published)
	}
	for i := range uint64(3) {
		if smp, ok, _ := r.TryNext(); !ok || smp.Index != i {
			t.Fatalf("sample %d: %+v %v", i, smp, ok)
		}
	}
	// Repair the writer's own count so Close works normally.
	w.next = 3
	w.cursor.store(3, 2)
	if st, _ := r.Status(); st.Published != 3 {
		t.Fatalf("after the cursor caught up: Published = %d, want 3", st.Published)
	}
}
