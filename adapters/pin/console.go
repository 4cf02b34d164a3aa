package pin

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/codicefiscale"
	"github.com/ponte-id/ponte/internal/ui"
	"github.com/ponte-id/ponte/storage"
)

// consoleTemplates are the operators' pages in the back office, rendered
// inside the console's layout.
var consoleTemplates = template.Must(template.New("console.html").Funcs(template.FuncMap{
	// lookupOnly is the page's data for the look-up form, empty.
	"lookupOnly": func(v conView) conView { v.View = nil; return v },
}).ParseFS(templateFS, "templates/console.html", "templates/partials.html"))

// recentEvents is how many of a citizen's latest PIN events the state page shows.
const recentEvents = 20

// ConsoleSection is the PIN procedures' part of the back-office console
// (mounted at /console/pin/): a citizen's PIN state and lock, with the lock
// lifted on request, and the conversion review queue. Every page checks the
// role of its procedure as the operator API does (operator-sede,
// operator-contact-center) and calls the same service functions, so the
// audit trail names the staff member who acted.
//
//	GET  /                          look up a citizen (codice fiscale)
//	POST /citizen                   the citizen's PIN state, lock and recent events
//	POST /unlock                    lift the lock (channel of the staff member's role)
//	GET  /conversions               the review queue (operator-sede)
//	GET  /conversions/{id}          one request, its documents, approve or reject
//	GET  /conversions/{id}/{part}   the form or the identity document, as uploaded
//	POST /conversions/{id}/review   approve, or reject with a reason
//	GET  /issue                     the MV35 form (operator-sede)
//	POST /issue                     issue a PIN at the branch office: the printable envelope sheet
//	GET  /request                   a request by phone (operator-contact-center)
//	POST /request                   register it: the first half to read out, or a callback to make
//	POST /revoke                    revoke a PIN, after a confirmation (channel of the role)
//	GET  /parked                    messages the dispatcher gave up on (no body, no secret)
//	POST /parked/{id}/requeue       make one due again
//	GET  /callbacks                 requests waiting for a callback (operator-contact-center)
//	POST /callbacks/{id}            the outcome of the call: confirmed or refused
//
// Codici fiscali travel only in POST bodies, never in addresses (which end
// up in logs and browser history).
func (s *Service) ConsoleSection() idp.ConsoleSection {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.conHome)
	mux.HandleFunc("POST /citizen", s.conCitizen)
	mux.HandleFunc("POST /unlock", s.conUnlock)
	mux.HandleFunc("GET /conversions", s.conConversions)
	mux.HandleFunc("GET /conversions/{id}", s.conConversion)
	mux.HandleFunc("GET /conversions/{id}/{part}", s.conConversionDocument)
	mux.HandleFunc("POST /conversions/{id}/review", s.conReview)
	mux.HandleFunc("GET /issue", s.conDeskForm(branchDesk))
	mux.HandleFunc("POST /issue", s.conDesk(branchDesk))
	mux.HandleFunc("GET /request", s.conDeskForm(contactDesk))
	mux.HandleFunc("POST /request", s.conDesk(contactDesk))
	mux.HandleFunc("POST /revoke", s.conRevoke)
	mux.HandleFunc("GET /parked", s.conParked)
	mux.HandleFunc("POST /parked/{id}/requeue", s.conRequeue)
	mux.HandleFunc("GET /callbacks", s.conCallbacks)
	mux.HandleFunc("POST /callbacks/{id}", s.conCallback)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.conMessage(w, r, http.StatusNotFound, "notfound")
	})
	return idp.ConsoleSection{
		Handler: mux,
		Title:   map[string]string{"it": consoleText["it"]["section"], "en": consoleText["en"]["section"]},
		Roles:   rolesBoth,
	}
}

// ConsoleSection offers the PIN procedures' console pages (idp.ConsolePages).
func (a *authenticator) ConsoleSection() idp.ConsoleSection { return a.s.ConsoleSection() }

