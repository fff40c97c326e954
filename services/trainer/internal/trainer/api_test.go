package trainer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/greenwave-city/greenwave/pkg/broadcast"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/models"
	"github.com/greenwave-city/greenwave/pkg/server/limitstest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/train"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// modelService follows a kfake (or real) models topic into a store, serves ModelService over it on a loopback
// gRPC server, and returns a client and a function that publishes snapshots to the topic.
func modelService(t *testing.T) (greenwavev1.ModelServiceClient, func(...*greenwavev1.ModelSnapshot)) {
	t.Helper()
	kafkaConn, names := kafkatest.Setup(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	store, hub := models.NewStore(), broadcast.New[*train.Snapshot]()
	loaded := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- followModels(ctx, kafkaConn, names.Models, 2, store, hub, newMetrics(testRegistry()), zap.NewNop(), func() { close(loaded) })
	}()
	client := serveModels(t, NewAPI(store, hub, 64, testRegistry()))
	prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
	t.Cleanup(func() {
		hub.Close()
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Errorf("follow models: %v", err)
		}
		prod.Close()
	})
	select {
	case <-loaded:
	case <-time.After(30 * time.Second):
		t.Fatal("models topic not loaded")
	}
	publish := func(snaps ...*greenwavev1.ModelSnapshot) {
		t.Helper()
		outs := make([]stream.Output, len(snaps))
		for i, s := range snaps {
			outs[i] = stream.Output{Topic: names.Models, Key: []byte(s.GetModelId()), Value: mustMarshal(t, s), EventID: fmt.Sprintf("%s@%d", s.GetModelId(), s.GetVersion())}
		}
		wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer wcancel()
		if err := prod.Write(wctx, outs...); err != nil {
			t.Fatal(err)
		}
	}
	return client, publish
}

// serveModels serves api on a loopback gRPC server and returns a client; the cleanup stops the server.
func serveModels(t *testing.T, api *API) greenwavev1.ModelServiceClient {
	t.Helper()
	return greenwavev1.NewModelServiceClient(limitstest.Serve(t, func(s *grpc.Server) { greenwavev1.RegisterModelServiceServer(s, api) }))
}

// snap is a small snapshot with a covariance and a pending input, so that the summaries can be told apart.
func snap(in, ap string, horizonS uint32, target greenwavev1.Target, version uint64) *greenwavev1.ModelSnapshot {
	name := map[greenwavev1.Target]string{greenwavev1.Target_TARGET_FLOW: "flow", greenwavev1.Target_TARGET_SPEED: "speed"}[target]
	return &greenwavev1.ModelSnapshot{SchemaVersion: 1, ModelId: fmt.Sprintf("%s/%s/%d/%s", in, ap, horizonS, name),
		IntersectionId: in, ApproachId: ap, HorizonS: horizonS, Target: target, Version: version, Promoted: "c",
		Candidates: []*greenwavev1.Candidate{{Name: "c", State: &greenwavev1.RLSState{Coefficients: []float64{1, 2}, CovarianceUpper: []float64{1, 0, 1}}}},
		Pending:    []*greenwavev1.PendingInput{{Values: []float64{0.5}}}, History: &greenwavev1.SeasonalHistory{WindowS: 300},
		Recent: []*greenwavev1.RecentErrors{{Size: 1}}}
}

// waitModels polls ListModels until it holds n models.
func waitModels(t *testing.T, c greenwavev1.ModelServiceClient, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.ListModels(context.Background(), &greenwavev1.ListModelsRequest{PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetModels()) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d models listed, want %d", len(resp.GetModels()), n)
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-t.Context().Done():
			return
		}
	}
}

// fieldOf returns the field named by an INVALID_ARGUMENT's BadRequest detail.
func fieldOf(err error) string {
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
			return br.GetFieldViolations()[0].GetField()
		}
	}
	return ""
}

