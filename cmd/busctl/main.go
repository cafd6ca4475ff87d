// Command busctl lists a sensorbus bus's topics, describes one, removes
// what dead publishers left, and reports real-time readiness. See --help.
package main

import (
	"os"

	"github.com/sensorbus/sensorbus/internal/ctlcmd"
)

func main() { os.Exit(ctlcmd.Run(os.Args[1:], os.Stdout, os.Stderr)) }
