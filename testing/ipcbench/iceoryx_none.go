//go:build !ipcbench_iceoryx

package main

const (
	iceoryxVersion = ""
	iceoryxMissing = "not built: needs the Debian packages iceoryx and libiceoryx-binding-c-dev (make ipcbench builds with them when they are installed)"
)

func iceoryxSetup(string) func(int) (*channel, error) { return nil }
func iceoryxReceivers() map[string]receiverFunc       { return nil }
func iceoryxExit(int)                                 {}
