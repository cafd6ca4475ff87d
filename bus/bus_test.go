package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sensorbus/sensorbus/ring"
	"github.com/sensorbus/sensorbus/schema"
	"github.com/sensorbus/sensorbus/testing/proctest"
)

// A publisher process and four subscriber processes: every subscriber
// accounts for every sample and sees none corrupt.
func TestPublisherAndFourSubscribers(t *testing.T) {
	opts := testBus(t)
	const count = 200_000
	env := append(optsEnv(opts), "BUS_TOPIC=imu", "BUS_COUNT="+strconv.Itoa(count), "BUS_SLOTS=1024")
	pub := startChild(t, "", "publisher", env, nil)
	pub.Expect("ready")
	var subs []*proctest.Child
	for _, wait := range []string{"block", "spin", "block", "spin"} {
		s := startChild(t, "", "subscriber", append(env, "BUS_WAIT="+wait), nil)
		s.Expect("subscribing")
		s.Expect("attached")
		subs = append(subs, s)
	}
	// The publisher knows its subscribers.
	info, err := Info(opts, "imu")
	if err != nil || info.State != "live" || info.Subscribers != 4 || len(info.PeerPIDs) != 4 {
		t.Fatalf("Info before publishing: %+v, %v", info, err)
	}
	pub.Send("go")
	pub.Expect("published")
	pub.Send("close")
	for k, s := range subs {
		res := result(t, s)
		t.Logf("subscriber %d: %+v", k, res)
		if res.Corrupt != 0 || res.OutOfOrder != 0 || res.Received+res.Lost != count || res.End != "closed" || res.Received == 0 {
			t.Errorf("subscriber %d: %+v; want received+lost = %d, none corrupt, ended closed", k, res, count)
		}
	}
	pub.Cmd.Wait()
}

// Subscribers started before their publisher, which publishes flat out
// from the moment it exists: each, whatever its start position, accounts
// for every sample from the publisher's first.
func TestSubscriberStartedBeforePublisher(t *testing.T) {
	for _, start := range []string{"newest", "oldest"} {
		for _, n := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s-%d", start, n), func(t *testing.T) {
				opts := testBus(t)
				// The bus exists, so the subscribers wait on its socket and
				// attach while the publisher is at it.
				p, err := NewPublisher(PublisherConfig{Options: opts, Topic: "early"})
				if err != nil {
					t.Fatal(err)
				}
				p.Close()
				const count = 2_000_000
				env := append(optsEnv(opts), "BUS_TOPIC=late", "BUS_COUNT="+strconv.Itoa(count), "BUS_SLOTS=256", "BUS_START="+start)
				var subs []*proctest.Child
				for range n {
					s := startChild(t, "", "subscriber", env, nil)
					s.Expect("subscribing")
					s.Expect("waiting")
					subs = append(subs, s)
				}
				pub := startChild(t, "", "publisher", append(env, "BUS_NOW=1"), nil)
				pub.Expect("ready")
				pub.Expect("published")
				for _, s := range subs {
					s.Expect("attached")
				}
				pub.Send("close")
				for k, s := range subs {
					res := result(t, s)
					t.Logf("subscriber %d: %+v", k, res)
					if res.Received+res.Lost != count || res.Corrupt != 0 || res.OutOfOrder != 0 || res.End != "closed" {
						t.Errorf("subscriber %d: %+v; want received + lost = %d", k, res, count)
					}
				}
				pub.Cmd.Wait()
			})
		}
	}
}

