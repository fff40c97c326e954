package security

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack/stacktest"
	"github.com/greenwave-city/greenwave/pkg/ingest/gateways"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/server/tlstest"
	"github.com/greenwave-city/greenwave/pkg/topics"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// streamWait is how long a stream that sends nothing is watched before it counts as open (OK). A refusal comes
// from the interceptors or the handler's first lines, long before.
const streamWait = 2 * time.Second

// call is how the matrix reaches one endpoint: a gRPC call on conn (ctx carries the token), or an HTTP request.
type call struct {
	grpc func(ctx context.Context, conn *grpc.ClientConn) error
	// http returns the request's method, path, content type and body.
	http func() (method, path, contentType, body string)
}

// calls holds every endpoint's call, by the endpoint name of the matrix.
var calls = map[string]call{
	"grpc.health.v1.Health/Check": {grpc: func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}},
	"grpc.reflection.v1.ServerReflection/ServerReflectionInfo": {grpc: func(ctx context.Context, conn *grpc.ClientConn) error {
		st, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
		if err != nil {
			return err
		}
		_ = st.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
		_, err = st.Recv()
		return err
	}},
	"GET /healthz": {http: get("/healthz")},
	"GET /readyz":  {http: get("/readyz")},
	"GET /metrics": {http: get("/metrics")},
	"CollectorService/PublishReadings": {grpc: func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := greenwavev1.NewCollectorServiceClient(conn).PublishReadings(ctx, &greenwavev1.PublishReadingsRequest{Batch: batch()})
		return err
	}},
	"CollectorService/StreamReadings": {grpc: func(ctx context.Context, conn *grpc.ClientConn) error {
		st, err := greenwavev1.NewCollectorServiceClient(conn).StreamReadings(ctx)
		if err != nil {
			return err
		}
		_ = st.Send(&greenwavev1.StreamReadingsRequest{Batch: batch()}) // a refusal shows on Recv
		_, err = st.Recv()
		_ = st.CloseSend()
		return err
	}},
	"POST /v1/readings": {http: func() (string, string, string, string) {
		return http.MethodPost, "/v1/readings", "application/json",
			fmt.Sprintf(`{"readings":[{"detector_id":"I-100-N1","observed_at":%q,"interval_s":60,"count":3}]}`, observedAt().Format(time.RFC3339))
	}},
	"POST /ngsi-ld/v1/entityOperations/upsert": {http: func() (string, string, string, string) {
		return http.MethodPost, "/ngsi-ld/v1/entityOperations/upsert", "application/json",
			fmt.Sprintf(`[{"id":"I-100-N1","type":"TrafficFlowObserved","dateObserved":%q,"intervalS":60,"intensity":5}]`, observedAt().Format(time.RFC3339))
	}},
	"POST /ngsi-ld/v1/notify": {http: func() (string, string, string, string) {
		return http.MethodPost, "/ngsi-ld/v1/notify", "application/json",
			fmt.Sprintf(`{"id":"urn:ngsi-ld:Notification:1","type":"Notification","subscriptionId":"urn:ngsi-ld:Subscription:1",`+
				`"notifiedAt":%q,"data":[{"id":"I-100-N1","type":"TrafficFlowObserved","dateObserved":%q,"intervalS":60,"intensity":5}]}`,
				observedAt().Format(time.RFC3339), observedAt().Format(time.RFC3339))
	}},
	"ModelService/GetModel": {grpc: func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := greenwavev1.NewModelServiceClient(conn).GetModel(ctx, &greenwavev1.GetModelRequest{ModelId: "no-such-model"})
		return err
	}},
	"ModelService/ListModels": {grpc: func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := greenwavev1.NewModelServiceClient(conn).ListModels(ctx, &greenwavev1.ListModelsRequest{})
		return err
	}},
	"ModelService/WatchModels": {grpc: func(ctx context.Context, conn *grpc.ClientConn) error {
		return openStream(ctx, func(ctx context.Context) (func() error, error) {
			st, err := greenwavev1.NewModelServiceClient(conn).WatchModels(ctx, &greenwavev1.WatchModelsRequest{})
			return func() error { _, err := st.Recv(); return err }, err
		})
	}},
	"PredictionService/GetLatestPrediction": {grpc: func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := greenwavev1.NewPredictionServiceClient(conn).GetLatestPrediction(ctx, &greenwavev1.GetLatestPredictionRequest{IntersectionId: "I-999"})
		return err
	}},
	"PredictionService/Subscribe": {grpc: func(ctx context.Context, conn *grpc.ClientConn) error {
		return openStream(ctx, func(ctx context.Context) (func() error, error) {
			st, err := greenwavev1.NewPredictionServiceClient(conn).Subscribe(ctx, &greenwavev1.SubscribeRequest{})
			return func() error { _, err := st.Recv(); return err }, err
		})
	}},
	"SignalControlService/GetPlan": {grpc: func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := greenwavev1.NewSignalControlServiceClient(conn).GetPlan(ctx, &greenwavev1.GetPlanRequest{IntersectionId: "I-999"})
		return err
	}},
	"SignalControlService/WatchPlans": {grpc: func(ctx context.Context, conn *grpc.ClientConn) error {
		return openStream(ctx, func(ctx context.Context) (func() error, error) {
			st, err := greenwavev1.NewSignalControlServiceClient(conn).WatchPlans(ctx, &greenwavev1.WatchPlansRequest{})
			return func() error { _, err := st.Recv(); return err }, err
		})
	}},
	"SignalControlService/SetOverride": {grpc: func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := greenwavev1.NewSignalControlServiceClient(conn).SetOverride(ctx, &greenwavev1.SetOverrideRequest{IntersectionId: "I-100",
			Mode: greenwavev1.PlanMode_PLAN_MODE_FIXED_TIME, Ttl: durationpb.New(time.Minute), Reason: "authorisation matrix"})
		return err
	}},
	"SignalControlService/ClearOverride": {grpc: func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := greenwavev1.NewSignalControlServiceClient(conn).ClearOverride(ctx, &greenwavev1.ClearOverrideRequest{IntersectionId: "I-100"})
		return err
	}},
	"SignalControlService/ListOverrides": {grpc: func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := greenwavev1.NewSignalControlServiceClient(conn).ListOverrides(ctx, &greenwavev1.ListOverridesRequest{})
		return err
	}},
}

