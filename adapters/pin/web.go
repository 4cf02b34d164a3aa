package pin

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/ui"
	"github.com/ponte-id/ponte/storage"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = ui.Pages(templateFS, "templates", "login", "change", "notice", "form")

// envelope is the sheet printed at a branch office for the sealed envelope
// (MV35): a page of its own, without the site's layout.
var envelope = template.Must(template.ParseFS(templateFS, "templates/envelope.html"))

// noEnumerationFloor is how long recovery and revocation always take, so that
// the answer's timing does not tell whether anything matched.
const noEnumerationFloor = 750 * time.Millisecond

// web holds the handlers of the PIN pages.
type web struct {
	s    *Service
	host idp.Host
}

// handler serves the PIN pages; host gives their paths.
func (s *Service) handler(host idp.Host) http.Handler {
	w := &web{s: s, host: host}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", w.loginForm)
	mux.HandleFunc("POST /{$}", w.login)
	mux.HandleFunc("POST /change", w.change)
	mux.HandleFunc("GET /request", w.requestForm)
	mux.HandleFunc("POST /request", w.request)
	mux.HandleFunc("GET /activate", w.activateForm)
	mux.HandleFunc("POST /activate", w.activate)
	mux.HandleFunc("GET /recover", w.recoverForm)
	mux.HandleFunc("POST /recover", w.recover)
	mux.HandleFunc("GET "+RecoverConfirmPath, w.recoverConfirmForm)
	mux.HandleFunc("POST "+RecoverConfirmPath, w.recoverConfirm)
	mux.HandleFunc("GET /revoke", w.revokeForm)
	mux.HandleFunc("POST /revoke", w.revoke)
	mux.HandleFunc("GET /convert", w.convertForm)
	mux.HandleFunc("POST /convert", w.convert)
	mux.HandleFunc("GET /convert/form", w.conversionModule)
	return http.MaxBytesHandler(mux, s.maxBody())
}

// url is the path of one of the PIN's pages.
func (w *web) url(page string) string { return w.host.MethodURL(page) }

type loginView struct {
	// Base is the path the PIN's pages are mounted on.
	Base                                      string
	Challenge, ClientName, FiscalNumber, Back string
	Error, ErrorLink, ErrorLinkText           string
}

type changeView struct{ Base, Ticket, Challenge, Reason, Error string }

type noticeView struct {
	Text, Link, LinkText string
	IsError              bool
	Action, Button       string
	Hidden               map[string]string
}

type field struct {
	Name, Label, Type, Value, Autocomplete string
	Required                               bool
	Options                                []string
}

type formView struct {
	Intro, Action, Button string
	Multipart             bool
	Errors                []string
	Fields                []field
}

func (w *web) render(rw http.ResponseWriter, r *http.Request, loc string, status int, page, titleKey string, view any) {
	t := text[loc]
	ui.Render(rw, r, w.s.log, pages[page], status, ui.Data{Lang: loc, Title: t[titleKey], T: t, View: view})
}

func (w *web) notice(rw http.ResponseWriter, r *http.Request, loc string, status int, titleKey string, v noticeView) {
	w.render(rw, r, loc, status, "notice", titleKey, v)
}

func lang(r *http.Request) string { return ui.Locale(r, r.URL.Query().Get("lang")) }

// loginForm shows the codice fiscale + PIN form for a pending authorization.
func (w *web) loginForm(rw http.ResponseWriter, r *http.Request) {
	challenge := r.URL.Query().Get("challenge")
	lr, err := w.host.LoginRequest(r, challenge)
	if err != nil {
		w.notice(rw, r, lang(r), http.StatusBadRequest, "login_title", noticeView{Text: text[lang(r)]["expired_request"], IsError: true})
		return
	}
	w.render(rw, r, lr.Locale, http.StatusOK, "login", "login_title", loginView{
		Base: w.url(""), Challenge: challenge, ClientName: lr.ClientName, FiscalNumber: lr.LoginHint, Back: w.host.LoginURL(challenge),
	})
}