// A publisher killed -9 and restarted: subscribers re-attach to the new
// generation, report the restart, and account for both generations.
func TestPublisherKilledAndRestarted(t *testing.T) {
	opts := testBus(t)
	env := append(optsEnv(opts), "BUS_TOPIC=restart", "BUS_SLOTS=4096")
	a := startChild(t, "", "publisher", append(env, "BUS_COUNT=0", "BUS_RATE=5000"), nil)
	a.Expect("ready")
	var subs []*proctest.Child
	for _, wait := range []string{"block", "spin", "adaptive"} {
		s := startChild(t, "", "subscriber", append(env, "BUS_REATTACH=1", "BUS_WAIT="+wait, "BUS_LAST=3000"), nil)
		s.Expect("subscribing")
		s.Expect("attached")
		subs = append(subs, s)
	}
	a.Send("go")
	for _, s := range subs {
		s.Expect("progress") // 1000 samples in
	}
	a.Kill9()
	dead, err := Info(opts, "restart")
	if err != nil || dead.State != StateDead {
		t.Fatalf("after kill -9: %+v, %v", dead, err)
	}
	// The next publisher of the topic replaces the dead one's files.
	const second = 3000
	b := startChild(t, "", "publisher", append(env, "BUS_COUNT="+strconv.Itoa(second), "BUS_GEN=2"), nil)
	b.Expect("ready")
	b.Send("go")
	b.Expect("published")
	// The subscribers stop by themselves at the second generation's last
	// sample (BUS_LAST).
	var first uint64
	for k, s := range subs {
		res := result(t, s)
		t.Logf("subscriber %d: %+v", k, res)
		if res.Restarts != 1 || res.Corrupt != 0 || res.OutOfOrder != 0 || res.FirstGen < 1000 {
			t.Errorf("subscriber %d: %+v; want 1 restart, nothing corrupt or out of order", k, res)
		}
		// Both drained the first publisher's ring to its end: they agree
		// on its count, and account for it and the second's.
		if k == 0 {
			first = res.FirstGen
		}
		if res.FirstGen != first || res.Received+res.Lost != first+second {
			t.Errorf("subscriber %d: received %d + lost %d != %d + %d published by the two publishers", k, res.Received, res.Lost, first, second)
		}
	}
	b.Send("close")
	b.Cmd.Wait()
}

// Samples a restarted publisher overwrote before the subscriber came back
// are reported as lost on the first sample after the restart.
func TestLossAcrossRestartIsReported(t *testing.T) {
	opts := testBus(t)
	cfg := PublisherConfig{Options: opts, Topic: "gen", Slots: 1024, SlotSize: 64}
	a, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := Subscribe(context.Background(), SubscriberConfig{Options: opts, Topic: "gen", Untyped: true, Start: ring.FromOldest})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	buf := make([]byte, 64)
	for i := range uint64(10) {
		a.Publish(payload(buf, i, 1))
	}
	a.Close()
	b, err := NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const second = 5000 // more than the 1024 slots hold
	for i := range uint64(second) {
		b.Publish(payload(buf, i, 2))
	}
	for i := range uint64(10) {
		s, err := sub.Next(context.Background())
		if err != nil || s.Index != i || s.Restarted {
			t.Fatalf("first generation sample %d: %+v %v", i, s, err)
		}
	}
	s, err := sub.Next(context.Background())
	if err != nil || !s.Restarted || s.Index != second-1024 || s.Lost != second-1024 {
		t.Fatalf("first sample after the restart: index %d lost %d restarted %v (%v); want index and lost %d",
			s.Index, s.Lost, s.Restarted, err, second-1024)
	}
	st := sub.Stats()
	if st.Restarts != 1 || st.Received != 11 || st.Lost != second-1024 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSecondPublisherRefused(t *testing.T) {
	opts := testBus(t)
	env := append(optsEnv(opts), "BUS_TOPIC=busy", "BUS_COUNT=1")
	pub := startChild(t, "", "publisher", env, nil)
	pub.Expect("ready")
	_, err := NewPublisher(PublisherConfig{Options: opts, Topic: "busy"})
	var be *TopicBusyError
	if !errors.As(err, &be) || !errors.Is(err, ErrTopicBusy) || be.PID != pub.Cmd.Process.Pid {
		t.Fatalf("second publisher: %v; want ErrTopicBusy naming pid %d", err, pub.Cmd.Process.Pid)
	}
	second := startChild(t, "", "publisher", env, nil)
	second.Expect("error: bus: topic \"busy\" already has a live publisher (pid " + strconv.Itoa(pub.Cmd.Process.Pid))
	pub.Send("go")
	pub.Expect("published")
	pub.Send("close")
	pub.Cmd.Wait()
}

func TestSchemaMismatchNamesBoth(t *testing.T) {
	opts := testBus(t)
	p, err := NewPublisher(PublisherConfig{Options: opts, Topic: "typed", Schema: schema.ScalarSchema})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = Subscribe(context.Background(), SubscriberConfig{Options: opts, Topic: "typed", Schema: schema.IMUSchema})
	if !errors.Is(err, ErrSchemaMismatch) || !strings.Contains(err.Error(), "sensorbus.IMU") || !strings.Contains(err.Error(), "sensorbus.Scalar") {
		t.Fatalf("IMU subscriber on a Scalar topic: %v", err)
	}
	sub, err := Subscribe(context.Background(), SubscriberConfig{Options: opts, Topic: "typed", Schema: schema.ScalarSchema, NoReattach: true})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := schema.NewWriter[schema.Scalar](p.Ring(), schema.ScalarSchema)
	w.Publish(&schema.Scalar{Value: 21.5, Unit: schema.UnitCelsius})
	s, err := sub.Next(context.Background())
	var v schema.Scalar
	if err != nil || schema.Decode(s.Data, &v) != nil || v.Value != 21.5 {
		t.Fatalf("typed sample: %+v %v", v, err)
	}
	sub.Close()
}

func TestNoPublisher(t *testing.T) {
	opts := testBus(t)
	start := time.Now()
	_, err := Subscribe(context.Background(), SubscriberConfig{Options: opts, Topic: "nobody", WaitForPublisher: 200 * time.Millisecond})
	if !errors.Is(err, ErrNoPublisher) || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("Subscribe with nobody publishing: %v after %v", err, time.Since(start))
	}
}

