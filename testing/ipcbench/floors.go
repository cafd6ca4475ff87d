package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sensorbus/sensorbus/internal/clock"
)

// The two floors, measured in the same run as everything else so that
// the ratios compare like with like:
//
//   - a cache line passed one way between two processes: the sender
//     writes a sequence number and the due time into one 64-byte line of a
//     shared mapping, the receiver polls it. Nothing moves a message
//     between polling processes faster; it is the spinning ring reader's
//     floor, stamped as the ring rows are (the due time, before the store).
//   - a futex wake of a sleeping process on the other CPU: the receiver
//     sleeps in FUTEX_WAIT on a word of the same kind of line, pinned to one
//     CPU; the sender, pinned to the other, writes the line, stamped just
//     before FUTEX_WAKE, and wakes it. This is the blocking ring
//     reader's floor: the kernel's cost of waking a sleeper elsewhere.
//     A second row leaves both unpinned, as the ring rows are (with the
//     sender spinning on one CPU of two, the sleeper wakes on the other
//     all the same, wherever the scheduler puts the two).
//
// Both move one line, not a message, and have no throughput run.

// futex operations, without FUTEX_PRIVATE_FLAG: the word is shared
// between processes.
const (
	futexWait = 0
	futexWake = 1
)

// floorLine is the layout of the shared line. The sender writes seq and
// stamp, then bumps gen (an atomic store: on amd64 every store is
// ordered after the ones before it; on arm64 Go's atomic store is a
// release); the receiver loads gen (acquire) and then reads seq and stamp,
// which the sender does not touch again until the next message, one
// interval (100 µs at 10k/s) later.
type floorLine struct {
	gen   uint32 // futex word; changes once per message
	_     uint32
	seq   uint64
	stamp int64 // CLOCK_MONOTONIC ns
	_     [40]byte
}

func floorMechanisms(work string) []mechanism {
	return []mechanism{
		{key: "floor-cacheline", name: "floor: cache line, polled (2 processes)", stamp: "due, before the store",
			direction: "one-way", fanout: "1:N", access: "file mode", floor: true, noPayload: true, latencyOnly: true,
			sizeLabel: "1 line", setup: floorSetup(work, false, false)},
		{key: "floor-futex", name: "floor: futex wake of a sleeper on the other CPU (both pinned)", stamp: "just before FUTEX_WAKE",
			direction: "one-way", fanout: "1:N", access: "file mode", floor: true, noPayload: true, latencyOnly: true,
			sizeLabel: "1 line", setup: floorSetup(work, true, true)},
		{key: "floor-futex-unpinned", name: "floor: futex wake of a sleeper, not pinned (as the ring rows)", stamp: "just before FUTEX_WAKE",
			direction: "one-way", fanout: "1:N", access: "file mode", floor: true, noPayload: true, latencyOnly: true,
			sizeLabel: "1 line", setup: floorSetup(work, true, false)},
	}
}

func floorSetup(work string, futex, pin bool) func(int) (*channel, error) {
	return func(int) (*channel, error) {
		path := filepath.Join(work, "floor")
		os.Remove(path)
		mem, err := mapFile(path, 4096, true)
		if err != nil {
			return nil, err
		}
		line := (*floorLine)(unsafe.Pointer(&mem[0]))
		ch := &channel{
			finish:  func() {},
			env:     []string{"MECH=floor", "FLOOR=" + path},
			cleanup: func() { unix.Munmap(mem); os.Remove(path) },
		}
		if !futex {
			ch.send = func(b []byte) error {
				line.seq = binary.LittleEndian.Uint64(b)
				line.stamp = int64(binary.LittleEndian.Uint64(b[8:]))
				atomic.AddUint32(&line.gen, 1) // publishes seq and stamp
				return nil
			}
			return ch, nil
		}
		cpus, err := twoCPUs()
		if err != nil {
			ch.cleanup()
			return nil, err
		}
		ch.env = append(ch.env, "FLOOR_FUTEX=1")
		if pin {
			ch.pin, ch.senderCPU = true, cpus[0]
			ch.env = append(ch.env, "PIN_CPU="+strconv.Itoa(cpus[1]))
		}
		ch.send = func(b []byte) error {
			line.seq = binary.LittleEndian.Uint64(b)
			line.stamp = clock.Mono()
			atomic.AddUint32(&line.gen, 1)
			_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(&line.gen)), futexWake, 1, 0, 0, 0)
			if e != 0 {
				return fmt.Errorf("futex wake: %v", e)
			}
			return nil
		}
		return ch, nil
	}
}

// floorReceiver polls the line, or sleeps on its futex word.
func floorReceiver(int) (func() ([]byte, error), error) {
	f, err := os.OpenFile(os.Getenv("FLOOR"), os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	f.Close()
	if err != nil {
		return nil, err
	}
	line := (*floorLine)(unsafe.Pointer(&mem[0]))
	futex := os.Getenv("FLOOR_FUTEX") != ""
	msg := make([]byte, headerSize)
	last := atomic.LoadUint32(&line.gen)
	ts := unix.NsecToTimespec(int64(opTimeout))
	return func() ([]byte, error) {
		deadline := clock.Mono() + int64(opTimeout)
		for i := 0; ; i++ {
			if g := atomic.LoadUint32(&line.gen); g != last {
				last = g
				binary.LittleEndian.PutUint64(msg, line.seq)
				binary.LittleEndian.PutUint64(msg[8:], uint64(line.stamp))
				return msg, nil
			}
			if futex {
				// Shared (not PRIVATE) futex: the word is in another
				// process's mapping too. EAGAIN: gen changed already;
				// EINTR: the runtime's preemption signal.
				_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(&line.gen)), futexWait, uintptr(last), uintptr(unsafe.Pointer(&ts)), 0, 0)
				if e != 0 && e != unix.EAGAIN && e != unix.EINTR && e != unix.ETIMEDOUT {
					return nil, fmt.Errorf("futex wait: %v", e)
				}
			}
			if i&4095 == 0 && clock.Mono() > deadline {
				return nil, errors.New("no message within the timeout")
			}
		}
	}, nil
}

// twoCPUs returns the first two CPUs this process may run on.
func twoCPUs() ([2]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return [2]int{}, err
	}
	var cpus []int
	for c := 0; c < 1024 && len(cpus) < 2; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) < 2 {
		return [2]int{}, errors.New("needs two CPUs to run on")
	}
	return [2]int{cpus[0], cpus[1]}, nil
}

// pinThread locks the calling goroutine to its thread and the thread to
// cpu; restore undoes both.
func pinThread(cpu int) (restore func(), err error) {
	runtime.LockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("pin to CPU %d: %w", cpu, err)
	}
	return func() {
		unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	}, nil
}
