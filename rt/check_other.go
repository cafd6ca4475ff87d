//go:build !linux

package rt

func topology() string { return "" }

func checkGovernor() Item {
	return Item{Name: "CPU frequency governor", Value: "not available on this system", Verdict: Info}
}

func isolatedCPUs(advice string) Item {
	return Item{Name: "isolated CPUs", Value: "not available on this system", Verdict: Info}
}