func get(path string) func() (string, string, string, string) {
	return func() (string, string, string, string) { return http.MethodGet, path, "", "" }
}

// observedAt is a recent whole minute, a time every reading check accepts.
func observedAt() time.Time { return time.Now().UTC().Truncate(time.Minute).Add(-time.Minute) }

// batch is one reading of a detector of I-100, which the valid gateway token may publish and the other may not.
func batch() *greenwavev1.ReadingBatch {
	return &greenwavev1.ReadingBatch{BatchId: "matrix", Readings: []*greenwavev1.TrafficReading{
		{DetectorId: "I-100-N1", ObservedAt: timestamppb.New(observedAt()), IntervalS: 60, Count: 3},
	}}
}

// openStream opens a server stream and reads from it for streamWait: a message, or no answer at all, is OK (the
// stream was admitted); an error status is the result. The wait ends by cancelling, not by a deadline, so a
// CANCELLED status can only be the test's own.
func openStream(ctx context.Context, open func(context.Context) (func() error, error)) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := time.AfterFunc(streamWait, cancel)
	defer timer.Stop()
	recv, err := open(sctx)
	if err != nil {
		return err
	}
	if err := recv(); err != nil && !(status.Code(err) == codes.Canceled && sctx.Err() != nil && ctx.Err() == nil) {
		return err
	}
	return nil
}

// secrets are the credentials of a run, each of which must stay out of every log, metric and message.
type secrets struct {
	gatewayA, gatewayB, operatorA, operatorB, wrong string
	// keys are the PEM private keys of the server and the clients.
	keys [][]byte
}

// all returns every secret string: the tokens, their SHA-256 (as the tokens files hold them), and each private
// key's base64 lines.
func (s secrets) all() map[string]string {
	out := map[string]string{"gateway token A": s.gatewayA, "gateway token B": s.gatewayB, "operator token A": s.operatorA,
		"operator token B": s.operatorB, "wrong token": s.wrong}
	for what, tok := range map[string]string{"A": s.gatewayA, "B": s.gatewayB, "C": s.operatorA, "D": s.operatorB} {
		out["SHA-256 of token "+what] = gateways.HashToken(tok)
	}
	for i, k := range s.keys {
		for j, l := range strings.Split(string(k), "\n") {
			if len(l) >= 32 && !strings.HasPrefix(l, "-----") {
				out[fmt.Sprintf("private key %d line %d", i, j)] = l
			}
		}
	}
	return out
}

