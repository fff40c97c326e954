package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/greenwave-city/greenwave/pkg/server/tlstest"
)

// tlsFiles writes the server's TLS files. Each write gets its own modification time, set explicitly, so a change
// is visible whatever the file system's timestamp granularity — no sleeping between writes.
type tlsFiles struct {
	t                   *testing.T
	cert, key, clientCA string
	tick                int
	// noRegisterer serves metrics from a registry the server cannot register on.
	noRegisterer bool
}

func newTLSFiles(t *testing.T) *tlsFiles {
	dir := t.TempDir()
	return &tlsFiles{t: t, cert: filepath.Join(dir, "tls.crt"), key: filepath.Join(dir, "tls.key"), clientCA: filepath.Join(dir, "ca.crt")}
}

func (f *tlsFiles) write(path string, b []byte) {
	f.t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		f.t.Fatal(err)
	}
	f.tick++
	mtime := time.Date(2026, 1, 1, 0, 0, f.tick, 0, time.UTC)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		f.t.Fatal(err)
	}
}

func (f *tlsFiles) writePair(l tlstest.Leaf) {
	f.write(f.cert, l.CertPEM)
	f.write(f.key, l.KeyPEM)
}

// startTLSServer serves with the files (TLS_CLIENT_CA_FILE only when mTLS) until the test ends.
func startTLSServer(t *testing.T, f *tlsFiles, mTLS bool) (*Server, Addrs) {
	t.Helper()
	cfg := Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", ShutdownTimeout: time.Second, TLSCertFile: f.cert, TLSKeyFile: f.key}
	if mTLS {
		cfg.TLSClientCAFile = f.clientCA
	}
	reg := prometheus.Gatherer(prometheus.NewRegistry())
	if f.noRegisterer {
		reg = prometheus.Gatherers{reg}
	}
	s, err := New(cfg, zaptest.NewLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	return s, runServer(t, s)
}

// client is what a client trusts and presents.
type client struct {
	roots    *x509.CertPool
	cert     *tls.Certificate       // nil: none
	sessions tls.ClientSessionCache // nil: no session resumption
}

func (c client) config() *tls.Config {
	tc := &tls.Config{RootCAs: c.roots, MinVersion: tls.VersionTLS12, ClientSessionCache: c.sessions}
	if c.cert != nil {
		tc.Certificates = []tls.Certificate{*c.cert}
	}
	return tc
}

// grpcPeer makes a new gRPC connection and one call, and returns the server certificate it saw. grpc-go refuses
// a TLS connection without ALPN "h2", so a successful call also shows the gRPC listener negotiates it.
func grpcPeer(t *testing.T, addr string, c client) ([]byte, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(c.config())))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a bound against hangs, not a timed assertion
	defer cancel()
	var p peer.Peer
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err != nil {
		return nil, err
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		t.Fatalf("gRPC peer has no TLS certificate: %#v", p.AuthInfo)
	}
	if info.State.NegotiatedProtocol != "h2" {
		t.Errorf("gRPC ALPN = %q, want h2", info.State.NegotiatedProtocol)
	}
	return info.State.PeerCertificates[0].Raw, nil
}

// httpPeer makes a new HTTPS connection, GETs /healthz and returns the server certificate it saw.
func httpPeer(t *testing.T, addr string, c client) ([]byte, error) {
	t.Helper()
	state, err := httpGet(t, addr, c)
	if err != nil {
		return nil, err
	}
	return state.PeerCertificates[0].Raw, nil
}

// httpGet makes a new HTTPS connection, GETs /healthz and returns the connection's TLS state.
func httpGet(t *testing.T, addr string, c client) (*tls.ConnectionState, error) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: c.config(), DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a bound against hangs, not a timed assertion
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		t.Fatalf("GET /healthz: %s, TLS %v", resp.Status, resp.TLS)
	}
	return resp.TLS, nil
}

