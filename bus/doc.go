// Package bus is what applications use: named topics on a bus, found
// without a central daemon, attached to safely, and cleaned up after
// crashes.
//
// A publisher owns a topic: a ring in /dev/shm (package ring), typed by
// package schema, and a SOCK_SEQPACKET control socket in the bus directory.
// A subscriber connects to the socket, says which schema it expects, is
// checked against the publisher's allow lists by its kernel-verified
// credentials (SO_PEERCRED), and receives the ring's file descriptors,
// which it maps read-only: it needs no permission on the segment's path.
// The connection stays open, so each side learns at once when the other
// is gone.
//
//	pub, err := bus.NewPublisher(bus.PublisherConfig{Topic: "imu", Schema: schema.IMUSchema})
//	w, _ := schema.NewWriter[schema.IMU](pub.Ring(), schema.IMUSchema)
//	w.Publish(&sample)
//
//	sub, err := bus.Subscribe(ctx, bus.SubscriberConfig{Topic: "imu", Schema: schema.IMUSchema, WaitForPublisher: 5 * time.Second})
//	for {
//		s, err := sub.Next(ctx) // s.Lost, s.Restarted tell what was missed
//		...
//	}
//
// When a publisher dies, its subscribers deliver what is left in the ring,
// wait for the topic to come back, re-attach to the new generation and
// report the restart and what was lost across it. The next publisher of a
// topic, or GC, removes a dead publisher's files; the bus lock (an flock
// on the bus directory, held for a few system calls by whoever creates or
// removes a topic's files) keeps GC from ever removing a live one's.
//
// # Concurrency
//
// A Publisher's Publish and Ring belong to one goroutine; its control
// socket is served by goroutines of its own. A Subscriber belongs to one
// goroutine, except Close, which ends a Next waiting in another. List,
// Info and GC are safe anywhere.
package bus
