// Command soak runs publishers and subscribers of several topics for a
// long time under scheduled faults — kill -9 of publishers mid-burst and
// of subscribers, subscribers stopped and continued, garbage collection
// during restarts — and then checks what must hold: nothing corrupt,
// every sample of every publisher generation accounted for by every
// subscriber that lived through the run, quick re-attach after a
// publisher restart, nothing left in /dev/shm or the bus directory, no
// descriptor growth and bounded memory in long-lived processes. Any
// violation makes it exit 1.
//
//	go run ./testing/soak --duration 60s            # make soak-short (CI)
//	go run ./testing/soak --duration 6h --json soak.json
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	var cfg config
	flag.DurationVar(&cfg.duration, "duration", 60*time.Second, "how long to run the fault schedule")
	flag.DurationVar(&cfg.faultEvery, "fault-every", 3*time.Second, "time between faults")
	flag.Int64Var(&cfg.seed, "seed", 1, "seed of the fault schedule")
	flag.StringVar(&cfg.jsonPath, "json", "", "also write the summary as JSON to this file")
	flag.Float64Var(&cfg.fastRate, "fast-rate", 200_000, "rate of the fast topic (samples/s)")
	flag.Parse()
	if flag.NArg() > 0 || cfg.duration <= 0 || cfg.faultEvery <= 0 {
		fmt.Fprintln(os.Stderr, "soak: usage: soak [--duration D] [--fault-every D] [--seed N] [--json FILE]")
		os.Exit(2)
	}
	sum, err := run(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	sum.print(os.Stdout)
	if cfg.jsonPath != "" {
		if err := sum.writeJSON(cfg.jsonPath); err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			os.Exit(1)
		}
	}
	if len(sum.Violations) > 0 {
		os.Exit(1)
	}
}