// conView is what every console page's template reads.
type conView struct {
	T                   map[string]string
	CSRF                string
	Sede, ContactCenter bool
	View                any
}

// conRender renders the named template inside the console's frame.
func (s *Service) conRender(w http.ResponseWriter, r *http.Request, status int, name, title string, v any) {
	f, ok := idp.ConsoleFrameFrom(r.Context())
	if !ok {
		http.Error(w, "console only", http.StatusNotFound)
		return
	}
	t := consoleText[f.Lang]
	if t == nil {
		t = consoleText["it"]
	}
	var buf bytes.Buffer
	err := consoleTemplates.ExecuteTemplate(&buf, name, conView{T: t, CSRF: f.CSRF, Sede: idp.OperatorHasRole(r.Context(), idp.RoleOperatorSede),
		ContactCenter: idp.OperatorHasRole(r.Context(), idp.RoleOperatorContactCenter), View: v})
	if err != nil {
		s.log.ErrorContext(r.Context(), "pin console: rendering failed", "page", name, "err", err)
		http.Error(w, "Errore interno / Internal error", http.StatusInternalServerError)
		return
	}
	f.Render(w, r, status, t["title_"+title], template.HTML(buf.String()))
}

// conMessage is a page with a title and a sentence (errors, refusals).
func (s *Service) conMessage(w http.ResponseWriter, r *http.Request, status int, key string) {
	s.conRender(w, r, status, "message", key, key)
}

// conAllowed renders a 403 page and returns false unless the staff member
// holds one of roles.
func (s *Service) conAllowed(w http.ResponseWriter, r *http.Request, roles ...string) bool {
	if slices.ContainsFunc(roles, func(role string) bool { return idp.OperatorHasRole(r.Context(), role) }) {
		return true
	}
	s.conMessage(w, r, http.StatusForbidden, "forbidden")
	return false
}

// conSelf renders a 403 page and returns true when cf is the staff member's
// own (ErrSelf, audited): no one unlocks, revokes, issues or converts their
// own PIN.
func (s *Service) conSelf(w http.ResponseWriter, r *http.Request, cf string) bool {
	if s.refuseSelf(r.Context(), cf, "", idp.OperatorFrom(r.Context()), "console") == nil {
		return false
	}
	s.conMessage(w, r, http.StatusForbidden, "self")
	return true
}

// conFailed answers an error of a procedure: ErrSelf with its page (403),
// the database unavailable with the come-back page (503), anything else
// 500, logged.
func (s *Service) conFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrSelf) {
		s.conMessage(w, r, http.StatusForbidden, "self")
		return
	}
	if errors.Is(err, storage.ErrUnavailable) {
		s.log.WarnContext(r.Context(), "pin console: database unavailable", "path", r.URL.Path, "err", err)
		ui.ComeBack(w, r, storage.RetryAfter, ui.Unavailable)
		return
	}
	s.log.ErrorContext(r.Context(), "pin console failed", "path", r.URL.Path, "err", err)
	s.conMessage(w, r, http.StatusInternalServerError, "error")
}

// consoleTime formats a time for staff, in Italy's clock.
func consoleTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(italy).Format("02/01/2006 15:04")
}

var italy = func() *time.Location {
	l, err := time.LoadLocation("Europe/Rome")
	if err != nil {
		return time.FixedZone("CET", 3600)
	}
	return l
}()

func (s *Service) conHome(w http.ResponseWriter, r *http.Request) {
	if !s.conAllowed(w, r, rolesBoth...) {
		return
	}
	s.conRender(w, r, http.StatusOK, "home", "home", nil)
}

// citizenView is a citizen's PIN as an operator sees it: never the PIN.
type citizenView struct {
	FiscalNumber, Status string
	Dispositivo          bool
	Lock                 Lock
	LastFailure, Until   string
	Delay                string
	Events               []eventLine
	// Channels are the channels on which this staff member may lift the lock.
	Channels []string
	// Lifted says the lock was lifted by this request; Revoked the PIN revoked.
	Lifted, Revoked bool
}