// pad appends newlines to a PEM file up to size bytes.
func pad(t *testing.T, b []byte, size int) []byte {
	t.Helper()
	if len(b) > size {
		t.Fatalf("PEM of %d bytes exceeds %d", len(b), size)
	}
	return append(append([]byte(nil), b...), bytes.Repeat([]byte("\n"), size-len(b))...)
}

func der(t *testing.T, l tlstest.Leaf) []byte {
	t.Helper()
	b, _ := pem.Decode(l.CertPEM)
	if b == nil {
		t.Fatal("leaf holds no PEM")
	}
	return b.Bytes
}

// expectServed checks that new gRPC and HTTP connections of c are admitted and see the certificate want.
func expectServed(t *testing.T, addrs Addrs, c client, want []byte, step string) {
	t.Helper()
	for name, dial := range map[string]func(*testing.T, string, client) ([]byte, error){"gRPC": grpcPeer, "HTTP": httpPeer} {
		addr := addrs.GRPC
		if name == "HTTP" {
			addr = addrs.HTTP
		}
		got, err := dial(t, addr, c)
		if err != nil {
			t.Errorf("%s: %s connection refused: %v", step, name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %s served the wrong certificate", step, name)
		}
	}
}

// expectRefused checks that new gRPC and HTTP connections of c are refused.
func expectRefused(t *testing.T, addrs Addrs, c client, step string) {
	t.Helper()
	if _, err := grpcPeer(t, addrs.GRPC, c); err == nil {
		t.Errorf("%s: gRPC connection admitted", step)
	}
	if _, err := httpPeer(t, addrs.HTTP, c); err == nil {
		t.Errorf("%s: HTTP connection admitted", step)
	}
}

// TestTLSKeyPairReloads: the key pair is replaced without a restart; files that do not load keep the previous
// pair serving, are counted once per change, and are retried when they change again.
func TestTLSKeyPairReloads(t *testing.T) {
	ca := tlstest.NewAuthority(t, "server CA")
	a := ca.Server(t)
	b := ca.Issue(t, "server B", true, time.Now().Add(-time.Hour), time.Now().Add(48*time.Hour)) // expires after A
	f := newTLSFiles(t)
	f.writePair(a)
	s, addrs := startTLSServer(t, f, false)
	c := client{roots: ca.Pool()}
	errs := func() float64 { return testutil.ToFloat64(s.tls.metrics.errs) }
	failing := func(step string, want float64) {
		t.Helper()
		if got := testutil.ToFloat64(s.tls.metrics.failing); got != want {
			t.Errorf("%s: %s = %v, want %v", step, tlsReloadFailingMetric, got, want)
		}
	}
	notAfter := func(step string, l tlstest.Leaf) {
		t.Helper()
		cert, err := x509.ParseCertificate(der(t, l))
		if err != nil {
			t.Fatal(err)
		}
		if got := testutil.ToFloat64(s.tls.metrics.notAfter); got != float64(cert.NotAfter.Unix()) {
			t.Errorf("%s: %s = %v, want %v", step, tlsNotAfterMetric, got, cert.NotAfter.Unix())
		}
	}
	notAfter("start", a)

	expectServed(t, addrs, c, der(t, a), "start")

	f.write(f.cert, []byte("-----BEGIN CERTIFICATE-----\ngarbage"))
	expectServed(t, addrs, c, der(t, a), "garbage certificate")
	if errs() != 1 { // two handshakes saw the same broken change: counted once
		t.Errorf("after a garbage certificate, %s = %v, want 1", tlsReloadErrorsMetric, errs())
	}
	failing("garbage certificate", 1)
	notAfter("garbage certificate", a)

	// B's files are padded (PEM allows trailing newlines) to a fixed size, so that A's files, padded alike, can
	// replace them below with the same size.
	const certSize, keySize = 4096, 1024
	f.write(f.cert, pad(t, b.CertPEM, certSize)) // half-way: B's certificate with A's key
	expectServed(t, addrs, c, der(t, a), "certificate B with key A")
	if errs() != 2 {
		t.Errorf("after a mismatched key, %s = %v, want 2", tlsReloadErrorsMetric, errs())
	}

	f.write(f.key, pad(t, b.KeyPEM, keySize))
	expectServed(t, addrs, c, der(t, b), "pair B")
	failing("pair B", 0)
	notAfter("pair B", b)

	// A pair renamed into place with the same size and modification time as the files it replaces is still a
	// change (another file).
	fiCert, err := os.Stat(f.cert)
	if err != nil {
		t.Fatal(err)
	}
	fiKey, err := os.Stat(f.key)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		path string
		data []byte
		fi   os.FileInfo
	}{{f.cert, pad(t, a.CertPEM, certSize), fiCert}, {f.key, pad(t, a.KeyPEM, keySize), fiKey}} {
		tmp := r.path + ".new"
		if err := os.WriteFile(tmp, r.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(tmp, r.fi.ModTime(), r.fi.ModTime()); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, r.path); err != nil {
			t.Fatal(err)
		}
	}
	expectServed(t, addrs, c, der(t, a), "pair A renamed into place with B's size and mtime")
	if errs() != 2 {
		t.Errorf("at the end, %s = %v, want 2", tlsReloadErrorsMetric, errs())
	}
}

