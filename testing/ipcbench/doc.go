// Command ipcbench compares inter-process communication mechanisms on this
// host, between two processes: one-way latency at a fixed rate, maximum
// throughput and CPU time per message, for several message sizes, with the
// aspects the classic comparison lists (direction, fan-out, access
// control). It is its own module so that the peers it measures (NATS,
// MQTT, ZeroMQ, and through cgo iceoryx, libzmq and Cyclone DDS) stay out
// of sensorbus's dependencies.
//
// The sender is this process (or, for iceoryx and Cyclone DDS, a child
// started for each row, IPCBENCH_ROLE=measure, since their libraries keep
// per-process state); each receiver is a copy of it started with
// IPCBENCH_ROLE=recv. Every message starts with its sequence number and
// the CLOCK_MONOTONIC time it was due (not when it was sent: a sender that
// falls behind its schedule is charged for it, so coordinated omission
// does not hide stalls); the receiver records now minus that time when
// its receive call returns with the message copied out. The "sender's
// stamp" column says where each row's stamp is taken relative to the
// mechanism's send call: the pacing loop spins to the due time and calls
// it straight away.
//
// Floors, in the same run: a cache line passed one way between two
// polling processes (the spinning ring reader's floor), and a futex wake
// of a sleeping process on the other CPU, stamped just before FUTEX_WAKE
// (the blocking reader's floor), pinned and not pinned. The run ends with
// the ratios of the ring readers' p50 to the floors and to iceoryx's
// subscribers.
//
// Mechanisms: anonymous pipe, named pipe, Unix stream and seqpacket
// sockets, TCP and UDP over loopback, POSIX and System V message queues,
// shared memory guarded by System V semaphores (the classic bounded
// buffer), queued real-time signals (notification only: the signal value
// carries the due time, there is no payload), a polled memory-mapped file,
// the sensorbus ring with spinning and futex readers (1 and 4 readers);
// and the peers: iceoryx 2.0 through its C binding (loan and publish;
// polling and waitset subscribers) under a RouDi the harness starts and
// stops, ZeroMQ publish/subscribe over ipc:// through libzmq and in pure
// Go (go-zeromq), Cyclone DDS through its C API (best-effort, keep-last;
// over UDP loopback and over its iceoryx shared memory), MQTT at QoS 0
// through a mosquitto broker the harness starts on loopback (Paho Go
// client), and NATS with an embedded server over loopback TCP. --only
// takes their short names. A mechanism that cannot carry a size (the
// kernel's default message queue limits stop at 8 KiB) shows the reason
// in its row.
//
// The cgo peers are compiled in by build tags (ipcbench_iceoryx,
// ipcbench_libzmq, ipcbench_cyclonedds) that peertags.sh prints when
// their Debian -dev packages are installed; make ipcbench and make
// ipcbench-short use it. A peer not built, or whose daemon cannot be
// found, is a row saying what is missing, and a failed peer or floor row
// makes the run exit 1. Daemons get SIGTERM when their rows are done, when
// the harness is interrupted, and (PR_SET_PDEATHSIG) when it dies; what a
// RouDi that had to be killed left in /dev/shm and /tmp is removed.
//
// Lossy mechanisms (UDP, the polled file, the ring, iceoryx, ZeroMQ,
// DDS, MQTT, NATS drop or overwrite rather than block a fast sender)
// count what the receiver missed in the lost column; CPU per message
// divides the CPU time of the sender and the receivers by the messages
// delivered (a broker's or RouDi's CPU time is not counted).
//
// --json writes {"results": [...], "ratios": [...]}; --md the table and
// the ratios.
package main