// eventLine is an audit event for the page.
type eventLine struct {
	When string
	storage.AuditEvent
}

// citizen reads what the state page shows; ErrNotFound when cf has no PIN.
func (s *Service) citizen(r *http.Request, cf string) (citizenView, error) {
	cf = codicefiscale.Normalize(cf)
	a, err := s.store.GetPINAccount(r.Context(), cf)
	if err != nil {
		return citizenView{}, err
	}
	l, err := s.LockState(r.Context(), cf)
	if err != nil {
		return citizenView{}, err
	}
	events, err := s.store.ListAudit(r.Context(), cf)
	if err != nil {
		return citizenView{}, err
	}
	v := citizenView{FiscalNumber: cf, Status: string(a.Status), Dispositivo: a.Dispositivo, Lock: l,
		LastFailure: consoleTime(l.LastFailure), Until: consoleTime(l.Until), Delay: consoleTime(l.DelayUntil)}
	for i := len(events) - 1; i >= 0 && len(v.Events) < recentEvents; i-- {
		v.Events = append(v.Events, eventLine{When: consoleTime(events[i].At), AuditEvent: events[i]})
	}
	for _, ch := range []string{ChannelBranch, ChannelContactCenter} {
		if idp.OperatorHasRole(r.Context(), channelRole(ch)) {
			v.Channels = append(v.Channels, ch)
		}
	}
	return v, nil
}

// lookupView is the look-up form with what was typed and what is wrong.
type lookupView struct {
	FiscalNumber, Error string
}

func (s *Service) conCitizen(w http.ResponseWriter, r *http.Request) {
	if !s.conAllowed(w, r, rolesBoth...) {
		return
	}
	s.showCitizen(w, r, r.PostFormValue("fiscal_number"), false)
}

// showCitizen answers the state page, or the look-up form with the reason
// there is none.
func (s *Service) showCitizen(w http.ResponseWriter, r *http.Request, cf string, lifted bool) {
	if !codicefiscale.Valid(codicefiscale.Normalize(cf)) {
		s.conRender(w, r, http.StatusBadRequest, "home", "home", lookupView{FiscalNumber: cf, Error: "invalid_cf"})
		return
	}
	v, err := s.citizen(r, cf)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		s.conRender(w, r, http.StatusNotFound, "home", "home", lookupView{FiscalNumber: cf, Error: "no_pin"})
	case err != nil:
		s.conFailed(w, r, err)
	default:
		v.Lifted = lifted
		s.conRender(w, r, http.StatusOK, "citizen", "citizen", v)
	}
}

// conUnlock lifts the lock on the channel of the staff member's role
// (Service.Unlock audits it under their codice fiscale), then shows the state.
func (s *Service) conUnlock(w http.ResponseWriter, r *http.Request) {
	channel := r.PostFormValue("channel")
	if channel != ChannelBranch && channel != ChannelContactCenter {
		s.conMessage(w, r, http.StatusBadRequest, "bad_request")
		return
	}
	if !s.conAllowed(w, r, channelRole(channel)) {
		return
	}
	cf := r.PostFormValue("fiscal_number")
	if !codicefiscale.Valid(codicefiscale.Normalize(cf)) {
		s.conMessage(w, r, http.StatusBadRequest, "bad_request")
		return
	}
	if s.conSelf(w, r, cf) {
		return
	}
	_, err := s.Unlock(r.Context(), cf, channel, idp.OperatorFrom(r.Context()))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		s.conRender(w, r, http.StatusNotFound, "home", "home", lookupView{FiscalNumber: cf, Error: "no_pin"})
	case err != nil:
		s.conFailed(w, r, err)
	default:
		s.showCitizen(w, r, cf, true)
	}
}

// conversionLine is a queue entry for the pages.
type conversionLine struct {
	conversionItem
	When string
}

