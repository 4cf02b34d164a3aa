package pin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/codicefiscale"
	"github.com/ponte-id/ponte/internal/ui"
	"github.com/ponte-id/ponte/storage"
)

// OperatorHandler is the JSON API of the operators (contact center, branch
// offices, reviewers of conversions). The core mounts it behind operator
// authentication, which puts the operator in the request context
// (idp.OperatorFrom); every action is audited under that operator.
//
//	POST /requests                      register a request (channel contact_center or sede;
//	                                    for sede with Accept: text/html, the printable envelope)
//	POST /revocations                   revoke a PIN (channel sede or contact_center)
//	GET  /callbacks                     the requests waiting for a callback
//	POST /callbacks                     {"request_id", "confirmed"}: the outcome of a callback
//	GET  /conversions                   the review queue
//	GET  /conversions/{id}/{form|document}
//	POST /conversions/{id}/review       {"approve": bool, "reason": "..."}
//	GET  /audit/{fiscal_number}         a citizen's lifecycle events
//	GET  /outbox/parked                 messages the dispatcher gave up on (no body, no secret)
//	POST /outbox/{id}/requeue           make a parked message due again
//	GET  /locks/{fiscal_number}         the PIN's throttle: failures, locked until when
//	POST /unlocks                       {"fiscal_number", "channel"}: lift the lock now
//
// Each procedure is its role's (idp.OperatorHasRole; 403 otherwise): a
// request, a revocation or an unlock on the sede channel is a branch-office
// operator's (operator-sede), on the contact_center channel a contact-center
// operator's (operator-contact-center); callbacks are the contact center's
// (they are phone calls); the conversion review queue is the branch offices'
// (they check identity documents); a citizen's audit trail, a lock's state
// and parked messages are open to both.
//
// No procedure acts on the operator's own PIN (ErrSelf): a request, an
// issue, a revocation, an unlock, a callback, a conversion review or a
// requeue about it answers 403, audited as operator_self_refused.
func (s *Service) OperatorHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /requests", s.opRequest)
	mux.HandleFunc("POST /revocations", s.opRevoke)
	mux.HandleFunc("GET /callbacks", only(s.opCallbacks, rolesCallbacks...))
	mux.HandleFunc("POST /callbacks", only(s.opCallback, rolesCallbacks...))
	mux.HandleFunc("GET /conversions", only(s.opConversions, rolesSede...))
	mux.HandleFunc("GET /conversions/{id}/{part}", only(s.opConversionDocument, rolesSede...))
	mux.HandleFunc("POST /conversions/{id}/review", only(s.opReview, rolesSede...))
	mux.HandleFunc("GET /audit/{cf}", only(s.opAudit, rolesBoth...))
	mux.HandleFunc("GET /outbox/parked", only(s.opParked, rolesBoth...))
	mux.HandleFunc("POST /outbox/{id}/requeue", only(s.opRequeue, rolesBoth...))
	mux.HandleFunc("GET /locks/{cf}", only(s.opLock, rolesBoth...))
	mux.HandleFunc("POST /unlocks", s.opUnlock)
	return http.MaxBytesHandler(requireOperator(mux), 64<<10)
}

// Who may do what, beyond the channel-bound procedures.
var (
	rolesBoth      = []string{idp.RoleOperatorSede, idp.RoleOperatorContactCenter}
	rolesSede      = []string{idp.RoleOperatorSede}
	rolesCallbacks = []string{idp.RoleOperatorContactCenter}
)

// channelRole is the role that acts on a channel.
func channelRole(channel string) string {
	if channel == ChannelBranch {
		return idp.RoleOperatorSede
	}
	return idp.RoleOperatorContactCenter
}

// allowed answers 403 and returns false unless the operator holds one of roles.
func allowed(w http.ResponseWriter, r *http.Request, roles ...string) bool {
	for _, role := range roles {
		if idp.OperatorHasRole(r.Context(), role) {
			return true
		}
	}
	writeError(w, http.StatusForbidden, "this procedure needs the role "+strings.Join(roles, " or "), nil)
	return false
}

// only wraps a handler open to roles.
func only(h http.HandlerFunc, roles ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if allowed(w, r, roles...) {
			h(w, r)
		}
	}
}