// login checks the PIN. A first-access or expired PIN leads straight to the
// change form; otherwise the core is told who logged in, and at what level.
func (w *web) login(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	challenge := r.PostFormValue("challenge")
	lr, err := w.host.LoginRequest(r, challenge)
	if err != nil {
		w.notice(rw, r, lang(r), http.StatusBadRequest, "login_title", noticeView{Text: text[lang(r)]["expired_request"], IsError: true})
		return
	}
	t := text[lr.Locale]
	cf := r.PostFormValue("fiscal_number")
	view := loginView{Base: w.url(""), Challenge: challenge, ClientName: lr.ClientName, FiscalNumber: cf, Back: w.host.LoginURL(challenge)}
	res, err := w.s.Login(ctx, cf, r.PostFormValue("pin"), clientIP(r))
	var throttled *ThrottledError
	switch {
	case err == nil && res.Change != ChangeNone:
		w.changeForm(rw, r, lr.Locale, res.Account.FiscalNumber, challenge, res.Change, "")
		return
	case err == nil:
		w.host.CompleteLogin(rw, r, challenge, res.Identity())
		return
	case errors.Is(err, ErrBusy):
		w.busy(rw)
		view.Error = t["busy"]
		w.render(rw, r, lr.Locale, http.StatusServiceUnavailable, "login", "login_title", view)
		return
	case errors.As(err, &throttled) && throttled.Locked:
		view.Error = t["locked"]
	case errors.As(err, &throttled):
		view.Error = t["throttled"]
	case errors.Is(err, ErrBadCredentials):
		view.Error = t["bad_credentials"]
	case errors.Is(err, ErrRevoked):
		view.Error, view.ErrorLink, view.ErrorLinkText = t["revoked"], w.url("/request"), t["request_link"]
	case errors.Is(err, ErrNotActivated):
		view.Error, view.ErrorLink, view.ErrorLinkText = t["not_activated"], w.url("/activate"), t["activate_link"]
	default:
		w.s.log.ErrorContext(ctx, "PIN login failed", "err", err)
		view.Error = t["internal"]
		w.render(rw, r, lr.Locale, http.StatusInternalServerError, "login", "login_title", view)
		return
	}
	w.render(rw, r, lr.Locale, http.StatusOK, "login", "login_title", view)
}

// changeForm issues a fresh single-use ticket and shows the change form.
func (w *web) changeForm(rw http.ResponseWriter, r *http.Request, loc, cf, challenge string, reason ChangeReason, errText string) {
	ticket, err := w.s.ChangeTicket(r.Context(), cf)
	if err != nil {
		w.s.log.ErrorContext(r.Context(), "issuing a change ticket failed", "err", err)
		w.notice(rw, r, loc, http.StatusInternalServerError, "change_title", noticeView{Text: text[loc]["internal"], IsError: true})
		return
	}
	why := text[loc]["reason_first"]
	if reason == ChangeExpired {
		why = text[loc]["reason_expired"]
	}
	w.render(rw, r, loc, http.StatusOK, "change", "change_title", changeView{Base: w.url(""), Ticket: ticket, Challenge: challenge, Reason: why, Error: errText})
}

// change sets the new PIN and, when a login is pending, completes it.
func (w *web) change(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	loc := lang(r)
	t := text[loc]
	challenge := r.PostFormValue("challenge")
	cf, err := w.s.RedeemChangeTicket(ctx, r.PostFormValue("ticket"))
	if err != nil {
		w.notice(rw, r, loc, http.StatusBadRequest, "change_title", noticeView{Text: t["expired_request"], IsError: true})
		return
	}
	newPIN := r.PostFormValue("new_pin")
	if newPIN != r.PostFormValue("confirm_pin") {
		w.changeForm(rw, r, loc, cf, challenge, ChangeFirstAccess, t["mismatch"])
		return
	}
	acct, err := w.s.ChangePIN(ctx, cf, newPIN)
	switch {
	case errors.Is(err, ErrWeakPIN):
		w.changeForm(rw, r, loc, cf, challenge, ChangeFirstAccess, t["weak"])
		return
	case errors.Is(err, ErrReusedPIN):
		w.changeForm(rw, r, loc, cf, challenge, ChangeFirstAccess, t["reused"])
		return
	case err != nil:
		w.s.log.ErrorContext(ctx, "PIN change failed", "cf", Mask(cf), "err", err)
		w.notice(rw, r, loc, http.StatusInternalServerError, "change_title", noticeView{Text: t["internal"], IsError: true})
		return
	}
	if challenge != "" {
		if _, err := w.host.LoginRequest(r, challenge); err == nil {
			w.host.CompleteLogin(rw, r, challenge, LoginResult{Account: acct}.Identity())
			return
		}
	}
	w.notice(rw, r, loc, http.StatusOK, "changed_title", noticeView{Text: t["changed"]})
}

