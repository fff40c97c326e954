// Package server runs a service's gRPC and HTTP endpoints: the service's own APIs, grpc.health.v1 (for "" and
// for each gRPC service's full name, following readiness) and reflection on gRPC; /healthz (alive), /readyz
// (ready to serve) and /metrics on HTTP, where a wrong method answers 405 as JSON with Allow. Listeners bind
// first — port 0 picks a free port, which tests and `greenwave dev` rely on — and shutdown is bounded.
package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
)

// Config is the serving configuration shared by every service.
type Config struct {
	GRPCAddr        string        `env:"GRPC_ADDR" default:"127.0.0.1:9090" help:"gRPC listen address (port 0 picks a free port)"`
	HTTPAddr        string        `env:"HTTP_ADDR" default:"127.0.0.1:8080" help:"HTTP listen address for health, readiness, metrics and HTTP APIs"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" default:"8s" help:"how long in-flight requests may take to finish on shutdown"`
	AddrFile        string        `env:"ADDR_FILE" default:"" help:"if set, the bound addresses are written to this file as JSON once listening"`
	TLSCertFile     string        `env:"TLS_CERT_FILE" default:"" help:"PEM certificate for TLS on gRPC and HTTP (TLS is off when empty); reread, with the key and client CA, at the first handshake after one of them changes"`
	TLSKeyFile      string        `env:"TLS_KEY_FILE" default:"" help:"PEM private key for TLS_CERT_FILE"`
	TLSClientCAFile string        `env:"TLS_CLIENT_CA_FILE" default:"" help:"PEM CA bundle (may hold several CAs, e.g. the old and the new one during a rotation); when set, clients must present a certificate one of them signed (mTLS)"`
	// The limits below bound what any client, authenticated or not, can hold: a connection that stalls is cut
	// off, so open files and memory cannot be exhausted by slow or idle clients.
	HTTPReadTimeout          time.Duration `env:"HTTP_READ_TIMEOUT" default:"30s" help:"longest time an HTTP client may take to send a whole request, body included; a stalled request is cut off"`
	HTTPWriteTimeout         time.Duration `env:"HTTP_WRITE_TIMEOUT" default:"60s" help:"longest time from the end of an HTTP request's headers to the end of its response (keep it above the slowest Kafka acknowledgement a request waits for)"`
	HTTPIdleTimeout          time.Duration `env:"HTTP_IDLE_TIMEOUT" default:"60s" help:"how long an idle keep-alive HTTP connection stays open"`
	GRPCMaxConcurrentStreams uint32        `env:"GRPC_MAX_CONCURRENT_STREAMS" default:"100" help:"gRPC streams (calls) one client connection may have open at once; further calls wait for one to end"`
}

// Validate reports configuration problems.
func (c Config) Validate() []string {
	var p []string
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		p = append(p, "TLS_CERT_FILE and TLS_KEY_FILE must be set together")
	}
	if c.TLSClientCAFile != "" && c.TLSCertFile == "" {
		p = append(p, "TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE")
	}
	if c.ShutdownTimeout <= 0 {
		p = append(p, "SHUTDOWN_TIMEOUT must be positive")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"HTTP_READ_TIMEOUT", c.HTTPReadTimeout}, {"HTTP_WRITE_TIMEOUT", c.HTTPWriteTimeout}, {"HTTP_IDLE_TIMEOUT", c.HTTPIdleTimeout}} {
		if d.v <= 0 {
			p = append(p, d.name+" must be positive")
		}
	}
	if c.GRPCMaxConcurrentStreams < 1 {
		p = append(p, "GRPC_MAX_CONCURRENT_STREAMS must be at least 1")
	}
	return p
}

// Defaults of the limits for a Config built in code without them (tests, embedded runs): the same values as the
// environment defaults.
const (
	defaultReadTimeout          = 30 * time.Second
	defaultWriteTimeout         = 60 * time.Second
	defaultIdleTimeout          = 60 * time.Second
	defaultMaxConcurrentStreams = 100
	// defaultMaxRecvMsgSize bounds a gRPC request of the services whose requests are small (filters, ids); the
	// collector passes its own COLLECTOR_MAX_MESSAGE_BYTES, which wins.
	defaultMaxRecvMsgSize = 8 << 20
	// readHeaderTimeout bounds the headers alone: a client that never finishes them is cut off early.
	readHeaderTimeout = 10 * time.Second
)

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Addrs are the addresses a server is bound to.
type Addrs struct {
	GRPC string `json:"grpc"`
	HTTP string `json:"http"`
}

