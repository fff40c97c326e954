package server

import (
	"context"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/peer"

	"github.com/greenwave-city/greenwave/pkg/clip"
)

// PeerAddr is the network address of a gRPC call's client, or of an HTTP request's client under
// HTTPPeerContext ("unknown" when neither gave one).
func PeerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return "unknown"
}

// remoteAddr is an HTTP client's address as net/http reports it.
type remoteAddr string

func (a remoteAddr) Network() string { return "tcp" }
func (a remoteAddr) String() string  { return string(a) }

// HTTPPeerContext is r's context carrying the client's address the way gRPC does, so code shared by the gRPC
// and HTTP APIs finds the caller with PeerAddr.
func HTTPPeerContext(r *http.Request) context.Context {
	return peer.NewContext(r.Context(), &peer.Peer{Addr: remoteAddr(r.RemoteAddr)})
}

// Auth-failure log rate: a burst, then one line per interval; suppressed lines are counted in the next.
const (
	authLogBurst    = 10
	authLogInterval = time.Second
)

// AuthFailureLog logs refused authentication with the client's address and the reason, never the credential.
// It is rate-limited (a token bucket of authLogBurst lines refilled one per authLogInterval) so a client
// hammering with bad tokens cannot flood the log; the next line written says how many were suppressed.
type AuthFailureLog struct {
	log *zap.Logger
	now func() time.Time

	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed int
}

// NewAuthFailureLog returns a log of refused authentication written to log.
func NewAuthFailureLog(log *zap.Logger) *AuthFailureLog {
	return &AuthFailureLog{log: log, now: time.Now, tokens: authLogBurst}
}

// allow takes a token from the bucket; it returns how many lines were suppressed since the last one written.
func (a *AuthFailureLog) allow() (bool, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if !a.last.IsZero() {
		a.tokens = min(authLogBurst, a.tokens+float64(now.Sub(a.last))/float64(authLogInterval))
	}
	a.last = now
	if a.tokens < 1 {
		a.suppressed++
		return false, 0
	}
	a.tokens--
	n := a.suppressed
	a.suppressed = 0
	return true, n
}

// Denied logs one refusal: the client's address, the API or method called, the reason (a fixed label such as
// "unknown_token") and the identity claimed, if any (a gateway or operator name, never a token).
func (a *AuthFailureLog) Denied(peerAddr, api, reason, identity string) {
	if a == nil {
		return
	}
	ok, suppressed := a.allow()
	if !ok {
		return
	}
	fields := []zap.Field{zap.String("peer", peerAddr), zap.String("api", api), zap.String("reason", reason)}
	if identity != "" {
		fields = append(fields, zap.String("identity", clip.ID(identity)))
	}
	if suppressed > 0 {
		fields = append(fields, zap.Int("suppressed", suppressed))
	}
	a.log.Warn("authentication failed", fields...)
}
