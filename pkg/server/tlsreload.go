package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// The metrics of certificate reloading.
const (
	// tlsReloadErrorsMetric counts changes of the TLS files that could not be loaded; the previous key pair and
	// CA bundle keep serving meanwhile.
	tlsReloadErrorsMetric = "greenwave_tls_reload_errors_total"
	// tlsReloadFailingMetric is 1 while the files on disk do not load: unlike the counter, it returns to 0 once
	// they are fixed, so an alert on it does not fire for a pair copied one file at a time.
	tlsReloadFailingMetric = "greenwave_tls_reload_failing"
	// tlsNotAfterMetric is the expiry of the certificate being served, for an alert well before it.
	tlsNotAfterMetric = "greenwave_tls_certificate_not_after_timestamp_seconds"
)

// tlsMetrics are the reloader's metrics; every field is nil when the server's registry accepts no metrics.
type tlsMetrics struct {
	errs     prometheus.Counter
	failing  prometheus.Gauge
	notAfter prometheus.Gauge
}

// certReloader lets certificates and client CA bundles be rotated without a restart: at every TLS handshake it
// stats TLS_CERT_FILE, TLS_KEY_FILE and TLS_CLIENT_CA_FILE (three stat calls, cheap next to a handshake) and
// rereads them when one changed (another file, modification time or size). A change that does not load — a
// half-written file, a key that does not match the certificate yet, garbage — keeps the previous files serving,
// is logged once and counted, and is retried when the files change again.
//
// It is consulted through tls.Config.GetConfigForClient, whose answer replaces the whole configuration of the
// handshake, so the configurations it hands out carry everything: key pair, minimum version, client CAs and
// client authentication, and the ALPN protocols of the listener ("h2" for gRPC, which grpc-go requires of
// every TLS connection; none for HTTP, which serves HTTP/1.1).
type certReloader struct {
	certFile, keyFile, caFile string
	log                       *zap.Logger
	metrics                   tlsMetrics

	mu sync.Mutex
	// seen are the files as last read, successfully or not: a failed change is retried only once they differ.
	seen []fileStamp
	// grpc and http are built from the last files that loaded.
	grpc, http *tls.Config
}

// newCertReloader loads the files once; unlike a later change, a problem now is an error (the server must not
// start without a certificate).
func newCertReloader(cfg Config, log *zap.Logger, m tlsMetrics) (*certReloader, error) {
	r := &certReloader{certFile: cfg.TLSCertFile, keyFile: cfg.TLSKeyFile, caFile: cfg.TLSClientCAFile, log: log, metrics: m}
	r.seen = r.stat()
	base, err := loadTLS(cfg)
	if err != nil {
		return nil, err
	}
	r.use(base)
	return r, nil
}

// use serves base from the next handshake on.
func (r *certReloader) use(base *tls.Config) {
	r.grpc, r.http = listenerConfigs(base)
	if r.metrics.failing != nil {
		r.metrics.failing.Set(0)
	}
	if leaf := base.Certificates[0].Leaf; leaf != nil && r.metrics.notAfter != nil {
		r.metrics.notAfter.Set(float64(leaf.NotAfter.Unix()))
	}
}

// listenerConfigs derives the gRPC and the HTTP listener's configurations from the loaded files.
func listenerConfigs(base *tls.Config) (grpcConfig, httpConfig *tls.Config) {
	grpcConfig = base.Clone()
	grpcConfig.NextProtos = []string{"h2"}
	return grpcConfig, base
}

// serverConfig returns the configuration a listener starts a handshake with: it only points each handshake at
// the reloader's current configuration.
func (r *certReloader) serverConfig(forGRPC bool) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			g, h := r.current()
			if forGRPC {
				return g, nil
			}
			return h, nil
		},
	}
}

