package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// MQTT at QoS 0 through a mosquitto broker that the harness starts on a
// free loopback port for the mechanism's rows and stops after them;
// sender and receiver use the Eclipse Paho Go client.

const mqttTopic = "ipcbench/samples"

func mqttMechanism(work string) mechanism {
	var addr string // the broker's, while it runs
	return mechanism{key: "mqtt", name: "MQTT QoS 0 (mosquitto broker, Paho Go client, TCP loopback)", stamp: "due, before Publish",
		direction: "two-way", fanout: "1:N", access: "broker: users, ACLs per topic, TLS", lossy: true, peer: true,
		daemon: func(work string) (func(), error) {
			a, stop, err := startMosquitto(work)
			addr = a
			return stop, err
		},
		setup: func(int) (*channel, error) { return setupMQTT(addr) },
	}
}

// startMosquitto runs a broker that listens on 127.0.0.1 only, with no
// persistence (nothing written outside work).
func startMosquitto(work string) (addr string, stop func(), err error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/mosquitto"); err != nil {
			return "", nil, errors.New("mosquitto not found: needs the Debian package mosquitto")
		}
	}
	// A free port: the kernel picks one, the broker takes it over.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n", port)
	path := filepath.Join(work, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "-c", path)
	cmd.Stderr = os.Stderr
	d, err := startDaemon(cmd)
	if err != nil {
		return "", nil, err
	}
	stop = func() {
		if !d.stop(5 * time.Second) {
			fmt.Fprintln(os.Stderr, "ipcbench: mosquitto did not stop on SIGTERM; killed it")
		}
		os.Remove(path)
	}
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(startTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr, stop, nil
		}
		if d.exited() || time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("mosquitto did not start listening on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mqttConnect(addr, id string) (mqtt.Client, error) {
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(startTimeout)
	c := mqtt.NewClient(o)
	if t := c.Connect(); !t.WaitTimeout(startTimeout) || t.Error() != nil {
		return nil, fmt.Errorf("mqtt connect to %s: %v", addr, t.Error())
	}
	return c, nil
}

func setupMQTT(addr string) (*channel, error) {
	if addr == "" {
		return nil, errors.New("no broker")
	}
	c, err := mqttConnect(addr, "ipcbench-pub-"+strconv.Itoa(os.Getpid()))
	if err != nil {
		return nil, err
	}
	return &channel{
		// Paho keeps the payload until its writer goroutine sends it:
		// each message needs its own copy.
		send: func(b []byte) error {
			c.Publish(mqttTopic, 0, false, append([]byte(nil), b...))
			return nil
		},
		finish: func() {
			// QoS 0 may be dropped by a busy broker: repeat the end marker.
			end := make([]byte, headerSize)
			binary.LittleEndian.PutUint64(end, lastSeq)
			for range 20 {
				c.Publish(mqttTopic, 0, false, end)
				time.Sleep(5 * time.Millisecond)
			}
		},
		env:     []string{"MECH=mqtt", "MQTT_ADDR=" + addr},
		cleanup: func() { c.Disconnect(100) },
	}, nil
}

// mqttReceiver subscribes before it reports ready: the broker has the
// subscription once it acknowledged it.
func mqttReceiver(int) (func() ([]byte, error), error) {
	c, err := mqttConnect(os.Getenv("MQTT_ADDR"), "ipcbench-sub-"+strconv.Itoa(os.Getpid()))
	if err != nil {
		return nil, err
	}
	msgs := make(chan []byte, 1<<16)
	t := c.Subscribe(mqttTopic, 0, func(_ mqtt.Client, m mqtt.Message) { msgs <- m.Payload() })
	if !t.WaitTimeout(startTimeout) || t.Error() != nil {
		return nil, fmt.Errorf("mqtt subscribe: %v", t.Error())
	}
	return func() ([]byte, error) {
		select {
		case m := <-msgs:
			return m, nil
		case <-time.After(opTimeout):
			return nil, errors.New("no message within the timeout")
		}
	}, nil
}
