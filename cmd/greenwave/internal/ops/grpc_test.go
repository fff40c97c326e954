package ops

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack/stacktest"
	"github.com/greenwave-city/greenwave/pkg/server/tlstest"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// fakeServices implements the parts of ModelService and SignalControlService the commands call, over a
// fixed set of models and plans, and records the authorization header of every call.
type fakeServices struct {
	greenwavev1.UnimplementedModelServiceServer
	greenwavev1.UnimplementedSignalControlServiceServer
	models []*greenwavev1.ModelSnapshot // in model id order
	plans  []*greenwavev1.SignalPlan
	// training is the training status ListModels returns on the first page.
	training []*greenwavev1.IntersectionTrainingStatus

	mu      sync.Mutex
	auth    []string
	filters []*greenwavev1.ModelFilter
}

func (f *fakeServices) record(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auth = append(f.auth, strings.Join(md.Get("authorization"), ","))
}

func (f *fakeServices) ListModels(ctx context.Context, req *greenwavev1.ListModelsRequest) (*greenwavev1.ListModelsResponse, error) {
	f.record(ctx)
	f.mu.Lock()
	f.filters = append(f.filters, req.GetFilter())
	f.mu.Unlock()
	start := 0
	if t := req.GetPageToken(); t != "" {
		b, err := base64.RawURLEncoding.DecodeString(t)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, "bad page_token")
		}
		start = slices.IndexFunc(f.models, func(m *greenwavev1.ModelSnapshot) bool { return m.GetModelId() == string(b) }) + 1
	}
	end := min(start+int(req.GetPageSize()), len(f.models))
	resp := &greenwavev1.ListModelsResponse{Models: f.models[start:end]}
	if req.GetPageToken() == "" {
		resp.Training = f.training
	}
	if end < len(f.models) {
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(f.models[end-1].GetModelId()))
	}
	return resp, nil
}

