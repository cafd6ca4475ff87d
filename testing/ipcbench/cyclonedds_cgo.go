//go:build ipcbench_cyclonedds

package main

// Cyclone DDS through its C API: one keyless topic whose type is an array
// of octets of the message size (fixed size, so Cyclone may carry it in
// iceoryx shared memory), best-effort, keep-last, volatile. The receiver
// sleeps in a waitset until data is available and takes a loaned sample.
//
// The network row keeps Cyclone on loopback: unicast discovery to
// 127.0.0.1 only, no multicast, in a domain of its own per run. The
// shared-memory row enables Cyclone's iceoryx transport (it needs the
// RouDi the harness starts); the sender loans the sample from Cyclone,
// which then hands it over as an iceoryx chunk, and checks that the
// writer really uses shared memory.
//
// Each process ends through exit(3) after deleting its entities, so that
// a Cyclone that registered with RouDi deregisters.

/*
#cgo pkg-config: CycloneDDS
#include <stdlib.h>
#include <string.h>
#include <dds/dds.h>
#include <dds/version.h>
#include <dds/ddsc/dds_opcodes.h>
#include <dds/ddsc/dds_loan_api.h>

static int ipcb_dds_used;
static const char *ipcb_dds_version(void) { return DDS_VERSION; }

// ipcb_dds_descriptor describes a struct holding one octet array of n
// bytes.
static dds_topic_descriptor_t *ipcb_dds_descriptor(uint32_t n, const char *name) {
	uint32_t *ops = malloc(4 * sizeof *ops);
	ops[0] = DDS_OP_ADR | DDS_OP_TYPE_ARR | DDS_OP_SUBTYPE_1BY;
	ops[1] = 0; // offset in the struct
	ops[2] = n; // array length
	ops[3] = DDS_OP_RTS;
	dds_topic_descriptor_t d = {
		.m_size = n,
		.m_align = 1,
		.m_flagset = DDS_TOPIC_FIXED_SIZE,
		.m_nkeys = 0,
		.m_typename = strdup(name),
		.m_keys = NULL,
		.m_nops = 2,
		.m_ops = ops,
		.m_meta = "",
	};
	dds_topic_descriptor_t *p = malloc(sizeof *p);
	memcpy(p, &d, sizeof d);
	return p;
}

static dds_qos_t *ipcb_dds_qos(int32_t depth) {
	dds_qos_t *q = dds_create_qos();
	dds_qset_reliability(q, DDS_RELIABILITY_BEST_EFFORT, 0);
	dds_qset_history(q, DDS_HISTORY_KEEP_LAST, depth);
	dds_qset_durability(q, DDS_DURABILITY_VOLATILE);
	return q;
}

// ipcb_dds_open creates the domain, a participant and the topic, and a
// writer (reader == 0) or a reader with a waitset. It returns the writer
// or reader, or a negative dds_return_t.
static dds_entity_t ipcb_dds_open(uint32_t domain, const char *config, uint32_t n, const char *topic, int reader, dds_entity_t *ws) {
	ipcb_dds_used = 1;
	dds_entity_t dom = dds_create_domain(domain, config);
	if (dom < 0) {
		return dom;
	}
	dds_entity_t pp = dds_create_participant(domain, NULL, NULL);
	if (pp < 0) {
		return pp;
	}
	dds_entity_t tp = dds_create_topic(pp, ipcb_dds_descriptor(n, "ipcbench::Bytes"), topic, NULL, NULL);
	if (tp < 0) {
		return tp;
	}
	if (!reader) {
		dds_qos_t *q = ipcb_dds_qos(1);
		dds_entity_t w = dds_create_writer(pp, tp, q, NULL);
		dds_delete_qos(q);
		return w;
	}
	dds_qos_t *q = ipcb_dds_qos(256);
	dds_entity_t r = dds_create_reader(pp, tp, q, NULL);
	dds_delete_qos(q);
	if (r < 0) {
		return r;
	}
	dds_return_t rc = dds_set_status_mask(r, DDS_DATA_AVAILABLE_STATUS);
	if (rc < 0) {
		return rc;
	}
	*ws = dds_create_waitset(pp);
	if (*ws < 0) {
		return *ws;
	}
	rc = dds_waitset_attach(*ws, r, r);
	return rc < 0 ? rc : r;
}

static int ipcb_dds_matched(dds_entity_t e, int reader) {
	if (reader) {
		dds_subscription_matched_status_t st;
		return dds_get_subscription_matched_status(e, &st) == 0 && st.current_count > 0;
	}
	dds_publication_matched_status_t st;
	return dds_get_publication_matched_status(e, &st) == 0 && st.current_count > 0;
}

static dds_return_t ipcb_dds_write(dds_entity_t w, const void *b, uint32_t n, int loan) {
	if (!loan) {
		return dds_write(w, b);
	}
	void *s = NULL;
	dds_return_t rc = dds_loan_sample(w, &s);
	if (rc < 0) {
		return rc;
	}
	memcpy(s, b, n);
	return dds_write(w, s);
}

// ipcb_dds_take copies the next sample into buf: 1, 0 on a timeout, or a
// negative dds_return_t.
static int ipcb_dds_take(dds_entity_t r, dds_entity_t ws, void *buf, uint32_t n, int64_t timeout_ns) {
	for (;;) {
		void *samples[1] = {NULL};
		dds_sample_info_t info[1];
		dds_return_t k = dds_take(r, samples, info, 1, 1);
		if (k < 0) {
			return k;
		}
		if (k > 0) {
			int valid = info[0].valid_data;
			if (valid) {
				memcpy(buf, samples[0], n);
			}
			dds_return_loan(r, samples, k);
			if (valid) {
				return 1;
			}
			continue;
		}
		dds_return_t w = dds_waitset_wait(ws, NULL, 0, timeout_ns);
		if (w < 0) {
			return w;
		}
		if (w == 0) {
			return 0;
		}
	}
}

static void ipcb_dds_exit(int code) {
	if (!ipcb_dds_used) {
		return;
	}
	dds_delete(DDS_CYCLONEDDS_HANDLE);
	exit(code);
}
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
	"unsafe"
)

const cycloneMissing = ""

var cycloneVersion = " " + C.GoString(C.ipcb_dds_version())

// cycloneConfig keeps a domain on loopback, with or without iceoryx.
func cycloneConfig(shm bool) string {
	return `<CycloneDDS><Domain id="any">` +
		`<General><Interfaces><NetworkInterface address="127.0.0.1"/></Interfaces><AllowMulticast>false</AllowMulticast></General>` +
		`<Discovery><ParticipantIndex>auto</ParticipantIndex><Peers><Peer address="127.0.0.1"/></Peers></Discovery>` +
		`<SharedMemory><Enable>` + strconv.FormatBool(shm) + `</Enable><LogLevel>warn</LogLevel></SharedMemory>` +
		`</Domain></CycloneDDS>`
}

func ddsErr(what string, rc C.dds_return_t) error {
	return fmt.Errorf("cyclone dds %s: %s", what, C.GoString(C.dds_strretcode(rc)))
}

func cycloneOpen(domain int, shm bool, size int, topic string, reader bool) (e, ws C.dds_entity_t, err error) {
	cfg, tp := C.CString(cycloneConfig(shm)), C.CString(topic)
	defer C.free(unsafe.Pointer(cfg))
	defer C.free(unsafe.Pointer(tp))
	r := C.int(0)
	if reader {
		r = 1
	}
	e = C.ipcb_dds_open(C.uint32_t(domain), cfg, C.uint32_t(size), tp, r, &ws)
	if e < 0 {
		return 0, 0, ddsErr("setup", C.dds_return_t(e))
	}
	return e, ws, nil
}

func cycloneSetup(work string, shm bool) func(int) (*channel, error) {
	return func(size int) (*channel, error) {
		// A domain of the run's own (ports 7400 + 250 × domain), so that
		// two runs on one machine do not meet.
		domain := 1 + os.Getppid()%200
		topic := "ipcbench_" + strconv.Itoa(size)
		w, _, err := cycloneOpen(domain, shm, size, topic, false)
		if err != nil {
			return nil, err
		}
		loan := C.int(0)
		if shm {
			if !bool(C.dds_is_shared_memory_available(w)) || !bool(C.dds_is_loan_available(w)) {
				C.dds_delete(C.DDS_CYCLONEDDS_HANDLE)
				return nil, errors.New("cyclone dds: the writer does not use iceoryx shared memory")
			}
			loan = 1
		}
		send := func(b []byte) error {
			if rc := C.ipcb_dds_write(w, unsafe.Pointer(&b[0]), C.uint32_t(len(b)), loan); rc < 0 {
				return ddsErr("write", rc)
			}
			return nil
		}
		return &channel{
			ready: func(string) error {
				deadline := time.Now().Add(startTimeout)
				for C.ipcb_dds_matched(w, 0) == 0 {
					if time.Now().After(deadline) {
						return errors.New("cyclone dds: the reader was not discovered")
					}
					time.Sleep(time.Millisecond)
				}
				return nil
			},
			send: send,
			finish: func() {
				// Best effort: repeat the end marker.
				end := make([]byte, size)
				binary.LittleEndian.PutUint64(end, lastSeq)
				for range 20 {
					send(end)
					time.Sleep(5 * time.Millisecond)
				}
			},
			env:     []string{"MECH=cyclonedds", "DDS_DOMAIN=" + strconv.Itoa(domain), "DDS_SHM=" + strconv.FormatBool(shm), "DDS_TOPIC=" + topic},
			cleanup: func() { C.dds_delete(C.DDS_CYCLONEDDS_HANDLE) },
		}, nil
	}
}

func cycloneReceivers() map[string]receiverFunc {
	return map[string]receiverFunc{"cyclonedds": cycloneReceiver}
}

func cycloneReceiver(size int) (func() ([]byte, error), error) {
	domain, _ := strconv.Atoi(os.Getenv("DDS_DOMAIN"))
	shm := os.Getenv("DDS_SHM") == "true"
	r, ws, err := cycloneOpen(domain, shm, size, os.Getenv("DDS_TOPIC"), true)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(startTimeout)
	for C.ipcb_dds_matched(r, 1) == 0 {
		if time.Now().After(deadline) {
			return nil, errors.New("cyclone dds: the writer was not discovered")
		}
		time.Sleep(time.Millisecond)
	}
	if shm && !bool(C.dds_is_shared_memory_available(r)) {
		return nil, errors.New("cyclone dds: the reader does not use iceoryx shared memory")
	}
	buf := make([]byte, size)
	return func() ([]byte, error) {
		switch rc := C.ipcb_dds_take(r, ws, unsafe.Pointer(&buf[0]), C.uint32_t(size), C.int64_t(opTimeout)); {
		case rc == 1:
			return buf, nil
		case rc == 0:
			return nil, errors.New("cyclone dds: no message within the timeout")
		default:
			return nil, ddsErr("take", C.dds_return_t(rc))
		}
	}, nil
}

// cycloneExit ends the process through exit(3) after deleting every
// entity, if it used Cyclone, and returns otherwise.
func cycloneExit(code int) { C.ipcb_dds_exit(C.int(code)) }
