package collector

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// issue creates a certificate signed by parent (self-signed when parent is nil) and returns it with its key.
func issue(t *testing.T, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey, tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: isCA, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey, _ := issue(t, "test CA", nil, nil, true)
	srvCert, srvKey, _ := issue(t, "collector", ca, caKey, false)
	_, _, clientPair := issue(t, "gateway", ca, caKey, false)
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	certFile := writePEM(t, dir, "cert.pem", "CERTIFICATE", srvCert.Raw)
	keyFile := writePEM(t, dir, "key.pem", "EC PRIVATE KEY", keyDER)
	caFile := writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	batch := &greenwavev1.PublishReadingsRequest{Batch: &greenwavev1.ReadingBatch{Readings: []*greenwavev1.TrafficReading{reading("D1")}}}
	cases := []struct {
		name       string
		clientCA   string
		clientCert []tls.Certificate
		ok         bool
	}{
		{"tls", "", nil, true},
		{"mtls with client cert", caFile, []tls.Certificate{clientPair}, true},
		{"mtls without client cert", caFile, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, func(_ *Options, sc *serverConfig) {
				sc.TLSCertFile, sc.TLSKeyFile, sc.TLSClientCAFile = certFile, keyFile, c.clientCA
			})
			creds := credentials.NewTLS(&tls.Config{RootCAs: roots, Certificates: c.clientCert, MinVersion: tls.VersionTLS12})
			conn, err := grpc.NewClient(f.addrs.GRPC, grpc.WithTransportCredentials(creds))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_, err = greenwavev1.NewCollectorServiceClient(conn).PublishReadings(withToken(testCtx(t), tokenA), batch)
			if (err == nil) != c.ok {
				t.Errorf("publish over %s: %v, want ok %v", c.name, err, c.ok)
			}
		})
	}
}
