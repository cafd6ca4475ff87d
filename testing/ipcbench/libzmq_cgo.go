//go:build ipcbench_libzmq

package main

// ZeroMQ's publish/subscribe through libzmq, the C library deployments
// use, over ipc:// (a Unix socket). The sender's socket is an XPUB, which
// sends as a PUB does and also hands over the subscriptions it receives:
// the sender starts once it has the receiver's (ZeroMQ's "slow joiner"
// would otherwise drop the first messages). Past the high-water mark a
// PUB drops new messages silently; the receiver finds the gaps.

/*
#cgo pkg-config: libzmq
#include <stdlib.h>
#include <zmq.h>

static int ipcb_zmq_set_int(void *s, int opt, int v) { return zmq_setsockopt(s, opt, &v, sizeof v); }
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
	"unsafe"
)

const libzmqMissing = ""

func libzmqVersion() string {
	var major, minor, patch C.int
	C.zmq_version(&major, &minor, &patch)
	return fmt.Sprintf(" %d.%d.%d", major, minor, patch)
}

func zmqErr(what string) error {
	return fmt.Errorf("libzmq %s: %s", what, C.GoString(C.zmq_strerror(C.zmq_errno())))
}

// zmqSocket opens a socket of type typ in a new context; close ends both.
func zmqSocket(typ C.int) (sock unsafe.Pointer, close func(), err error) {
	ctx := C.zmq_ctx_new()
	if ctx == nil {
		return nil, nil, zmqErr("zmq_ctx_new")
	}
	sock = C.zmq_socket(ctx, typ)
	if sock == nil {
		err := zmqErr("zmq_socket")
		C.zmq_ctx_term(ctx)
		return nil, nil, err
	}
	C.ipcb_zmq_set_int(sock, C.ZMQ_LINGER, 0)
	return sock, func() { C.zmq_close(sock); C.zmq_ctx_term(ctx) }, nil
}

func libzmqSetup(work string) func(int) (*channel, error) {
	return func(int) (*channel, error) {
		ep := "ipc://" + filepath.Join(work, "libzmq.sock")
		pub, closePub, err := zmqSocket(C.ZMQ_XPUB)
		if err != nil {
			return nil, err
		}
		// The same bound on the queue as the go-zeromq row.
		C.ipcb_zmq_set_int(pub, C.ZMQ_SNDHWM, zmqHWM)
		cep := C.CString(ep)
		defer C.free(unsafe.Pointer(cep))
		if C.zmq_bind(pub, cep) != 0 {
			err := zmqErr("zmq_bind " + ep)
			closePub()
			return nil, err
		}
		send := func(b []byte) error {
			if C.zmq_send(pub, unsafe.Pointer(&b[0]), C.size_t(len(b)), C.ZMQ_DONTWAIT) < 0 && C.zmq_errno() != C.EAGAIN {
				return zmqErr("zmq_send")
			}
			return nil
		}
		return &channel{
			ready: func(string) error {
				// The receiver subscribed before it said ready: wait for
				// the subscription message (0x01, then the prefix).
				C.ipcb_zmq_set_int(pub, C.ZMQ_RCVTIMEO, C.int(startTimeout/time.Millisecond))
				var m [64]byte
				if n := C.zmq_recv(pub, unsafe.Pointer(&m[0]), C.size_t(len(m)), 0); n < 1 || m[0] != 1 {
					return errors.New("libzmq: the subscription did not reach the publisher")
				}
				return nil
			},
			send: send,
			finish: func() {
				// The end marker may meet a full queue: repeat it.
				end := make([]byte, headerSize)
				binary.LittleEndian.PutUint64(end, lastSeq)
				for range 20 {
					send(end)
					time.Sleep(5 * time.Millisecond)
				}
			},
			env:     []string{"MECH=libzmq", "ZMQ_EP=" + ep},
			cleanup: closePub,
		}, nil
	}
}

func libzmqReceivers() map[string]receiverFunc {
	return map[string]receiverFunc{"libzmq": libzmqReceiver}
}

func libzmqReceiver(size int) (func() ([]byte, error), error) {
	sub, _, err := zmqSocket(C.ZMQ_SUB) // lives until the process ends
	if err != nil {
		return nil, err
	}
	C.ipcb_zmq_set_int(sub, C.ZMQ_RCVHWM, zmqHWM)
	C.ipcb_zmq_set_int(sub, C.ZMQ_RCVTIMEO, C.int(opTimeout/time.Millisecond))
	if C.zmq_setsockopt(sub, C.ZMQ_SUBSCRIBE, nil, 0) != 0 {
		return nil, zmqErr("subscribe")
	}
	cep := C.CString(os.Getenv("ZMQ_EP"))
	defer C.free(unsafe.Pointer(cep))
	if C.zmq_connect(sub, cep) != 0 {
		return nil, zmqErr("zmq_connect")
	}
	buf := make([]byte, size)
	return func() ([]byte, error) {
		n := C.zmq_recv(sub, unsafe.Pointer(&buf[0]), C.size_t(len(buf)), 0)
		if n < 0 {
			return nil, zmqErr("zmq_recv")
		}
		if int(n) > len(buf) {
			return nil, errors.New("libzmq: message of " + strconv.Itoa(int(n)) + " bytes, more than the size")
		}
		return buf[:n], nil
	}, nil
}
