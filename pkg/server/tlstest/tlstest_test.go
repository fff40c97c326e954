package tlstest

import (
	"crypto/x509"
	"testing"
	"time"
)

// TestVerification checks what each kind of certificate is for: a server and a client certificate verify
// against their authority, an expired one and one of another authority do not.
func TestVerification(t *testing.T) {
	t.Parallel()
	ca, other := NewAuthority(t, "ca"), NewAuthority(t, "other")
	now := time.Now()
	tests := []struct {
		name  string
		leaf  Leaf
		roots *Authority
		usage x509.ExtKeyUsage
		ok    bool
	}{
		{"server", ca.Server(t), ca, x509.ExtKeyUsageServerAuth, true},
		{"client", ca.Client(t, "c"), ca, x509.ExtKeyUsageClientAuth, true},
		{"client of another CA", other.Client(t, "c"), ca, x509.ExtKeyUsageClientAuth, false},
		{"expired client", ca.Issue(t, "c", false, now.Add(-48*time.Hour), now.Add(-24*time.Hour)), ca, x509.ExtKeyUsageClientAuth, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := tt.leaf.TLSCertificate(t)
			leaf, err := x509.ParseCertificate(c.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			_, err = leaf.Verify(x509.VerifyOptions{Roots: tt.roots.Pool(), KeyUsages: []x509.ExtKeyUsage{tt.usage}})
			if (err == nil) != tt.ok {
				t.Errorf("verify: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