// Server serves one service's endpoints.
type Server struct {
	cfg    Config
	log    *zap.Logger
	grpc   *grpc.Server
	mux    *http.ServeMux
	health *health.Server
	tls    *certReloader // nil without TLS

	mu         sync.Mutex
	checks     map[string]func() error
	onShutdown []func()
	addrs      Addrs
	bound      chan struct{}
}

// OnShutdown registers f to run when shutdown begins, before in-flight gRPC calls are drained. Long-lived
// streams (plan and prediction subscriptions) end there: a graceful stop waits for every open stream, so
// without it each shutdown with a subscriber connected would last the whole ShutdownTimeout and then cut the
// streams anyway.
func (s *Server) OnShutdown(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onShutdown = append(s.onShutdown, f)
}

// New builds a Server. reg is served on /metrics; when it is also a prometheus.Registerer (a service's
// registry is), the server registers its own metrics on it (greenwave_tls_*, with TLS). Extra gRPC
// options (interceptors) are appended. With TLS, the key pair and client CA bundle are reread at the first
// handshake after their files change, so certificates are rotated without a restart.
func New(cfg Config, log *zap.Logger, reg prometheus.Gatherer, opts ...grpc.ServerOption) (*Server, error) {
	s := &Server{cfg: cfg, log: log, mux: http.NewServeMux(), health: health.NewServer(), checks: map[string]func() error{}, bound: make(chan struct{})}
	if cfg.TLSCertFile != "" {
		m, err := newTLSMetrics(reg)
		if err != nil {
			return nil, err
		}
		r, err := newCertReloader(cfg, log, m)
		if err != nil {
			return nil, err
		}
		s.tls = r
		opts = append(opts, grpc.Creds(credentials.NewTLS(r.serverConfig(true))))
	}
	// Defaults first: a caller's option of the same kind comes later and wins.
	opts = append([]grpc.ServerOption{
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.MaxRecvMsgSize(defaultMaxRecvMsgSize),
		grpc.MaxConcurrentStreams(orDefault(cfg.GRPCMaxConcurrentStreams, defaultMaxConcurrentStreams)),
	}, opts...)
	s.grpc = grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)

	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if failing := s.failing(); len(failing) > 0 {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "failing": failing})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return s, nil
}

// GRPC returns the gRPC server to register services on (before Run).
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Handle registers an HTTP handler (before Run).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// AddReadiness registers a named check; the server is ready when every check returns nil.
func (s *Server) AddReadiness(name string, check func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = check
}

func (s *Server) failing() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for name, c := range s.checks {
		if err := c(); err != nil {
			out[name] = err.Error()
		}
	}
	return out
}

// Addrs returns the bound addresses once Run has bound its listeners (it blocks until then or ctx ends).
func (s *Server) Addrs(ctx context.Context) (Addrs, error) {
	select {
	case <-s.bound:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.addrs, nil
	case <-ctx.Done():
		return Addrs{}, ctx.Err()
	}
}

