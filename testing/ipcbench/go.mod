module github.com/sensorbus/sensorbus/testing/ipcbench

go 1.26.0

require (
	github.com/HdrHistogram/hdrhistogram-go v1.4.0
	github.com/sensorbus/sensorbus v0.0.0
)

require golang.org/x/sys v0.49.0

replace github.com/sensorbus/sensorbus => ../..
