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
// Work in progress: pipe, FIFO, Unix stream and seqpacket sockets, TCP,
// UDP, POSIX and System V message queues, a polled memory-mapped file and
// the sensorbus ring are measured; shared memory with a semaphore,
// signals, NATS and ZeroMQ are still to come (see the project's issue). A
// mechanism that cannot carry a size (the kernel's default message queue
// limits stop at 8 KiB) shows the reason in its row.
package main
