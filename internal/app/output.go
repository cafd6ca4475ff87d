package app

import (
	"bufio"
	"io"
	"time"
)

// FlushEvery bounds how long a line may wait in the buffer off a terminal.
const FlushEvery = 100 * time.Millisecond

// Output buffers a program's sample lines: on a terminal each line is
// flushed at once; otherwise the buffer is flushed when full and when its
// oldest line is FlushEvery old. Its owner calls Line after each line and
// Due to learn when to call Flush while it waits for more. An Output
// belongs to one goroutine.
type Output struct {
	*bufio.Writer
	term  bool
	since int64 // clock.Mono of the oldest unflushed line; 0 when empty
}

// NewOutput returns the output to w.
func NewOutput(w io.Writer) *Output {
	return &Output{Writer: bufio.NewWriterSize(w, 64<<10), term: IsTerminal(w)}
}

// Line marks the end of a line written at now (clock.Mono).
func (o *Output) Line(now int64) error {
	if o.term {
		return o.Flush()
	}
	if o.since == 0 {
		o.since = now
	} else if now-o.since >= int64(FlushEvery) {
		return o.Flush()
	}
	return nil
}

// Due returns when (clock.Mono) the buffer must be flushed, or 0 if it
// holds nothing.
func (o *Output) Due() int64 {
	if o.since == 0 || o.Buffered() == 0 {
		return 0
	}
	return o.since + int64(FlushEvery)
}

// Flush writes out the buffer.
func (o *Output) Flush() error {
	o.since = 0
	return o.Writer.Flush()
}
