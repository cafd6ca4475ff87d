package ring

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// anonRing creates an anonymous ring and attaches a reader to it through
// the files a subscriber would receive.
func anonRing(t testing.TB, cfg Config, rcfg ReaderConfig) (*Writer, *Reader) {
	t.Helper()
	w := mustCreate(t, cfg)
	t.Cleanup(func() { w.Close() })
	return w, attachTo(t, w, rcfg)
}

func attachTo(t testing.TB, w *Writer, rcfg ReaderConfig) *Reader {
	t.Helper()
	rf, wf := readerFiles(t, w)
	r, err := Attach(rf, wf, rcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// readerFiles returns w's reader files, closed when the test ends.
func readerFiles(t testing.TB, w *Writer) (ringFile, wakeFile *os.File) {
	t.Helper()
	rf, wf, err := w.ReaderFiles()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rf.Close(); wf.Close() })
	return rf, wf
}

// What a reader holding the descriptors can try against an anonymous
// ring: every attempt to resize, write, map writable, re-open writable or
// change the ring fails; the wake area may be written but not resized.
func TestAnonymousRingIsSealed(t *testing.T) {
	w, r := anonRing(t, Config{SlotSize: 64, Slots: 64}, ReaderConfig{})
	if !isReadOnlyMapping(t, r.mem) {
		t.Fatal("reader's mapping is writable")
	}
	if r.guarded {
		t.Fatal("a sealed ring's reads are guarded: the guard costs for nothing")
	}
	rf, wf, err := w.ReaderFiles()
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	defer wf.Close()
	size := int64(w.Header().Size)
	for _, f := range []*os.File{rf, wf} {
		fd := int(f.Fd())
		if err := unix.Ftruncate(fd, 0); err == nil {
			t.Errorf("%s: ftruncate to 0 allowed", f.Name())
		}
		if err := unix.Ftruncate(fd, 1<<30); err == nil {
			t.Errorf("%s: ftruncate to 1 GiB allowed", f.Name())
		}
		if err := unix.Fallocate(fd, 0, 0, 1<<30); err == nil {
			t.Errorf("%s: fallocate of 1 GiB allowed", f.Name())
		}
		if err := unix.Fchmod(fd, 0o777); err == nil {
			st, _ := f.Stat()
			t.Logf("%s: fchmod allowed (mode now %v): harmless, nobody opens it by a path", f.Name(), st.Mode())
		}
		// Locks of every kind are allowed and mean nothing to anyone.
		unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		lk := unix.Flock_t{Type: unix.F_WRLCK, Len: 0}
		unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk)
	}
	// The ring: no write, no writable mapping, not even through a
	// descriptor re-opened read-write.
	rfd := int(rf.Fd())
	if _, err := unix.Pwrite(rfd, []byte("x"), 0); err == nil {
		t.Error("pwrite to the ring allowed")
	}
	if m, err := unix.Mmap(rfd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err == nil {
		unix.Munmap(m)
		t.Error("writable mapping of the ring allowed")
	}
	if fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(rfd), unix.O_RDWR, 0); err == nil {
		if _, err := unix.Pwrite(fd, []byte("x"), 0); err == nil {
			t.Error("pwrite through a re-opened descriptor allowed")
		}
		if m, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err == nil {
			unix.Munmap(m)
			t.Error("writable mapping through a re-opened descriptor allowed")
		}
		unix.Close(fd)
	}
	if m, err := unix.Mmap(rfd, 0, int(size), unix.PROT_READ, unix.MAP_SHARED); err == nil {
		if err := unix.Mprotect(m, unix.PROT_READ|unix.PROT_WRITE); err == nil {
			t.Error("a read-only mapping of the ring could be made writable")
		}
		unix.Munmap(m)
	}
	// The writer still publishes and the reader reads, whatever was tried.
	for i := range uint64(10) {
		if err := w.Publish(payload(i, 64)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range uint64(10) {
		s, err := r.Next(context.Background())
		if err != nil || s.Index != i || !bytes.Equal(s.Data, payload(i, 64)) {
			t.Fatalf("sample %d: %+v %v", i, s, err)
		}
	}
}

// A named ring truncated under its readers (its owner may do that) makes
// their reads fail with ErrBadSegment instead of killing the process.
func TestNamedRingTruncatedUnderReader(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "trunc", SlotSize: 64, Slots: 256})
	defer w.Close()
	var readers []*Reader
	for _, wait := range []Wait{WaitSpin, WaitBlock, WaitAdaptive} {
		r := mustOpen(t, dir, "trunc", ReaderConfig{Wait: wait, Start: FromOldest})
		if !r.guarded {
			t.Fatal("a named ring's reads are not guarded")
		}
		readers = append(readers, r)
	}
	w.Publish(payload(0, 64))
	for _, r := range readers {
		if _, err := r.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	size := int64(w.Header().Size)
	for _, name := range []string{"trunc", "trunc" + WakeSuffix} {
		if err := os.Truncate(filepath.Join(dir, name), 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range readers {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := r.Next(ctx)
		cancel()
		if !errors.Is(err, ErrBadSegment) {
			t.Errorf("Next on a truncated ring: %v, want ErrBadSegment", err)
		}
		if _, err := r.Status(); !errors.Is(err, ErrBadSegment) {
			t.Errorf("Status on a truncated ring: %v, want ErrBadSegment", err)
		}
	}
	// Give the writer its pages back before it closes: it writes there.
	os.Truncate(filepath.Join(dir, "trunc"), size)
	os.Truncate(filepath.Join(dir, "trunc"+WakeSuffix), int64(os.Getpagesize()))
}

// Skip accounts samples as lost: a reader sees the gap in Lost, whether it
// is shorter or longer than the ring.
func TestSkipCountsAsLost(t *testing.T) {
	w, r := anonRing(t, Config{SlotSize: 16, Slots: 8}, ReaderConfig{Wait: WaitSpin})
	var got []Sample
	read := func() {
		for {
			s, ok, err := r.TryNext()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return
			}
			got = append(got, Sample{Index: s.Index, Lost: s.Lost})
		}
	}
	w.Publish(payload(0, 16))
	read()
	w.Skip(3)
	w.Publish(payload(4, 16))
	read()
	w.Skip(100)
	w.Publish(payload(105, 16))
	read()
	want := []Sample{{Index: 0}, {Index: 4, Lost: 3}, {Index: 105, Lost: 100}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Index != want[i].Index || got[i].Lost != want[i].Lost {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	}
	if st := r.Stats(); st.Received != 3 || st.Lost != 103 || st.Lag != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// FromIndex 0 starts at the writer's first sample and counts what the ring
// no longer holds as lost; Lag shows what is published and not yet read.
func TestFromIndexAndLag(t *testing.T) {
	w := mustCreate(t, Config{SlotSize: 16, Slots: 8})
	defer w.Close()
	early := attachTo(t, w, ReaderConfig{Wait: WaitSpin, Start: FromIndex})
	for i := range uint64(20) {
		w.Publish(payload(i, 16))
	}
	late := attachTo(t, w, ReaderConfig{Wait: WaitSpin, Start: FromIndex})
	for _, r := range []*Reader{early, late} {
		if st := r.Stats(); st.Lag+st.Lost != 20 {
			t.Fatalf("before reading: %+v, want lag + lost = 20", st)
		}
		var n uint64
		for {
			s, ok, err := r.TryNext()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			n += 1 + s.Lost
		}
		if st := r.Stats(); n != 20 || st.Received+st.Lost != 20 || st.Lag != 0 {
			t.Fatalf("accounted %d; stats %+v", n, st)
		}
	}
}

// Payloads of a megabyte and more (copied with non-temporal stores on
// amd64) are never delivered torn to a reader running alongside.
func TestLargePayloadsNeverTorn(t *testing.T) {
	const size = 3 << 19 // 1.5 MiB
	w, r := anonRing(t, Config{SlotSize: 2 << 20, Slots: 2}, ReaderConfig{Wait: WaitSpin})
	n := 400
	if testing.Short() {
		n = 50
	}
	p := make([]byte, size)
	done := make(chan struct{})
	var torn, read atomic.Uint64
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for {
			s, err := r.Next(ctx)
			if err != nil {
				return
			}
			read.Add(1)
			if len(s.Data) != size || !uniform(s.Data) {
				torn.Add(1)
			}
			if s.Index == uint64(n-1) {
				return
			}
		}
	}()
	for i := range n {
		for k := range p {
			p[k] = byte(i)
		}
		w.Publish(p)
	}
	<-done
	if torn.Load() != 0 {
		t.Fatalf("%d of %d large samples delivered torn", torn.Load(), read.Load())
	}
	t.Logf("%d of %d samples read, none torn", read.Load(), n)
}

func uniform(b []byte) bool {
	for _, c := range b {
		if c != b[0] {
			return false
		}
	}
	return true
}

// Open, wait, cancel and close in a loop, with the context canceled while
// Next sleeps: Close never unmaps memory a context callback still touches.
func TestReaderLifetimeStress(t *testing.T) {
	d := 10 * time.Second
	if testing.Short() {
		d = time.Second
	}
	w := mustCreate(t, Config{SlotSize: 16, Slots: 8})
	defer w.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a slow writer: readers mostly sleep
		defer wg.Done()
		var i uint64
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				w.Publish(payload(i, 16))
				i++
			}
		}
	}()
	rnd := rand.New(rand.NewPCG(1, 2))
	var rounds int
	for deadline := time.Now().Add(d); time.Now().Before(deadline); rounds++ {
		rf, wf, err := w.ReaderFiles()
		if err != nil {
			t.Fatal(err)
		}
		r, err := Attach(rf, wf, ReaderConfig{Wait: []Wait{WaitBlock, WaitAdaptive}[rounds%2]})
		rf.Close()
		wf.Close()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rnd.IntN(500))*time.Microsecond)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				if _, err := r.Next(ctx); err != nil {
					if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrClosed) && !errors.Is(err, context.Canceled) {
						t.Errorf("Next: %v", err)
					}
					return
				}
			}
		}()
		switch rnd.IntN(3) {
		case 0: // Close while Next runs, from another goroutine
			time.Sleep(time.Duration(rnd.IntN(300)) * time.Microsecond)
			r.Close()
			cancel()
			<-done
		case 1: // cancel, then Close at once
			cancel()
			r.Close()
			<-done
		default: // Next returns, then Close, then a late Cancel
			<-done
			r.Close()
			r.Cancel()
			r.Interrupt()
			cancel()
		}
		if _, err := r.Next(context.Background()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Next after Close: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d rounds", rounds)
}

