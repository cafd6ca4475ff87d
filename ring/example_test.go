package ring_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/sensorbus/sensorbus/ring"
)

func Example() {
	dir, err := os.MkdirTemp("/dev/shm", "example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	w, err := ring.Create(ring.Config{Dir: dir, Name: "temperature", SlotSize: 64, Slots: 8})
	if err != nil {
		log.Fatal(err)
	}
	// Readers may live in other processes; this one starts with the oldest
	// sample still in the ring.
	r, err := ring.Open(dir, "temperature", ring.ReaderConfig{Start: ring.FromOldest})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	for _, v := range []string{"21.5", "21.6", "21.8"} {
		w.Publish([]byte(v))
	}
	w.Close() // readers drain what is left, then get ErrWriterClosed

	for {
		s, err := r.Next(context.Background())
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Printf("sample %d: %s °C (lost before it: %d)\n", s.Index, s.Data, s.Lost)
	}
	// Output:
	// sample 0: 21.5 °C (lost before it: 0)
	// sample 1: 21.6 °C (lost before it: 0)
	// sample 2: 21.8 °C (lost before it: 0)
	// ring: writer closed
}

// A slow reader loses the oldest samples and is told how many.
func Example_lapped() {
	dir, _ := os.MkdirTemp("/dev/shm", "example-")
	defer os.RemoveAll(dir)
	w, _ := ring.Create(ring.Config{Dir: dir, Name: "fast", SlotSize: 8, Slots: 4})
	defer w.Close()
	r, _ := ring.Open(dir, "fast", ring.ReaderConfig{Wait: ring.WaitSpin})
	defer r.Close()

	for i := range 10 {
		w.Publish([]byte{byte(i)})
	}
	s, _, _ := r.TryNext()
	fmt.Printf("first sample read: %d, lost before it: %d\n", s.Index, s.Lost)
	// Output:
	// first sample read: 6, lost before it: 6
}