// fixture is the five services running with mTLS and tokens, and the clients of every column.
type fixture struct {
	stack   *stack.Stack
	secrets secrets
	binDir  string
	env     []string // the services' security environment
	logs    *stacktest.SyncBuffer
	tls     [numColumns]*tls.Config // nil for plaintext
	conns   sync.Map                // service + column kind → *grpc.ClientConn

	mu       sync.Mutex
	messages []string // every error message and response body the matrix received
}

// newToken returns a random 64-character token.
func newToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// start runs the five services with TLS, mTLS, a gateway registry and an operator tokens file, each gateway and
// operator limited to one intersection, and waits until every /readyz answers 200 over mTLS.
func start(t *testing.T) *fixture {
	t.Helper()
	root, err := stack.FindRepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins, err := stack.Binaries(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca, rogue := tlstest.NewAuthority(t, "greenwave test CA"), tlstest.NewAuthority(t, "untrusted CA")
	now := time.Now()
	srv, client, untrusted := ca.Server(t), ca.Client(t, "operator"), rogue.Client(t, "intruder")
	expired := ca.Issue(t, "former operator", false, now.Add(-48*time.Hour), now.Add(-24*time.Hour))

	f := &fixture{binDir: bins, logs: &stacktest.SyncBuffer{}, secrets: secrets{gatewayA: newToken(t), gatewayB: newToken(t), operatorA: newToken(t),
		operatorB: newToken(t), wrong: newToken(t), keys: [][]byte{srv.KeyPEM, client.KeyPEM, untrusted.KeyPEM, expired.KeyPEM}}}
	s := f.secrets
	registry := fmt.Sprintf("version: 1\ngateways:\n"+
		"  - {id: gw-a, token_sha256: %s, intersections: [I-100]}\n"+
		"  - {id: gw-b, token_sha256: %s, intersections: [I-101]}\n", gateways.HashToken(s.gatewayA), gateways.HashToken(s.gatewayB))
	operators := fmt.Sprintf("operators:\n"+
		"  - {name: op-a, token_sha256: %s, intersections: [I-100]}\n"+
		"  - {name: op-b, token_sha256: %s, intersections: [I-101]}\n", gateways.HashToken(s.operatorA), gateways.HashToken(s.operatorB))
	f.env = []string{
		"TLS_CERT_FILE=" + writeFile(t, dir, "server.pem", srv.CertPEM),
		"TLS_KEY_FILE=" + writeFile(t, dir, "server-key.pem", srv.KeyPEM),
		"TLS_CLIENT_CA_FILE=" + writeFile(t, dir, "ca.pem", ca.PEM),
		"COLLECTOR_TOKENS_FILE=" + writeFile(t, dir, "gateways.yaml", []byte(registry)),
		"SIGNAL_OPERATOR_TOKENS_FILE=" + writeFile(t, dir, "operators.yaml", []byte(operators)),
		"COLLECTOR_ALLOW_ANONYMOUS=false",
	}

	roots := ca.Pool()
	// GetClientCertificate sends the certificate whatever CAs the server asks for: with Certificates, Go's client
	// would withhold one the server's CA did not sign, and the untrusted column would test no certificate.
	withCert := func(l tlstest.Leaf) *tls.Config {
		c := l.TLSCertificate(t)
		return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }}
	}
	f.tls[noCert] = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	f.tls[untrustedCert] = withCert(untrusted)
	f.tls[expiredCert] = withCert(expired)
	for c := anonymous; c < numColumns; c++ {
		f.tls[c] = withCert(client)
	}

	kafkaConn, names := kafkatest.Setup(t, 2)
	prefix := strings.TrimSuffix(names.Readings, topics.DefaultNames("").Readings)
	st, err := stack.Start(ctx, stack.Config{
		Brokers: kafkaConn.Brokers, TopicPrefix: prefix, TopologyFile: filepath.Join(root, "config", "topology.yaml"), BinDir: bins,
		Dir: t.TempDir(), Stdout: f.logs, LogFormat: "json", LogLevel: "debug", Env: f.env,
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	f.stack = st
	t.Cleanup(func() {
		if err := st.Stop(); err != nil {
			t.Errorf("stop stack: %v", err)
		}
		if t.Failed() {
			t.Logf("service logs:\n%s", f.logs.String())
		}
	})
	f.waitReady(ctx, t)
	return f
}

// waitReady polls every service's /readyz over mTLS until it answers 200.
func (f *fixture) waitReady(ctx context.Context, t *testing.T) {
	t.Helper()
	client := f.httpClient(validToken)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for _, svc := range stack.Services {
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+f.stack.Addrs(svc).HTTP+"/readyz", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s not ready over mTLS: %v", svc, err)
			case <-f.stack.Done():
				t.Fatalf("stack stopped: %v", f.stack.Err())
			case <-tick.C:
			}
		}
	}
}

