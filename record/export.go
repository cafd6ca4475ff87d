package record

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/sensorbus/sensorbus/schema"
)

// ExportConfig describes an export.
type ExportConfig struct {
	// Files are read one after the other (the parts of a split
	// recording).
	Files []string

	// Format is "csv" or "jsonl".
	Format string

	// Topics, if set, are the topics to export; the default is every one.
	// CSV needs the exported topics to share one schema.
	Topics []string

	// Registry decodes the samples; nil means the built-in schemas. A
	// sample of a schema it does not know is exported in MessagePack's
	// generic JSON form (a tuple becomes an array).
	Registry *schema.Registry
}

// Export writes one row per sample: its topic, full ring index, log and
// publish times (Unix ns), the samples lost right before it, and its
// decoded fields. JSON lines carry the fields as an object under "data";
// CSV flattens them into columns named by their path ("accel.x"), in the
// order of the first sample. It returns the rows written.
func Export(w io.Writer, cfg ExportConfig) (uint64, error) {
	if len(cfg.Files) == 0 {
		return 0, errors.New("record: export: no files")
	}
	if cfg.Format != "csv" && cfg.Format != "jsonl" {
		return 0, fmt.Errorf("record: export: format %q: want csv or jsonl", cfg.Format)
	}
	if cfg.Registry == nil {
		reg, err := schema.NewRegistry()
		if err != nil {
			return 0, err
		}
		cfg.Registry = reg
	}
	want := map[string]bool{}
	for _, t := range cfg.Topics {
		want[t] = true
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	var cw *csv.Writer
	var columns []string
	var colIndex map[string]int
	schemaOf := ""
	var rows uint64
	found := map[string]bool{}
	for _, path := range cfg.Files {
		r, err := OpenFile(path)
		if err != nil {
			return rows, err
		}
		err = func() error {
			defer r.Close()
			for {
				m, err := r.Next()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return err
				}
				ch := m.Channel
				if m.Marker != nil || len(want) > 0 && !want[ch.Topic] {
					continue
				}
				found[ch.Topic] = true
				fields, err := decodeJSON(cfg.Registry, ch, m.Data)
				if err != nil {
					return fmt.Errorf("record: export %s: topic %q sample %d: %w", path, ch.Topic, m.Index, err)
				}
				var lost uint64
				for _, g := range m.Gaps {
					lost += g.Lost
				}
				if cfg.Format == "jsonl" {
					fmt.Fprintf(bw, `{"topic":%s,"index":%d,"log_time_ns":%d,"publish_time_ns":%d,"lost_before":%d,"data":%s}`+"\n",
						strconv.Quote(ch.Topic), m.Index, m.LogTime, m.PublishTime, lost, fields)
					rows++
					continue
				}
				name := ch.SchemaName + "/" + ch.MessageEncoding
				flat, err := flatten(fields)
				if err != nil {
					return fmt.Errorf("record: export %s: topic %q sample %d: %w", path, ch.Topic, m.Index, err)
				}
				if cw == nil {
					schemaOf = name
					cw = csv.NewWriter(bw)
					columns = []string{"topic", "index", "log_time_ns", "publish_time_ns", "lost_before"}
					colIndex = map[string]int{}
					for _, kv := range flat {
						colIndex[kv[0]] = len(columns)
						columns = append(columns, kv[0])
					}
					if err := cw.Write(columns); err != nil {
						return err
					}
				} else if name != schemaOf {
					return fmt.Errorf("record: export: CSV of topics of two types (%s and %s): choose topics of one type", schemaOf, name)
				}
				row := make([]string, len(columns))
				row[0], row[1] = ch.Topic, strconv.FormatUint(m.Index, 10)
				row[2], row[3] = strconv.FormatUint(m.LogTime, 10), strconv.FormatUint(m.PublishTime, 10)
				row[4] = strconv.FormatUint(lost, 10)
				for _, kv := range flat {
					if i, ok := colIndex[kv[0]]; ok {
						row[i] = kv[1]
					}
				}
				if err := cw.Write(row); err != nil {
					return err
				}
				rows++
			}
		}()
		if err != nil {
			return rows, err
		}
	}
	for _, t := range cfg.Topics {
		if !found[t] {
			return rows, fmt.Errorf("record: export: topic %q is not in the recording", t)
		}
	}
	if cw != nil {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return rows, err
		}
	}
	return rows, bw.Flush()
}

// decodeJSON renders a sample as JSON.
func decodeJSON(reg *schema.Registry, ch *Channel, data []byte) ([]byte, error) {
	switch ch.MessageEncoding {
	case MessageEncodingJSON:
		if !json.Valid(data) {
			return nil, errors.New("not valid JSON")
		}
		return data, nil
	case MessageEncodingMsgpack:
		if s, ok := reg.ByFingerprint(ch.Fingerprint); ok && s.Name == ch.SchemaName {
			return s.ToJSON(data)
		}
		return schema.AnyToJSON(data)
	}
	// Untyped bytes.
	return json.Marshal(map[string]string{"bytes": base64.StdEncoding.EncodeToString(data)})
}

// flatten turns a JSON value into (path, value) pairs in document order:
// objects' keys and arrays' positions joined with '.', strings unquoted,
// other scalars as written.
func flatten(doc []byte) ([][2]string, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var out [][2]string
	var walk func(prefix string) error
	walk = func(prefix string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		join := func(k string) string {
			if prefix == "" {
				return k
			}
			return prefix + "." + k
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				for dec.More() {
					k, err := dec.Token()
					if err != nil {
						return err
					}
					key, _ := k.(string)
					if err := walk(join(key)); err != nil {
						return err
					}
				}
			case '[':
				for i := 0; dec.More(); i++ {
					if err := walk(join(strconv.Itoa(i))); err != nil {
						return err
					}
				}
			}
			_, err := dec.Token() // the closing delimiter
			return err
		case string:
			out = append(out, [2]string{prefix, v})
		case json.Number:
			out = append(out, [2]string{prefix, v.String()})
		case bool:
			out = append(out, [2]string{prefix, strconv.FormatBool(v)})
		case nil:
			out = append(out, [2]string{prefix, ""})
		}
		return nil
	}
	if err := walk(""); err != nil {
		return nil, err
	}
	if len(out) == 1 && out[0][0] == "" {
		out[0][0] = "value"
	}
	return out, nil
}