// The publisher admits its own uid and root by default, and others only
// through its allow lists; the refused peer is told why.
func TestACLRefusesAnotherUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a child as another user (CI runs as root)")
	}
	const nobody = 65534
	opts := testBus(t)
	opts.SharedGID = nobody // the child must reach the socket to be refused by the ACL
	os.Chmod(filepath.Dir(opts.Dir), 0o755)
	bin := proctest.CopyBinary(t)
	env := append(optsEnv(opts), "BUS_TOPIC=acl", "BUS_GID="+strconv.Itoa(nobody))
	cred := &syscall.Credential{Uid: nobody, Gid: nobody}

	p, err := NewPublisher(PublisherConfig{Options: opts, Topic: "acl"})
	if err != nil {
		t.Fatal(err)
	}
	c := startChild(t, bin, "subscriber", env, cred)
	c.Expect("subscribing")
	c.Expect("error: bus: topic \"acl\" refused access: uid 65534")
	if err := c.Cmd.Wait(); err == nil || c.Cmd.ProcessState.ExitCode() != 4 {
		t.Fatalf("refused subscriber exited %v", err)
	}
	p.Close()

	// Listed: admitted, and it reads through the descriptors alone.
	p, err = NewPublisher(PublisherConfig{Options: opts, Topic: "acl", AllowUIDs: []int{nobody}})
	if err != nil {
		t.Fatal(err)
	}
	c = startChild(t, bin, "subscriber", env, cred)
	c.Expect("subscribing")
	c.Expect("attached")
	p.Publish(payload(make([]byte, 64), 0, 1))
	p.Close()
	if res := result(t, c); res.Received != 1 || res.Corrupt != 0 {
		t.Fatalf("admitted subscriber: %+v", res)
	}
}

