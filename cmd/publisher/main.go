// Command publisher puts sensor samples on a sensorbus topic. See
// --help, and the README for the exit codes.
package main

import (
	"os"

	"github.com/sensorbus/sensorbus/internal/pubcmd"
)

func main() { os.Exit(pubcmd.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
