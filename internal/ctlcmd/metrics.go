package ctlcmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/spf13/cobra"

	"github.com/sensorbus/sensorbus/bus"
	"github.com/sensorbus/sensorbus/internal/app"
	"github.com/sensorbus/sensorbus/metrics"
)

const metricsLong = `Serves the bus's metrics to Prometheus on /metrics. Each scrape asks every
publisher on the bus, each for at most 250 ms (a publisher that does not
answer shows as hung): per topic sensorbus_up, sensorbus_topic_state,
sensorbus_published_total, sensorbus_bytes_published_total,
sensorbus_subscribers, sensorbus_publisher_restarts_total,
sensorbus_last_publish_timestamp_seconds; per subscriber name
sensorbus_subscriber_received_total, sensorbus_subscriber_lost_total,
sensorbus_subscriber_lag; and sensorbus_build_info. Runs until SIGINT,
SIGTERM or SIGHUP. --once prints one exposition on stdout instead.`

func metricsCmd(b func() (bus.Options, error)) *cobra.Command {
	var listen string
	var once bool
	c := &cobra.Command{
		Use:     "metrics",
		Short:   "Serve the bus's topics and subscribers as Prometheus metrics",
		Long:    metricsLong,
		Example: "  busctl metrics\n  busctl metrics --listen 0.0.0.0:9464\n  busctl metrics --once | grep sensorbus_subscriber_lost_total",
		Args:    app.ExactArgs(0),
	}
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:9464", "address to serve /metrics on (HOST:PORT)")
	c.Flags().BoolVar(&once, "once", false, "print the metrics once on stdout (Prometheus text format) and exit")
	c.RunE = func(c *cobra.Command, _ []string) error {
		opts, err := b()
		if err != nil {
			return err
		}
		if _, _, err := net.SplitHostPort(listen); err != nil {
			return app.Usagef("--listen %q: want HOST:PORT, e.g. 127.0.0.1:9464", listen)
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(metrics.NewBusCollector(opts), metrics.NewBuildInfoCollector(),
			collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		if once {
			return printMetrics(c, reg)
		}
		return serveMetrics(c, reg, listen)
	}
	return c
}

func printMetrics(c *cobra.Command, reg *prometheus.Registry) error {
	mfs, err := reg.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(c.OutOrStdout(), expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}

func serveMetrics(c *cobra.Command, reg *prometheus.Registry, listen string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, MaxRequestsInFlight: 4}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "sensorbus exporter: metrics at /metrics")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: time.Minute, IdleTimeout: time.Minute}
	ctx, stop := app.SignalContext()
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(c.ErrOrStderr(), "busctl: serving metrics on http://%s/metrics\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