func TestGetModel(t *testing.T) {
	t.Parallel()
	c, publish := modelService(t)
	publish(snap("I-1", "N", 900, greenwavev1.Target_TARGET_FLOW, 1), snap("I-1", "N", 900, greenwavev1.Target_TARGET_FLOW, 2),
		snap("I-1", "N", 900, greenwavev1.Target_TARGET_SPEED, 7))
	waitModels(t, c, 2)
	for _, tc := range []struct {
		name    string
		req     *greenwavev1.GetModelRequest
		code    codes.Code
		field   string
		id      string
		version uint64
		withP   bool
	}{
		{name: "by id, newest version", req: &greenwavev1.GetModelRequest{ModelId: "I-1/N/900/flow"}, id: "I-1/N/900/flow", version: 2},
		{name: "by parts, flow by default", req: &greenwavev1.GetModelRequest{IntersectionId: "I-1", ApproachId: "N", HorizonS: 900}, id: "I-1/N/900/flow", version: 2},
		{name: "by parts with target", req: &greenwavev1.GetModelRequest{IntersectionId: "I-1", ApproachId: "N", HorizonS: 900, Target: greenwavev1.Target_TARGET_SPEED},
			id: "I-1/N/900/speed", version: 7},
		{name: "with covariance", req: &greenwavev1.GetModelRequest{ModelId: "I-1/N/900/flow", IncludeCovariance: true}, id: "I-1/N/900/flow", version: 2, withP: true},
		{name: "unknown id", req: &greenwavev1.GetModelRequest{ModelId: "I-1/S/900/flow"}, code: codes.NotFound},
		{name: "unknown horizon", req: &greenwavev1.GetModelRequest{IntersectionId: "I-1", ApproachId: "N", HorizonS: 1800}, code: codes.NotFound},
		{name: "empty", req: &greenwavev1.GetModelRequest{}, code: codes.InvalidArgument, field: "intersection_id"},
		{name: "no approach", req: &greenwavev1.GetModelRequest{IntersectionId: "I-1", HorizonS: 900}, code: codes.InvalidArgument, field: "approach_id"},
		{name: "no horizon", req: &greenwavev1.GetModelRequest{IntersectionId: "I-1", ApproachId: "N"}, code: codes.InvalidArgument, field: "horizon_s"},
		{name: "unknown target", req: &greenwavev1.GetModelRequest{IntersectionId: "I-1", ApproachId: "N", HorizonS: 900, Target: 42}, code: codes.InvalidArgument, field: "target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := c.GetModel(context.Background(), tc.req)
			if got := status.Code(err); got != tc.code {
				t.Fatalf("code %v (%v), want %v", got, err, tc.code)
			}
			if tc.code != codes.OK {
				if f := fieldOf(err); f != tc.field {
					t.Errorf("field violation %q, want %q", f, tc.field)
				}
				return
			}
			m := resp.GetModel()
			if m.GetModelId() != tc.id || m.GetVersion() != tc.version {
				t.Errorf("got %s version %d, want %s version %d", m.GetModelId(), m.GetVersion(), tc.id, tc.version)
			}
			if hasP := len(train.Covariance(wire.RLSState(m.GetCandidates()[0].GetState()))) > 0; hasP != tc.withP {
				t.Errorf("covariance present %v, want %v", hasP, tc.withP)
			}
			if !tc.withP && (len(m.GetPending()) > 0 || len(m.GetBaselineState()) > 0 || m.GetHistory() != nil || len(m.GetRecent()) > 0) {
				t.Error("summary carries pending inputs, history or recent windows")
			}
		})
	}
}