// requestFields are the fields of the online request form, filled from r.
func requestFields(t map[string]string, r *http.Request) []field {
	v := r.PostFormValue
	return []field{
		{Name: "fiscal_number", Label: t["f_cf"], Type: "text", Value: v("fiscal_number"), Required: true},
		{Name: "given_name", Label: t["f_given"], Type: "text", Value: v("given_name"), Required: true, Autocomplete: "given-name"},
		{Name: "family_name", Label: t["f_family"], Type: "text", Value: v("family_name"), Required: true, Autocomplete: "family-name"},
		{Name: "gender", Label: t["f_gender"], Type: "select", Value: v("gender"), Options: []string{"M", "F"}},
		{Name: "birthdate", Label: t["f_birthdate"], Type: "date", Value: v("birthdate"), Required: true, Autocomplete: "bday"},
		{Name: "birth_place", Label: t["f_birthplace"], Type: "text", Value: v("birth_place"), Required: true},
		{Name: "abroad", Label: t["f_abroad"], Type: "checkbox", Value: boolValue(v("abroad"))},
		{Name: "italian_id", Label: t["f_itid"], Type: "checkbox", Value: boolValue(v("italian_id"))},
		{Name: "street", Label: t["f_street"], Type: "text", Value: v("street"), Required: true, Autocomplete: "address-line1"},
		{Name: "number", Label: t["f_number"], Type: "text", Value: v("number"), Required: true},
		{Name: "postal_code", Label: t["f_cap"], Type: "text", Value: v("postal_code"), Autocomplete: "postal-code"},
		{Name: "city", Label: t["f_city"], Type: "text", Value: v("city"), Required: true, Autocomplete: "address-level2"},
		{Name: "province", Label: t["f_province"], Type: "text", Value: v("province")},
		{Name: "country", Label: t["f_country"], Type: "text", Value: v("country"), Autocomplete: "country-name"},
		{Name: "mobile", Label: t["f_mobile"], Type: "tel", Value: v("mobile"), Autocomplete: "tel"},
		{Name: "phone", Label: t["f_phone"], Type: "tel", Value: v("phone")},
		{Name: "email", Label: t["f_email"], Type: "email", Value: v("email"), Required: true, Autocomplete: "email"},
		{Name: "pec", Label: t["f_pec"], Type: "email", Value: v("pec")},
		{Name: "preferred_phone", Label: t["f_pref_phone"], Type: "tel", Value: v("preferred_phone"), Required: true},
		{Name: "callback_slot", Label: t["f_slot"], Type: "select", Value: v("callback_slot"), Options: []string{"09-13", "13-17", "17-20"}},
		{Name: "first_half_via", Label: t["f_via"], Type: "select", Value: v("first_half_via"), Options: []string{"sms", "email", "pec", "post"}},
	}
}

func boolValue(v string) string {
	if v == "yes" {
		return "yes"
	}
	return ""
}

// requestFromForm reads a Request from a posted form.
func requestFromForm(r *http.Request) Request {
	v := r.PostFormValue
	return Request{
		FiscalNumber: v("fiscal_number"), GivenName: v("given_name"), FamilyName: v("family_name"),
		Gender: v("gender"), Birthdate: v("birthdate"), BirthPlace: v("birth_place"),
		ResidenceAbroad: v("abroad") == "yes", HasItalianID: v("italian_id") == "yes",
		Residence: storage.Address{Street: v("street"), Number: v("number"), PostalCode: v("postal_code"),
			City: v("city"), Province: v("province"), Country: v("country")},
		Mobile: v("mobile"), Phone: v("phone"), Email: v("email"), PEC: v("pec"),
		PreferredPhone: v("preferred_phone"), CallbackSlot: v("callback_slot"), FirstHalfVia: v("first_half_via"),
	}
}

func (w *web) requestForm(rw http.ResponseWriter, r *http.Request) {
	loc := lang(r)
	t := text[loc]
	w.render(rw, r, loc, http.StatusOK, "form", "request_title", formView{Intro: t["request_intro"],
		Action: w.url("/request"), Button: t["request_button"], Fields: requestFields(t, r)})
}