// Calls after Close return ErrClosed and touch nothing; Close from another
// goroutine while the writer publishes never faults.
func TestWriterCloseWhilePublishing(t *testing.T) {
	for range 50 {
		w := mustCreate(t, Config{SlotSize: 1024, Slots: 64})
		p := make([]byte, 1024)
		done := make(chan error)
		go func() {
			for {
				if err := w.Publish(p); err != nil {
					done <- err
					return
				}
			}
		}()
		time.Sleep(time.Millisecond)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Fatalf("Publish after a concurrent Close: %v", err)
		}
		w.Heartbeat()
		if _, err := w.Reserve(); !errors.Is(err, ErrClosed) {
			t.Fatalf("Reserve after Close: %v", err)
		}
		if err := w.Skip(1); !errors.Is(err, ErrClosed) {
			t.Fatalf("Skip after Close: %v", err)
		}
		if _, _, err := w.ReaderFiles(); !errors.Is(err, ErrClosed) {
			t.Fatalf("ReaderFiles after Close: %v", err)
		}
		if st := w.Status(); !st.Closed {
			t.Fatalf("Status after Close: %+v", st)
		}
		if err := w.Close(); !errors.Is(err, ErrClosed) {
			t.Fatalf("second Close: %v", err)
		}
	}
}