func (f *fakeServices) GetModel(ctx context.Context, req *greenwavev1.GetModelRequest) (*greenwavev1.GetModelResponse, error) {
	f.record(ctx)
	for _, m := range f.models {
		if m.GetModelId() == req.GetModelId() {
			if !req.GetIncludeCovariance() {
				m = proto.CloneOf(m)
				for _, c := range m.GetCandidates() {
					c.State.Covariance = nil
				}
			}
			return &greenwavev1.GetModelResponse{Model: m}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "no model %q", req.GetModelId())
}

func (f *fakeServices) GetPlan(ctx context.Context, req *greenwavev1.GetPlanRequest) (*greenwavev1.GetPlanResponse, error) {
	f.record(ctx)
	for _, p := range f.plans {
		if p.GetIntersectionId() == req.GetIntersectionId() {
			return &greenwavev1.GetPlanResponse{Plan: p}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "no plan for intersection %q yet", req.GetIntersectionId())
}

// WatchPlans sends the matching plans as initial ones, then waits for the client to go away, like the real
// service between plans.
func (f *fakeServices) WatchPlans(req *greenwavev1.WatchPlansRequest, st greenwavev1.SignalControlService_WatchPlansServer) error {
	f.record(st.Context())
	for _, p := range f.plans {
		if ids := req.GetIntersectionIds(); len(ids) > 0 && !slices.Contains(ids, p.GetIntersectionId()) {
			continue
		}
		if err := st.Send(&greenwavev1.WatchPlansResponse{Plan: p, Initial: true}); err != nil {
			return err
		}
	}
	<-st.Context().Done()
	return nil
}

func testModel(id string, version uint64) *greenwavev1.ModelSnapshot {
	parts := strings.Split(id, "/")
	ev := &greenwavev1.Evaluation{Recent: &greenwavev1.ErrorStats{N: 10, Mae: 12.5, Rmse: 15.25, Mape: 0.1, R2: 0.8}, Cumulative: &greenwavev1.ErrorStats{N: 40, Mae: 14, Rmse: 17}}
	return &greenwavev1.ModelSnapshot{
		SchemaVersion: 1, ModelId: id, IntersectionId: parts[0], ApproachId: parts[1], HorizonS: 900, Target: greenwavev1.Target_TARGET_FLOW,
		FeatureSetVersion: 2, FeatureNames: []string{"flow_vph", "occupancy_ratio"}, Version: version, Promoted: "rls-0.99",
		LastAppliedWindow: timestamppb.New(time.Date(2026, 11, 26, 7, 30, 0, 0, time.UTC)),
		Candidates: []*greenwavev1.Candidate{{Name: "rls-0.99", Evaluation: ev, State: &greenwavev1.RLSState{
			Coefficients: []float64{1.5, 0.25, -3}, Covariance: []float64{1, 0, 0, 0, 2, 0, 0, 0, 3}, Updates: 40}}},
		Baselines:        map[string]*greenwavev1.Evaluation{"persistence": ev},
		IntervalCoverage: &greenwavev1.IntervalCoverage{Confidence: 0.9, Hits: 36, N: 40},
		Drift:            &greenwavev1.DriftState{N: 40},
	}
}

// testPlan is a fixed-time plan, but for I-300, which has actuation bounds.
func testPlan(id string) *greenwavev1.SignalPlan {
	p := &greenwavev1.SignalPlan{SchemaVersion: 1, PlanId: id + "@1", IntersectionId: id, CycleS: 86,
		ValidFrom: timestamppb.New(time.Date(2026, 11, 26, 7, 35, 0, 0, time.UTC)), Reason: greenwavev1.PlanReason_PLAN_REASON_PREDICTIVE,
		ReasonDetail: "fresh predictions", Phases: []*greenwavev1.PhaseTiming{{PhaseId: "NS", GreenS: 42, YellowS: 3, AllRedS: 2}, {PhaseId: "EW", GreenS: 26, YellowS: 3, AllRedS: 2}}}
	if id == "I-300" {
		p.GapOutS = 2
		p.Phases[0].MinGreenS, p.Phases[0].MaxGreenS = 5, 55.5
		p.Phases[1].MinGreenS, p.Phases[1].MaxGreenS = 5, 34.5
	}
	return p
}

// serve starts the fake on a loopback port, with TLS when tc is set, and returns its address.
func serve(t *testing.T, f *fakeServices, tc *tls.Config) string {
	t.Helper()
	var opts []grpc.ServerOption
	if tc != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	s := grpc.NewServer(opts...)
	greenwavev1.RegisterModelServiceServer(s, f)
	greenwavev1.RegisterSignalControlServiceServer(s, f)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(lis)
	}()
	t.Cleanup(func() {
		s.Stop()
		<-done
	})
	return lis.Addr().String()
}

func newFake() *fakeServices {
	f := &fakeServices{plans: []*greenwavev1.SignalPlan{testPlan("I-100"), testPlan("I-200"), testPlan("I-300")}}
	for _, id := range []string{"I-100/E/900/flow", "I-100/N/900/flow", "I-200/N/900/flow", "I-300/S/900/flow", "I-300/W/900/flow"} {
		f.models = append(f.models, testModel(id, 7))
	}
	return f
}

func TestModelsList(t *testing.T) {
	t.Parallel()
	f := newFake()
	addr := serve(t, f, nil)
	tests := []struct {
		name       string
		args       []string
		wantIDs    []string
		wantStderr string
	}{
		{name: "one page with a hint", args: []string{"--page-size", "2"}, wantIDs: []string{"I-100/E/900/flow", "I-100/N/900/flow"}, wantStderr: "--page-token "},
		{name: "all pages", args: []string{"--page-size", "2", "--all"}, wantIDs: []string{"I-100/E/900/flow", "I-100/N/900/flow", "I-200/N/900/flow", "I-300/S/900/flow", "I-300/W/900/flow"}},
		{name: "json", args: []string{"--json", "--all", "--page-size", "3"}, wantIDs: []string{"I-100/E/900/flow", "I-100/N/900/flow", "I-200/N/900/flow", "I-300/S/900/flow", "I-300/W/900/flow"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, stderr, err := runCmd(t, modelsCmd, append([]string{"list", "--addr", addr}, tt.args...)...)
			if err != nil {
				t.Fatalf("models list: %v", err)
			}
			var ids []string
			for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
				if strings.Contains(tt.name, "json") {
					var m greenwavev1.ModelSnapshot
					if err := unmarshalProtoJSON([]byte(l), &m); err != nil {
						t.Fatalf("line %q: %v", l, err)
					}
					ids = append(ids, m.GetModelId())
					continue
				}
				if strings.HasPrefix(l, "MODEL") {
					continue
				}
				fields := strings.Fields(l)
				ids = append(ids, fields[0])
				// version, promoted, recent MAE and RMSE, cumulative n, coverage, drift, last window
				if want := []string{"7", "rls-0.99", "12.5", "15.25", "40", "90%", "of", "90%", "no", "2026-11-26T07:30Z"}; !slices.Equal(fields[1:], want) {
					t.Errorf("row %q: want fields %q", l, want)
				}
			}
			if !slices.Equal(ids, tt.wantIDs) {
				t.Errorf("listed %q, want %q", ids, tt.wantIDs)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr %q, want %q", stderr, tt.wantStderr)
			}
		})
	}
}

