package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// The systems a sensor team would pick instead of sensorbus. Those that
// need a C library are built only when it is installed (build tags, set
// by peertags.sh): a build without one gets a row that says which Debian
// packages are missing, and fails the run. Here: NATS, with the server
// embedded in the sender's process (its CPU time is the sender's), over
// loopback TCP; and ZeroMQ's publish/subscribe in pure Go over ipc://.

func peerMechanisms(work string) []mechanism {
	ms := iceoryxMechanisms(work)
	ms = append(ms, libzmqMechanism(work),
		mechanism{key: "zmq", name: "ZeroMQ PUB/SUB (go-zeromq, pure Go, ipc://)", stamp: "due, before Send",
			direction: "one-way", fanout: "1:N", access: "file mode; CURVE or PLAIN security", lossy: true, peer: true, setup: setupZMQ(work)})
	ms = append(ms, cycloneMechanisms(work)...)
	return append(ms, mqttMechanism(work),
		mechanism{key: "nats", name: "NATS (embedded server, TCP loopback)", stamp: "due, before Publish",
			direction: "two-way", fanout: "1:N", access: "users, tokens, NKeys, TLS; per-subject permissions", lossy: true, peer: true, setup: setupNATS})
}

// otherReceivers are the receivers of the floors and the peers, by the
// MECH their channel sets.
func otherReceivers() map[string]receiverFunc {
	m := map[string]receiverFunc{"floor": floorReceiver, "nats": natsReceiver, "zmq": zmqReceiver, "mqtt": mqttReceiver}
	maps.Copy(m, iceoryxReceivers())
	maps.Copy(m, libzmqReceivers())
	maps.Copy(m, cycloneReceivers())
	return m
}

// exit ends a sender or receiver process; a process that used iceoryx
// (directly or through Cyclone DDS) ends through exit(3) so that its C++
// destructors deregister it from RouDi (os.Exit runs none).
func exit(code int) {
	iceoryxExit(code)
	cycloneExit(code)
	os.Exit(code)
}

const natsSubject = "ipcbench"

func setupNATS(int) (*channel, error) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		return nil, err
	}
	go s.Start()
	if !s.ReadyForConnections(startTimeout) {
		s.Shutdown()
		return nil, errors.New("embedded nats-server did not start")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		s.Shutdown()
		return nil, err
	}
	return &channel{
		send: func(b []byte) error { return nc.Publish(natsSubject, b) },
		finish: func() {
			nc.Flush()
			end := make([]byte, headerSize)
			binary.LittleEndian.PutUint64(end, lastSeq)
			nc.Publish(natsSubject, end)
			nc.Flush()
		},
		env:     []string{"MECH=nats", "NATS_URL=" + s.ClientURL()},
		cleanup: func() { nc.Close(); s.Shutdown(); s.WaitForShutdown() },
	}, nil
}

// natsReceiver subscribes before it reports ready: the round trip of
// Flush makes sure the server has the subscription.
func natsReceiver(int) (func() ([]byte, error), error) {
	nc, err := nats.Connect(os.Getenv("NATS_URL"))
	if err != nil {
		return nil, err
	}
	sub, err := nc.SubscribeSync(natsSubject)
	if err != nil {
		return nil, err
	}
	// Let the client queue as much as the server may send it: a receiver
	// that falls behind then loses messages (counted) only at the server.
	sub.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil {
		return nil, err
	}
	return func() ([]byte, error) {
		for {
			m, err := sub.NextMsg(opTimeout)
			if errors.Is(err, nats.ErrSlowConsumer) {
				continue // dropped messages show as gaps in the sequence
			}
			if err != nil {
				return nil, err
			}
			return m.Data, nil
		}
	}, nil
}

// zmqHWM bounds the publisher's queue. go-zeromq's PUB queues without
// limit by default and drops new messages silently at the limit, so a
// throughput run measures what gets through, and the receiver counts the
// rest as lost.
const zmqHWM = 10_000