func TestListModels(t *testing.T) {
	t.Parallel()
	c, publish := modelService(t)
	var all []*greenwavev1.ModelSnapshot
	for i := range 3 {
		for _, ap := range []string{"N", "S"} {
			for _, h := range []uint32{900, 1800} {
				all = append(all, snap(fmt.Sprintf("I-%d", i), ap, h, greenwavev1.Target_TARGET_FLOW, 1))
			}
		}
	}
	all = append(all, snap("I-0", "N", 900, greenwavev1.Target_TARGET_SPEED, 1))
	publish(all...)
	waitModels(t, c, len(all))

	// list pages through everything matching f, page by page, checking each page's size.
	list := func(t *testing.T, f *greenwavev1.ModelFilter, size int32) (ids []string, pages int) {
		t.Helper()
		token := ""
		for {
			resp, err := c.ListModels(context.Background(), &greenwavev1.ListModelsRequest{Filter: f, PageSize: size, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if size > 0 && len(resp.GetModels()) > int(size) {
				t.Fatalf("page of %d for page size %d", len(resp.GetModels()), size)
			}
			for _, m := range resp.GetModels() {
				if len(train.Covariance(wire.RLSState(m.GetCandidates()[0].GetState()))) > 0 || len(m.GetPending()) > 0 {
					t.Fatalf("listed %s with covariance or pending inputs", m.GetModelId())
				}
				ids = append(ids, m.GetModelId())
			}
			if token = resp.GetNextPageToken(); token == "" {
				return ids, pages
			}
		}
	}
	for _, tc := range []struct {
		name   string
		filter *greenwavev1.ModelFilter
		size   int32
		want   []string
		pages  int
	}{
		{name: "one intersection and approach", filter: &greenwavev1.ModelFilter{IntersectionIds: []string{"I-1"}, ApproachIds: []string{"S"}},
			want: []string{"I-1/S/1800/flow", "I-1/S/900/flow"}, pages: 1},
		{name: "horizon and target", filter: &greenwavev1.ModelFilter{HorizonsS: []uint32{900}, Target: greenwavev1.Target_TARGET_SPEED},
			want: []string{"I-0/N/900/speed"}, pages: 1},
		{name: "two intersections, pages of two", filter: &greenwavev1.ModelFilter{IntersectionIds: []string{"I-0", "I-2"}, HorizonsS: []uint32{1800}}, size: 2,
			want: []string{"I-0/N/1800/flow", "I-0/S/1800/flow", "I-2/N/1800/flow", "I-2/S/1800/flow"}, pages: 2},
		{name: "nothing matches", filter: &greenwavev1.ModelFilter{IntersectionIds: []string{"I-9"}}, pages: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ids, pages := list(t, tc.filter, tc.size)
			if fmt.Sprint(ids) != fmt.Sprint(tc.want) || pages != tc.pages {
				t.Errorf("listed %v in %d pages, want %v in %d", ids, pages, tc.want, tc.pages)
			}
		})
	}
	t.Run("pages of one cover everything once, in id order", func(t *testing.T) {
		t.Parallel()
		ids, pages := list(t, nil, 1)
		if len(ids) != len(all) || pages != len(all) {
			t.Fatalf("%d ids in %d pages, want %d", len(ids), pages, len(all))
		}
		for i := 1; i < len(ids); i++ {
			if ids[i-1] >= ids[i] {
				t.Fatalf("ids out of order: %v", ids)
			}
		}
	})
	t.Run("page size capped", func(t *testing.T) {
		t.Parallel()
		resp, err := c.ListModels(context.Background(), &greenwavev1.ListModelsRequest{PageSize: 1 << 30})
		if err != nil || len(resp.GetModels()) != len(all) || resp.GetNextPageToken() != "" {
			t.Fatalf("huge page size: %d models, token %q, %v", len(resp.GetModels()), resp.GetNextPageToken(), err)
		}
	})
	for _, tc := range []struct {
		name  string
		req   *greenwavev1.ListModelsRequest
		field string
	}{
		{name: "negative page size", req: &greenwavev1.ListModelsRequest{PageSize: -1}, field: "page_size"},
		{name: "token not base64", req: &greenwavev1.ListModelsRequest{PageToken: "!!"}, field: "page_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.ListModels(context.Background(), tc.req)
			if status.Code(err) != codes.InvalidArgument || fieldOf(err) != tc.field {
				t.Errorf("got %v, want INVALID_ARGUMENT on %s", err, tc.field)
			}
		})
	}
}

func TestWatchModels(t *testing.T) {
	t.Parallel()
	c, publish := modelService(t)
	publish(snap("I-1", "N", 900, greenwavev1.Target_TARGET_FLOW, 1), snap("I-1", "S", 900, greenwavev1.Target_TARGET_FLOW, 1),
		snap("I-2", "N", 900, greenwavev1.Target_TARGET_FLOW, 1))
	waitModels(t, c, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := c.WatchModels(ctx, &greenwavev1.WatchModelsRequest{Filter: &greenwavev1.ModelFilter{IntersectionIds: []string{"I-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	recv := func() *greenwavev1.WatchModelsResponse {
		t.Helper()
		r, err := st.Recv()
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		if len(r.GetModel().GetPending()) > 0 || len(train.Covariance(wire.RLSState(r.GetModel().GetCandidates()[0].GetState()))) > 0 {
			t.Errorf("watched %s with covariance or pending inputs", r.GetModel().GetModelId())
		}
		return r
	}
	// Initial state first, in id order, filtered.
	for _, want := range []string{"I-1/N/900/flow", "I-1/S/900/flow"} {
		if r := recv(); r.GetModel().GetModelId() != want || !r.GetInitial() {
			t.Fatalf("initial %s (initial=%v), want %s", r.GetModel().GetModelId(), r.GetInitial(), want)
		}
	}
	// Updates: a non-matching model is filtered out, an older version is not an update.
	publish(snap("I-2", "N", 900, greenwavev1.Target_TARGET_FLOW, 2), snap("I-1", "S", 900, greenwavev1.Target_TARGET_FLOW, 2),
		snap("I-1", "N", 900, greenwavev1.Target_TARGET_FLOW, 0), snap("I-1", "N", 900, greenwavev1.Target_TARGET_FLOW, 3))
	for _, want := range []struct {
		id      string
		version uint64
	}{{"I-1/S/900/flow", 2}, {"I-1/N/900/flow", 3}} {
		r := recv()
		if r.GetInitial() || r.GetModel().GetModelId() != want.id || r.GetModel().GetVersion() != want.version {
			t.Fatalf("update %s v%d (initial=%v), want %s v%d", r.GetModel().GetModelId(), r.GetModel().GetVersion(), r.GetInitial(), want.id, want.version)
		}
	}
}