// A writer whose ring words are scribbled on, one word at a time, while it
// publishes and readers read: each reader delivers no sample twice or out
// of order, accounts for every sample it skips, ends (if at all) with
// ErrBadSegment, reads again once the scribbling stops, and honours its
// context.
func TestReaderSurvivesCorruptWords(t *testing.T) {
	const slots = 16
	type word struct {
		name string
		off  int
	}
	words := []word{{"closed flag", offClosed}, {"heartbeat", offHeartbeat},
		{"cursor high word 1", offCursor}, {"cursor low word", offCursor + 4}, {"cursor high word 2", offCursor + 8}}
	for _, k := range []int{0, 5} {
		base := headerSize + k*slotStride(16)
		for _, f := range []word{{"seq", slotOffSeq}, {"length", slotOffLen}, {"index low", slotOffIndex}, {"index high", slotOffIndex + 4}, {"time", slotOffTime}} {
			words = append(words, word{"slot " + strconv.Itoa(k) + " " + f.name, base + f.off})
		}
	}
	for _, word := range words {
		for _, wait := range []Wait{WaitSpin, WaitBlock, WaitAdaptive} {
			name := word.name + ", wait " + strconv.Itoa(int(wait))
			w := mustCreate(t, Config{SlotSize: 16, Slots: slots})
			r := attachTo(t, w, ReaderConfig{Wait: wait, Start: FromIndex, LivenessInterval: 10 * time.Millisecond})
			stopWriter := make(chan struct{})
			var published atomic.Uint64
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { // the writer, at most 20 kHz
				defer wg.Done()
				tk := time.NewTicker(50 * time.Microsecond)
				defer tk.Stop()
				for i := uint64(0); ; i++ {
					select {
					case <-stopWriter:
						return
					case <-tk.C:
					}
					w.Publish(payload(i, 16))
					published.Store(i + 1)
				}
			}()
			var cleanFrom atomic.Uint64 // 1 + the count published when the scribbling stopped
			go func() {                 // the scribbler
				defer wg.Done()
				p := u32(w.mem, word.off)
				rnd := rand.New(rand.NewPCG(uint64(word.off), 7))
				for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
					atomic.StoreUint32(p, rnd.Uint32())
					time.Sleep(20 * time.Microsecond)
				}
				cleanFrom.Store(published.Load() + 1)
			}()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			prev, delivered := int64(-1), 0
			var end error
			for {
				s, err := r.Next(ctx)
				if err != nil {
					end = err
					break
				}
				delivered++
				if int64(s.Index) <= prev || s.Index != uint64(prev+1)+s.Lost {
					t.Errorf("%s: sample %d (lost %d) after %d", name, s.Index, s.Lost, prev)
				}
				prev = int64(s.Index)
				// Read again after the scribbling stopped, with margin:
				// samples published then were never scribbled on.
				if c := cleanFrom.Load(); c != 0 && s.Index >= c+slots {
					break
				}
			}
			cancel()
			close(stopWriter)
			wg.Wait()
			switch {
			case end == nil:
			case errors.Is(end, ErrBadSegment):
				t.Logf("%s: ended with %v after %d samples", name, end, delivered)
			default:
				t.Errorf("%s: Next ended with %v after %d samples; stats %+v", name, end, delivered, r.Stats())
			}
			if end == nil {
				// Nothing more comes: Next returns at its deadline.
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
				start := time.Now()
				if _, err := r.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
					for err == nil { // samples still in the ring
						_, err = r.Next(ctx)
					}
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("%s: Next on an idle ring: %v", name, err)
					}
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("%s: Next returned %v after a 20 ms deadline", name, d)
				}
				cancel()
			}
			r.Close()
			w.Close()
		}
	}
}