func setupZMQ(work string) func(int) (*channel, error) {
	return func(int) (*channel, error) {
		ep := "ipc://" + filepath.Join(work, "zmq.sock")
		pub := zmq4.NewPub(context.Background())
		if err := pub.SetOption(zmq4.OptionHWM, zmqHWM); err != nil {
			pub.Close()
			return nil, err
		}
		if err := pub.Listen(ep); err != nil {
			pub.Close()
			return nil, err
		}
		subscribed := func() error {
			// A subscription travels from the SUB to the PUB asynchronously
			// (the "slow joiner"): wait until the PUB has it.
			deadline := time.Now().Add(startTimeout)
			for len(pub.(zmq4.Topics).Topics()) == 0 {
				if time.Now().After(deadline) {
					return errors.New("zmq: the subscription did not reach the publisher")
				}
				time.Sleep(time.Millisecond)
			}
			return nil
		}
		return &channel{
			ready: func(string) error { return subscribed() },
			send:  func(b []byte) error { return pub.Send(zmq4.NewMsg(b)) },
			finish: func() {
				// The end marker may meet a full queue: repeat it.
				end := make([]byte, headerSize)
				binary.LittleEndian.PutUint64(end, lastSeq)
				for range 20 {
					pub.Send(zmq4.NewMsg(end))
					time.Sleep(5 * time.Millisecond)
				}
			},
			env:     []string{"MECH=zmq", "ZMQ_EP=" + ep},
			cleanup: func() { pub.Close() },
		}, nil
	}
}

func zmqReceiver(int) (func() ([]byte, error), error) {
	sub := zmq4.NewSub(context.Background())
	if err := sub.Dial(os.Getenv("ZMQ_EP")); err != nil {
		return nil, fmt.Errorf("zmq dial: %w", err)
	}
	if err := sub.SetOption(zmq4.OptionSubscribe, ""); err != nil {
		return nil, err
	}
	return func() ([]byte, error) {
		m, err := sub.Recv()
		if err != nil {
			return nil, err
		}
		return m.Bytes(), nil
	}, nil
}

// The peers that need a C library, described here whether or not this
// build has the library; the build-tagged files supply the version
// (" 2.0.3", or "" without the library), setup and receivers, or the
// reason the library is missing (iceoryxMissing, ...; "" when built).

func iceoryxMechanisms(work string) []mechanism {
	ms := []mechanism{
		{key: "iceoryx-poll", name: "iceoryx" + iceoryxVersion + " (C binding, polling subscriber)", stamp: "due, before loan",
			direction: "one-way", fanout: "1:N", access: "Unix groups per shared-memory segment (RouDi config)", lossy: true,
			peer: true, isolate: true, daemon: roudiDaemon, setup: iceoryxSetup("poll")},
		{key: "iceoryx-waitset", name: "iceoryx" + iceoryxVersion + " (C binding, waitset subscriber)", stamp: "due, before loan",
			direction: "one-way", fanout: "1:N", access: "Unix groups per shared-memory segment (RouDi config)", lossy: true,
			peer: true, isolate: true, daemon: roudiDaemon, setup: iceoryxSetup("waitset")},
		{key: "iceoryx-waitset-pinned", name: "iceoryx" + iceoryxVersion + " (C binding, waitset subscriber, both pinned as floor-futex)", stamp: "due, before loan",
			direction: "one-way", fanout: "1:N", access: "Unix groups per shared-memory segment (RouDi config)", lossy: true,
			peer: true, isolate: true, daemon: roudiDaemon, setup: pinnedSetup(iceoryxSetup("waitset"))},
	}
	for i := range ms {
		ms[i].unavailable = iceoryxMissing
	}
	return ms
}

func libzmqMechanism(work string) mechanism {
	return mechanism{key: "libzmq", name: "ZeroMQ PUB/SUB (libzmq" + libzmqVersion() + " through cgo, ipc://)", stamp: "due, before zmq_send",
		direction: "one-way", fanout: "1:N", access: "file mode; CURVE or PLAIN security", lossy: true, peer: true,
		setup: libzmqSetup(work), unavailable: libzmqMissing}
}

func cycloneMechanisms(work string) []mechanism {
	ms := []mechanism{
		{key: "cyclonedds", name: "Cyclone DDS" + cycloneVersion + " (C API, UDP loopback, waitset)", stamp: "due, before dds_write",
			direction: "one-way", fanout: "1:N", access: "DDS Security plugins (not configured)", lossy: true,
			peer: true, isolate: true, setup: cycloneSetup(work, false)},
		{key: "cyclonedds-shm", name: "Cyclone DDS" + cycloneVersion + " (C API, iceoryx shared memory, waitset)", stamp: "due, before dds_loan_sample",
			direction: "one-way", fanout: "1:N", access: "DDS Security plugins (not configured); RouDi segments", lossy: true,
			peer: true, isolate: true, daemon: roudiDaemon, setup: cycloneSetup(work, true)},
	}
	for i := range ms {
		ms[i].unavailable = cycloneMissing
	}
	return ms
}