// TestTLSClientCAReloads rotates the client CA: the bundle holds the old CA, then both, then the new one only.
func TestTLSClientCAReloads(t *testing.T) {
	serverCA, oldCA, newCA := tlstest.NewAuthority(t, "server CA"), tlstest.NewAuthority(t, "old client CA"), tlstest.NewAuthority(t, "new client CA")
	leaf := serverCA.Server(t)
	oldCert, newCert := oldCA.Client(t, "old").TLSCertificate(t), newCA.Client(t, "new").TLSCertificate(t)
	oldClient, newClient := client{roots: serverCA.Pool(), cert: &oldCert}, client{roots: serverCA.Pool(), cert: &newCert}
	f := newTLSFiles(t)
	f.writePair(leaf)
	f.write(f.clientCA, oldCA.PEM)
	s, addrs := startTLSServer(t, f, true)
	want := der(t, leaf)

	expectServed(t, addrs, oldClient, want, "old CA only")
	expectRefused(t, addrs, newClient, "old CA only")
	expectRefused(t, addrs, client{roots: serverCA.Pool()}, "no client certificate")

	f.write(f.clientCA, append(append([]byte(nil), oldCA.PEM...), newCA.PEM...))
	expectServed(t, addrs, oldClient, want, "both CAs")
	expectServed(t, addrs, newClient, want, "both CAs")

	f.write(f.clientCA, newCA.PEM)
	expectServed(t, addrs, newClient, want, "new CA only")
	expectRefused(t, addrs, oldClient, "new CA only")

	f.write(f.clientCA, []byte("not a bundle"))
	expectServed(t, addrs, newClient, want, "garbage bundle")
	expectRefused(t, addrs, oldClient, "garbage bundle")
	if n := testutil.ToFloat64(s.tls.metrics.errs); n != 1 {
		t.Errorf("%s = %v, want 1", tlsReloadErrorsMetric, n)
	}
}

// TestTLSClientCARemovalStopsResumption: a client certificate of a CA removed from the bundle cannot come back
// by resuming a TLS session it opened before (crypto/tls checks a resumed session's chain against the ClientCAs
// of the configuration the reloader hands out).
func TestTLSClientCARemovalStopsResumption(t *testing.T) {
	serverCA, oldCA, newCA := tlstest.NewAuthority(t, "server CA"), tlstest.NewAuthority(t, "old client CA"), tlstest.NewAuthority(t, "new client CA")
	oldCert := oldCA.Client(t, "old").TLSCertificate(t)
	oldClient := client{roots: serverCA.Pool(), cert: &oldCert, sessions: tls.NewLRUClientSessionCache(4)}
	f := newTLSFiles(t)
	f.writePair(serverCA.Server(t))
	f.write(f.clientCA, append(append([]byte(nil), oldCA.PEM...), newCA.PEM...))
	_, addrs := startTLSServer(t, f, true)

	if _, err := httpGet(t, addrs.HTTP, oldClient); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	state, err := httpGet(t, addrs.HTTP, oldClient)
	if err != nil {
		t.Fatalf("second connection: %v", err)
	}
	if !state.DidResume {
		t.Fatal("the second connection did not resume the first one's session; the test would prove nothing")
	}

	f.write(f.clientCA, newCA.PEM)
	if state, err := httpGet(t, addrs.HTTP, oldClient); err == nil {
		t.Errorf("old CA removed: connection admitted (resumed: %v)", state.DidResume)
	}
}

