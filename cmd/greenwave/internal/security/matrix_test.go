package security

import (
	"fmt"
	"strings"
)

// column is one kind of caller of the matrix.
type column int

// The columns, from the transport inwards: the first four never reach a handler, the last four present a
// trusted client certificate and differ in the bearer token.
const (
	plaintext column = iota
	noCert
	untrustedCert
	expiredCert
	anonymous
	wrongToken
	otherScope
	validToken
	numColumns
)

// columnTitles head the README table, in column order.
var columnTitles = [numColumns]string{
	"plaintext to the TLS port", "TLS, no client cert", "client cert of an untrusted CA", "expired client cert",
	"no token", "wrong token", "token of another scope", "valid token",
}

// tlsAlert prefixes the result of an HTTP request whose TLS handshake the server refused: there is no status
// code, only the alert the server sent.
const tlsAlert = "TLS alert: "

// endpoint is one row of the matrix: a gRPC method or HTTP route of a service and the exact result each column
// expects (a gRPC code name, or an HTTP status code or tlsAlert).
type endpoint struct {
	service string // the service's name in internal/stack
	name    string // "ModelService/GetModel" or "GET /healthz"
	http    bool
	auth    string // what admits a caller once the transport has, for the README
	want    [numColumns]string
}

// Transport results: every gRPC call over a refused connection is UNAVAILABLE; HTTP answers a plaintext request
// on a TLS port with 400 (Go's "client sent an HTTP request to an HTTPS server") and refuses the handshake of a
// client without a trusted, valid certificate with the alert that says why.
var (
	grpcTransport = [4]string{"Unavailable", "Unavailable", "Unavailable", "Unavailable"}
	httpTransport = [4]string{"400", tlsAlert + "certificate required", tlsAlert + "unknown certificate authority", tlsAlert + "expired certificate"}
)

// row builds an endpoint from its four token results.
func row(service, name, auth string, tokens ...string) endpoint {
	e := endpoint{service: service, name: name, auth: auth, http: strings.Contains(name, " /")}
	transport := grpcTransport
	if e.http {
		transport = httpTransport
	}
	copy(e.want[:], transport[:])
	if len(tokens) == 1 {
		tokens = []string{tokens[0], tokens[0], tokens[0], tokens[0]}
	}
	copy(e.want[anonymous:], tokens)
	return e
}

// Admission rules shown in the README.
const (
	certOnly     = "client cert"
	gatewayToken = "client cert + gateway token (scoped)"
	operatorTok  = "client cert + operator token (scoped)"
)

// matrix lists every gRPC method and HTTP route of every service with the results the services give when run
// with TLS_CERT_FILE, TLS_KEY_FILE and TLS_CLIENT_CA_FILE (mTLS), COLLECTOR_TOKENS_FILE and
// SIGNAL_OPERATOR_TOKENS_FILE. A read of something that does not exist answers NOT_FOUND: the caller was let
// in. A stream that stays open counts as OK.
func matrix() []endpoint {
	var m []endpoint
	for _, svc := range []string{"collector", "cleaner", "trainer", "predictor", "signalcontrol"} {
		m = append(m,
			row(svc, "grpc.health.v1.Health/Check", certOnly, "OK"),
			row(svc, "grpc.reflection.v1.ServerReflection/ServerReflectionInfo", certOnly, "OK"),
			row(svc, "GET /healthz", certOnly, "200"),
			row(svc, "GET /readyz", certOnly, "200"),
			row(svc, "GET /metrics", certOnly, "200"),
		)
		switch svc {
		case "collector":
			m = append(m,
				row(svc, "CollectorService/PublishReadings", gatewayToken, "Unauthenticated", "Unauthenticated", "PermissionDenied", "OK"),
				row(svc, "CollectorService/StreamReadings", gatewayToken, "Unauthenticated", "Unauthenticated", "PermissionDenied", "OK"),
				row(svc, "POST /v1/readings", gatewayToken, "401", "401", "403", "200"),
				row(svc, "POST /ngsi-ld/v1/entityOperations/upsert", gatewayToken, "401", "401", "403", "201"),
				row(svc, "POST /ngsi-ld/v1/notify", gatewayToken, "401", "401", "403", "204"),
			)
		case "trainer":
			m = append(m,
				row(svc, "ModelService/GetModel", certOnly, "NotFound"),
				row(svc, "ModelService/ListModels", certOnly, "OK"),
				row(svc, "ModelService/WatchModels", certOnly, "OK"),
			)
		case "predictor":
			m = append(m,
				row(svc, "PredictionService/GetLatestPrediction", certOnly, "NotFound"),
				row(svc, "PredictionService/Subscribe", certOnly, "OK"),
			)
		case "signalcontrol":
			m = append(m,
				row(svc, "SignalControlService/GetPlan", certOnly, "NotFound"),
				row(svc, "SignalControlService/WatchPlans", certOnly, "OK"),
				row(svc, "SignalControlService/SetOverride", operatorTok, "Unauthenticated", "Unauthenticated", "PermissionDenied", "OK"),
				row(svc, "SignalControlService/ClearOverride", operatorTok, "Unauthenticated", "Unauthenticated", "PermissionDenied", "OK"),
				// Another scope's operator is let in, and sees only the overrides of its own intersections.
				row(svc, "SignalControlService/ListOverrides", operatorTok, "Unauthenticated", "Unauthenticated", "OK", "OK"),
			)
		}
	}
	return m
}

// renderMatrix renders the matrix as the Markdown table of the README's Security section.
func renderMatrix(m []endpoint) string {
	var b strings.Builder
	b.WriteString("| service | endpoint | admitted by | " + strings.Join(columnTitles[:], " | ") + " |\n")
	b.WriteString("|" + strings.Repeat(" --- |", 3+int(numColumns)) + "\n")
	for _, e := range m {
		cells := make([]string, 0, numColumns)
		for _, w := range e.want {
			cells = append(cells, readmeCell(w))
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", serviceTitle(e.service), e.name, e.auth, strings.Join(cells, " | "))
	}
	return b.String()
}

// readmeCell spells a result as the README does: gRPC codes in their canonical upper-case names.
func readmeCell(w string) string {
	if strings.HasPrefix(w, tlsAlert) || (len(w) == 3 && w[0] >= '1' && w[0] <= '5') {
		return w
	}
	var b strings.Builder
	for i, r := range w {
		if i > 0 && r >= 'A' && r <= 'Z' && w != "OK" {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

// serviceTitle is a service's display name.
func serviceTitle(s string) string {
	if s == "signalcontrol" {
		return "signal-control"
	}
	return s
}
