package collector

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/greenwave-city/greenwave/pkg/clip"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// ngsiContentTypes are the request types of the NGSI-LD routes: JSON with the @context in a Link header, or
// JSON-LD with it in the body (ETSI GS CIM 009, 6.3.5). The collector does not expand terms either way.
var ngsiContentTypes = []string{"application/json", "application/ld+json"}

// NGSI-LD error types (ETSI GS CIM 009, 5.5.2). Refusals the specification has no type for (401, 403, 413, 415,
// 429, 503) use "about:blank" with the HTTP status text as title, as RFC 9457 prescribes.
const (
	problemInvalidRequest  = "https://uri.etsi.org/ngsi-ld/errors/InvalidRequest"
	problemBadRequestData  = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
	problemInternalError   = "https://uri.etsi.org/ngsi-ld/errors/InternalError"
	problemAboutBlank      = "about:blank"
	contentTypeProblemJSON = "application/problem+json"
)

// problemDetails is an NGSI-LD error body (RFC 9457 ProblemDetails). Greenwave adds extension members: the
// gRPC code name and field violations of a whole-request refusal (as in its errorBody), the reject reason and
// attribute path of one entity's error, the retry delay, and for a refused notification the entity errors.
type problemDetails struct {
	Type            string             `json:"type"`
	Title           string             `json:"title"`
	Status          int                `json:"status"`
	Detail          string             `json:"detail"`
	Code            string             `json:"code,omitempty"`
	FieldViolations []fieldViolation   `json:"field_violations,omitempty"`
	RetryAfterS     float64            `json:"retry_after_s,omitempty"`
	Reason          string             `json:"reason,omitempty"`
	Field           string             `json:"field,omitempty"`
	Errors          []batchEntityError `json:"errors,omitempty"`
}

// batchOperationResult is the NGSI-LD BatchOperationResult (ETSI GS CIM 009, 5.2.16): the ids of the entities
// taken and an error per refused entity.
type batchOperationResult struct {
	Success []string           `json:"success"`
	Errors  []batchEntityError `json:"errors"`
}

// batchEntityError is the NGSI-LD BatchEntityError (5.2.17).
type batchEntityError struct {
	EntityID string         `json:"entityId"`
	Error    problemDetails `json:"error"`
}

// problemOf renders a whole-request refusal as ProblemDetails. A body that cannot be read as entities is an
// InvalidRequest; a readable one with unacceptable content (empty, a bad batch id) is BadRequestData.
func problemOf(f *failure) problemDetails {
	p := problemDetails{Type: problemAboutBlank, Title: http.StatusText(f.httpStatus), Status: f.httpStatus, Detail: f.message,
		Code: grpcCodeName(f.code), FieldViolations: f.fields}
	switch {
	case f.httpStatus == http.StatusBadRequest && f.label == "malformed":
		p.Type, p.Title = problemInvalidRequest, "Invalid request"
	case f.httpStatus == http.StatusBadRequest:
		p.Type, p.Title = problemBadRequestData, "Bad request data"
	case f.httpStatus == http.StatusInternalServerError:
		p.Type, p.Title = problemInternalError, "Internal error"
	}
	if f.retryAfter > 0 {
		p.RetryAfterS = math.Ceil(f.retryAfter.Seconds())
	}
	return p
}