// queueView is the review queue, with the outcome of the last review.
type queueView struct {
	Items []conversionLine
	Done  string
}

func (s *Service) conConversions(w http.ResponseWriter, r *http.Request) {
	if s.conAllowed(w, r, rolesSede...) {
		s.showQueue(w, r, http.StatusOK, "")
	}
}

func (s *Service) showQueue(w http.ResponseWriter, r *http.Request, status int, done string) {
	list, err := s.PendingConversions(r.Context())
	if err != nil {
		s.conFailed(w, r, err)
		return
	}
	v := queueView{Done: done}
	for _, c := range list {
		v.Items = append(v.Items, conversionLine{When: consoleTime(c.CreatedAt),
			conversionItem: conversionItem{ID: c.ID, FiscalNumber: c.FiscalNumber, FormType: c.FormType, DocumentType: c.DocumentType, CreatedAt: c.CreatedAt}})
	}
	s.conRender(w, r, status, "queue", "queue", v)
}

// reviewView is one request of the queue and the review form.
type reviewView struct {
	conversionLine
	Reason, Error string
}

func (s *Service) conConversion(w http.ResponseWriter, r *http.Request) {
	if !s.conAllowed(w, r, rolesSede...) {
		return
	}
	s.showConversion(w, r, http.StatusOK, reviewView{})
}

func (s *Service) showConversion(w http.ResponseWriter, r *http.Request, status int, v reviewView) {
	c, err := s.store.GetConversion(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, storage.ErrNotFound) || (err == nil && c.Status != storage.ConversionPending):
		s.conMessage(w, r, http.StatusNotFound, "notfound")
		return
	case err != nil:
		s.conFailed(w, r, err)
		return
	}
	v.conversionLine = conversionLine{When: consoleTime(c.CreatedAt),
		conversionItem: conversionItem{ID: c.ID, FiscalNumber: c.FiscalNumber, FormType: c.FormType, DocumentType: c.DocumentType, CreatedAt: c.CreatedAt}}
	s.conRender(w, r, status, "review", "review", v)
}