// current rereads the files if they changed since they were last read and returns the configurations of the
// last files that loaded.
func (r *certReloader) current() (grpcConfig, httpConfig *tls.Config) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.stat()
	if sameStamps(now, r.seen) {
		return r.grpc, r.http
	}
	// Remember the files before reading them: a write that continues after the read changes them again and is
	// picked up at a later handshake.
	r.seen = now
	base, err := loadTLS(Config{TLSCertFile: r.certFile, TLSKeyFile: r.keyFile, TLSClientCAFile: r.caFile})
	if err != nil {
		r.log.Warn("TLS files changed but do not load; still serving the previous certificate and client CAs until they change again",
			zap.Error(err), zap.String("metric", tlsReloadErrorsMetric))
		if r.metrics.errs != nil {
			r.metrics.errs.Inc()
			r.metrics.failing.Set(1)
		}
		return r.grpc, r.http
	}
	r.use(base)
	fields := []zap.Field{zap.String("cert_file", r.certFile), zap.String("client_ca_file", r.caFile)}
	if leaf := base.Certificates[0].Leaf; leaf != nil {
		fields = append(fields, zap.String("subject", leaf.Subject.String()), zap.String("serial", leaf.SerialNumber.String()),
			zap.Time("not_after", leaf.NotAfter))
	}
	r.log.Info("reloaded TLS certificate and client CAs", fields...)
	return r.grpc, r.http
}

// fileStamp identifies one version of a file without reading it.
type fileStamp struct {
	info os.FileInfo // nil when stat failed
	err  string
}

func (r *certReloader) stat() []fileStamp {
	var out []fileStamp
	for _, path := range []string{r.certFile, r.keyFile, r.caFile} {
		if path == "" {
			continue
		}
		// os.Stat follows symbolic links, so a Kubernetes secret volume's swap of its ..data link is a change.
		fi, err := os.Stat(path)
		if err != nil {
			out = append(out, fileStamp{err: err.Error()})
			continue
		}
		out = append(out, fileStamp{info: fi})
	}
	return out
}

func sameStamps(a, b []fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.info == nil || y.info == nil {
			if x.info != y.info || x.err != y.err {
				return false
			}
			continue
		}
		// SameFile tells a file renamed into place (a new inode) from the old one even within one mtime tick.
		if !os.SameFile(x.info, y.info) || !x.info.ModTime().Equal(y.info.ModTime()) || x.info.Size() != y.info.Size() {
			return false
		}
	}
	return true
}

// newTLSMetrics registers the reloader's metrics on reg, or returns none when reg cannot register metrics (the
// failures are then only logged). A second server on the same registry shares the first one's metrics.
func newTLSMetrics(reg prometheus.Gatherer) (tlsMetrics, error) {
	registerer, ok := reg.(prometheus.Registerer)
	if !ok {
		return tlsMetrics{}, nil
	}
	var m tlsMetrics
	var err error
	if m.errs, err = register(registerer, prometheus.NewCounter(prometheus.CounterOpts{
		Name: tlsReloadErrorsMetric,
		Help: "Changes of TLS_CERT_FILE, TLS_KEY_FILE or TLS_CLIENT_CA_FILE that could not be loaded; the previous certificate and client CAs keep serving until the files change again.",
	})); err != nil {
		return tlsMetrics{}, err
	}
	if m.failing, err = register(registerer, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: tlsReloadFailingMetric,
		Help: "1 while the TLS files on disk do not load and the previous ones keep serving, 0 once the served certificate is the files' own.",
	})); err != nil {
		return tlsMetrics{}, err
	}
	if m.notAfter, err = register(registerer, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: tlsNotAfterMetric,
		Help: "Expiry (Unix seconds) of the TLS certificate the server presents.",
	})); err != nil {
		return tlsMetrics{}, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under its name.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	if err := reg.Register(c); err != nil {
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing, nil
			}
		}
		var zero T
		return zero, fmt.Errorf("register TLS metric: %w", err)
	}
	return c, nil
}

func loadTLS(cfg Config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS key pair: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if cfg.TLSClientCAFile != "" {
		pem, err := os.ReadFile(cfg.TLSClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("read TLS client CA: %w", err)
		}
		// The bundle may hold several CAs — the old and the new one while client certificates are rotated.
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS client CA %s holds no PEM certificate", cfg.TLSClientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}
