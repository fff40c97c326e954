package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/credentials"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/cli"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/devstate"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/ntcip"
)

const ntcipSynopsis = "--config FILE [flags]"

const ntcipDescription = `
Watches signal-control's plans (WatchPlans) and writes each configured intersection's plan to its field
controller as NTCIP 1202 coordination objects over SNMP: the split table and the pattern of a slot reserved for
Greenwave, read back and compared, then systemPatternControl to call the pattern (docs/ntcip.md). A plan that
fails signal.Validate, does not match the controller's phase mapping or cannot be written in whole seconds is
refused and counted; a controller that cannot be reached or refuses a value stays on its own plan (nothing half
written is ever called), and the write is retried with back-off. Logs (JSON) go to stderr; --metrics-addr serves
Prometheus metrics on /metrics.

--signal-control defaults to a running greenwave dev's signal-control, else 127.0.0.1:9094; the --tls flags
secure that connection. --check loads and checks the configuration (topology, phase mappings, secrets) and exits.
Exit status: 0 when stopped with Ctrl-C (or --check passed), 1 on failure, 2 for a usage or configuration error.`

// runNTCIP is `greenwave ntcip`.
func runNTCIP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("ntcip", ntcipSynopsis, ntcipDescription, stderr)
	config := fs.String("config", "", "the adapter's configuration `FILE` (YAML, docs/ntcip.md)")
	control := fs.String("signal-control", "", "signal-control's gRPC `address`")
	metricsAddr := fs.String("metrics-addr", "", "serve /metrics and /healthz on this `address` (empty: none)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	check := fs.Bool("check", false, "check the configuration and exit")
	var tls cli.TLS
	fs.BoolVar(&tls.On, "tls", false, "connect to signal-control with TLS, verifying it with the system roots (implied by the other --tls-* flags)")
	fs.StringVar(&tls.CA, "tls-ca", "", "PEM CA bundle that verifies signal-control's certificate")
	fs.StringVar(&tls.Cert, "tls-cert", "", "PEM client certificate for mutual TLS (with --tls-key)")
	fs.StringVar(&tls.Key, "tls-key", "", "PEM private key of --tls-cert")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if *config == "" {
		return usagef("ntcip: --config is required")
	}
	lvl, err := zapcore.ParseLevel(*level)
	if err != nil {
		return usagef("ntcip: --log-level %q: %v", *level, err)
	}
	tls.On = tls.On || tls.CA != "" || tls.Cert != ""
	var creds credentials.TransportCredentials
	if tls.On {
		if creds, err = tls.Credentials(); err != nil {
			return usagef("ntcip: %v", err)
		}
	}
	loaded, err := ntcip.Load(*config, os.LookupEnv, os.ReadFile)
	if err != nil {
		return usagef("%v", err)
	}
	if *check {
		fmt.Fprintf(stdout, "%s: %d controllers, configuration valid\n", *config, len(loaded.Config.Controllers))
		return nil
	}
	if *control == "" {
		*control = devstate.Load(os.LookupEnv).GRPC("signalcontrol", "127.0.0.1:9094")
	}
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey, enc.EncodeTime = "ts", zapcore.ISO8601TimeEncoder
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(stderr), lvl)).With(zap.String("service", "ntcip"))
	defer func() { _ = log.Sync() }()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := ntcip.NewMetrics(reg)

	g, gctx := errgroup.WithContext(ctx)
	if *metricsAddr != "" {
		lis, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			return fmt.Errorf("ntcip: listen on --metrics-addr: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		log.Info("serving metrics", zap.String("addr", lis.Addr().String()))
		g.Go(func() error {
			if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("metrics server: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	log.Info("watching plans", zap.String("signal_control", *control), zap.Int("controllers", len(loaded.Config.Controllers)))
	g.Go(func() error {
		err := ntcip.Run(gctx, loaded, ntcip.Options{SignalControl: *control, Credentials: creds, Logger: log, Metrics: metrics})
		if err == nil && ctx.Err() == nil {
			err = errors.New("ntcip: stopped")
		}
		return err
	})
	if err := g.Wait(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}
