package collector

import (
	"errors"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/greenwave-city/greenwave/pkg/clip"
	"github.com/greenwave-city/greenwave/pkg/ingest"
	"github.com/greenwave-city/greenwave/pkg/ingest/fiware"
	"github.com/greenwave-city/greenwave/pkg/server"
	"github.com/greenwave-city/greenwave/pkg/wire"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// HTTP routes of the collector.
const (
	RouteReadings = "POST /v1/readings"
	RouteNGSI     = "POST /ngsi-ld/v1/entityOperations/upsert"
	// RouteNGSINotify receives the notifications of an NGSI-LD subscription on a context broker.
	RouteNGSINotify = "POST /ngsi-ld/v1/notify"
)

// Register installs the gRPC service and the HTTP routes on srv, which must have been built with
// ServerOptions.
func (s *Service) Register(srv *server.Server) {
	greenwavev1.RegisterCollectorServiceServer(srv.GRPC(), s)
	srv.Handle(RouteReadings, s.httpHandler("http", []string{"application/json"}, decodeCanonical, greenwaveResponder{}))
	srv.Handle(RouteNGSI, s.httpHandler("ngsi", ngsiContentTypes, decodeNGSI, upsertResponder{}))
	srv.Handle(RouteNGSINotify, s.httpHandler("ngsi_notify", ngsiContentTypes, decodeNotification, notifyResponder{log: s.log}))
}

// request is a decoded ingestion request.
type request struct {
	batchID string
	items   []item
	// subscription is the NGSI-LD subscription a notification came from (for logs).
	subscription string
	// gateway is the authenticated caller's id (for logs).
	gateway string
}

// decoder turns a request body into a request, or a request-level problem description.
type decoder func(r *http.Request, body []byte) (request, error)

func decodeCanonical(_ *http.Request, body []byte) (request, error) {
	b, err := wire.DecodeBatchJSON(body)
	if err != nil {
		return request{}, err
	}
	return request{batchID: b.GetBatchId(), items: itemsOfBatch(b)}, nil
}

// decodeNGSI reads an NGSI-LD entity array. Attribute forms are detected per attribute, so ?options=keyValues
// is accepted but not needed. The optional Greenwave-Batch-Id header names the batch in logs and is echoed in
// the response's Greenwave-Batch-Id header.
func decodeNGSI(r *http.Request, body []byte) (request, error) {
	es, err := fiware.Decode(body)
	if err != nil {
		return request{}, err
	}
	return request{batchID: r.Header.Get("Greenwave-Batch-Id"), items: itemsOfEntities(es)}, nil
}

// decodeNotification reads an NGSI-LD Notification; its entities are decoded as an upsert batch's. The
// notification id names the batch (unless it is longer than an id may be: it is the broker's, not the
// gateway's, so a long one is not a reason to refuse the data).
func decodeNotification(_ *http.Request, body []byte) (request, error) {
	n, err := fiware.DecodeNotification(body)
	if err != nil {
		return request{}, err
	}
	id := n.ID
	if len(id) > ingest.MaxIDLen {
		id = ""
	}
	return request{batchID: id, items: itemsOfEntities(n.Entities), subscription: clip.ID(n.SubscriptionID)}, nil
}

// errorBody is the JSON body of every HTTP refusal.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	// Code is the gRPC code name the same refusal has on the gRPC API.
	Code            string           `json:"code"`
	Message         string           `json:"message"`
	FieldViolations []fieldViolation `json:"field_violations,omitempty"`
	RetryAfterS     float64          `json:"retry_after_s,omitempty"`
}

