package record

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// The official TypeScript MCAP readers (testing/mcapcheck) read every kind
// of recording the tests make. Without node the checks are skipped, except
// under CI (CI=true), where they must run.

type nodeChannel struct {
	ID              uint16            `json:"id"`
	Topic           string            `json:"topic"`
	MessageEncoding string            `json:"messageEncoding"`
	SchemaName      string            `json:"schemaName"`
	SchemaEncoding  string            `json:"schemaEncoding"`
	Metadata        map[string]string `json:"metadata"`
	Messages        uint64            `json:"messages"`
	FirstLogTime    string            `json:"firstLogTime"`
	LastLogTime     string            `json:"lastLogTime"`
}

type nodeRead struct {
	Messages   uint64        `json:"messages"`
	Channels   []nodeChannel `json:"channels"`
	Footer     bool          `json:"footer"`
	Chunks     int           `json:"chunks"`
	Error      string        `json:"error"`
	Statistics *struct {
		MessageCount string `json:"messageCount"`
		ChannelCount int    `json:"channelCount"`
	} `json:"statistics"`
}

type nodeResult struct {
	File    string    `json:"file"`
	Stream  nodeRead  `json:"stream"`
	Indexed *nodeRead `json:"indexed"`
}

var npmOnce sync.Once

// nodeCheck runs the TypeScript readers on files.
func nodeCheck(t *testing.T, files ...string) []nodeResult {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is needed under CI to check recordings with the official MCAP readers")
		}
		t.Skip("node not installed: recordings not checked with the TypeScript MCAP readers")
	}
	dir, err := filepath.Abs("../testing/mcapcheck")
	if err != nil {
		t.Fatal(err)
	}
	npmOnce.Do(func() {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "@mcap", "core")); err == nil {
			return
		}
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("npm ci: %v\n%s", err, out)
		}
	})
	cmd := exec.Command(node, append([]string{"check.mjs"}, files...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node check.mjs: %v\n%s\n%s", err, out, stderr.Bytes())
	}
	var res []nodeResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r nodeResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("node check.mjs printed %q: %v", sc.Text(), err)
		}
		res = append(res, r)
	}
	if len(res) != len(files) {
		t.Fatalf("node check.mjs reported %d files of %d", len(res), len(files))
	}
	return res
}

// checkWithNode compares what the TypeScript readers found in each file
// with what Inspect says of it.
func checkWithNode(t *testing.T, files ...string) {
	t.Helper()
	for _, res := range nodeCheck(t, files...) {
		sum, err := Inspect(res.File)
		if err != nil {
			t.Fatal(err)
		}
		compareRead(t, res.File+" (stream reader)", sum, res.Stream)
		if sum.Complete {
			if res.Indexed == nil {
				t.Errorf("%s: complete, but the TypeScript stream reader found no footer", res.File)
				continue
			}
			compareRead(t, res.File+" (indexed reader)", sum, *res.Indexed)
			if res.Indexed.Statistics == nil || res.Indexed.Statistics.MessageCount != strconv.FormatUint(sum.Messages+sum.Markers, 10) {
				t.Errorf("%s: statistics %+v, want %d messages", res.File, res.Indexed.Statistics, sum.Messages+sum.Markers)
			}
			if res.Indexed.Chunks != sum.Chunks {
				t.Errorf("%s: indexed reader found %d chunks, Inspect %d", res.File, res.Indexed.Chunks, sum.Chunks)
			}
		} else if res.Stream.Footer {
			t.Errorf("%s: the TypeScript reader found a footer Inspect did not", res.File)
		}
	}
}

func compareRead(t *testing.T, what string, sum Summary, got nodeRead) {
	t.Helper()
	if got.Error != "" {
		t.Errorf("%s: %s", what, got.Error)
	}
	if got.Messages != sum.Messages+sum.Markers {
		t.Errorf("%s: %d messages, Inspect %d samples + %d markers", what, got.Messages, sum.Messages, sum.Markers)
	}
	var chans []nodeChannel
	for _, c := range got.Channels {
		if c.Messages > 0 {
			chans = append(chans, c)
		}
	}
	if len(chans) != len(sum.Channels) {
		t.Errorf("%s: %d channels with messages, Inspect %d: %+v", what, len(chans), len(sum.Channels), got.Channels)
		return
	}
	for i, c := range chans {
		w := sum.Channels[i]
		if c.ID != w.ID || c.Topic != w.Topic || c.MessageEncoding != w.MessageEncoding || c.SchemaName != w.SchemaName ||
			c.SchemaEncoding != w.SchemaEncoding || c.Messages != w.Messages ||
			c.FirstLogTime != strconv.FormatUint(w.FirstLogTime, 10) || c.LastLogTime != strconv.FormatUint(w.LastLogTime, 10) {
			t.Errorf("%s: channel %+v, Inspect %+v", what, c, w)
		}
	}
}