// Long and short skips while a reader of each kind reads: no error, and
// every sample delivered or counted lost.
func TestSkipWhileReading(t *testing.T) {
	const slots = 64
	for _, wait := range []Wait{WaitSpin, WaitBlock} {
		w := mustCreate(t, Config{SlotSize: 16, Slots: slots})
		r := attachTo(t, w, ReaderConfig{Wait: wait, Start: FromIndex})
		done := make(chan error, 1)
		var received, lost uint64
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for {
				s, err := r.Next(ctx)
				if err != nil {
					done <- err
					return
				}
				received++
				lost += s.Lost
				if s.Index == 1<<62 {
					done <- nil
					return
				}
			}
		}()
		rnd := rand.New(rand.NewPCG(5, 6))
		var published uint64
		for range 20000 {
			if rnd.IntN(4) == 0 {
				n := uint64(rnd.IntN(3 * slots))
				w.Skip(n)
				published += n
			} else {
				w.Publish(payload(published, 16))
				published++
			}
		}
		w.Skip(1<<62 - published) // the last sample's index is 1<<62
		w.Publish(payload(1<<62, 16))
		published = 1<<62 + 1
		if err := <-done; err != nil {
			t.Fatalf("wait %v: %v", wait, err)
		}
		if received+lost != published {
			t.Fatalf("wait %v: received %d + lost %d != %d", wait, received, lost, published)
		}
		r.Close()
		w.Close()
	}
}