// httpClient returns a client for column c, which never reuses connections.
func (f *fixture) httpClient(c column) *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: f.tls[c], DisableKeepAlives: true}}
}

// conn returns the gRPC connection of column c to svc; the token columns share one.
func (f *fixture) conn(t *testing.T, svc string, c column) *grpc.ClientConn {
	kind := min(c, anonymous)
	key := fmt.Sprintf("%s/%d", svc, kind)
	if v, ok := f.conns.Load(key); ok {
		return v.(*grpc.ClientConn)
	}
	creds := insecure.NewCredentials()
	if f.tls[c] != nil {
		creds = credentials.NewTLS(f.tls[c])
	}
	conn, err := grpc.NewClient(f.stack.Addrs(svc).GRPC, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	if v, loaded := f.conns.LoadOrStore(key, conn); loaded {
		conn.Close()
		return v.(*grpc.ClientConn)
	}
	return conn
}

// closeConns closes every gRPC connection.
func (f *fixture) closeConns() {
	f.conns.Range(func(_, v any) bool {
		v.(*grpc.ClientConn).Close()
		return true
	})
}

// token is the bearer token column c sends to svc ("" for none): gateway tokens to the collector, operator
// tokens to signal-control, and gateway tokens to the services that take none.
func (f *fixture) token(svc string, c column) string {
	valid, other := f.secrets.gatewayA, f.secrets.gatewayB
	if svc == "signalcontrol" {
		valid, other = f.secrets.operatorA, f.secrets.operatorB
	}
	switch c {
	case wrongToken:
		return f.secrets.wrong
	case otherScope:
		return other
	case validToken:
		return valid
	}
	return ""
}

// note keeps a message the matrix received, for the secrets check.
func (f *fixture) note(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.messages = append(f.messages, msg)
}

// result runs endpoint e as column c and returns the result as the matrix spells it.
func (f *fixture) result(t *testing.T, e endpoint, c column) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tok := f.token(e.service, c)
	cl := calls[e.name]
	if e.http {
		method, path, contentType, body := cl.http()
		scheme := "https://"
		if c == plaintext {
			scheme = "http://"
		}
		req, err := http.NewRequestWithContext(ctx, method, scheme+f.stack.Addrs(e.service).HTTP+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := f.httpClient(c).Do(req)
		if err != nil {
			f.note(err.Error())
			if _, alert, ok := strings.Cut(err.Error(), "remote error: tls: "); ok {
				return tlsAlert + alert
			}
			return "error: " + err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if e.name != "GET /metrics" { // the metrics are searched on their own
			f.note(string(b))
		}
		return strconv.Itoa(resp.StatusCode)
	}
	if tok != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	err := cl.grpc(ctx, f.conn(t, e.service, c))
	if errors.Is(err, io.EOF) {
		err = nil
	}
	st := status.Convert(err)
	f.note(st.Message())
	return st.Code().String()
}

// TestAuthorisationMatrix runs every cell of the matrix against the five services, then searches what the run
// left (logs, metrics, messages) for its secrets.
func TestAuthorisationMatrix(t *testing.T) {
	f := start(t)
	defer f.closeConns()
	t.Run("matrix", func(t *testing.T) {
		for _, e := range matrix() {
			t.Run(serviceTitle(e.service)+" "+strings.ReplaceAll(e.name, "/", "."), func(t *testing.T) {
				t.Parallel()
				for c := range numColumns {
					if got := f.result(t, e, c); got != e.want[c] {
						t.Errorf("%s: got %s, want %s", columnTitles[c], got, e.want[c])
					}
				}
			})
		}
	})
	t.Run("no secrets in logs, metrics or messages", func(t *testing.T) { f.checkSecrets(t) })
}