// request registers an online PIN request.
func (w *web) request(rw http.ResponseWriter, r *http.Request) {
	loc := lang(r)
	t := text[loc]
	_, err := w.s.RequestPIN(r.Context(), requestFromForm(r), ChannelOnline, "", clientIP(r))
	switch {
	case w.limited(rw, r, loc, "request_title", err):
	case err == nil:
		w.notice(rw, r, loc, http.StatusOK, "request_done_t", noticeView{Text: t["request_done"]})
	case errors.Is(err, ErrPolicy):
		w.notice(rw, r, loc, http.StatusOK, "request_title", noticeView{Text: t["policy"], IsError: true})
	case errors.Is(err, ErrInvalidRequest):
		w.render(rw, r, loc, http.StatusUnprocessableEntity, "form", "request_title", formView{Intro: t["request_intro"],
			Action: w.url("/request"), Button: t["request_button"], Fields: requestFields(t, r), Errors: fieldErrors(err)})
	default:
		w.s.log.ErrorContext(r.Context(), "PIN request failed", "err", err)
		w.notice(rw, r, loc, http.StatusInternalServerError, "request_title", noticeView{Text: t["internal"], IsError: true})
	}
}

// fieldErrors lists the request's field errors for the page.
func fieldErrors(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		var fe *FieldError
		if errors.As(e, &fe) && e == error(fe) {
			out = append(out, fe.Error())
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, inner := range j.Unwrap() {
				walk(inner)
			}
		}
	}
	walk(err)
	return out
}

func (w *web) activateFields(t map[string]string, r *http.Request) []field {
	return []field{
		{Name: "fiscal_number", Label: t["f_cf"], Type: "text", Value: r.PostFormValue("fiscal_number"), Required: true},
		{Name: "first_half", Label: t["f_first_half"], Type: "password", Required: true},
		{Name: "card_number", Label: t["f_card"], Type: "text", Required: true},
		{Name: "card_expiry", Label: t["f_card_exp"], Type: "month", Required: true},
	}
}

func (w *web) activateForm(rw http.ResponseWriter, r *http.Request) {
	loc := lang(r)
	t := text[loc]
	w.render(rw, r, loc, http.StatusOK, "form", "activate_title", formView{Intro: t["activate_intro"],
		Action: w.url("/activate"), Button: t["activate_button"], Fields: w.activateFields(t, r)})
}

func (w *web) activate(rw http.ResponseWriter, r *http.Request) {
	loc := lang(r)
	t := text[loc]
	v := r.PostFormValue
	err := w.s.Activate(r.Context(), v("fiscal_number"), v("first_half"), v("card_number"), v("card_expiry"), clientIP(r))
	var throttled *ThrottledError
	switch {
	case w.limited(rw, r, loc, "activate_title", err):
	case err == nil:
		w.notice(rw, r, loc, http.StatusOK, "activate_title", noticeView{Text: t["activated"]})
	case errors.Is(err, ErrBadCredentials), errors.As(err, &throttled):
		msg := t["activate_failed"]
		if throttled != nil {
			msg = t["throttled"]
		}
		w.render(rw, r, loc, http.StatusUnprocessableEntity, "form", "activate_title", formView{Intro: t["activate_intro"],
			Action: w.url("/activate"), Button: t["activate_button"], Fields: w.activateFields(t, r), Errors: []string{msg}})
	default:
		w.s.log.ErrorContext(r.Context(), "PIN activation failed", "err", err)
		w.notice(rw, r, loc, http.StatusInternalServerError, "activate_title", noticeView{Text: t["internal"], IsError: true})
	}
}

func (w *web) recoverForm(rw http.ResponseWriter, r *http.Request) {
	loc := lang(r)
	t := text[loc]
	w.render(rw, r, loc, http.StatusOK, "form", "recover_title", formView{Intro: t["recover_intro"], Action: w.url("/recover"),
		Button: t["recover_button"], Fields: []field{
			{Name: "fiscal_number", Label: t["f_cf"], Type: "text", Required: true},
			{Name: "mobile", Label: t["f_mobile"], Type: "tel"},
			{Name: "email", Label: t["f_email"], Type: "email"},
			{Name: "pec", Label: t["f_pec"], Type: "email"},
		}})
}

