package ctlcmd

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/app"
	"github.com/sensorbus/sensorbus/schema"
)

// schemaDesc is what busctl schema prints.
type schemaDesc struct {
	Topic       string  `json:"topic"`
	Name        string  `json:"name"`
	Version     int     `json:"version,omitempty"`
	Fingerprint string  `json:"fingerprint"`
	Known       bool    `json:"known"` // this build has the type
	Encoding    string  `json:"encoding,omitempty"`
	Layout      string  `json:"layout,omitempty"`
	Fields      []field `json:"fields,omitempty"`
}

type field struct {
	Name string `json:"name"` // as in JSON; nested ones dotted
	Type string `json:"type"`
}

func schemaCmd(b func() (bus.Options, error)) *cobra.Command {
	var o output
	c := &cobra.Command{
		Use:     "schema TOPIC",
		Short:   "Describe a topic's type: fields, encoding and fingerprint",
		Example: "  busctl schema imu\n  busctl schema imu -o json",
		Args:    app.ExactArgs(1, "TOPIC"),
	}
	o.register(c.Flags(), "text", "json")
	c.RunE = func(c *cobra.Command, args []string) error {
		format, err := o.get()
		if err != nil {
			return err
		}
		opts, err := topicArg(c, args, b)
		if err != nil {
			return err
		}
		t, err := bus.Info(opts, args[0])
		if err != nil {
			return err
		}
		d := describeSchema(t)
		if format == "json" {
			return printJSON(c.OutOrStdout(), d)
		}
		return writeSchema(c.OutOrStdout(), d)
	}
	return c
}

func describeSchema(t bus.TopicInfo) schemaDesc {
	d := schemaDesc{Topic: t.Topic, Name: t.Schema, Fingerprint: t.Fingerprint}
	if t.Schema == "" {
		d.Name = "untyped"
		return d
	}
	reg, _ := schema.NewRegistry()
	s, ok := reg.Lookup(t.Schema)
	if !ok || fmt.Sprintf("%016x", s.Fingerprint) != t.Fingerprint {
		return d
	}
	d.Known, d.Version, d.Layout = true, s.Version, s.Layout
	d.Encoding = "MessagePack map, fields by name"
	if strings.HasPrefix(s.Layout, "tuple") {
		d.Encoding = "MessagePack array (msgp tuple form): fields by position, in this order"
	}
	d.Fields = fieldsOf("", reflect.TypeOf(s.New()).Elem(), nil)
	return d
}

// fieldsOf lists a struct's fields by their JSON names, nested ones dotted.
func fieldsOf(prefix string, t reflect.Type, out []field) []field {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if f.Type.Kind() == reflect.Struct {
			out = fieldsOf(prefix+name+".", f.Type, out)
			continue
		}
		typ := f.Type.Kind().String()
		switch {
		case f.Type == reflect.TypeFor[[]byte]():
			typ = "bytes (base64 in JSON)"
		case f.Type.Implements(reflect.TypeFor[json.Marshaler]()) || reflect.PointerTo(f.Type).Implements(reflect.TypeFor[interface{ UnmarshalText([]byte) error }]()):
			typ += " (" + f.Type.Name() + ", a name in JSON)"
		}
		out = append(out, field{prefix + name, typ})
	}
	return out
}

func writeSchema(w io.Writer, d schemaDesc) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "topic\t%s\n", d.Topic)
	fmt.Fprintf(tw, "type\t%s\n", d.Name)
	fmt.Fprintf(tw, "fingerprint\t%s\n", d.Fingerprint)
	if !d.Known {
		if d.Name != "untyped" {
			fmt.Fprintf(tw, "fields\tunknown: this build does not have the type\n")
		}
		return tw.Flush()
	}
	fmt.Fprintf(tw, "version\t%d\n", d.Version)
	fmt.Fprintf(tw, "encoding\t%s\n", d.Encoding)
	fmt.Fprintf(tw, "layout\t%s\n", d.Layout)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "fields (JSON names):")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, f := range d.Fields {
		fmt.Fprintf(tw, "  %s\t%s\n", f.Name, f.Type)
	}
	return tw.Flush()
}