// TestModelsListSaysWhyModelsAreMissing: the trainer's rejections (cause and the setting to fix) and the models
// still warming up follow the table.
func TestModelsListSaysWhyModelsAreMissing(t *testing.T) {
	t.Parallel()
	warm := testModel("I-100/N/900/flow", 2)
	warm.Candidates[0].State.Updates = 1
	f := &fakeServices{models: []*greenwavev1.ModelSnapshot{testModel("I-100/E/900/flow", 7), warm}, training: []*greenwavev1.IntersectionTrainingStatus{
		{IntersectionId: "I-100", WindowS: 300, HorizonsS: []uint32{900}, VectorsApplied: 14},
		{IntersectionId: "9001", Rejected: 96, LastRejectionCause: "horizons_do_not_fit_window", LastRejectedWindow: timestamppb.New(time.Date(2006, 10, 1, 0, 0, 0, 0, time.UTC)),
			LastRejection: "TRAINER_HORIZONS=10m does not fit intersection 9001's 900 s window"},
	}}
	addr := serve(t, f, nil)
	table, out, err := runCmd(t, modelsCmd, "list", "--addr", addr)
	if err != nil {
		t.Fatalf("models list: %v", err)
	}
	if strings.Contains(table, "why models") {
		t.Errorf("the notes are on stdout, with the table:\n%s", table)
	}
	for _, want := range []string{
		"why models are missing or not predicting:",
		"9001: no model: every frame rejected (96, last 2006-10-01T00:00Z, cause horizons_do_not_fit_window): TRAINER_HORIZONS=10m does not fit",
		"I-100/N/900/flow: warming up: 1 of 4 labels before it predicts",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "I-100/E/900/flow: warming") || strings.Contains(out, "I-100: ") {
		t.Errorf("a healthy model or intersection is reported:\n%s", out)
	}
}

func TestModelsListSendsFilterAndToken(t *testing.T) {
	t.Parallel()
	f := newFake()
	addr := serve(t, f, nil)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := runCmd(t, modelsCmd, "list", "--addr", addr, "--token-file", tokenFile,
		"--intersection", "I-100", "--intersection", "I-200,I-300", "--approach", "N", "--horizon", "15m", "--horizon", "1h", "--target", "speed")
	if err != nil {
		t.Fatal(err)
	}
	want := &greenwavev1.ModelFilter{IntersectionIds: []string{"I-100", "I-200", "I-300"}, ApproachIds: []string{"N"}, HorizonsS: []uint32{900, 3600}, Target: greenwavev1.Target_TARGET_SPEED}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.filters) != 1 || !proto.Equal(f.filters[0], want) {
		t.Errorf("filter sent %v, want %v", f.filters, want)
	}
	if !slices.Equal(f.auth, []string{"Bearer s3cret-0123456789abcdef"}) {
		t.Errorf("authorization headers %q, want one Bearer s3cret", f.auth)
	}
}

