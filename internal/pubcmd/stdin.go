package pubcmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sensorbus/sensorbus/schema"
)

// jsonLines reads one JSON object per line. A bad line, or one whose
// sample does not fit a slot, is reported on stderr with its number,
// counted and skipped; a line without "time" gets the time it was read.
// Lines are read by a goroutine, so a signal ends a wait for input.
type jsonLines struct {
	s        *schema.Schema
	stderr   io.Writer
	slotSize int
	maxLine  int // longer lines cannot fit a slot and are not held whole
	in       *bufio.Reader
	lines    chan line
	ctx      context.Context
	skipped  uint64
}

type line struct {
	n    int
	text []byte
	long bool // over maxLine: skipped unread
	read int64
	err  error
}

func newJSONLines(s *schema.Schema, stdin io.Reader, stderr io.Writer, slotSize int) *jsonLines {
	return &jsonLines{s: s, stderr: stderr, slotSize: slotSize, maxLine: 4*slotSize + 4096, in: bufio.NewReaderSize(stdin, 64<<10)}
}

// start begins reading; next returns false once ctx is done.
func (j *jsonLines) start(ctx context.Context) {
	j.ctx = ctx
	j.lines = make(chan line, 64)
	go j.read()
}

func (j *jsonLines) read() {
	defer close(j.lines)
	for n := 1; ; n++ {
		l := line{n: n}
		var buf []byte
		for {
			chunk, err := j.in.ReadSlice('\n')
			if !l.long {
				if len(buf)+len(chunk) > j.maxLine {
					l.long, buf = true, nil
				} else {
					buf = append(buf, chunk...)
				}
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err != nil && err != io.EOF {
				l.err = err
			}
			if len(chunk) == 0 && err != nil && !l.long && len(buf) == 0 {
				if l.err != nil {
					j.send(l)
				}
				return
			}
			l.text, l.read = buf, time.Now().UnixNano()
			if !j.send(l) || err != nil {
				return
			}
			break
		}
	}
}

func (j *jsonLines) send(l line) bool {
	select {
	case j.lines <- l:
		return true
	case <-j.ctx.Done():
		return false
	}
}

func (j *jsonLines) next(uint64) (schema.Message, bool, error) {
	if j.lines == nil {
		j.start(context.Background())
	}
	for {
		var l line
		var ok bool
		select {
		case l, ok = <-j.lines:
		case <-j.ctx.Done():
			return nil, false, nil
		}
		if !ok {
			if j.skipped > 0 {
				fmt.Fprintf(j.stderr, "%s: %d line(s) skipped\n", prog, j.skipped)
			}
			return nil, false, nil
		}
		if l.err != nil {
			return nil, false, fmt.Errorf("read stdin: %w", l.err)
		}
		if l.long {
			j.skip(l.n, fmt.Errorf("longer than %d bytes, too large for --slot-size %d", j.maxLine, j.slotSize))
			continue
		}
		text := bytes.TrimSpace(l.text)
		if len(text) == 0 {
			continue
		}
		m, err := j.s.FromJSON(text)
		if err != nil {
			j.skip(l.n, err)
			continue
		}
		if !hasTime(text) {
			setTime(m, l.read)
		}
		if n := m.Msgsize(); n > j.slotSize {
			if b, err := m.MarshalMsg(nil); err != nil || len(b) > j.slotSize {
				j.skip(l.n, fmt.Errorf("its sample of %d bytes does not fit --slot-size %d", len(b), j.slotSize))
				continue
			}
		}
		return m, true, nil
	}
}

func (j *jsonLines) skip(n int, err error) {
	j.skipped++
	fmt.Fprintf(j.stderr, "%s: stdin line %d skipped: %v\n", prog, n, err)
}

// hasTime reports whether a JSON object has a "time" key.
func hasTime(text []byte) bool {
	var t struct {
		Time *json.RawMessage `json:"time"`
	}
	return json.Unmarshal(text, &t) == nil && t.Time != nil
}

// setTime stamps a built-in message with t (Unix ns).
func setTime(m schema.Message, t int64) {
	switch v := m.(type) {
	case *schema.Scalar:
		v.Time = t
	case *schema.Vector3:
		v.Time = t
	case *schema.IMU:
		v.Time = t
	case *schema.GPSFix:
		v.Time = t
	case *schema.Battery:
		v.Time = t
	case *schema.Raw:
		v.Time = t
	}
}