// rawConn connects to a topic's socket without speaking the protocol.
func rawConn(t *testing.T, opts Options, topic string) *net.UnixConn {
	t.Helper()
	b, err := opts.open(false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: b.addr(topic + sockSuffix), Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readResponse(t *testing.T, c *net.UnixConn) Response {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, MaxMessage+1)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	var r Response
	if _, err := r.UnmarshalMsg(buf[:n]); err != nil {
		t.Fatalf("response does not decode: %v", err)
	}
	return r
}

// Garbage, oversized messages, a wrong version and an unknown operation
// each get an error reply; the publisher keeps serving.
func TestGarbageOnControlSocket(t *testing.T) {
	opts := testBus(t)
	p, err := NewPublisher(PublisherConfig{Options: opts, Topic: "g"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := rawConn(t, opts, "g")
	defer c.Close()
	req := func(r Request) []byte { b, _ := r.MarshalMsg(nil); return b }
	cases := []struct {
		name string
		msg  []byte
		code uint8
		want string
	}{
		{"random bytes", []byte("\xc1\xff\x00garbage"), CodeBadRequest, "malformed"},
		{"oversized", make([]byte, 10*MaxMessage), CodeBadRequest, "exceeds 4096"},
		{"wrong version", req(Request{Version: 99, Op: OpAttach}), CodeVersion, "version 99"},
		{"unknown op", req(Request{Version: ProtocolVersion, Op: 77}), CodeBadRequest, "unknown operation"},
		{"trailing bytes", append(req(Request{Version: ProtocolVersion, Op: OpDescribe}), 0xc0), CodeBadRequest, "after the request"},
		{"empty array", []byte{0x90}, CodeBadRequest, "malformed"},
	}
	for _, tc := range cases {
		if _, err := c.Write(tc.msg); err != nil {
			t.Fatalf("%s: write: %v", tc.name, err)
		}
		r := readResponse(t, c)
		if r.Code != tc.code || !strings.Contains(r.Error, tc.want) {
			t.Errorf("%s: code %d %q, want code %d with %q", tc.name, r.Code, r.Error, tc.code, tc.want)
		}
	}
	// Descriptors sent by a client are not kept (no leak), and the
	// publisher still answers.
	f, _ := os.Open("/dev/null")
	c.WriteMsgUnix(req(Request{Version: ProtocolVersion, Op: OpDescribe}), syscall.UnixRights(int(f.Fd())), nil)
	f.Close()
	if r := readResponse(t, c); r.Code != CodeOK || r.Topic.Topic != "g" {
		t.Fatalf("describe after garbage: %+v", r)
	}
	sub, err := Subscribe(context.Background(), SubscriberConfig{Options: opts, Topic: "g", Untyped: true, NoReattach: true})
	if err != nil {
		t.Fatalf("subscriber after garbage: %v", err)
	}
	sub.Close()
}

// A client that connects and says nothing delays nobody and is dropped.
func TestSilentClient(t *testing.T) {
	opts := testBus(t)
	const timeout = 3 * time.Second
	p, err := NewPublisher(PublisherConfig{Options: opts, Topic: "s", RequestTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	silent := rawConn(t, opts, "s")
	defer silent.Close()
	start := time.Now()
	sub, err := Subscribe(context.Background(), SubscriberConfig{Options: opts, Topic: "s", Untyped: true})
	if err != nil {
		t.Fatal(err)
	}
	sub.Close()
	if d := time.Since(start); d >= timeout {
		t.Errorf("a subscriber waited %v behind a silent client (the publisher drops it after %v)", d, timeout)
	}
	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := silent.Read(make([]byte, 64)); err != io.EOF {
		t.Fatalf("silent client: read %v, want EOF when the publisher drops it", err)
	}
}

// GC, run over and over while publishers start, live and die, removes
// dead publishers' files and never a live one's.
func TestGCRacingRestartingPublisher(t *testing.T) {
	opts := testBus(t)
	env := append(optsEnv(opts), "BUS_TOPIC=race", "BUS_COUNT=10")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var gcErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := GC(opts); err != nil && !errors.Is(err, ErrNoBus) && gcErr == nil {
				gcErr = err
			}
		}
	}()
	for i := range 15 {
		p := startChild(t, "", "publisher", env, nil)
		p.Expect("ready")
		// Live: its files are all there and it serves, GC or not.
		for range 3 {
			info, err := Info(opts, "race")
			if err != nil || info.State != StateLive || info.Socket == "" || info.Generation == "" {
				close(stop)
				wg.Wait()
				t.Fatalf("round %d: live publisher's topic looks %+v, %v", i, info, err)
			}
		}
		sub, err := Subscribe(context.Background(), SubscriberConfig{Options: opts, Topic: "race", Untyped: true, NoReattach: true})
		if err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("round %d: subscribe to a live publisher: %v", i, err)
		}
		sub.Close()
		if i%2 == 0 {
			p.Kill9()
		} else {
			p.Send("go")
			p.Expect("published")
			p.Send("close")
			p.Cmd.Wait()
		}
	}
	close(stop)
	wg.Wait()
	if gcErr != nil {
		t.Fatal(gcErr)
	}
	removed, err := GC(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("final GC removed %v", removed)
	if topics, _ := List(opts); len(topics) != 0 {
		t.Fatalf("after the final GC: %+v", topics)
	}
}

func TestGCAfterKill9LeavesNothing(t *testing.T) {
	opts := testBus(t)
	p := startChild(t, "", "publisher", append(optsEnv(opts), "BUS_TOPIC=crash"), nil)
	p.Expect("ready")
	p.Kill9()
	// Files sees exactly what the dead publisher left: its socket and
	// liveness file (its ring had no name, and went with it).
	if files, err := Files(opts); err != nil || len(files) != 2 {
		t.Fatalf("Files after kill -9: %v, %v", files, err)
	}
	topics, err := List(opts)
	if err != nil || len(topics) != 1 || topics[0].State != "dead" {
		t.Fatalf("List after kill -9: %+v, %v", topics, err)
	}
	removed, err := GC(opts)
	if err != nil || len(removed) != 2 {
		t.Fatalf("GC removed %v, %v; want the socket and the liveness file", removed, err)
	}
	if files, err := Files(opts); err != nil || len(files) != 0 {
		t.Fatalf("Files after GC: %v, %v", files, err)
	}
}

func TestBusDirChecks(t *testing.T) {
	root := t.TempDir()
	worldWritable := filepath.Join(root, "ww")
	os.Mkdir(worldWritable, 0o777)
	os.Chmod(worldWritable, 0o777)
	link := filepath.Join(root, "link")
	os.Symlink(worldWritable, link)
	file := filepath.Join(root, "file")
	os.WriteFile(file, nil, 0o600)
	for _, dir := range []string{worldWritable, link, file} {
		if _, err := NewPublisher(PublisherConfig{Options: Options{Dir: dir}, Topic: "x"}); !errors.Is(err, ErrBadDir) {
			t.Errorf("bus dir %s: %v, want ErrBadDir", dir, err)
		}
	}
	if os.Geteuid() == 0 {
		other := filepath.Join(root, "other")
		os.Mkdir(other, 0o700)
		os.Chown(other, 65534, 65534)
		if _, err := NewPublisher(PublisherConfig{Options: Options{Dir: other}, Topic: "x"}); !errors.Is(err, ErrBadDir) || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Errorf("bus dir of another user: %v", err)
		}
	}
	fresh := filepath.Join(root, "fresh")
	b, err := Options{Dir: fresh}.open(true)
	if err != nil {
		t.Fatal(err)
	}
	b.close()
	if st, _ := os.Stat(fresh); st.Mode().Perm() != 0o700 {
		t.Errorf("new bus dir mode %v", st.Mode().Perm())
	}
	// Only the last component is made; subscribers make nothing.
	if _, err := (Options{Dir: filepath.Join(root, "no", "bus")}).open(true); !errors.Is(err, ErrNoBus) {
		t.Errorf("bus dir below a missing one: %v", err)
	}
	if _, err := Subscribe(context.Background(), SubscriberConfig{Options: Options{Dir: filepath.Join(root, "typo")}, Topic: "x", Untyped: true}); !errors.Is(err, ErrNoPublisher) || !strings.Contains(err.Error(), "no bus at") {
		t.Errorf("subscriber on a missing bus: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "typo")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a subscriber created the bus directory")
	}
}

func TestTopicValidation(t *testing.T) {
	for _, bad := range []string{"", ".hidden", "-x", "a/b", "sp ace", "caf\u00e9", strings.Repeat("x", MaxTopicLen+1), "x.sock", "x.pub"} {
		if ValidTopic(bad) == nil {
			t.Errorf("topic %q accepted", bad)
		}
	}
	if err := ValidTopic("imu.front-left_2"); err != nil {
		t.Error(err)
	}
	// The longest topic binds and is reached, whatever the bus path.
	opts := testBus(t)
	long := strings.Repeat("x", MaxTopicLen)
	p, err := NewPublisher(PublisherConfig{Options: opts, Topic: long})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sub, err := Subscribe(context.Background(), SubscriberConfig{Options: opts, Topic: long, Untyped: true})
	if err != nil {
		t.Fatal(err)
	}
	sub.Close()
}

func TestDefaultDir(t *testing.T) {
	t.Setenv(EnvDir, "/somewhere/bus")
	if d := DefaultDir(); d != "/somewhere/bus" {
		t.Errorf("with %s set: %s", EnvDir, d)
	}
	t.Setenv(EnvDir, "")
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	if d := DefaultDir(); d != "/run/user/1000/sensorbus" {
		t.Errorf("with XDG_RUNTIME_DIR: %s", d)
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	want := "/tmp/sensorbus-" + strconv.Itoa(os.Geteuid())
	if os.Geteuid() == 0 {
		want = "/run/sensorbus"
	}
	if d := DefaultDir(); d != want {
		t.Errorf("default: %s, want %s", d, want)
	}
}

func FuzzRequestDecode(f *testing.F) {
	for _, r := range []Request{{Version: 1, Op: OpAttach, Schema: "sensorbus.IMU", Fingerprint: 42}, {Version: 1, Op: OpDescribe, Untyped: true}} {
		b, _ := r.MarshalMsg(nil)
		f.Add(b)
	}
	f.Add([]byte{0x95, 0xdb, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Request
		if _, err := r.UnmarshalMsg(b); err != nil {
			return
		}
		if _, err := r.MarshalMsg(nil); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzResponseDecode(f *testing.F) {
	r := Response{Version: 1, Topic: TopicDesc{Topic: "t", Schema: "s", Peers: []Peer{{PID: 1}}}}
	b, _ := r.MarshalMsg(nil)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Response
		if _, err := r.UnmarshalMsg(b); err != nil {
			return
		}
		if len(r.Topic.Peers) > len(b) {
			t.Fatalf("%d peers from %d bytes", len(r.Topic.Peers), len(b))
		}
	})
}

var _ = fmt.Sprint

// A stopped (hung) publisher still holds its lock, so it is not dead; its
// heartbeat ages, which is how a subscriber tells it from a quiet one.
func TestHungPublisherShowsInHeartbeat(t *testing.T) {
	opts := testBus(t)
	pub := startChild(t, "", "publisher", append(optsEnv(opts), "BUS_TOPIC=hung", "BUS_COUNT=1"), nil)
	pub.Expect("ready")
	sub, err := Subscribe(context.Background(), SubscriberConfig{Options: opts, Topic: "hung", Untyped: true, NoReattach: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	quiet, err := sub.PublisherStatus()
	if err != nil || quiet.State != ring.WriterAlive || quiet.HeartbeatAge > time.Second {
		t.Fatalf("quiet publisher: %+v %v", quiet, err)
	}
	pub.Cmd.Process.Signal(syscall.SIGSTOP)
	var hung ring.Status
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if hung, _ = sub.PublisherStatus(); hung.HeartbeatAge > time.Second {
			break
		}
	}
	if hung.State != ring.WriterAlive || hung.HeartbeatAge <= time.Second {
		t.Fatalf("stopped publisher: %+v; want alive with a heartbeat older than 1s", hung)
	}
	pub.Cmd.Process.Signal(syscall.SIGCONT)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, _ := sub.PublisherStatus()
		if st.HeartbeatAge < 500*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("continued publisher's heartbeat still %v old", st.HeartbeatAge)
		}
	}
	pub.Send("go")
	pub.Expect("published")
	pub.Send("close")
	pub.Cmd.Wait()
}

// The hello carries the subscriber's mode; stats answers the live counters.
func TestStatsAndSubscriberModes(t *testing.T) {
	opts := testBus(t)
	p, err := NewPublisher(PublisherConfig{Options: opts, Topic: "st"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, mode := range []ring.Mode{ring.Stream, ring.Latest} {
		s, err := Subscribe(context.Background(), SubscriberConfig{Options: opts, Topic: "st", Untyped: true, Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
	}
	for range 7 {
		p.Publish([]byte("x"))
	}
	modes := map[uint8]int{}
	for _, peer := range p.Subscribers() {
		modes[peer.Mode]++
	}
	if modes[uint8(ring.Stream)] != 1 || modes[uint8(ring.Latest)] != 1 {
		t.Fatalf("publisher sees modes %v", modes)
	}
	c := rawConn(t, opts, "st")
	defer c.Close()
	b, _ := (&Request{Version: ProtocolVersion, Op: OpStats}).MarshalMsg(nil)
	c.Write(b)
	r := readResponse(t, c)
	if r.Code != CodeOK || r.Topic.Published != 7 || r.Topic.Subscribers != 2 || r.Topic.Schema != "" || r.Topic.Slots != 0 {
		t.Fatalf("stats: %+v", r)
	}
}

// A subscriber whose control connection drops while its publisher lives
// re-attaches to the same generation and resumes right after the last
// sample it delivered: no duplicate, no restart, nothing counted lost.
func TestReattachToSameGenerationResumes(t *testing.T) {
	opts := testBus(t)
	p, err := NewPublisher(PublisherConfig{Options: opts, Topic: "same", Slots: 64, SlotSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sub, err := Subscribe(context.Background(), SubscriberConfig{Options: opts, Topic: "same", Untyped: true, Start: ring.FromOldest})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	buf := make([]byte, 64)
	next := uint64(0)
	for round := range 3 {
		got := make(chan error, 1)
		first := next
		go func() { // waits across the re-attach for the round's samples
			for i := first; i < first+10; i++ {
				s, err := sub.Next(context.Background())
				if err == nil && (s.Index != i || s.Lost != 0 || s.Restarted) {
					err = fmt.Errorf("sample %d: index %d lost %d restarted %v", i, s.Index, s.Lost, s.Restarted)
				}
				if err != nil {
					got <- err
					return
				}
			}
			got <- nil
		}()
		// Published once the subscriber re-attached: the publisher
		// counts it again.
		for deadline := time.Now().Add(10 * time.Second); len(p.Subscribers()) != 1; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the subscriber did not re-attach")
			}
		}
		for range 10 {
			p.Publish(payload(buf, next, 1))
			next++
		}
		if err := <-got; err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		sub.curConn.Load().Close() // the connection ends; the publisher does not
		for deadline := time.Now().Add(10 * time.Second); len(p.Subscribers()) != 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the publisher still lists the subscriber")
			}
		}
	}
	st := sub.Stats()
	if st.Received != next || st.Lost != 0 || st.Restarts != 0 {
		t.Fatalf("stats %+v", st)
	}
}
