package ctlcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/spf13/cobra"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/app"
)

// hzReport is one report of busctl hz.
type hzReport struct {
	RateHz  float64 `json:"rate_hz"`
	MinS    float64 `json:"min_s"`
	MaxS    float64 `json:"max_s"`
	StdDevS float64 `json:"std_dev_s"`
	Window  int     `json:"window"`
}

func hzCmd(b func() (bus.Options, error)) *cobra.Command {
	var o output
	var window int
	var count uint64
	var duration, wait time.Duration
	c := &cobra.Command{
		Use:   "hz TOPIC",
		Short: "Measure a topic's rate: mean, min/max and std dev of the interval",
		Long: `Prints, once a second, the topic's rate and the minimum, maximum and
standard deviation of the interval between samples, from their publish
times, over the last --window intervals. An interval across lost samples or
a publisher restart is left out.`,
		Example: "  busctl hz imu\n  busctl hz imu --window 100 --count 3 -o json",
		Args:    app.ExactArgs(1, "TOPIC"),
	}
	fs := c.Flags()
	fs.IntVar(&window, "window", 10000, "intervals the statistics cover")
	fs.Uint64Var(&count, "count", 0, "stop after this many reports (0: no limit)")
	app.DurationVar(fs, &duration, "duration", 0, false, "stop after this long (0: no limit)")
	app.DurationVar(fs, &wait, "wait-for-publisher", 0, true, "how long to wait for the publisher (0: fail at once; forever)")
	o.register(fs, "text", "json")
	c.RunE = func(c *cobra.Command, args []string) error {
		format, err := o.get()
		if err != nil {
			return err
		}
		if window < 1 {
			return app.Usagef("--window %d: want 1 or more", window)
		}
		opts, err := topicArg(c, args, b)
		if err != nil {
			return err
		}
		ctx, stop := app.SignalContext()
		defer stop()
		if duration > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, duration)
			defer cancel()
		}
		sub, err := bus.Subscribe(ctx, bus.SubscriberConfig{Options: opts, Topic: args[0], Untyped: true, WaitForPublisher: wait})
		if err != nil {
			if ctx.Err() != nil && !errors.Is(err, bus.ErrNoPublisher) {
				return nil
			}
			return err
		}
		defer sub.Close()
		return hz(ctx, sub, window, count, format, c.OutOrStdout())
	}
	return c
}

func hz(ctx context.Context, sub *bus.Subscriber, window int, count uint64, format string, w io.Writer) error {
	iv := make([]float64, 0, window) // intervals in seconds, a ring once full
	next, fresh := 0, 0
	var prev int64
	for reports := uint64(0); count == 0 || reports < count; {
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		for {
			s, err := sub.Next(tctx)
			if err != nil {
				cancel()
				if ctx.Err() != nil {
					return nil
				}
				if tctx.Err() == nil {
					return err
				}
				break
			}
			if prev != 0 && s.Lost == 0 && !s.Restarted {
				d := float64(s.PublishedAt-prev) / 1e9
				if len(iv) < window {
					iv = append(iv, d)
				} else {
					iv[next] = d
					next = (next + 1) % window
				}
				fresh++
			}
			prev = s.PublishedAt
		}
		reports++
		if fresh == 0 {
			if format == "json" {
				fmt.Fprintln(w, "{}")
			} else {
				fmt.Fprintln(w, "no new samples")
			}
			continue
		}
		fresh = 0
		r := stats(iv)
		if format == "json" {
			printJSONLine(w, r)
		} else {
			fmt.Fprintf(w, "average rate: %.3f Hz  min: %.6fs  max: %.6fs  std dev: %.6fs  window: %d\n", r.RateHz, r.MinS, r.MaxS, r.StdDevS, r.Window)
		}
	}
	return nil
}

func stats(iv []float64) hzReport {
	r := hzReport{Window: len(iv), MinS: math.Inf(1)}
	var sum float64
	for _, d := range iv {
		sum += d
		r.MinS = min(r.MinS, d)
		r.MaxS = max(r.MaxS, d)
	}
	mean := sum / float64(len(iv))
	var sq float64
	for _, d := range iv {
		sq += (d - mean) * (d - mean)
	}
	r.StdDevS = math.Sqrt(sq / float64(len(iv)))
	if mean > 0 {
		r.RateHz = 1 / mean
	}
	return r
}
