package record

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestExport(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run.mcap")
	const n = 500
	recordSynth(t, RecordConfig{Bus: testBus(t), Output: out}, n)

	var jl bytes.Buffer
	rows, err := Export(&jl, ExportConfig{Files: []string{out}, Format: "jsonl"})
	if err != nil || rows != n {
		t.Fatalf("jsonl: %d rows, %v", rows, err)
	}
	lines := strings.Split(strings.TrimSpace(jl.String()), "\n")
	if len(lines) != n {
		t.Fatalf("%d lines", len(lines))
	}
	var row struct {
		Topic       string `json:"topic"`
		Index       uint64 `json:"index"`
		LogTime     uint64 `json:"log_time_ns"`
		PublishTime uint64 `json:"publish_time_ns"`
		Data        struct {
			Sensor uint32              `json:"sensor"`
			HasMag bool                `json:"has_mag"`
			Accel  struct{ Z float32 } `json:"accel"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(lines[n-1]), &row); err != nil {
		t.Fatal(err)
	}
	if row.Topic != "imu" || row.Index != n-1 || row.Data.Sensor != 1 || !row.Data.HasMag || row.Data.Accel.Z < 9 || row.LogTime < row.PublishTime {
		t.Fatalf("last row %s", lines[n-1])
	}

	var cb bytes.Buffer
	rows, err = Export(&cb, ExportConfig{Files: []string{out}, Format: "csv", Topics: []string{"imu"}})
	if err != nil || rows != n {
		t.Fatalf("csv: %d rows, %v", rows, err)
	}
	recs, err := csv.NewReader(&cb).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	head := strings.Join(recs[0], ",")
	if head != "topic,index,log_time_ns,publish_time_ns,lost_before,time,sensor,accel.x,accel.y,accel.z,gyro.x,gyro.y,gyro.z,mag.x,mag.y,mag.z,has_mag,temp" {
		t.Fatalf("header %s", head)
	}
	if len(recs) != n+1 || recs[n][1] != strconv.Itoa(n-1) {
		t.Fatalf("%d records, last %v", len(recs), recs[n])
	}
	if _, err := Export(&cb, ExportConfig{Files: []string{out}, Format: "xml"}); err == nil {
		t.Fatal("format xml accepted")
	}
	if _, err := Export(&cb, ExportConfig{Files: []string{out}, Format: "csv", Topics: []string{"gps"}}); err == nil || !strings.Contains(err.Error(), `"gps" is not in the recording`) {
		t.Fatalf("a topic not recorded: %v", err)
	}
}