func requireOperator(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if idp.OperatorFrom(r.Context()) == "" {
			writeError(w, http.StatusUnauthorized, "operator authentication required", nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// opRequestBody is a request registered by an operator.
type opRequestBody struct {
	Channel string `json:"channel"`
	// Document is the identity document the operator checked (sede, MV35).
	Document string  `json:"document"`
	Request  Request `json:"request"`
}

func (s *Service) opRequest(w http.ResponseWriter, r *http.Request) {
	var body opRequestBody
	if !readJSON(w, r, &body) {
		return
	}
	if (body.Channel == ChannelContactCenter || body.Channel == ChannelBranch) && !allowed(w, r, channelRole(body.Channel)) {
		return
	}
	op := idp.OperatorFrom(r.Context())
	var (
		out map[string]string
		err error
	)
	switch body.Channel {
	case ChannelContactCenter:
		var first string
		first, err = s.RequestPIN(r.Context(), body.Request, ChannelContactCenter, op, "")
		out = map[string]string{"first_half": first}
		var pending *PendingError
		if errors.As(err, &pending) {
			writeJSONBody(w, http.StatusAccepted, map[string]string{"status": "callback", "request_id": pending.RequestID})
			return
		}
	case ChannelBranch:
		var pin16 string
		pin16, err = s.IssueAtBranch(r.Context(), body.Request, op, body.Document)
		if err == nil && acceptsHTML(r) {
			s.printEnvelope(w, r, body.Request, op, pin16)
			return
		}
		out = map[string]string{"pin": pin16}
	default:
		writeError(w, http.StatusBadRequest, "channel must be contact_center or sede", nil)
		return
	}
	switch {
	case err == nil:
		w.Header().Set("Cache-Control", "no-store")
		writeJSONBody(w, http.StatusCreated, out)
	case errors.Is(err, ErrInvalidRequest):
		writeError(w, http.StatusUnprocessableEntity, "invalid request data", fieldErrors(err))
	case errors.Is(err, ErrPolicy), errors.Is(err, ErrExists):
		writeError(w, http.StatusConflict, err.Error(), nil)
	default:
		s.opFailed(w, r, err)
	}
}

func (s *Service) opRevoke(w http.ResponseWriter, r *http.Request) {
	var body struct {
		FiscalNumber string `json:"fiscal_number"`
		Channel      string `json:"channel"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	if body.Channel != ChannelBranch && body.Channel != ChannelContactCenter {
		writeError(w, http.StatusBadRequest, "channel must be sede or contact_center", nil)
		return
	}
	if !allowed(w, r, channelRole(body.Channel)) {
		return
	}
	err := s.RevokeByOperator(r.Context(), body.FiscalNumber, body.Channel, idp.OperatorFrom(r.Context()))
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, storage.ErrNotFound):
		writeError(w, http.StatusNotFound, "no PIN for that codice fiscale", nil)
	default:
		s.opFailed(w, r, err)
	}
}

// lockItem is a PIN's throttle as an operator sees it.
type lockItem struct {
	FiscalNumber string `json:"fiscal_number"`
	Lock
}

func (s *Service) opLock(w http.ResponseWriter, r *http.Request) {
	cf := r.PathValue("cf")
	l, err := s.LockState(r.Context(), cf)
	switch {
	case err == nil:
		writeJSONBody(w, http.StatusOK, lockItem{FiscalNumber: codicefiscale.Normalize(cf), Lock: l})
	case errors.Is(err, storage.ErrNotFound):
		writeError(w, http.StatusNotFound, "no PIN for that codice fiscale", nil)
	default:
		s.opFailed(w, r, err)
	}
}

// opUnlock lifts a PIN's lock for a citizen the operator has identified; it
// answers the state before.
func (s *Service) opUnlock(w http.ResponseWriter, r *http.Request) {
	var body struct {
		FiscalNumber string `json:"fiscal_number"`
		Channel      string `json:"channel"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	if body.Channel != ChannelBranch && body.Channel != ChannelContactCenter {
		writeError(w, http.StatusBadRequest, "channel must be sede or contact_center", nil)
		return
	}
	if !allowed(w, r, channelRole(body.Channel)) {
		return
	}
	before, err := s.Unlock(r.Context(), body.FiscalNumber, body.Channel, idp.OperatorFrom(r.Context()))
	switch {
	case err == nil:
		writeJSONBody(w, http.StatusOK, map[string]any{"fiscal_number": codicefiscale.Normalize(body.FiscalNumber), "before": before})
	case errors.Is(err, storage.ErrNotFound):
		writeError(w, http.StatusNotFound, "no PIN for that codice fiscale", nil)
	default:
		s.opFailed(w, r, err)
	}
}

// callbackItem is a request waiting for a callback, as an operator needs it:
// what the request asks and what is on record, to call and to compare.
type callbackItem struct {
	ID           string        `json:"id"`
	FiscalNumber string        `json:"fiscal_number"`
	Channel      string        `json:"channel"`
	CreatedAt    time.Time     `json:"created_at"`
	Requested    callbackData  `json:"requested"`
	OnRecord     *callbackData `json:"on_record,omitempty"`
	FirstHalfVia string        `json:"first_half_via"`
	Differs      []string      `json:"differs,omitempty"`
	// Call is the number to call back: one on record when there is a record
	// (the request's own number is the applicant's word, not a verified
	// contact), the request's preferred phone otherwise.
	Call string `json:"call"`
	// CallNote says which of the two Call is.
	CallNote string `json:"call_note"`
}

// callbackData is the identity, residence and contacts of a request or a record.
type callbackData struct {
	GivenName      string          `json:"given_name"`
	FamilyName     string          `json:"family_name"`
	BirthPlace     string          `json:"birth_place"`
	Residence      storage.Address `json:"residence"`
	Mobile         string          `json:"mobile,omitempty"`
	Phone          string          `json:"phone,omitempty"`
	Email          string          `json:"email,omitempty"`
	PEC            string          `json:"pec,omitempty"`
	PreferredPhone string          `json:"preferred_phone,omitempty"`
	CallbackSlot   string          `json:"callback_slot,omitempty"`
}

func callbackDataOf(a storage.PINAccount) callbackData {
	return callbackData{GivenName: a.GivenName, FamilyName: a.FamilyName, BirthPlace: a.BirthPlace, Residence: a.Residence,
		Mobile: a.Mobile, Phone: a.Phone, Email: a.Email, PEC: a.PEC, PreferredPhone: a.PreferredPhone, CallbackSlot: a.CallbackSlot}
}

// opCallbacks lists the requests waiting for a callback, a page at a time
// (?offset=N; the Link header names the next page when there is one).
func (s *Service) opCallbacks(w http.ResponseWriter, r *http.Request) {
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	out, more, err := s.callbackItems(r.Context(), offset)
	if err != nil {
		s.opFailed(w, r, err)
		return
	}
	if more {
		w.Header().Set("Link", fmt.Sprintf(`<?offset=%d>; rel="next"`, max(offset, 0)+waitingPage))
	}
	writeJSONBody(w, http.StatusOK, out)
}

// callbackItems is a page of the requests waiting for a callback, with what
// is on record to compare and the number to call; more says whether another
// page follows.
func (s *Service) callbackItems(ctx context.Context, offset int) (out []callbackItem, more bool, err error) {
	list, err := s.WaitingRequests(ctx, offset)
	if err != nil {
		return nil, false, err
	}
	out = make([]callbackItem, 0, len(list))
	for _, pr := range list {
		item := callbackItem{ID: pr.ID, FiscalNumber: pr.FiscalNumber, Channel: pr.Channel, CreatedAt: pr.CreatedAt,
			Requested: callbackDataOf(pr.Proposed), FirstHalfVia: pr.FirstHalfVia,
			Call: pr.Proposed.PreferredPhone, CallNote: "the request's preferred phone: no PIN record to call instead; verify the identity on the call"}
		if a, err := s.store.GetPINAccount(ctx, pr.FiscalNumber); err == nil {
			rec := callbackDataOf(a)
			item.OnRecord = &rec
			item.Differs = differences(a, pr.Proposed)
			for _, phone := range []string{a.PreferredPhone, a.Mobile, a.Phone} {
				if phone != "" {
					item.Call, item.CallNote = phone, "a phone on record: the request's own number is only the applicant's word"
					break
				}
			}
		}
		out = append(out, item)
	}
	return out, len(list) == waitingPage, nil
}

func (s *Service) opCallback(w http.ResponseWriter, r *http.Request) {
	var body struct {
		RequestID string `json:"request_id"`
		Confirmed bool   `json:"confirmed"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	err := s.ConfirmCallback(r.Context(), body.RequestID, idp.OperatorFrom(r.Context()), body.Confirmed)
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, ErrNotWaiting):
		writeError(w, http.StatusNotFound, err.Error(), nil)
	default:
		s.opFailed(w, r, err)
	}
}

// conversionItem is a queue entry, without the documents.
type conversionItem struct {
	ID           string    `json:"id"`
	FiscalNumber string    `json:"fiscal_number"`
	FormType     string    `json:"form_type"`
	DocumentType string    `json:"document_type"`
	CreatedAt    time.Time `json:"created_at"`
}

func (s *Service) opConversions(w http.ResponseWriter, r *http.Request) {
	list, err := s.PendingConversions(r.Context())
	if err != nil {
		s.opFailed(w, r, err)
		return
	}
	out := make([]conversionItem, 0, len(list))
	for _, c := range list {
		out = append(out, conversionItem{ID: c.ID, FiscalNumber: c.FiscalNumber, FormType: c.FormType, DocumentType: c.DocumentType, CreatedAt: c.CreatedAt})
	}
	writeJSONBody(w, http.StatusOK, out)
}

func (s *Service) opConversionDocument(w http.ResponseWriter, r *http.Request) {
	part := r.PathValue("part")
	if part != "form" && part != "document" {
		writeError(w, http.StatusNotFound, "no such part", nil)
		return
	}
	form, doc, err := s.ConversionDocuments(r.Context(), r.PathValue("id"))
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such conversion", nil)
		return
	}
	if err != nil {
		s.opFailed(w, r, err)
		return
	}
	data := form
	if part == "document" {
		data = doc
	}
	h := w.Header()
	h.Set("Content-Type", sniff(data))
	h.Set("Content-Disposition", "attachment")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(data)
}

func (s *Service) opReview(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Approve bool   `json:"approve"`
		Reason  string `json:"reason"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	err := s.ReviewConversion(r.Context(), r.PathValue("id"), idp.OperatorFrom(r.Context()), body.Approve, body.Reason)
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, storage.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such conversion", nil)
	case errors.Is(err, ErrSelf):
		s.opFailed(w, r, err)
	default:
		writeError(w, http.StatusConflict, err.Error(), nil)
	}
}

func (s *Service) opAudit(w http.ResponseWriter, r *http.Request) {
	events, err := s.store.ListAudit(r.Context(), r.PathValue("cf"))
	if err != nil {
		s.opFailed(w, r, err)
		return
	}
	writeJSONBody(w, http.StatusOK, events)
}

// opFailed answers an error of a procedure: ErrSelf 403 (refused and
// audited by the service), the database unavailable 503 with Retry-After,
// anything else 500, logged.
func (s *Service) opFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrSelf) {
		writeError(w, http.StatusForbidden, errSelfText, nil)
		return
	}
	if errors.Is(err, storage.ErrUnavailable) {
		s.log.WarnContext(r.Context(), "operator API: database unavailable", "path", r.URL.Path, "err", err)
		ui.ComeBack(w, r, storage.RetryAfter, ui.Unavailable)
		return
	}
	s.log.ErrorContext(r.Context(), "operator API failed", "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal error", nil)
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "malformed JSON: "+err.Error(), nil)
		return false
	}
	return true
}

func writeError(w http.ResponseWriter, status int, msg string, fields []string) {
	body := map[string]any{"error": msg}
	if len(fields) > 0 {
		body["fields"] = fields
	}
	writeJSONBody(w, status, body)
}

func writeJSONBody(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// envelopeView is the printed sheet of an MV35 issue.
type envelopeView struct {
	Request
	Operator, Date string
	// Groups is the PIN in blocks of four, to read and copy without error.
	Groups []string
}

// printEnvelope answers an MV35 issue with the sheet printed for the sealed
// envelope: the 16 characters exist only in this response, never stored.
func (s *Service) printEnvelope(w http.ResponseWriter, r *http.Request, req Request, operator, pin16 string) {
	v := envelopeView{Request: req.normalize(), Operator: operator, Date: s.now().Format("02/01/2006")}
	for i := 0; i < len(pin16); i += 4 {
		v.Groups = append(v.Groups, pin16[i:min(i+4, len(pin16))])
	}
	var buf bytes.Buffer
	if err := envelope.Execute(&buf, v); err != nil {
		s.opFailed(w, r, err)
		return
	}
	ui.Write(w, http.StatusCreated, buf.Bytes())
}

// acceptsHTML says whether the client asked for an HTML answer.
func acceptsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}