// recover starts a ripristino; the answer is the same, and takes the same
// time, whether or not anything matched.
func (w *web) recover(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	loc := lang(r)
	v := r.PostFormValue
	err := w.s.StartRecovery(r.Context(), v("fiscal_number"), Contacts{Mobile: v("mobile"), Email: v("email"), PEC: v("pec")}, clientIP(r))
	if w.limited(rw, r, loc, "recover_title", err) {
		return
	}
	if err != nil {
		w.s.log.ErrorContext(r.Context(), "PIN recovery failed", "err", err)
	}
	padTo(r.Context(), start, noEnumerationFloor)
	w.notice(rw, r, loc, http.StatusOK, "recover_title", noticeView{Text: text[loc]["recover_sent"]})
}

// recoverConfirmForm asks for a click before the link is consumed, so that a
// mail scanner that fetches links does not use it up.
func (w *web) recoverConfirmForm(rw http.ResponseWriter, r *http.Request) {
	loc := lang(r)
	t := text[loc]
	w.notice(rw, r, loc, http.StatusOK, "recover_title", noticeView{Text: t["recover_confirm"], Action: w.url(RecoverConfirmPath),
		Button: t["recover_button2"], Hidden: map[string]string{"code": r.URL.Query().Get("code")}})
}

func (w *web) recoverConfirm(rw http.ResponseWriter, r *http.Request) {
	loc := lang(r)
	t := text[loc]
	err := w.s.CompleteRecovery(r.Context(), r.PostFormValue("code"))
	switch {
	case err == nil:
		w.notice(rw, r, loc, http.StatusOK, "recover_title", noticeView{Text: t["recovered"], Link: w.url("/"), LinkText: t["login_title"]})
	case errors.Is(err, ErrExpiredCode), errors.Is(err, ErrRevoked):
		w.notice(rw, r, loc, http.StatusBadRequest, "recover_title", noticeView{Text: t["code_expired"], IsError: true, Link: w.url("/recover"), LinkText: t["recover_title"]})
	default:
		w.s.log.ErrorContext(r.Context(), "PIN recovery completion failed", "err", err)
		w.notice(rw, r, loc, http.StatusInternalServerError, "recover_title", noticeView{Text: t["internal"], IsError: true})
	}
}

func (w *web) revokeForm(rw http.ResponseWriter, r *http.Request) {
	loc := lang(r)
	t := text[loc]
	w.render(rw, r, loc, http.StatusOK, "form", "revoke_title", formView{Intro: t["revoke_intro"], Action: w.url("/revoke"),
		Button: t["revoke_button"], Fields: requestFields(t, r)[:6]})
}

// revoke is the online revoca; like recovery it reveals nothing.
func (w *web) revoke(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	loc := lang(r)
	err := w.s.RevokeOnline(r.Context(), requestFromForm(r), clientIP(r))
	if w.limited(rw, r, loc, "revoke_title", err) {
		return
	}
	if err != nil {
		w.s.log.ErrorContext(r.Context(), "PIN revocation failed", "err", err)
	}
	padTo(r.Context(), start, noEnumerationFloor)
	w.notice(rw, r, loc, http.StatusOK, "revoke_title", noticeView{Text: text[loc]["revoke_done"], Link: w.url("/request"), LinkText: text[loc]["request_link"]})
}

func (w *web) convertView(t map[string]string, errs ...string) formView {
	return formView{Intro: t["convert_intro"], Action: w.url("/convert"), Button: t["convert_button"], Multipart: true, Errors: errs,
		Fields: []field{
			{Name: "fiscal_number", Label: t["f_cf"], Type: "text", Required: true, Autocomplete: "username"},
			{Name: "pin", Label: t["f_pin"], Type: "password", Required: true, Autocomplete: "current-password"},
			{Name: "form", Label: t["f_form"], Type: "file", Required: true},
			{Name: "document", Label: t["f_doc"], Type: "file", Required: true},
		}}
}

func (w *web) convertForm(rw http.ResponseWriter, r *http.Request) {
	loc := lang(r)
	w.render(rw, r, loc, http.StatusOK, "form", "convert_title", w.convertView(text[loc]))
}

