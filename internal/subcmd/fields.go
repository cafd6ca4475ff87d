package subcmd

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/sensorbus/sensorbus/internal/app"
)

// A record is one sample as named values: the meta fields (topic, seq,
// published_ns, latency_ns, lost, restarted, type), then the sample's
// fields, objects both whole ("accel") and by leaf ("accel.x").
type record struct {
	keys   []string
	vals   map[string]json.RawMessage
	leaves []string // scalar keys in order: the default CSV columns
}

func (r *record) add(k string, v json.RawMessage, leaf bool) {
	if _, dup := r.vals[k]; !dup {
		r.keys = append(r.keys, k)
	}
	r.vals[k] = v
	if leaf {
		r.leaves = append(r.leaves, k)
	}
}

// flatten adds the fields of the JSON value v under prefix, in order.
func (r *record) flatten(prefix string, v json.RawMessage) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return
	}
	switch v[0] {
	case '{', '[':
		if prefix != "" {
			r.add(prefix, v, false)
			prefix += "."
		}
		dec := json.NewDecoder(bytes.NewReader(v))
		if _, err := dec.Token(); err != nil {
			return
		}
		for i := 0; dec.More(); i++ {
			key := strconv.Itoa(i)
			if v[0] == '{' {
				t, err := dec.Token()
				if err != nil {
					return
				}
				key, _ = t.(string)
			}
			var sub json.RawMessage
			if err := dec.Decode(&sub); err != nil {
				return
			}
			r.flatten(prefix+key, sub)
		}
	default:
		r.add(prefix, v, true)
	}
}

func newRecord(topic string, seq uint64, published, latency int64, lost uint64, restarted bool, typ string, fields json.RawMessage) *record {
	r := &record{vals: map[string]json.RawMessage{}}
	q := func(s string) json.RawMessage { b, _ := json.Marshal(s); return b }
	r.add("topic", q(topic), false)
	r.add("seq", json.RawMessage(strconv.FormatUint(seq, 10)), false)
	r.add("published_ns", json.RawMessage(strconv.FormatInt(published, 10)), false)
	r.add("latency_ns", json.RawMessage(strconv.FormatInt(latency, 10)), false)
	r.add("lost", json.RawMessage(strconv.FormatUint(lost, 10)), false)
	r.add("restarted", json.RawMessage(strconv.FormatBool(restarted)), false)
	r.add("type", q(typ), false)
	if fields != nil {
		r.flatten("", fields)
	}
	return r
}

// check returns a usage error for a wanted field the record lacks.
func (r *record) check(want []string, typ string) error {
	for _, k := range want {
		if _, ok := r.vals[k]; !ok {
			have := append([]string(nil), r.keys...)
			sort.Strings(have)
			return app.Usagef("--fields: %s has no field %q (fields: %s)", typ, k, strings.Join(have, ", "))
		}
	}
	return nil
}

// text renders a JSON value for text and CSV: strings unquoted.
func text(v json.RawMessage) string {
	var s string
	if len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

// writeJSON writes the wanted fields as one JSON object.
func (r *record) writeJSON(w io.Writer, want []string) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range want {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(r.vals[k])
	}
	b.WriteString("}\n")
	w.Write(b.Bytes())
}

// writeText writes the wanted fields as key=value pairs.
func (r *record) writeText(w io.Writer, want []string) {
	var b strings.Builder
	for i, k := range want {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", k, text(r.vals[k]))
	}
	b.WriteByte('\n')
	io.WriteString(w, b.String())
}

// csvOut writes records as CSV after a header line.
type csvOut struct {
	w    *csv.Writer
	cols []string
}

func (c *csvOut) write(r *record) {
	row := make([]string, len(c.cols))
	for i, k := range c.cols {
		row[i] = text(r.vals[k])
	}
	c.w.Write(row)
	c.w.Flush()
}
