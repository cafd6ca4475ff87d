// Package ring is a single-writer, multi-reader ring of samples in POSIX
// shared memory: the data path of sensorbus.
//
// A Writer publishes each sample into the next slot of a ring in a file in
// /dev/shm, overwriting the oldest. It never waits for readers, never
// allocates, and makes no system call unless a reader is asleep waiting
// for it. Readers in any number of processes map the ring read-only and
// read it without locks. Each slot is a seqlock: a reader copies a sample
// out and keeps it only if the slot's sequence word did not change
// meanwhile, so a torn or half-written sample is never delivered, and a
// reader the writer overtook learns exactly how many samples it lost.
//
//	w, err := ring.Create(ring.Config{Name: "imu", SlotSize: 256, Slots: 4096})
//	...
//	w.Publish(sample)
//
//	r, err := ring.Open("", "imu", ring.ReaderConfig{})
//	...
//	for {
//		s, err := r.Next(ctx) // s.Data valid until the next call; s.Lost counts what was missed
//		...
//	}
//
// # Concurrency
//
// A Writer is owned by one goroutine. A Reader is owned by one goroutine.
// Any number of Readers, in any number of processes, may read one ring.
// One Writer per ring is enforced: a second Create of a live ring's name
// fails with ErrBusy.
//
// # Memory ordering
//
// Only 32-bit atomics touch shared memory (Go emulates 64-bit atomics with
// a process-local lock on ARM before v7). The seqlock's two fences, which
// plain sync/atomic does not give on arm64 or arm, are explained where
// they are defined (shm_unsafe.go).
//
// # Files and crashes
//
// A ring named N in directory D is two files: D/N, the ring, and
// D/N.wake, a small file blocking readers write to ask for a wake-up. Both
// are created unnamed (O_TMPFILE), initialised and locked before they get
// their names, so nobody ever sees a half-built ring. The writer holds an
// open-file-description lock on both for its whole life: readers tell a
// dead writer (lock gone, no closed flag) from a closed one (closed flag)
// and a hung one (heartbeat age). Close removes the files; after a crash
// the next writer of the same name, or RemoveStale, removes them — never a
// live writer's.
package ring