// Run binds, serves until ctx ends, then stops within ShutdownTimeout.
func (s *Server) Run(ctx context.Context) error {
	// grpc.health.v1 answers for the whole server ("") and for each of its gRPC services by full name
	// (greenwave.v1.CollectorService), as load balancers and grpc_health_probe -service ask; all follow readiness.
	healthNames := []string{""}
	for name := range s.grpc.GetServiceInfo() {
		if !strings.HasPrefix(name, "grpc.") { // health and reflection themselves
			healthNames = append(healthNames, name)
		}
	}
	sort.Strings(healthNames)
	for _, name := range healthNames {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	var lc net.ListenConfig
	gl, err := lc.Listen(ctx, "tcp", s.cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen gRPC on %s: %w", s.cfg.GRPCAddr, err)
	}
	hl, err := lc.Listen(ctx, "tcp", s.cfg.HTTPAddr)
	if err != nil {
		gl.Close()
		return fmt.Errorf("listen HTTP on %s: %w", s.cfg.HTTPAddr, err)
	}
	if s.tls != nil {
		hl = tls.NewListener(hl, s.tls.serverConfig(false))
	}
	s.mu.Lock()
	s.addrs = Addrs{GRPC: gl.Addr().String(), HTTP: hl.Addr().String()}
	s.mu.Unlock()
	close(s.bound)
	if s.cfg.AddrFile != "" {
		if err := writeAddrFile(s.cfg.AddrFile, s.addrs); err != nil {
			gl.Close()
			hl.Close()
			return err
		}
	}
	s.log.Info("serving", zap.String("grpc", s.addrs.GRPC), zap.String("http", s.addrs.HTTP), zap.Bool("tls", s.tls != nil))

	read := orDefault(s.cfg.HTTPReadTimeout, defaultReadTimeout)
	hs := &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: min(readHeaderTimeout, read),
		ReadTimeout:       read,
		WriteTimeout:      orDefault(s.cfg.HTTPWriteTimeout, defaultWriteTimeout),
		IdleTimeout:       orDefault(s.cfg.HTTPIdleTimeout, defaultIdleTimeout),
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := s.grpc.Serve(gl); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("serve gRPC: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := hs.Serve(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve HTTP: %w", err)
		}
		return nil
	})
	g.Go(func() error { // mirror readiness into grpc.health.v1
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		last := healthpb.HealthCheckResponse_NOT_SERVING
		for {
			status := healthpb.HealthCheckResponse_SERVING
			if len(s.failing()) > 0 {
				status = healthpb.HealthCheckResponse_NOT_SERVING
			}
			if status != last {
				for _, name := range healthNames {
					s.health.SetServingStatus(name, status)
				}
				last = status
			}
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	g.Go(func() error {
		<-gctx.Done()
		s.health.Shutdown()
		s.mu.Lock()
		hooks := slices.Clone(s.onShutdown)
		s.mu.Unlock()
		for _, f := range hooks {
			f()
		}
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		stopped := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(stopped) }()
		if err := hs.Shutdown(sctx); err != nil {
			hs.Close()
		}
		select {
		case <-stopped:
		case <-sctx.Done():
			s.log.Warn("graceful gRPC stop timed out; closing remaining streams")
			s.grpc.Stop()
		}
		return nil
	})
	return g.Wait()
}

// probeMethods are the methods a 405 answer may list in Allow.
var probeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// serveHTTP is the mux, except that a path served for other methods answers 405 as JSON, in the body shape of
// the HTTP APIs ({"error":{"code","message"}}), with the Allow header listing them — http.ServeMux would answer
// text/plain. Every 401 and 403 closes the connection (closeOnDeny).
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w = &closeOnDeny{ResponseWriter: w}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		if allowed := s.allowedMethods(r); len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeJSON(w, http.StatusMethodNotAllowed, ErrorBody{Error: ErrorDetail{
				Code:    "UNIMPLEMENTED",
				Message: fmt.Sprintf("method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allowed, ", ")),
			}})
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// allowedMethods lists the methods the mux serves r's path with.
func (s *Server) allowedMethods(r *http.Request) []string {
	var out []string
	for _, m := range probeMethods {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" {
			out = append(out, m)
		}
	}
	return out
}

// closeOnDeny adds "Connection: close" to 401 and 403 answers: a refused client gets its answer at once, even
// while its request body is still unsent or stalled, and its connection is closed instead of kept for reuse
// (net/http would otherwise read the unread body first), so refused clients cannot hold connections open.
type closeOnDeny struct {
	http.ResponseWriter
}

func (c *closeOnDeny) WriteHeader(code int) {
	if code == http.StatusUnauthorized || code == http.StatusForbidden {
		c.Header().Set("Connection", "close")
	}
	c.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (c *closeOnDeny) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// ErrorBody is the JSON body of an HTTP refusal, shared by the server's own answers and the services' APIs.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is what went wrong.
type ErrorDetail struct {
	// Code is the gRPC code name the same refusal has on the gRPC API ("INVALID_ARGUMENT").
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeAddrFile(path string, a Addrs) error {
	b, _ := json.Marshal(a)
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write address file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write address file: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteJSON writes v as a JSON response with the status code; HTTP APIs of the services use it for bodies
// and errors alike.
func WriteJSON(w http.ResponseWriter, code int, v any) { writeJSON(w, code, v) }

// SortedKeys returns a map's keys in order (used for deterministic error bodies).
func SortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
