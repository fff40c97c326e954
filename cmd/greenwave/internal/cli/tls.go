package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// TLS is the client side of a gRPC connection as the --tls* flags describe it: plaintext unless On is set or a
// CA or client certificate is given.
type TLS struct {
	// On turns TLS on, verifying the server with the system roots unless CA is given.
	On bool
	// CA is a PEM file of the certificates that verify the server (--tls-ca).
	CA string
	// Cert and Key are the PEM client certificate and its private key for mutual TLS (--tls-cert, --tls-key).
	Cert, Key string
}

// Credentials reads the files t names and returns the transport credentials: TLS 1.2 or later, or plaintext.
// Its errors name the flag and the file.
func (t TLS) Credentials() (credentials.TransportCredentials, error) {
	if (t.Cert == "") != (t.Key == "") {
		return nil, errors.New("--tls-cert and --tls-key must be given together")
	}
	if !t.On && t.CA == "" && t.Cert == "" {
		return insecure.NewCredentials(), nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s holds no PEM certificate", t.CA)
		}
		tc.RootCAs = pool
	}
	if t.Cert != "" {
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert %s / --tls-key %s: %w", t.Cert, t.Key, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(tc), nil
}
