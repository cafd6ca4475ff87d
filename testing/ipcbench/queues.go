package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The message queues and the memory-mapped file, through raw system calls
// (x/sys has no wrappers for them). Every blocking call has a timeout, so
// a receiver that failed cannot hang the sender.

const opTimeout = 5 * time.Second

// mqAttr is struct mq_attr.
type mqAttr struct {
	flags, maxmsg, msgsize, curmsgs int64
	_                               [4]int64
}

func mqOpen(name string, flags int, size int) (int, error) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return -1, err
	}
	attr := mqAttr{maxmsg: 10, msgsize: int64(size)}
	fd, _, e := unix.Syscall6(unix.SYS_MQ_OPEN, uintptr(unsafe.Pointer(p)), uintptr(flags), 0o600, uintptr(unsafe.Pointer(&attr)), 0, 0)
	if e != 0 {
		if e == unix.EINVAL || e == unix.EMSGSIZE {
			return -1, fmt.Errorf("mq_open with %d-byte messages: %v (limit in /proc/sys/fs/mqueue/msgsize_max)", size, e)
		}
		return -1, fmt.Errorf("mq_open: %v", e)
	}
	return int(fd), nil
}

func timeoutSpec() *unix.Timespec {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_REALTIME, &ts)
	t := unix.NsecToTimespec(ts.Nano() + int64(opTimeout))
	return &t
}

func setupPosixMQ(size int) (*channel, error) {
	name := "ipcbench-" + strconv.Itoa(os.Getpid())
	unix.Syscall(unix.SYS_MQ_UNLINK, uintptr(unsafe.Pointer(&append([]byte(name), 0)[0])), 0, 0)
	fd, err := mqOpen(name, unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, size)
	if err != nil {
		return nil, err
	}
	unlink := func() {
		b := append([]byte(name), 0)
		unix.Syscall(unix.SYS_MQ_UNLINK, uintptr(unsafe.Pointer(&b[0])), 0, 0)
	}
	return &channel{
		send: func(b []byte) error {
			_, _, e := unix.Syscall6(unix.SYS_MQ_TIMEDSEND, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0, uintptr(unsafe.Pointer(timeoutSpec())), 0)
			if e != 0 {
				return fmt.Errorf("mq_timedsend: %v", e)
			}
			return nil
		},
		finish:  func() {},
		env:     []string{"MECH=posix-mq", "MQ=" + name},
		cleanup: func() { unix.Close(fd); unlink() },
	}, nil
}

func posixMQReceiver(size int) (func() ([]byte, error), error) {
	fd, err := mqOpen(os.Getenv("MQ"), unix.O_RDONLY|unix.O_CLOEXEC, size)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	return func() ([]byte, error) {
		n, _, e := unix.Syscall6(unix.SYS_MQ_TIMEDRECEIVE, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, uintptr(unsafe.Pointer(timeoutSpec())), 0)
		if e != 0 {
			return nil, e
		}
		return buf[:n], nil
	}, nil
}

// System V message queue: the sender's msgsnd uses IPC_NOWAIT, retried
// until a deadline; the receiver blocks in msgrcv. A message is a long
// type followed by the text.
func setupSysVMQ(size int) (*channel, error) {
	id, _, e := unix.Syscall(unix.SYS_MSGGET, uintptr(unix.IPC_PRIVATE), uintptr(unix.IPC_CREAT|0o600), 0)
	if e != 0 {
		return nil, fmt.Errorf("msgget: %v", e)
	}
	msg := make([]byte, 8+size)
	binary.LittleEndian.PutUint64(msg, 1)
	return &channel{
		send: func(b []byte) error {
			copy(msg[8:], b)
			deadline := time.Now().Add(opTimeout)
			for {
				_, _, e := unix.Syscall6(unix.SYS_MSGSND, id, uintptr(unsafe.Pointer(&msg[0])), uintptr(len(b)), uintptr(unix.IPC_NOWAIT), 0, 0)
				if e == 0 {
					return nil
				}
				if e == unix.EINVAL && len(b) > 8192 {
					return fmt.Errorf("msgsnd of %d bytes: %v (limit in /proc/sys/kernel/msgmax)", len(b), e)
				}
				if e != unix.EAGAIN && e != unix.EINTR || time.Now().After(deadline) {
					return fmt.Errorf("msgsnd: %v", e)
				}
			}
		},
		finish:  func() {},
		env:     []string{"MECH=sysv-mq", "MSQID=" + strconv.Itoa(int(id))},
		cleanup: func() { unix.Syscall(unix.SYS_MSGCTL, id, uintptr(unix.IPC_RMID), 0) },
	}, nil
}

func sysvMQReceiver(size int) (func() ([]byte, error), error) {
	id, err := strconv.Atoi(os.Getenv("MSQID"))
	if err != nil {
		return nil, err
	}
	msg := make([]byte, 8+size)
	// A blocking receive, like the other mechanisms' receivers; the
	// sender kills its receivers if it fails, so this cannot hang a run.
	return func() ([]byte, error) {
		for {
			n, _, e := unix.Syscall6(unix.SYS_MSGRCV, uintptr(id), uintptr(unsafe.Pointer(&msg[0])), uintptr(size), 0, 0, 0)
			if e == 0 {
				return msg[8 : 8+n], nil
			}
			if e != unix.EINTR {
				return nil, e
			}
		}
	}, nil
}

// A memory-mapped file on disk: the sender writes the message after a
// sequence word it bumps; the receiver polls the word and copies. There is
// no back-pressure and no torn-read check beyond re-reading the word: the
// plain pattern the comparison lists, lossy under load.
func setupMmap(size int) (*channel, error) {
	dir, err := os.MkdirTemp("", "ipcbench-mmap-")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "map")
	mem, err := mapFile(path, 64+size, true)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	word := (*uint32)(unsafe.Pointer(&mem[0]))
	return &channel{
		send: func(b []byte) error {
			seq := atomic.LoadUint32(word)
			atomic.StoreUint32(word, seq+1) // odd: being written
			copy(mem[64:], b)
			atomic.StoreUint32(word, seq+2)
			return nil
		},
		finish:  func() {},
		env:     []string{"MECH=mmap", "MAP=" + path},
		cleanup: func() { syscall.Munmap(mem); os.RemoveAll(dir) },
	}, nil
}

func mmapReceiver(size int) (func() ([]byte, error), error) {
	f, err := os.Open(os.Getenv("MAP"))
	if err != nil {
		return nil, err
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, 64+size, syscall.PROT_READ, syscall.MAP_SHARED)
	f.Close()
	if err != nil {
		return nil, err
	}
	word := (*uint32)(unsafe.Pointer(&mem[0]))
	buf := make([]byte, size)
	last := uint32(0)
	var fence uint32
	return func() ([]byte, error) {
		deadline := time.Now().Add(opTimeout)
		for i := 0; ; i++ {
			s := atomic.LoadUint32(word)
			if s != last && s&1 == 0 {
				copy(buf, mem[64:])
				atomic.StoreUint32(&fence, 0) // orders the copy before the re-read (as the ring's readFence)
				if atomic.LoadUint32(word) == s {
					last = s
					return buf, nil
				}
			}
			if i&4095 == 0 && time.Now().After(deadline) {
				return nil, errors.New("no message within the timeout")
			}
		}
	}, nil
}
