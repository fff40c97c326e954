package collector

import (
	"context"
	"errors"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/greenwave-city/greenwave/pkg/ingest/gateways"
	"github.com/greenwave-city/greenwave/pkg/server"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// gatewayKey is the context key of the authenticated gateway.
type gatewayKey struct{}

// gatewayOf returns the gateway the auth interceptor identified.
func gatewayOf(ctx context.Context) *gateways.Gateway {
	g, _ := ctx.Value(gatewayKey{}).(*gateways.Gateway)
	return g
}

// authenticate identifies the caller of api from an Authorization header value ("" when absent); a refusal is
// counted and logged (rate-limited) with the caller's address peer, never the token.
func (s *Service) authenticate(header, peer, api string) (*gateways.Gateway, *failure) {
	deny := func(gateway, reason, msg string) *failure {
		s.metrics.authDenied.WithLabelValues(gateway, reason).Inc()
		s.authLog.Denied(peer, api, reason, "")
		return &failure{code: codes.Unauthenticated, httpStatus: http.StatusUnauthorized, label: reason, message: msg}
	}
	token, err := gateways.BearerToken(header)
	if errors.Is(err, gateways.ErrNoToken) {
		if s.allowAnonymous {
			return gateways.Anonymous(), nil
		}
		return nil, deny("none", "missing_token", `a gateway token is required: send "authorization: Bearer <token>"`)
	}
	if err != nil {
		return nil, deny("unknown", "malformed_token", err.Error())
	}
	if s.gateways != nil {
		if g, ok := s.gateways.Authenticate(token); ok {
			return g, nil
		}
	}
	return nil, deny("unknown", "unknown_token", "the gateway token is not valid")
}

// servicePrefix starts the full method names of CollectorService, the methods that need a gateway.
var servicePrefix = "/" + greenwavev1.CollectorService_ServiceDesc.ServiceName + "/"

// authenticateGRPC identifies the caller of an RPC (api is its full method name) from its authorization metadata.
func (s *Service) authenticateGRPC(ctx context.Context, api string) (context.Context, error) {
	var header string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			header = v[0]
		}
	}
	g, f := s.authenticate(header, server.PeerAddr(ctx), api)
	if f != nil {
		return nil, f
	}
	return context.WithValue(ctx, gatewayKey{}, g), nil
}