// conConversionDocument sends an uploaded file as an attachment (never shown
// inline: it is the citizen's upload), typed by its content.
func (s *Service) conConversionDocument(w http.ResponseWriter, r *http.Request) {
	if !s.conAllowed(w, r, rolesSede...) {
		return
	}
	part := r.PathValue("part")
	if part != "form" && part != "document" {
		s.conMessage(w, r, http.StatusNotFound, "notfound")
		return
	}
	form, doc, err := s.ConversionDocuments(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		s.conMessage(w, r, http.StatusNotFound, "notfound")
		return
	case err != nil:
		s.conFailed(w, r, err)
		return
	}
	data := form
	if part == "document" {
		data = doc
	}
	h := w.Header()
	h.Set("Content-Type", sniff(data))
	h.Set("Content-Disposition", `attachment; filename="`+part+extension(sniff(data))+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(data)
}

// extension is a file name's extension for a sniffed type.
func extension(ctype string) string {
	switch ctype {
	case "application/pdf":
		return ".pdf"
	case "image/jpeg":
		return ".jpg"
	case "image/png":
		return ".png"
	}
	return ".bin"
}

// conReview approves, or rejects with a reason, through ReviewConversion
// (audited under the staff member), then shows the queue.
func (s *Service) conReview(w http.ResponseWriter, r *http.Request) {
	if !s.conAllowed(w, r, rolesSede...) {
		return
	}
	decision := r.PostFormValue("decision")
	reason := r.PostFormValue("reason")
	if decision != "approve" && decision != "reject" {
		s.conMessage(w, r, http.StatusBadRequest, "bad_request")
		return
	}
	if decision == "reject" && reason == "" {
		s.showConversion(w, r, http.StatusBadRequest, reviewView{Error: "reason_needed"})
		return
	}
	if len(reason) > 500 {
		s.showConversion(w, r, http.StatusBadRequest, reviewView{Reason: reason, Error: "reason_long"})
		return
	}
	c, err := s.store.GetConversion(r.Context(), r.PathValue("id"))
	if errors.Is(err, storage.ErrNotFound) {
		s.conMessage(w, r, http.StatusNotFound, "notfound")
		return
	}
	if err != nil {
		s.conFailed(w, r, err)
		return
	}
	if s.conSelf(w, r, c.FiscalNumber) {
		return
	}
	if c.Status != storage.ConversionPending {
		s.conMessage(w, r, http.StatusConflict, "conflict")
		return
	}
	err = s.ReviewConversion(r.Context(), c.ID, idp.OperatorFrom(r.Context()), decision == "approve", reason)
	if err == nil {
		s.showQueue(w, r, http.StatusOK, decision+"d")
		return
	}
	if errors.Is(err, ErrReviewed) {
		// Reviewed meanwhile by a colleague.
		s.conMessage(w, r, http.StatusConflict, "conflict")
		return
	}
	s.conFailed(w, r, err)
}

// parkedView is the parked messages, with the outcome of the last requeue.
type parkedView struct {
	Items []parkedLine
	Done  bool
}

// parkedLine is a parked message for the page: no body, no secret.
type parkedLine struct {
	parkedItem
	When string
}

func (s *Service) conParked(w http.ResponseWriter, r *http.Request) {
	if s.conAllowed(w, r, rolesBoth...) {
		s.showParked(w, r, http.StatusOK, false)
	}
}

func (s *Service) showParked(w http.ResponseWriter, r *http.Request, status int, done bool) {
	list, err := s.ParkedMessages(r.Context())
	if err != nil {
		s.conFailed(w, r, err)
		return
	}
	v := parkedView{Done: done}
	for _, m := range list {
		v.Items = append(v.Items, parkedLine{When: consoleTime(m.CreatedAt), parkedItem: parkedItem{ID: m.ID, Channel: m.Channel, To: m.To,
			Subject: m.Subject, FiscalNumber: m.FiscalNumber, Attempts: m.Attempts, LastError: m.LastError, CreatedAt: m.CreatedAt}})
	}
	s.conRender(w, r, status, "parked", "parked", v)
}

// conRequeue makes a parked message due again (audited under the staff member).
func (s *Service) conRequeue(w http.ResponseWriter, r *http.Request) {
	if !s.conAllowed(w, r, rolesBoth...) {
		return
	}
	err := s.RequeueMessage(r.Context(), r.PathValue("id"), idp.OperatorFrom(r.Context()))
	switch {
	case err == nil:
		s.showParked(w, r, http.StatusOK, true)
	case errors.Is(err, storage.ErrNotFound):
		s.conMessage(w, r, http.StatusNotFound, "notfound")
	default:
		s.conFailed(w, r, err)
	}
}

// callbacksView is the requests waiting for a callback.
type callbacksView struct {
	Items []callbackLine
	// More says that more requests wait than the page shows.
	More bool
	// Done is the outcome of the last call recorded ("confirmed", "refused").
	Done string
}

// callbackLine is a waiting request for the page.
type callbackLine struct {
	callbackItem
	When string
}

func (s *Service) conCallbacks(w http.ResponseWriter, r *http.Request) {
	if s.conAllowed(w, r, rolesCallbacks...) {
		s.showCallbacks(w, r, http.StatusOK, "")
	}
}

func (s *Service) showCallbacks(w http.ResponseWriter, r *http.Request, status int, done string) {
	items, more, err := s.callbackItems(r.Context(), 0)
	if err != nil {
		s.conFailed(w, r, err)
		return
	}
	v := callbacksView{More: more, Done: done}
	for _, it := range items {
		v.Items = append(v.Items, callbackLine{callbackItem: it, When: consoleTime(it.CreatedAt)})
	}
	s.conRender(w, r, status, "callbacks", "callbacks", v)
}

// conCallback records the outcome of a call (ConfirmCallback, audited under
// the staff member).
func (s *Service) conCallback(w http.ResponseWriter, r *http.Request) {
	if !s.conAllowed(w, r, rolesCallbacks...) {
		return
	}
	outcome := r.PostFormValue("outcome")
	if outcome != "confirmed" && outcome != "refused" {
		s.conMessage(w, r, http.StatusBadRequest, "bad_request")
		return
	}
	err := s.ConfirmCallback(r.Context(), r.PathValue("id"), idp.OperatorFrom(r.Context()), outcome == "confirmed")
	switch {
	case err == nil:
		s.showCallbacks(w, r, http.StatusOK, outcome)
	case errors.Is(err, ErrNotWaiting):
		s.conMessage(w, r, http.StatusNotFound, "notfound")
	default:
		s.conFailed(w, r, err)
	}
}

// desk is a form where staff register a PIN request for a citizen: at the
// branch office (MV35, operator-sede) or by phone at the contact center
// (operator-contact-center). Both are the operator API's POST /requests.
type desk struct {
	channel, role string
	// page names the form's address under /console/pin/ and its wording.
	page string
}

var (
	branchDesk  = desk{channel: ChannelBranch, role: idp.RoleOperatorSede, page: "issue"}
	contactDesk = desk{channel: ChannelContactCenter, role: idp.RoleOperatorContactCenter, page: "request"}
)

// deskView is a desk's form: the request's fields (with the identity
// document checked, at the branch office), with what is wrong.
type deskView struct {
	Page     string
	Sections []fieldset
	Errors   []fieldError
}

// deskSections are a desk's fields, filled from r: the online request's.
// At the branch office, less what only a request at a distance needs (a
// callback, where the first half goes: the envelope carries all 16
// characters), plus the identity document the operator checked. Nothing is
// autofilled: the data are the citizen's, not the operator's.
func deskSections(d desk, t, ct map[string]string, r *http.Request) []fieldset {
	var out []fieldset
	for _, fs := range requestSections(t, r) {
		var kept []field
		for _, f := range fs.Fields {
			switch f.Name {
			case "preferred_phone", "callback_slot", "first_half_via":
				if d.channel == ChannelBranch {
					continue
				}
			}
			if f.Type != "checkbox" && f.Type != "select" {
				f.Autocomplete = "off"
			}
			kept = append(kept, f)
		}
		out = append(out, fieldset{Legend: fs.Legend, Fields: kept})
	}
	if d.channel == ChannelBranch {
		out = append(out, fieldset{Legend: ct["sec_document"], Fields: []field{{Name: "document", Label: ct["f_document"], Hint: ct["f_document_hint"],
			Type: "text", Value: r.PostFormValue("document"), Required: true, Autocomplete: "off", Maxlength: 100}}})
	}
	for i := range out {
		for j := range out[i].Fields {
			out[i].Fields[j].describe()
		}
	}
	return out
}

// conLang is the staff member's language for the PIN's own wording.
func conLang(r *http.Request) string {
	if f, ok := idp.ConsoleFrameFrom(r.Context()); ok && f.Lang == "en" {
		return "en"
	}
	return "it"
}

func (s *Service) conDeskForm(d desk) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.conAllowed(w, r, d.role) {
			return
		}
		lang := conLang(r)
		s.conRender(w, r, http.StatusOK, "desk", d.page, deskView{Page: d.page, Sections: deskSections(d, text[lang], consoleText[lang], r)})
	}
}

