package bus

import (
	"context"
	"math"
	"net"
	"strings"
	"testing"
	"time"
)

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// idle makes sub wait for a sample that does not come, as a subscriber
// on a quiet topic does: its report then counts every sample delivered.
func idle(sub *Subscriber) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	sub.Next(ctx)
}

func peerNamed(p *Publisher, name string) (Peer, bool) {
	for _, peer := range p.Describe().Peers {
		if peer.Name == name {
			return peer, true
		}
	}
	return Peer{}, false
}

// A subscriber reports its counters under its name; the publisher lists
// them and counts the bytes it published.
func TestSubscriberReports(t *testing.T) {
	opts := testBus(t)
	p, err := NewPublisher(PublisherConfig{Options: opts, Topic: "rep"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sub, err := Subscribe(context.Background(), SubscriberConfig{Options: opts, Topic: "rep", Untyped: true, Name: "display",
		ReportInterval: 20 * time.Millisecond, Latency: func() (time.Duration, time.Duration) { return 3 * time.Microsecond, 9 * time.Microsecond }})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i := range 10 {
		if err := p.Publish(make([]byte, 10+i)); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		if _, err := sub.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	idle(sub)
	waitFor(t, "the report of 10 samples", func() bool {
		peer, ok := peerNamed(p, "display")
		return ok && peer.Received == 10 && peer.ReportUnixNano != 0
	})
	// Next refreshes the counters only as it returns samples: one more.
	p.Publish([]byte("x"))
	if _, err := sub.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	idle(sub)
	waitFor(t, "the report of 11 samples with latency", func() bool {
		peer, _ := peerNamed(p, "display")
		return peer.Received == 11 && peer.LatencyP99Ns == 9000 && peer.LatencyP50Ns == 3000
	})
	d := p.Describe()
	if want := uint64(10*10 + 45 + 1); d.BytesPublished != want || d.Published != 11 {
		t.Errorf("published %d samples of %d bytes, want 11 of %d", d.Published, d.BytesPublished, want)
	}
	waitFor(t, "the publisher's last publish time", func() bool {
		ns := p.Describe().LastPublishUnixNano
		return ns > 0 && time.Since(time.Unix(0, ns)) < time.Minute
	})
	ti, err := Info(opts, "rep")
	if err != nil || len(ti.Peers) != 1 || ti.Peers[0].Name != "display" || ti.BytesPublished != d.BytesPublished {
		t.Fatalf("info: %+v %v", ti, err)
	}
	// A relay's upstream loss is counted, and the subscriber counts it too.
	if err := p.Skip(5); err != nil {
		t.Fatal(err)
	}
	p.Publish([]byte("y"))
	if s, err := sub.Next(context.Background()); err != nil || s.Lost != 5 {
		t.Fatalf("after Skip(5): %+v %v", s, err)
	}
	if ti, err := Info(opts, "rep"); err != nil || ti.Skipped != 5 || ti.Published != 17 {
		t.Fatalf("info after Skip(5): skipped %d, published %d, %v", ti.Skipped, ti.Published, err)
	}
}

// Names are checked before anything is opened; the default is the
// program's name.
func TestSubscriberName(t *testing.T) {
	for _, bad := range []string{strings.Repeat("n", MaxNameLen+1), "a\nb", "caf\xc3\xa9"} {
		if _, err := Subscribe(context.Background(), SubscriberConfig{Topic: "x", Untyped: true, Name: bad}); err == nil || !strings.Contains(err.Error(), "name") {
			t.Errorf("name %q: %v", bad, err)
		}
	}
	if n := programName(); ValidName(n) != nil {
		t.Errorf("default name %q is not valid", n)
	}
}

// However many subscribers, and however long their names, a description
// fits one control message.
func TestDescribeFitsMaxMessage(t *testing.T) {
	opts := testBus(t)
	p, err := NewPublisher(PublisherConfig{Options: opts, Topic: strings.Repeat("t", MaxTopicLen), Origin: strings.Repeat("o", MaxOriginLen)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.mu.Lock()
	for i := range 100 {
		c := new(net.UnixConn) // a key only
		p.peers[c] = Peer{PID: math.MaxInt32 - int32(i), UID: math.MaxUint32, AttachedUnixNano: math.MaxInt64, Mode: 255,
			Name: strings.Repeat("n", MaxNameLen), Received: math.MaxUint64, Lost: math.MaxUint64, Lag: math.MaxUint64,
			Restarts: math.MaxUint64, LatencyP50Ns: math.MaxInt64, LatencyP99Ns: math.MaxInt64, ReportUnixNano: math.MaxInt64}
	}
	p.mu.Unlock()
	d := p.Describe()
	b, err := (&Response{Version: ProtocolVersion, Topic: d}).MarshalMsg(nil)
	if err != nil || len(b) > MaxMessage {
		t.Fatalf("description of %d bytes (%v), limit %d", len(b), err, MaxMessage)
	}
	if d.Subscribers != 100 || len(d.Peers) == 0 {
		t.Fatalf("%d subscribers, %d listed", d.Subscribers, len(d.Peers))
	}
	t.Logf("%d of 100 worst-case peers listed in %d bytes", len(d.Peers), len(b))
	p.mu.Lock()
	clear(p.peers)
	p.mu.Unlock()
}

// An attached peer that sends garbage, oversized messages, requests other
// than reports, invalid names or a flood of reports disturbs neither the
// publisher nor another subscriber; it can only misstate itself.
func TestHostileReports(t *testing.T) {
	opts := testBus(t)
	p, err := NewPublisher(PublisherConfig{Options: opts, Topic: "hr"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	good, err := Subscribe(context.Background(), SubscriberConfig{Options: opts, Topic: "hr", Untyped: true, Name: "good", ReportInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()

	c := rawConn(t, opts, "hr")
	defer c.Close()
	req := func(r Request) []byte { r.Version = ProtocolVersion; b, _ := r.MarshalMsg(nil); return b }
	c.Write(req(Request{Op: OpAttach, Untyped: true}))
	if r := readResponse(t, c); r.Code != CodeOK {
		t.Fatalf("attach: %+v", r)
	}
	bad := [][]byte{
		[]byte("\xc1\xff garbage"),
		make([]byte, 3*MaxMessage),
		req(Request{Op: OpDescribe}),
		req(Request{Op: OpAttach}),
		req(Request{Op: OpReport, Report: Report{Name: ""}}),
		req(Request{Op: OpReport, Report: Report{Name: "bad\x00name"}}),
		func() []byte { b := req(Request{Op: OpReport, Report: Report{Name: "x"}}); b[1] = 99; return b }(), // version 99
	}
	for _, m := range bad {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(m); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	// A flood of reports, as fast as the socket takes them.
	c.SetWriteDeadline(time.Now().Add(time.Second))
	flood := req(Request{Op: OpReport, Report: Report{Name: "good", Received: 1 << 40}})
	sent := 0
	for ; sent < 10000; sent++ {
		if _, err := c.Write(flood); err != nil {
			break // the socket is full: the publisher reads it slowly
		}
	}
	c.SetWriteDeadline(time.Time{})
	t.Logf("%d flood reports written before the socket filled", sent)

	// The publisher answers others at once and the good subscriber gets
	// every sample and is listed with its own counters.
	for i := range 100 {
		p.Publish([]byte{byte(i)})
	}
	for range 100 {
		if _, err := good.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now()
	ti, err := Info(opts, "hr")
	if err != nil || ti.State != StateLive || ti.Subscribers != 2 {
		t.Fatalf("info during the flood: %+v %v", ti, err)
	}
	t.Logf("info answered in %v during the flood", time.Since(t0))
	// One more sample makes Next refresh what good reports.
	p.Publish([]byte("last"))
	if _, err := good.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	idle(good)
	waitFor(t, "good's report of 101 samples", func() bool {
		for _, peer := range p.Describe().Peers {
			if peer.Received == 101 && peer.Name == "good" {
				return true
			}
		}
		return false
	})
	if st := good.Stats(); st.Received != 101 || st.Lost != 0 {
		t.Fatalf("good subscriber: %+v", st)
	}
	d := p.Describe()
	if d.ReportsDropped < uint64(len(bad)) {
		t.Errorf("dropped %d messages, want at least the %d bad ones", d.ReportsDropped, len(bad))
	}
	// The flooder is listed only with what it said of itself.
	liars := 0
	for _, peer := range d.Peers {
		if peer.Received == 1<<40 {
			liars++
		}
	}
	if liars > 1 {
		t.Errorf("%d peers carry the flooder's counters", liars)
	}
}
