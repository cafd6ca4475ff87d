package bridge

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/schema"
)

// runInProcess runs a bridge in the test process until the test ends.
func runInProcess(t *testing.T, cfg Config) *Bridge {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return b
}

// forger publishes hand-made messages on a bridge subject.
type forger struct {
	t       *testing.T
	nc      *nats.Conn
	subject string
	gen     string
}

func (f *forger) header(format string, index uint64, count int) nats.Header {
	return nats.Header{HeaderFormat: {format}, HeaderGeneration: {f.gen}, HeaderIndex: {strconv.FormatUint(index, 10)},
		HeaderCount: {strconv.Itoa(count)}, HeaderTime: {"1"}, HeaderSchema: {schema.RawSchema.Name},
		HeaderFingerprint: {hex16(schema.RawSchema.Fingerprint)}, HeaderSlotSize: {"128"}, HeaderSlots: {"256"}}
}

func (f *forger) send(h nats.Header, body []byte) {
	f.t.Helper()
	if err := f.nc.PublishMsg(&nats.Msg{Subject: f.subject, Header: h, Data: body}); err != nil {
		f.t.Fatal(err)
	}
}

// sample is the test sample seq, encoded.
func sample(t *testing.T, seq uint64) []byte {
	var r schema.Raw
	makeSample(&r, seq)
	b, err := r.MarshalMsg(nil)
	if err != nil || len(b) != sampleBytes {
		t.Fatalf("sample of %d bytes: %v", len(b), err)
	}
	return b
}

func TestBadInputDroppedAndCounted(t *testing.T) {
	srv := startNATS(t, natsConf{})
	B := testBus(t)
	b := runInProcess(t, Config{URL: srv.URL(), Host: "b", Imports: []string{"a/imu"}, Bus: B})
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	f := &forger{t: t, nc: nc, subject: Subject("a", "imu"), gen: "00000000000000aa"}
	v := startVerifier(t, B, "imu", 5, false)

	f.send(nil, []byte("hello from something that is not a bridge")) // dropped: no headers
	f.send(f.header(FormatSample, 0, 1), sample(t, 0))               // sample 0
	batch := encodeBatch([]Record{{Index: 1, Data: sample(t, 1)}, {Index: 2, Data: sample(t, 2)}})
	f.send(f.header(FormatBatch, 1, 2), batch[:len(batch)-3]) // dropped: truncated batch
	imu := f.header(FormatSample, 1, 1)
	imu[HeaderSchema], imu[HeaderFingerprint] = []string{schema.IMUSchema.Name}, []string{hex16(schema.IMUSchema.Fingerprint)}
	f.send(imu, sample(t, 1))                                        // dropped: another schema within the generation
	f.send(f.header(FormatSample, 1, 1), []byte{0x93, 0x01})         // dropped: not one MessagePack value
	f.send(f.header(FormatSample, 1, 1), append(sample(t, 1), 0xc0)) // dropped: trailing byte
	f.send(f.header(FormatSample, 1, 1), make([]byte, 200))          // dropped: larger than the slot
	f.send(f.header(FormatBatch, 1, 3), batch)                       // dropped: the headers' count is wrong
	f.send(f.header(FormatBatch, 1, 2), batch)                       // samples 1 and 2
	f.send(f.header(FormatSample, 1, 1), sample(t, 1))               // duplicate
	f.send(f.header(FormatSample, 3, 1), sample(t, 3))               // sample 3
	f.send(f.header("sample/9", 4, 1), sample(t, 4))                 // dropped: unknown format
	f.send(f.header(FormatSample, 4, 1), sample(t, 4))               // sample 4
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	res := v.result(t)
	checkNoLoss(t, res, 5)
	// Delivery on the subscription is in order: everything was handled.
	st := b.Stats().Imports[0]
	if st.Received != 5 || st.Dropped != 8 || st.Duplicates != 1 || st.Lost != 0 || st.Messages != 13 {
		t.Errorf("importer counted %+v; want 5 received, 8 dropped, 1 duplicate, 13 messages", st)
	}

	// The local topic carries the remote schema: a subscriber expecting
	// another is refused as for any topic.
	_, err = bus.Subscribe(context.Background(), bus.SubscriberConfig{Options: B, Topic: "imu", Schema: schema.IMUSchema})
	if !errors.Is(err, bus.ErrSchemaMismatch) {
		t.Errorf("subscriber of another schema: %v, want ErrSchemaMismatch", err)
	}
}

func TestConnectErrors(t *testing.T) {
	// A port nothing listens on: bind one, close it.
	srv := startNATS(t, natsConf{Extra: "authorization { user: bridge, password: s3cret }\n"})
	B := testBus(t)
	base := Config{Host: "b", Imports: []string{"a/imu"}, Bus: B, ConnectTimeout: 2 * time.Second}

	unreachable := base
	unreachable.URL = "nats://127.0.0.1:1"
	if _, err := New(unreachable); !errors.Is(err, ErrConnect) {
		t.Errorf("unreachable server: %v, want ErrConnect", err)
	}

	for name, auth := range map[string]Auth{
		"no credentials":  {},
		"wrong password":  {User: "bridge", Password: "guess"},
		"unknown user":    {User: "mallory", Password: "s3cret"},
		"token instead":   {Token: "s3cret"},
		"missing seed":    {NKeyFile: filepath.Join(t.TempDir(), "none.nk")},
		"missing creds":   {CredsFile: filepath.Join(t.TempDir(), "none.creds")},
		"password in url": {},
	} {
		cfg := base
		cfg.URL, cfg.Auth = srv.URL(), auth
		if name == "password in url" {
			cfg.URL = strings.Replace(srv.URL(), "nats://", "nats://bridge:wrong@", 1)
		}
		_, err := New(cfg)
		if err == nil {
			t.Errorf("%s: connected", name)
			continue
		}
		if strings.Contains(err.Error(), "wrong") {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
		if !strings.HasPrefix(name, "missing") && !errors.Is(err, ErrConnect) {
			t.Errorf("%s: %v, want ErrConnect", name, err)
		}
	}

	good := base
	good.URL, good.Auth = srv.URL(), Auth{User: "bridge", Password: "s3cret"}
	b, err := New(good)
	if err != nil {
		t.Fatalf("right credentials: %v", err)
	}
	b.Close()
}

func TestNKeyAuth(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(t.TempDir(), "bridge.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startNATS(t, natsConf{Extra: "authorization { users: [ { nkey: " + pub + " } ] }\n"})
	b, err := New(Config{URL: srv.URL(), Host: "b", Imports: []string{"a/imu"}, Bus: testBus(t), Auth: Auth{NKeyFile: seedFile}})
	if err != nil {
		t.Fatalf("NKey: %v", err)
	}
	b.Close()

	other, _ := nkeys.CreateUser()
	otherSeed, _ := other.Seed()
	if err := os.WriteFile(seedFile, otherSeed, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{URL: srv.URL(), Host: "b", Imports: []string{"a/imu"}, Bus: testBus(t), Auth: Auth{NKeyFile: seedFile}}); !errors.Is(err, ErrConnect) {
		t.Errorf("unknown NKey: %v, want ErrConnect", err)
	}
}