// requestedView is the outcome of a request by phone: the first half to
// read out to the citizen, or a callback to make first.
type requestedView struct {
	FirstHalf string
	Callback  bool
}

// conDesk registers a request at a desk, audited under the staff member, as
// the operator API does: at the branch office IssueAtBranch answers the
// printable sheet for the sealed envelope (the 16 characters exist only in
// that answer); at the contact center RequestPIN answers the first half to
// read out on the call, or parks a request that differs from the record for
// a callback.
func (s *Service) conDesk(d desk) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.conAllowed(w, r, d.role) {
			return
		}
		lang := conLang(r)
		t, ct := text[lang], consoleText[lang]
		req := requestFromForm(r)
		op := idp.OperatorFrom(r.Context())
		if s.conSelf(w, r, req.FiscalNumber) {
			return
		}
		v := deskView{Page: d.page}
		var (
			secret string
			err    error
		)
		switch d.channel {
		case ChannelBranch:
			document := strings.TrimSpace(r.PostFormValue("document"))
			if document == "" || len(document) > 100 {
				v.Errors = append(v.Errors, fieldError{Field: "document", Text: ct["e_document"]})
			}
			if v.Errors == nil {
				secret, err = s.IssueAtBranch(r.Context(), req, op, document)
			} else {
				// Check the rest too, so that every mistake shows at once.
				fe := req.normalize()
				fe.FirstHalfVia = "email"
				err = fe.validate(s.now(), false)
			}
		default:
			secret, err = s.RequestPIN(r.Context(), req, ChannelContactCenter, op, "")
		}
		var pending *PendingError
		switch {
		case err == nil && v.Errors == nil && d.channel == ChannelBranch:
			s.printEnvelope(w, r, req, op, secret)
			return
		case err == nil && v.Errors == nil:
			w.Header().Set("Cache-Control", "no-store")
			s.conRender(w, r, http.StatusCreated, "requested", "requested", requestedView{FirstHalf: secret})
			return
		case errors.As(err, &pending):
			s.conRender(w, r, http.StatusAccepted, "requested", "requested", requestedView{Callback: true})
			return
		case errors.Is(err, ErrPolicy), errors.Is(err, ErrExists):
			s.conMessage(w, r, http.StatusConflict, "refused")
			return
		case errors.Is(err, ErrInvalidRequest):
			v.Errors = append(formErrors(t, err), v.Errors...)
		case err != nil:
			s.conFailed(w, r, err)
			return
		}
		v.Sections = deskSections(d, t, ct, r)
		for _, e := range v.Errors {
			for i := range v.Sections {
				for j := range v.Sections[i].Fields {
					if f := &v.Sections[i].Fields[j]; f.Name == e.Field && f.Error == "" {
						f.Error = e.Text
						f.describe()
					}
				}
			}
		}
		s.conRender(w, r, http.StatusUnprocessableEntity, "desk", d.page, v)
	}
}

