//go:build !ipcbench_libzmq

package main

const libzmqMissing = "not built: needs the Debian package libzmq3-dev (make ipcbench builds with it when it is installed)"

func libzmqVersion() string                          { return "" }
func libzmqSetup(string) func(int) (*channel, error) { return nil }
func libzmqReceivers() map[string]receiverFunc       { return nil }
