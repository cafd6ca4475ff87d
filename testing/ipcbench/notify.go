package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Shared memory guarded by semaphores, the classic bounded buffer: a
// POSIX shared-memory file of shmSlots message slots and a System V
// semaphore set {free slots, full slots}. The sender takes a free slot,
// copies the message in and posts a full one; the receiver takes a full
// slot, copies the message out and posts a free one. Every semop is a
// system call, and the kernel's barriers order the copies.

const shmSlots = 64

const (
	semFree = 0
	semFull = 1
)

// sembuf is struct sembuf.
type sembuf struct {
	num uint16
	op  int16
	flg int16
}

// semop adds op to semaphore num of set id, waiting at most opTimeout for
// it to allow that.
func semop(id uintptr, num uint16, op int16) error {
	b := sembuf{num: num, op: op}
	ts := unix.NsecToTimespec(int64(opTimeout))
	for {
		_, _, e := unix.Syscall6(unix.SYS_SEMTIMEDOP, id, uintptr(unsafe.Pointer(&b)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0)
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return errors.New("semaphore: no progress within the timeout")
		default:
			return fmt.Errorf("semtimedop: %v", e)
		}
	}
}

func setupShmSem(work string) func(size int) (*channel, error) {
	return func(size int) (*channel, error) {
		path := filepath.Join(work, "shm-sem")
		mem, err := mapFile(path, shmSlots*size, true)
		if err != nil {
			return nil, err
		}
		id, _, e := unix.Syscall(unix.SYS_SEMGET, uintptr(unix.IPC_PRIVATE), 2, uintptr(unix.IPC_CREAT|0o600))
		if e != 0 {
			unix.Munmap(mem)
			return nil, fmt.Errorf("semget: %v", e)
		}
		cleanup := func() {
			unix.Syscall(unix.SYS_SEMCTL, id, 0, uintptr(unix.IPC_RMID))
			unix.Munmap(mem)
			os.Remove(path)
		}
		// Both start at 0 (a new set is zeroed); make every slot free.
		if err := semop(id, semFree, shmSlots); err != nil {
			cleanup()
			return nil, err
		}
		next := 0
		return &channel{
			send: func(b []byte) error {
				if err := semop(id, semFree, -1); err != nil {
					return err
				}
				copy(mem[next*size:], b)
				next = (next + 1) % shmSlots
				return semop(id, semFull, 1)
			},
			finish:  func() {},
			env:     []string{"MECH=shm-sem", "SHM=" + path, "SEMID=" + strconv.Itoa(int(id))},
			cleanup: cleanup,
		}, nil
	}
}

func shmSemReceiver(size int) (func() ([]byte, error), error) {
	id, err := strconv.Atoi(os.Getenv("SEMID"))
	if err != nil {
		return nil, err
	}
	mem, err := mapFile(os.Getenv("SHM"), shmSlots*size, false)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	next := 0
	return func() ([]byte, error) {
		if err := semop(uintptr(id), semFull, -1); err != nil {
			return nil, err
		}
		copy(buf, mem[next*size:(next+1)*size])
		next = (next + 1) % shmSlots
		return buf, semop(uintptr(id), semFree, 1)
	}, nil
}

