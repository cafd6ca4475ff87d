// Command ipcbench compares inter-process communication mechanisms on this
// host, between two processes: one-way latency at a fixed rate, maximum
// throughput and CPU time per message, for several message sizes, with the
// aspects the classic comparison lists (direction, fan-out, access
// control). It is its own module so that the peers it measures (NATS,
// ZeroMQ) stay out of sensorbus's dependencies.
//
// The sender is this process; each receiver is a copy of it started with
// IPCBENCH_ROLE set. Every message starts with its sequence number and the
// CLOCK_MONOTONIC time it was due (not when it was sent: a sender that
// falls behind its schedule is charged for it, so coordinated omission
// does not hide stalls); the receiver records now minus that time.
//
// Mechanisms: anonymous pipe, named pipe, Unix stream and seqpacket
// sockets, TCP and UDP over loopback, POSIX and System V message queues,
// shared memory guarded by System V semaphores (the classic bounded
// buffer), queued real-time signals (notification only: the signal value
// carries the due time, there is no payload), a polled memory-mapped file,
// the sensorbus ring with spinning and futex readers (1 and 4 readers),
// NATS with an embedded nats-server over loopback TCP, and ZeroMQ
// publish/subscribe in pure Go (go-zeromq/zmq4) over ipc://. --only takes
// their short names. A mechanism that cannot carry a size (the kernel's
// default message queue limits stop at 8 KiB) shows the reason in its row.
//
// Lossy mechanisms (UDP, the polled file, the ring, NATS and ZeroMQ drop
// or overwrite rather than block a fast sender) count what the receiver
// missed in the lost column; CPU per message divides the CPU time of the
// sender and the receivers by the messages delivered.
package main
