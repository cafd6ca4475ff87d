//go:build !ipcbench_cyclonedds

package main

const (
	cycloneVersion = ""
	cycloneMissing = "not built: needs the Debian package cyclonedds-dev (make ipcbench builds with it when it is installed)"
)

func cycloneSetup(string, bool) func(int) (*channel, error) { return nil }
func cycloneReceivers() map[string]receiverFunc             { return nil }
func cycloneExit(int)                                       {}