// convert takes the signed form and the identity document from a citizen who
// proves the PIN again on the same form.
func (w *web) convert(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	loc := lang(r)
	t := text[loc]
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		w.render(rw, r, loc, http.StatusRequestEntityTooLarge, "form", "convert_title", w.convertView(t, t["upload_bad"]))
		return
	}
	defer r.MultipartForm.RemoveAll()
	res, err := w.s.Login(ctx, r.PostFormValue("fiscal_number"), r.PostFormValue("pin"), clientIP(r))
	if errors.Is(err, ErrBusy) {
		w.busy(rw)
		w.render(rw, r, loc, http.StatusServiceUnavailable, "form", "convert_title", w.convertView(t, t["busy"]))
		return
	}
	if err != nil || res.Change != ChangeNone {
		w.render(rw, r, loc, http.StatusOK, "form", "convert_title", w.convertView(t, t["bad_credentials"]))
		return
	}
	form, err1 := readUpload(r, "form", w.s.cfg.MaxUpload)
	doc, err2 := readUpload(r, "document", w.s.cfg.MaxUpload)
	if err1 != nil || err2 != nil {
		w.render(rw, r, loc, http.StatusUnprocessableEntity, "form", "convert_title", w.convertView(t, t["upload_bad"]))
		return
	}
	_, err = w.s.SubmitConversion(ctx, res.Account.FiscalNumber, form, doc)
	switch {
	case err == nil:
		w.notice(rw, r, loc, http.StatusOK, "convert_title", noticeView{Text: t["convert_done"]})
	case errors.Is(err, ErrUpload):
		w.render(rw, r, loc, http.StatusUnprocessableEntity, "form", "convert_title", w.convertView(t, t["upload_bad"]))
	default:
		w.s.log.InfoContext(ctx, "PIN conversion refused", "err", err)
		w.notice(rw, r, loc, http.StatusOK, "convert_title", noticeView{Text: t["convert_denied"], IsError: true})
	}
}

func readUpload(r *http.Request, name string, limit int64) ([]byte, error) {
	f, _, err := r.FormFile(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil || int64(len(data)) > limit {
		return nil, ErrUpload
	}
	return data, nil
}

// conversionModule serves the request form to print and sign.
func (w *web) conversionModule(rw http.ResponseWriter, r *http.Request) {
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("Content-Disposition", `attachment; filename="richiesta-pin-dispositivo.txt"`)
	fmt.Fprint(rw, "INPS - RICHIESTA DI CONVERSIONE DEL PIN ORDINARIO IN PIN DISPOSITIVO\n\n"+
		"Il/La sottoscritto/a ______________________________\nCodice fiscale ______________________________\n"+
		"nato/a a ____________________ il ____________\n\nchiede che il proprio PIN ordinario sia convertito in PIN dispositivo.\n"+
		"Allega copia fronte/retro di un documento di identità in corso di validità.\n\n"+
		"Luogo e data ____________________   Firma ______________________________\n")
}

// busyRetry is the Retry-After of a PIN check refused because the hashing
// line is full: the line drains within a few seconds.
const busyRetry = 5 * time.Second

// busy sets Retry-After on a 503 for a full hashing line.
func (w *web) busy(rw http.ResponseWriter) {
	rw.Header().Set("Retry-After", strconv.Itoa(int(busyRetry/time.Second)))
}

// limited answers a form refused for its address (429 with Retry-After) and
// reports whether it did.
func (w *web) limited(rw http.ResponseWriter, r *http.Request, loc, titleKey string, err error) bool {
	var rl *RateLimitedError
	if !errors.As(err, &rl) {
		return false
	}
	rw.Header().Set("Retry-After", strconv.Itoa(int(rl.RetryAfter.Round(time.Second)/time.Second)))
	w.notice(rw, r, loc, http.StatusTooManyRequests, titleKey, noticeView{Text: text[loc]["rate_limited"], IsError: true})
	return true
}

// clientIP is the peer address (the edge rewrites it from trusted proxies only).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return strings.TrimSpace(r.RemoteAddr)
	}
	return host
}

// padTo sleeps until start+floor (or ctx ends).
func padTo(ctx context.Context, start time.Time, floor time.Duration) {
	t := time.NewTimer(time.Until(start.Add(floor)))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