// The moment in a long Skip where the first void sample is in its slot and
// the cursor has not jumped yet: a reader that looks then waits, and then
// counts the whole gap as lost.
func TestSkipJumpSeenBeforeTheCursor(t *testing.T) {
	const slots = 8
	w, r := anonRing(t, Config{SlotSize: 16, Slots: slots}, ReaderConfig{Wait: WaitSpin})
	for i := range uint64(3) {
		w.Publish(payload(i, 16))
		if s, ok, err := r.TryNext(); !ok || err != nil || s.Index != i {
			t.Fatalf("sample %d: %+v %v %v", i, s, ok, err)
		}
	}
	// A Skip of about 100 stopped after its first slot write, arranged so
	// that its first void sample lands in the slot of the reader's next
	// sample (3), ahead of the cursor still at 3.
	stored := w.next
	w.next += 100 - slots
	for w.next&w.mask != 3 { // make the first void sample land in slot 3
		w.next++
	}
	i := w.next & w.mask
	s := w.slot(w.next)
	seq := w.begin(s, i)
	s.setLength(voidLen)
	s.setIndex(w.next)
	w.seqs[i] = evenAfter(seq)
	storeRelease(s.seq(), w.seqs[i])
	if smp, ok, err := r.TryNext(); ok || err != nil {
		t.Fatalf("reader looking before the cursor jumped: %+v %v %v", smp, ok, err)
	}
	w.next++
	w.cursor.store(w.next, stored)
	w.Publish(payload(w.next, 16))
	last := w.next - 1
	smp, ok, err := r.TryNext()
	if !ok || err != nil || smp.Index != last || smp.Lost != last-3 {
		t.Fatalf("after the jump: %+v %v %v; want index %d lost %d", smp, ok, err, last, last-3)
	}
}

// A writer that skips more than a look covers and then closes: its
// readers count the whole gap before they see the end.
func TestEndAfterLongSkip(t *testing.T) {
	dir := testDir(t)
	w := mustCreate(t, Config{Dir: dir, Name: "skip-end", SlotSize: 16, Slots: 1024})
	r := mustOpen(t, dir, "skip-end", ReaderConfig{})
	w.Publish(payload(0, 16))
	w.Skip(4 * maxTries)
	w.Close()
	s, err := r.Next(context.Background())
	if err != nil || s.Index != 0 {
		t.Fatalf("first sample: %+v %v", s, err)
	}
	if _, err := r.Next(context.Background()); !errors.Is(err, ErrWriterClosed) {
		t.Fatalf("after the gap: %v", err)
	}
	if st := r.Stats(); st.Received != 1 || st.Lost != 4*maxTries {
		t.Fatalf("stats %+v, want the whole gap of %d lost", st, 4*maxTries)
	}
}

// A reader that finds the oldest sample overwritten as it starts loses
// that one sample, not a margin; one that keeps being lapped restarts
// further ahead.
func TestLapLosesNoMoreThanItMust(t *testing.T) {
	const slots = 64
	w := mustCreate(t, Config{SlotSize: 16, Slots: slots})
	defer w.Close()
	for i := range uint64(200) {
		w.Publish(payload(i, 16))
	}
	r := attachTo(t, w, ReaderConfig{Wait: WaitSpin, Start: FromOldest})
	w.Publish(payload(200, 16)) // overwrites the oldest, 136, before the reader reads it
	s, ok, err := r.TryNext()
	if !ok || err != nil || s.Index != 137 || s.Lost != 1 {
		t.Fatalf("first sample: %+v %v %v; want 137 with 1 lost", s, ok, err)
	}
	// Lapped again and again: the restarts move further ahead.
	var restarts []uint64
	for range 6 {
		for range slots + 10 {
			w.Publish(payload(0, 16))
		}
		s, ok, err := r.TryNext()
		if !ok || err != nil {
			t.Fatal(ok, err)
		}
		restarts = append(restarts, s.Index-(w.Published()-slots))
	}
	for k := 1; k < len(restarts); k++ {
		if restarts[k] < restarts[k-1] || restarts[len(restarts)-1] != slots/8 {
			t.Fatalf("restart points past the oldest sample: %v; want growing to %d", restarts, slots/8)
		}
	}
}

// A writer stopped in the middle of a jump of the cursor (Skip) leaves
// high words far apart: readers take a value no larger than the true one.
func TestSplit64TornJump(t *testing.T) {
	b := make([]byte, 64)
	s := newSplit64(b, 0)
	s.store(500_000, 0)
	to := uint64(1<<62 - 63)
	atomic.StoreUint32(s.hi1, uint32(to>>32)) // stopped after hi1: the value is still 500000
	if got := s.load(); got > 500_000 {
		t.Fatalf("stopped after hi1: %#x, more than the true %#x", got, 500_000)
	}
	atomic.StoreUint32(s.lo, uint32(to)) // after lo: the value is the new one
	if got := s.load(); got > to {
		t.Fatalf("stopped after lo: %#x, more than the true %#x", got, to)
	}
}