// TestTLSCombinedPEMFile: TLS_CERT_FILE and TLS_KEY_FILE may name one file holding both, so that a new pair
// replaces the old one in a single write or rename, without a moment of mismatched files.
func TestTLSCombinedPEMFile(t *testing.T) {
	ca := tlstest.NewAuthority(t, "server CA")
	a, b := ca.Server(t), ca.Server(t)
	f := newTLSFiles(t)
	f.key = f.cert
	f.write(f.cert, append(append([]byte(nil), a.CertPEM...), a.KeyPEM...))
	s, addrs := startTLSServer(t, f, false)
	c := client{roots: ca.Pool()}
	expectServed(t, addrs, c, der(t, a), "pair A")
	f.write(f.cert, append(append([]byte(nil), b.KeyPEM...), b.CertPEM...)) // either order
	expectServed(t, addrs, c, der(t, b), "pair B")
	if n := testutil.ToFloat64(s.tls.metrics.errs); n != 0 {
		t.Errorf("%s = %v, want 0", tlsReloadErrorsMetric, n)
	}
}

// TestTLSReloadWithoutRegisterer: without a registry to count in, a failed reload is only logged.
func TestTLSReloadWithoutRegisterer(t *testing.T) {
	ca := tlstest.NewAuthority(t, "server CA")
	a, b := ca.Server(t), ca.Server(t)
	f := newTLSFiles(t)
	f.noRegisterer = true
	f.writePair(a)
	s, addrs := startTLSServer(t, f, false)
	if s.tls.metrics != (tlsMetrics{}) {
		t.Fatal("metrics registered on a bare Gatherer")
	}
	c := client{roots: ca.Pool()}
	f.write(f.key, []byte("garbage"))
	expectServed(t, addrs, c, der(t, a), "garbage key")
	f.writePair(b)
	expectServed(t, addrs, c, der(t, b), "pair B")
}

// TestTLSReloadMetricRegistered: the failure counter is exported on the server's registry.
func TestTLSReloadMetricRegistered(t *testing.T) {
	ca := tlstest.NewAuthority(t, "CA")
	f := newTLSFiles(t)
	f.writePair(ca.Server(t))
	reg := prometheus.NewRegistry()
	if _, err := New(Config{TLSCertFile: f.cert, TLSKeyFile: f.key, ShutdownTimeout: time.Second}, zaptest.NewLogger(t), reg); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{tlsReloadErrorsMetric, tlsReloadFailingMetric, tlsNotAfterMetric} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
			t.Errorf("%s series = %d, %v; want 1", name, n, err)
		}
	}
	// A second server on the same registry shares the counter instead of failing.
	if _, err := New(Config{TLSCertFile: f.cert, TLSKeyFile: f.key, ShutdownTimeout: time.Second}, zaptest.NewLogger(t), reg); err != nil {
		t.Errorf("second server on one registry: %v", err)
	}
}

// TestTLSStartNeedsLoadableFiles: unlike a later change, broken files at start are an error.
func TestTLSStartNeedsLoadableFiles(t *testing.T) {
	f := newTLSFiles(t)
	f.write(f.cert, []byte("garbage"))
	f.write(f.key, []byte("garbage"))
	_, err := New(Config{TLSCertFile: f.cert, TLSKeyFile: f.key, ShutdownTimeout: time.Second}, zaptest.NewLogger(t), prometheus.NewRegistry())
	if err == nil || !strings.Contains(err.Error(), "load TLS key pair") {
		t.Errorf("New with a garbage key pair = %v, want a load error", err)
	}
}