// writeProblem answers a whole-request refusal as application/problem+json, with the same Retry-After and
// WWW-Authenticate headers as Greenwave's own error bodies.
func writeProblem(w http.ResponseWriter, f *failure) {
	p := problemOf(f)
	if p.RetryAfterS > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(p.RetryAfterS)))
	}
	if f.httpStatus == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="greenwave-collector"`)
	}
	writeJSONAs(w, contentTypeProblemJSON, f.httpStatus, p)
}

func writeJSONAs(w http.ResponseWriter, contentType string, code int, v any) {
	out, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(code)
	_, _ = w.Write(out)
}

// batchResult sorts a processed NGSI-LD request's entities into taken ids and entity errors, in request order.
// Entity ids are echoed as sent, cut to clip.MaxID bytes.
func batchResult(req request, ack *greenwavev1.BatchAck) batchOperationResult {
	res := batchOperationResult{Success: []string{}, Errors: []batchEntityError{}}
	rejected := make(map[int]bool, len(ack.GetRejected()))
	for _, r := range ack.GetRejected() {
		rejected[int(r.GetIndex())] = true
		status, typ, title := http.StatusBadRequest, problemBadRequestData, "Bad request data"
		if r.GetReason() == greenwavev1.RejectReason_REJECT_REASON_PERMISSION_DENIED {
			status, typ, title = http.StatusForbidden, problemAboutBlank, http.StatusText(http.StatusForbidden)
		}
		res.Errors = append(res.Errors, batchEntityError{EntityID: r.GetReadingId(), Error: problemDetails{
			Type: typ, Title: title, Status: status, Detail: r.GetDescription(), Reason: r.GetReason().String(), Field: r.GetField(),
		}})
	}
	for _, it := range req.items {
		if !rejected[it.index] {
			res.Success = append(res.Success, clip.ID(it.id))
		}
	}
	return res
}

// upsertResponder answers POST /ngsi-ld/v1/entityOperations/upsert as ETSI GS CIM 009 (6.15.3.1) asks of a
// batch upsert: 201 Created with the array of entity ids when every entity was taken; 207 Multi-Status with a
// BatchOperationResult when some or none were; whole-request refusals as application/problem+json.
//
// The collector keeps no entities, so it cannot tell an update from a creation: every accepted entity becomes a
// new reading on the topic, which is what 201 says. It never answers 204 (all entities existed and were
// updated); NGSI-LD clients treat both as success.
type upsertResponder struct{}

func (upsertResponder) failure(w http.ResponseWriter, f *failure) { writeProblem(w, f) }

func (upsertResponder) ack(w http.ResponseWriter, req request, ack *greenwavev1.BatchAck) {
	if id := ack.GetBatchId(); id != "" {
		w.Header().Set("Greenwave-Batch-Id", id)
	}
	res := batchResult(req, ack)
	if len(res.Errors) == 0 {
		writeJSONAs(w, "application/json", http.StatusCreated, res.Success)
		return
	}
	writeJSONAs(w, "application/json", http.StatusMultiStatus, res)
}

// notifyResponder answers POST /ngsi-ld/v1/notify, the endpoint of a context broker's subscription. The broker
// only records whether a notification was delivered (2xx) or failed (the subscription's timesFailed and
// lastFailure), and does not resend either way, so:
//   - every entity accepted: 204 No Content;
//   - some accepted: 200 with the BatchOperationResult (the broker ignores the body; it is there for whoever
//     replays the notification by hand), the rejected entities counted in rejected_total and logged;
//   - none accepted: 400 BadRequestData as problem+json with the entity errors, so the failure shows in the
//     subscription's status on the broker;
//   - a refused request: problem+json, as on the upsert route.
type notifyResponder struct {
	log *zap.Logger
}

func (notifyResponder) failure(w http.ResponseWriter, f *failure) { writeProblem(w, f) }

func (n notifyResponder) ack(w http.ResponseWriter, req request, ack *greenwavev1.BatchAck) {
	if len(ack.GetRejected()) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	res := batchResult(req, ack)
	first := res.Errors[0]
	n.log.Warn("notification entities rejected", zap.String("gateway", req.gateway), zap.String("subscription", req.subscription),
		zap.String("notification", req.batchID), zap.Int("rejected", len(res.Errors)), zap.Int("accepted", len(res.Success)),
		zap.String("first_field", first.Error.Field), zap.String("first_error", first.Error.Detail))
	if len(res.Success) > 0 {
		writeJSONAs(w, "application/json", http.StatusOK, res)
		return
	}
	writeJSONAs(w, contentTypeProblemJSON, http.StatusBadRequest, problemDetails{
		Type: problemBadRequestData, Title: "Bad request data", Status: http.StatusBadRequest,
		Detail: fmt.Sprintf("none of the %d entities of the notification was accepted", len(res.Errors)), Errors: res.Errors,
	})
}