func TestModelsShow(t *testing.T) {
	t.Parallel()
	addr := serve(t, newFake(), nil)
	tests := []struct {
		name     string
		args     []string
		want     []string
		wantNot  []string
		status   int
		wantErr  string
		wantJSON bool
	}{
		{name: "text", args: []string{"I-100/N/900/flow"},
			want:    []string{"model         I-100/N/900/flow", "horizon 15m0s  target flow", "intercept", "flow_vph", "occupancy_ratio", "candidate rls-0.99 *", "baseline persistence", "90% of 90%"},
			wantNot: []string{"covariance P"}},
		{name: "covariance", args: []string{"I-100/N/900/flow", "--covariance"}, want: []string{"covariance P of rls-0.99 (3x3", "pending inputs awaiting their labels: 0"}},
		{name: "json", args: []string{"--json", "I-300/W/900/flow"}, wantJSON: true},
		{name: "not found", args: []string{"I-9/N/900/flow"}, status: 1, wantErr: `no model "I-9/N/900/flow" (NotFound)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, _, err := runCmd(t, modelsCmd, append([]string{"show", "--addr", addr}, tt.args...)...)
			if exitStatus(err) != tt.status || (tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("models show: %v, want status %d with %q", err, tt.status, tt.wantErr)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
			if tt.wantJSON {
				var m greenwavev1.ModelSnapshot
				if err := unmarshalProtoJSON([]byte(out), &m); err != nil || m.GetModelId() != "I-300/W/900/flow" {
					t.Errorf("json %q: %v", out, err)
				}
			}
		})
	}
}

func TestPlans(t *testing.T) {
	t.Parallel()
	addr := serve(t, newFake(), nil)
	tests := []struct {
		name    string
		args    []string
		want    []string
		status  int
		wantErr string
	}{
		{name: "watch until max", args: []string{"watch", "--max", "2"}, want: []string{
			"plan I-100 @2026-11-26T07:35Z cycle 86s  NS 42s EW 26s  predictive: fresh predictions  [initial]",
			"plan I-200 @2026-11-26T07:35Z cycle 86s  NS 42s EW 26s  predictive: fresh predictions  [initial]"}},
		{name: "watch filtered", args: []string{"watch", "--max", "1", "--intersection", "I-300"}, want: []string{"plan I-300 "}},
		{name: "watch json", args: []string{"watch", "--max", "1", "--json"}, want: []string{`{"plan":{"schema_version":1,"plan_id":"I-100@1",`, `"initial":true}`}},
		{name: "get", args: []string{"get", "I-200"}, want: []string{"plan          I-200@1", "cycle         86.0s", "predictive: fresh predictions", "NS     42.0s  -         3.0s    2.0s"}},
		{name: "get actuated", args: []string{"get", "I-300"}, want: []string{"actuated within the bounds, gap-out 2.0s", "NS     42.0s  5.0-55.5s  3.0s", "EW     26.0s  5.0-34.5s  3.0s"}},
		{name: "get json", args: []string{"get", "I-200", "--json"}, want: []string{`"intersection_id":"I-200"`}},
		{name: "get unknown", args: []string{"get", "I-999"}, status: 1, wantErr: `no plan for intersection "I-999" yet (NotFound)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, _, err := runCmd(t, plansCmd, append(tt.args, "--addr", addr)...)
			if exitStatus(err) != tt.status || (tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("plans: %v, want status %d with %q", err, tt.status, tt.wantErr)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.HasPrefix(tt.args[0], "watch") {
				if n := strings.Count(out, "\n"); n != len(tt.want) && !strings.Contains(tt.name, "json") {
					t.Errorf("printed %d lines, want %d:\n%s", n, len(tt.want), out)
				}
			}
		})
	}
}

// TestPlansWatchStopsOnCancel: Ctrl-C (the context ending) ends a watch normally.
func TestPlansWatchStopsOnCancel(t *testing.T) {
	t.Parallel()
	addr := serve(t, newFake(), nil)
	ctx, cancel := context.WithCancel(t.Context())
	var stdout stacktest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- plansCmd(ctx, []string{"watch", "--addr", addr}, &stdout, &stacktest.SyncBuffer{}, env{}.lookup)
	}()
	// All three initial plans arrive, then the stream idles; cancel once they are printed.
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(stdout.String(), "\n") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("only %q printed", stdout.String())
		}
		select {
		case err := <-done:
			t.Fatalf("watch ended early: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("watch after Ctrl-C: %v, want nil", err)
	}
}

// TestMutualTLS: with the CA and a client certificate the call succeeds; without the client certificate the
// server refuses the handshake and the command fails with status 1.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pki := newTestPKI(t, dir)
	pool := x509.NewCertPool()
	pool.AddCert(pki.ca)
	addr := serve(t, newFake(), &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12})
	out, _, err := runCmd(t, plansCmd, "get", "I-100", "--addr", addr, "--tls-ca", pki.caFile, "--tls-cert", pki.clientCert, "--tls-key", pki.clientKey)
	if err != nil || !strings.Contains(out, "I-100@1") {
		t.Fatalf("with a client certificate: %v\n%s", err, out)
	}
	_, _, err = runCmd(t, plansCmd, "get", "I-100", "--addr", addr, "--tls-ca", pki.caFile, "--timeout", "5s")
	if exitStatus(err) != 1 {
		t.Fatalf("without a client certificate: %v, want a failure", err)
	}
	_, _, err = runCmd(t, plansCmd, "get", "I-100", "--addr", addr, "--timeout", "5s")
	if exitStatus(err) != 1 || !strings.Contains(err.Error(), "unavailable") {
		t.Fatalf("plaintext against TLS: %v, want an unavailable failure", err)
	}
}

type testPKI struct {
	ca                            *x509.Certificate
	server                        tls.Certificate
	caFile, clientCert, clientKey string
}

func newTestPKI(t *testing.T, dir string) testPKI {
	t.Helper()
	ca := tlstest.NewAuthority(t, "test CA")
	client := ca.Client(t, "leaf")
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return testPKI{ca: ca.Cert, server: ca.Server(t).TLSCertificate(t), caFile: write("ca.pem", ca.PEM),
		clientCert: write("client.pem", client.CertPEM), clientKey: write("client-key.pem", client.KeyPEM)}
}

func unmarshalProtoJSON(b []byte, m proto.Message) error {
	if !json.Valid(b) {
		return errInvalidJSON
	}
	return protojsonUnmarshal.Unmarshal(b, m)
}

var errInvalidJSON = errors.New("invalid JSON")

var protojsonUnmarshal = protojson.UnmarshalOptions{}
