//go:build ipcbench_iceoryx

package main

// iceoryx 2.0 through its C binding: the sender loans a chunk in RouDi's
// shared memory, copies the message in and publishes it (the stamp is
// taken before the loan); the receiver takes the chunk, copies it out and
// releases it, either polling iox_sub_take_chunk or sleeping in a waitset
// until the subscriber has data. Publisher and subscriber keep the
// defaults that make it lossy like the ring: the subscriber's queue (256)
// discards the oldest chunk when full, and the publisher never waits.
//
// Each process has one iceoryx runtime, registered with RouDi, and the
// publisher, subscriber and waitset live in C memory (iceoryx keeps
// pointers to them).

/*
#cgo CFLAGS: -I/usr/include/iceoryx/v2.0.3 -O2
#cgo LDFLAGS: -liceoryx_binding_c
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "iceoryx_binding_c/log.h"
#include "iceoryx_binding_c/runtime.h"
#include "iceoryx_binding_c/publisher.h"
#include "iceoryx_binding_c/subscriber.h"
#include "iceoryx_binding_c/wait_set.h"

static iox_pub_storage_t ipcb_pub_storage;
static iox_pub_t ipcb_pub;
static iox_sub_storage_t ipcb_sub_storage;
static iox_sub_t ipcb_sub;
static iox_ws_storage_t ipcb_ws_storage;
static iox_ws_t ipcb_ws;
static int ipcb_runtime;

static int ipcb_sub_open, ipcb_sub_waitset;

static void ipcb_iox_runtime(const char *name) {
	if (!ipcb_runtime) {
		iox_set_loglevel(Iceoryx_LogLevel_Warn);
		iox_runtime_init(name);
		ipcb_runtime = 1;
	}
}

static void ipcb_iox_pub_open(const char *instance, const char *event) {
	iox_pub_options_t o;
	iox_pub_options_init(&o);
	o.historyCapacity = 0;
	o.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_DISCARD_OLDEST_DATA;
	ipcb_pub = iox_pub_init(&ipcb_pub_storage, "ipcbench", instance, event, &o);
}

static int ipcb_iox_pub_has_subscribers(void) { return iox_pub_has_subscribers(ipcb_pub); }

static void ipcb_iox_pub_close(void) { iox_pub_deinit(ipcb_pub); }

// ipcb_iox_send loans, fills and publishes one chunk; it returns the
// iox_AllocationResult.
static int ipcb_iox_send(const void *b, uint32_t n) {
	void *chunk;
	enum iox_AllocationResult r = iox_pub_loan_chunk(ipcb_pub, &chunk, n);
	if (r != AllocationResult_SUCCESS) {
		return r;
	}
	memcpy(chunk, b, n);
	iox_pub_publish_chunk(ipcb_pub, chunk);
	return AllocationResult_SUCCESS;
}

static void ipcb_iox_sub_open(const char *instance, const char *event, int waitset) {
	iox_sub_options_t o;
	iox_sub_options_init(&o);
	o.queueCapacity = 256;
	o.historyRequest = 0;
	o.queueFullPolicy = QueueFullPolicy_DISCARD_OLDEST_DATA;
	ipcb_sub = iox_sub_init(&ipcb_sub_storage, "ipcbench", instance, event, &o);
	ipcb_sub_open = 1;
	ipcb_sub_waitset = waitset;
	if (waitset) {
		ipcb_ws = iox_ws_init(&ipcb_ws_storage);
		iox_ws_attach_subscriber_state(ipcb_ws, ipcb_sub, SubscriberState_HAS_DATA, 0, NULL);
	}
}

static int ipcb_iox_subscribed(void) {
	return iox_sub_get_subscription_state(ipcb_sub) == SubscribeState_SUBSCRIBED;
}

static int64_t ipcb_now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// ipcb_iox_take copies the next chunk (n bytes) into buf and releases it.
// It returns 1, 0 on a timeout, or -1 - the iox_ChunkReceiveResult.
static int ipcb_iox_take(void *buf, uint32_t n, int waitset, int64_t timeout_ns) {
	int64_t deadline = ipcb_now() + timeout_ns;
	for (uint64_t i = 0;; i++) {
		const void *chunk;
		enum iox_ChunkReceiveResult r = iox_sub_take_chunk(ipcb_sub, &chunk);
		if (r == ChunkReceiveResult_SUCCESS) {
			memcpy(buf, chunk, n);
			iox_sub_release_chunk(ipcb_sub, chunk);
			return 1;
		}
		if (r != ChunkReceiveResult_NO_CHUNK_AVAILABLE) {
			return -1 - (int)r;
		}
		if (waitset) {
			iox_notification_info_t info[1];
			uint64_t missed = 0;
			struct timespec t = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
			if (iox_ws_timed_wait(ipcb_ws, t, info, 1, &missed) == 0) {
				return 0;
			}
			continue;
		}
		if ((i & 4095) == 0 && ipcb_now() > deadline) {
			return 0;
		}
	}
}

// ipcb_iox_exit ends a process that registered with RouDi through exit(3),
// whose destructors deregister it (Go's os.Exit runs none, and RouDi
// would then wait for the lost heartbeat and fail to stop it later).
static void ipcb_iox_exit(int code) {
	if (!ipcb_runtime) {
		return;
	}
	if (ipcb_sub_open) {
		if (ipcb_sub_waitset) {
			iox_ws_detach_subscriber_state(ipcb_ws, ipcb_sub, SubscriberState_HAS_DATA);
			iox_ws_deinit(ipcb_ws);
		}
		iox_sub_deinit(ipcb_sub);
	}
	exit(code);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
	"unsafe"
)

const (
	iceoryxVersion = " 2.0.3"
	iceoryxMissing = ""
)

// iceoryxInstance names the service of one run of the harness (the
// sender's parent).
func iceoryxInstance() string { return "run" + strconv.Itoa(os.Getppid()) }

func iceoryxSetup(mode string) func(int) (*channel, error) {
	return func(size int) (*channel, error) {
		cs := func(s string) *C.char { return C.CString(s) }
		name, inst, event := cs("ipcb-send-"+strconv.Itoa(os.Getpid())), cs(iceoryxInstance()), cs("s"+strconv.Itoa(size))
		defer C.free(unsafe.Pointer(name))
		defer C.free(unsafe.Pointer(inst))
		defer C.free(unsafe.Pointer(event))
		C.ipcb_iox_runtime(name)
		C.ipcb_iox_pub_open(inst, event)
		return &channel{
			// A chunk sent before the subscription reached the publisher
			// would be lost: wait for it.
			ready: func(string) error {
				deadline := time.Now().Add(startTimeout)
				for C.ipcb_iox_pub_has_subscribers() == 0 {
					if time.Now().After(deadline) {
						return errors.New("iceoryx: the subscriber did not connect")
					}
					time.Sleep(time.Millisecond)
				}
				return nil
			},
			send: func(b []byte) error {
				if r := C.ipcb_iox_send(unsafe.Pointer(&b[0]), C.uint32_t(len(b))); r != C.AllocationResult_SUCCESS {
					return fmt.Errorf("iceoryx: loan of %d bytes failed (iox_AllocationResult %d)", len(b), int(r))
				}
				return nil
			},
			finish:  func() {},
			env:     []string{"MECH=iceoryx", "IOX_MODE=" + mode, "IOX_INSTANCE=" + iceoryxInstance(), "IOX_EVENT=s" + strconv.Itoa(size)},
			cleanup: func() { C.ipcb_iox_pub_close() },
		}, nil
	}
}

func iceoryxReceivers() map[string]receiverFunc {
	return map[string]receiverFunc{"iceoryx": iceoryxReceiver}
}

func iceoryxReceiver(size int) (func() ([]byte, error), error) {
	waitset := C.int(0)
	if os.Getenv("IOX_MODE") == "waitset" {
		waitset = 1
	}
	name := C.CString("ipcb-recv-" + strconv.Itoa(os.Getpid()))
	inst := C.CString(os.Getenv("IOX_INSTANCE"))
	event := C.CString(os.Getenv("IOX_EVENT"))
	defer C.free(unsafe.Pointer(name))
	defer C.free(unsafe.Pointer(inst))
	defer C.free(unsafe.Pointer(event))
	C.ipcb_iox_runtime(name)
	C.ipcb_iox_sub_open(inst, event, waitset)
	deadline := time.Now().Add(startTimeout)
	for C.ipcb_iox_subscribed() == 0 {
		if time.Now().After(deadline) {
			return nil, errors.New("iceoryx: no subscription (is the publisher offering?)")
		}
		time.Sleep(time.Millisecond)
	}
	out := make([]byte, size) // the copy out of the chunk
	return func() ([]byte, error) {
		switch r := C.ipcb_iox_take(unsafe.Pointer(&out[0]), C.uint32_t(size), waitset, C.int64_t(opTimeout)); {
		case r == 1:
			return out, nil
		case r == 0:
			return nil, errors.New("iceoryx: no message within the timeout")
		default:
			return nil, fmt.Errorf("iceoryx: take failed (iox_ChunkReceiveResult %d)", -1-int(r))
		}
	}, nil
}

// iceoryxExit ends the process through exit(3) if it registered with
// RouDi, and returns otherwise.
func iceoryxExit(code int) { C.ipcb_iox_exit(C.int(code)) }