// revokeView asks to confirm a revocation.
type revokeView struct {
	FiscalNumber, Channel string
}

// conRevoke revokes a citizen's PIN on the channel of the staff member's
// role (RevokeByOperator, audited under them, ending the citizen's sessions),
// after a confirmation page; then shows the state.
func (s *Service) conRevoke(w http.ResponseWriter, r *http.Request) {
	channel := r.PostFormValue("channel")
	if channel != ChannelBranch && channel != ChannelContactCenter {
		s.conMessage(w, r, http.StatusBadRequest, "bad_request")
		return
	}
	if !s.conAllowed(w, r, channelRole(channel)) {
		return
	}
	cf := codicefiscale.Normalize(r.PostFormValue("fiscal_number"))
	if !codicefiscale.Valid(cf) {
		s.conMessage(w, r, http.StatusBadRequest, "bad_request")
		return
	}
	if s.conSelf(w, r, cf) {
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		s.conRender(w, r, http.StatusOK, "revoke", "revoke", revokeView{FiscalNumber: cf, Channel: channel})
		return
	}
	err := s.RevokeByOperator(r.Context(), cf, channel, idp.OperatorFrom(r.Context()))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		s.conRender(w, r, http.StatusNotFound, "home", "home", lookupView{FiscalNumber: cf, Error: "no_pin"})
	case err != nil:
		s.conFailed(w, r, err)
	default:
		v, err := s.citizen(r, cf)
		if err != nil {
			s.conFailed(w, r, err)
			return
		}
		v.Revoked = true
		s.conRender(w, r, http.StatusOK, "citizen", "citizen", v)
	}
}