// mapFile maps the file at path, creating it with n bytes if create.
func mapFile(path string, n int, create bool) ([]byte, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if create {
		if err := f.Truncate(int64(n)); err != nil {
			os.Remove(path)
			return nil, err
		}
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil && create {
		os.Remove(path)
	}
	return mem, err
}

// Signal-only notification: a real-time signal per message, queued by the
// kernel (so none is merged with another) and directed at one receiver
// thread, which keeps it blocked and takes it with sigtimedwait. The only
// payload is the signal's value, which carries the due time. Go's own
// signal delivery (os/signal) cannot be used: it merges repeated signals
// and drops the value.

const (
	sigData = unix.Signal(40) // SIGRTMIN+6 under glibc; the kernel's range starts at 32
	sigEnd  = unix.Signal(41)
)

// siQueue is si_code SI_QUEUE (-1), which a process may send to another;
// a variable so that its bits convert to uint32.
var siQueue int32 = -1

// siginfo offsets of a 64-bit kernel: signo, errno, code, padding, then
// the sender's pid and uid, then the value.
const (
	siSize     = 128
	siOffCode  = 8
	siOffPID   = 16
	siOffUID   = 20
	siOffValue = 24
)

func setupSignal(int) (*channel, error) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		return nil, errors.New("the signal mechanism carries a 64-bit time in the signal value: 64-bit hosts only")
	}
	var pid, tid int
	var info [siSize]byte
	queue := func(sig unix.Signal, v int64) error {
		binary.LittleEndian.PutUint32(info[0:], uint32(sig))
		binary.LittleEndian.PutUint32(info[siOffCode:], uint32(siQueue))
		binary.LittleEndian.PutUint32(info[siOffPID:], uint32(os.Getpid()))
		binary.LittleEndian.PutUint32(info[siOffUID:], uint32(os.Getuid()))
		binary.LittleEndian.PutUint64(info[siOffValue:], uint64(v))
		deadline := time.Now().Add(opTimeout)
		for {
			_, _, e := unix.Syscall6(unix.SYS_RT_TGSIGQUEUEINFO, uintptr(pid), uintptr(tid), uintptr(sig), uintptr(unsafe.Pointer(&info[0])), 0, 0)
			if e == 0 {
				return nil
			}
			// EAGAIN: the receiver's queue is at RLIMIT_SIGPENDING; wait for it.
			if e != unix.EAGAIN || time.Now().After(deadline) {
				return fmt.Errorf("rt_tgsigqueueinfo: %v", e)
			}
		}
	}
	return &channel{
		ready: func(s string) error {
			f := strings.Fields(s)
			if len(f) != 2 {
				return fmt.Errorf("signal receiver said %q, want its pid and thread id", s)
			}
			var err1, err2 error
			pid, err1 = strconv.Atoi(f[0])
			tid, err2 = strconv.Atoi(f[1])
			return errors.Join(err1, err2)
		},
		send: func(b []byte) error {
			return queue(sigData, int64(binary.LittleEndian.Uint64(b[8:])))
		},
		finish:  func() { queue(sigEnd, 0) },
		env:     []string{"MECH=signal"},
		cleanup: func() {},
	}, nil
}

// signalReceiver blocks the two signals in a locked thread and returns
// that thread's id for the sender, and a next function that must run on
// the same goroutine.
func signalReceiver() (string, func() ([]byte, error), error) {
	runtime.LockOSThread() // for the rest of the process: the signals are blocked in this thread only
	var set unix.Sigset_t
	for _, s := range []unix.Signal{sigData, sigEnd} {
		set.Val[(s-1)/64] |= 1 << ((s - 1) % 64)
	}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil); err != nil {
		return "", nil, err
	}
	msg := make([]byte, headerSize)
	var info [siSize]byte
	seq := uint64(0)
	next := func() ([]byte, error) {
		ts := unix.NsecToTimespec(int64(opTimeout))
		for {
			sig, _, e := unix.Syscall6(unix.SYS_RT_SIGTIMEDWAIT, uintptr(unsafe.Pointer(&set)), uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&ts)), unsafe.Sizeof(set.Val[0]), 0, 0)
			if e == unix.EINTR {
				continue // the runtime's preemption signal
			}
			if e != 0 {
				return nil, e
			}
			if syscall.Signal(sig) == syscall.Signal(sigEnd) {
				return nil, errors.New("end")
			}
			binary.LittleEndian.PutUint64(msg, seq)
			copy(msg[8:], info[siOffValue:siOffValue+8])
			seq++
			return msg, nil
		}
	}
	return fmt.Sprintf("%d %d", os.Getpid(), unix.Gettid()), next, nil
}
