// Command subscriber receives a sensorbus topic and shows, logs or checks
// its samples. See --help, and the README for the exit codes.
package main

import (
	"os"

	"github.com/sensorbus/sensorbus/internal/subcmd"
)

func main() { os.Exit(subcmd.Run(os.Args[1:], os.Stdout, os.Stderr)) }