func writeFailure(w http.ResponseWriter, f *failure) {
	body := errorBody{Error: errorDetail{Code: grpcCodeName(f.code), Message: f.message, FieldViolations: f.fields}}
	if f.retryAfter > 0 {
		secs := math.Ceil(f.retryAfter.Seconds())
		body.Error.RetryAfterS = secs
		w.Header().Set("Retry-After", strconv.Itoa(int(secs)))
	}
	if f.httpStatus == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="greenwave-collector"`)
	}
	server.WriteJSON(w, f.httpStatus, body)
}

func grpcCodeName(c codes.Code) string {
	// codes.Code.String() gives "InvalidArgument"; the canonical names are what gRPC status docs and clients use.
	names := map[codes.Code]string{
		codes.InvalidArgument: "INVALID_ARGUMENT", codes.Unauthenticated: "UNAUTHENTICATED", codes.PermissionDenied: "PERMISSION_DENIED",
		codes.ResourceExhausted: "RESOURCE_EXHAUSTED", codes.Unavailable: "UNAVAILABLE", codes.Internal: "INTERNAL",
	}
	if n, ok := names[c]; ok {
		return n
	}
	return c.String()
}

// responder renders an HTTP ingestion route's answers: Greenwave's own (ack and errorBody) or NGSI-LD's.
type responder interface {
	// failure answers a request refused as a whole.
	failure(w http.ResponseWriter, f *failure)
	// ack answers a processed request, whose accepted readings Kafka has acknowledged.
	ack(w http.ResponseWriter, req request, ack *greenwavev1.BatchAck)
}

// greenwaveResponder answers POST /v1/readings: 200 when every reading was accepted, 207 when the ack lists
// rejected readings next to accepted ones and 422 when it lists only rejected ones; refusals of the whole
// request carry an errorBody.
type greenwaveResponder struct{}

func (greenwaveResponder) failure(w http.ResponseWriter, f *failure) { writeFailure(w, f) }

func (greenwaveResponder) ack(w http.ResponseWriter, _ request, ack *greenwavev1.BatchAck) {
	out, err := wire.EncodeAckJSON(ack)
	if err != nil {
		writeFailure(w, &failure{code: codes.Internal, httpStatus: http.StatusInternalServerError, message: err.Error()})
		return
	}
	code := http.StatusOK
	switch {
	case len(ack.GetRejected()) == 0:
	case ack.GetAcceptedReadings()+ack.GetAcceptedWeather() == 0:
		// Nothing accepted: the request as a whole failed, though it was well-formed. 422, so that clients
		// and proxies that look only at the status see a failure; the ack still lists every rejection.
		code = http.StatusUnprocessableEntity
	default:
		code = http.StatusMultiStatus
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(out)
}

// httpHandler serves one JSON ingestion route: authenticate, check the content type, read the body within
// COLLECTOR_MAX_MESSAGE_BYTES, decode, admit, process, and answer through resp.
func (s *Service) httpHandler(api string, contentTypes []string, decode decoder, resp responder) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := s.now()
		gw, f := s.authenticate(r.Header.Get("Authorization"), r.RemoteAddr, api)
		if f != nil {
			resp.failure(w, f)
			return
		}
		if !acceptable(r.Header.Get("Content-Type"), contentTypes) {
			w.Header().Set("Accept-Post", strings.Join(contentTypes, ", ")) // what to send instead (RFC 9110 15.5.16)
			resp.failure(w, s.invalid(api, "unsupported_media_type", http.StatusUnsupportedMediaType, codes.InvalidArgument, "Content-Type",
				"Content-Type %q is not accepted; send %v", clip.ID(r.Header.Get("Content-Type")), contentTypes))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.maxBytes)))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				resp.failure(w, s.invalid(api, "too_large", http.StatusRequestEntityTooLarge, codes.ResourceExhausted, "body",
					"the request body is larger than the maximum %d bytes", s.maxBytes))
				return
			}
			resp.failure(w, s.invalid(api, "malformed", http.StatusBadRequest, codes.InvalidArgument, "body", "read request body: %v", err))
			return
		}
		req, err := decode(r, body)
		if err != nil {
			field := "body"
			if fe, ok := errors.AsType[*wire.FieldError](err); ok && fe.Path != "" {
				field = fe.Path // "readings[3].speed_kmh"
			}
			resp.failure(w, s.invalid(api, "malformed", http.StatusBadRequest, codes.InvalidArgument, field, "%v", err))
			return
		}
		req.gateway = gw.ID
		release, f := s.admit(api)
		if f != nil {
			resp.failure(w, f)
			return
		}
		defer release()
		ack, err := s.process(server.HTTPPeerContext(r), api, gw, req.batchID, req.items, began, s.pub.Write)
		if err != nil {
			var f *failure
			if !errors.As(err, &f) {
				f = &failure{code: codes.Internal, httpStatus: http.StatusInternalServerError, message: err.Error()}
			}
			resp.failure(w, f)
			return
		}
		resp.ack(w, req, ack)
	})
}

func acceptable(header string, types []string) bool {
	mt, _, err := mime.ParseMediaType(header)
	if err != nil {
		return false
	}
	for _, t := range types {
		if mt == t {
			return true
		}
	}
	return false
}
