package pin

import (
	"errors"
	"net/http"

	"github.com/ponte-id/ponte/internal/ui"
)

// loginView is the codice fiscale + PIN form of a pending login.
type loginView struct {
	Nav        nav
	Action     string
	ClientName string
	Boxes      []box
	Fields     []field
}

func (w *web) loginView(v visit, cf string, boxes ...box) loginView {
	t := v.t()
	return loginView{Nav: w.nav(v), Action: w.url("/"), ClientName: v.client, Boxes: boxes, Fields: []field{
		{Name: "fiscal_number", Label: t["cf"], Hint: t["cf_hint"], Type: "text", Value: cf, Required: true, Autocomplete: "username", Maxlength: 16, Plain: true},
		{Name: "pin", Label: t["pin"], Hint: t["pin_hint"], Type: "password", Required: true, Autocomplete: "current-password", Maxlength: 16},
	}}
}

// renderLogin shows the login form; the login's own form keeps the field IDs
// the login page always had (cf, pin) for people's password managers.
func (w *web) renderLogin(rw http.ResponseWriter, r *http.Request, v visit, status int, cf string, boxes ...box) {
	w.render(rw, r, v, status, "login", "login_title", w.loginView(v, cf, boxes...).described())
}

// loginForm shows the codice fiscale + PIN form for a pending authorization.
func (w *web) loginForm(rw http.ResponseWriter, r *http.Request) {
	v := w.getVisit(r)
	if w.down(rw, r, "reading the login request", v.down) {
		return
	}
	if v.challenge == "" {
		w.expired(rw, r, v)
		return
	}
	w.renderLogin(rw, r, v, http.StatusOK, v.hint)
}

// expired answers a PIN login whose authorization is gone: back to the service.
func (w *web) expired(rw http.ResponseWriter, r *http.Request, v visit) {
	w.fail(rw, r, v, http.StatusBadRequest, "login_title", v.t()["expired_request"])
}

// login checks the PIN. A first-access or expired PIN leads straight to the
// change form; otherwise the core is told who logged in, and at what level.
func (w *web) login(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v := w.postVisit(r)
	if w.down(rw, r, "reading the login request", v.down) {
		return
	}
	if v.challenge == "" {
		w.expired(rw, r, v)
		return
	}
	t, n := v.t(), w.nav(v)
	cf := r.PostFormValue("fiscal_number")
	res, err := w.s.Login(v.ctx(r), cf, r.PostFormValue("pin"), clientIP(r))
	var throttled *ThrottledError
	var b box
	switch {
	case err == nil && res.Change != ChangeNone:
		w.s.logins.add(resultChangeRequired)
		w.changeForm(rw, r, v, res.Account.FiscalNumber, res.Change, "")
		return
	case err == nil:
		w.host.CompleteLogin(rw, r, v.challenge, res.Identity())
		return
	case errors.Is(err, ErrBusy):
		w.s.logins.add(resultBusy)
		w.busy(rw)
		w.renderLogin(rw, r, v, http.StatusServiceUnavailable, cf, errorBox(t["busy"]))
		return
	case errors.As(err, &throttled):
		w.s.logins.add(resultThrottled)
		b = w.throttledBox(v, throttled)
	case errors.Is(err, ErrBadCredentials):
		w.s.logins.add(resultBadCredentials)
		b = errorBox(t["bad_credentials"], link{URL: n.Recover, Text: t["recover_title"]})
	case errors.Is(err, ErrRevoked):
		w.s.logins.add(resultRevoked)
		b = errorBox(t["revoked"], link{URL: n.Request, Text: t["request_title"]})
	case errors.Is(err, ErrNotActivated):
		w.s.logins.add(resultNotActivated)
		b = errorBox(t["not_activated"], link{URL: n.Activate, Text: t["activate_title"]})
	case w.down(rw, r, "PIN login", err):
		w.s.logins.add(resultError)
		return
	default:
		w.s.logins.add(resultError)
		w.s.log.ErrorContext(ctx, "PIN login failed", "err", err)
		w.renderLogin(rw, r, v, http.StatusInternalServerError, cf, errorBox(t["internal"]))
		return
	}
	w.renderLogin(rw, r, v, http.StatusOK, cf, b)
}

// changeView is the form that replaces an initial, provisional or expired PIN.
type changeView struct {
	Nav    nav
	Action string
	Ticket string
	Reason string
	Boxes  []box
	Fields []field
}

// changeForm issues a fresh single-use ticket and shows the change form. Its
// language switch re-posts the ticket (a new one is issued then): the form
// exists only as the answer to a post.
func (w *web) changeForm(rw http.ResponseWriter, r *http.Request, v visit, cf string, reason ChangeReason, errText string) {
	t := v.t()
	ticket, err := w.s.ChangeTicket(r.Context(), cf)
	if w.down(rw, r, "issuing a change ticket", err) {
		return
	}
	if err != nil {
		w.s.log.ErrorContext(r.Context(), "issuing a change ticket failed", "err", err)
		w.fail(rw, r, v, http.StatusInternalServerError, "change_title", t["internal"])
		return
	}
	why := t["reason_first"]
	if reason == ChangeExpired {
		why = t["reason_expired"]
	}
	view := changeView{Nav: w.nav(v), Action: w.url("/change"), Ticket: ticket, Reason: why, Fields: []field{
		{Name: "new_pin", Label: t["new_pin"], Hint: t["pin_rules"], Type: "password", Required: true, Autocomplete: "new-password", Maxlength: 8, Error: errText},
		{Name: "confirm_pin", Label: t["confirm_pin"], Type: "password", Required: true, Autocomplete: "new-password", Maxlength: 8},
	}}
	if errText != "" {
		view.Boxes = []box{errorBox(errText)}
	}
	for i := range view.Fields {
		view.Fields[i].describe()
	}
	w.renderData(rw, r, http.StatusOK, "change", ui.Data{Lang: v.loc, Title: t["change_title"], View: view,
		Here: w.url("/change"), SwitchPost: map[string]string{"ticket": ticket, "challenge": v.challenge, "switch": "1"}})
}

// change sets the new PIN and, when a login is pending, completes it. A post
// of the language switch only shows the form again, in the language chosen.
// The reason shown is the account's: a first access until the citizen has
// chosen a PIN, an expired PIN otherwise.
func (w *web) change(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v := w.postVisit(r)
	t := v.t()
	cf, err := w.s.RedeemChangeTicket(ctx, r.PostFormValue("ticket"))
	if err != nil {
		w.fail(rw, r, v, http.StatusBadRequest, "change_title", t["expired_request"])
		return
	}
	reason, err := w.s.changeReason(ctx, cf)
	if w.down(rw, r, "reading the account to change", err) {
		return
	}
	if err != nil {
		w.s.log.ErrorContext(ctx, "reading the account to change failed", "cf", Mask(cf), "err", err)
		w.fail(rw, r, v, http.StatusInternalServerError, "change_title", t["internal"])
		return
	}
	if r.PostFormValue("switch") != "" {
		w.changeForm(rw, r, v, cf, reason, "")
		return
	}
	newPIN := r.PostFormValue("new_pin")
	if newPIN != r.PostFormValue("confirm_pin") {
		w.changeForm(rw, r, v, cf, reason, t["mismatch"])
		return
	}
	acct, err := w.s.ChangePIN(ctx, cf, newPIN)
	switch {
	case errors.Is(err, ErrWeakPIN):
		w.changeForm(rw, r, v, cf, reason, t["weak"])
		return
	case errors.Is(err, ErrReusedPIN):
		w.changeForm(rw, r, v, cf, reason, t["reused"])
		return
	case w.down(rw, r, "PIN change", err):
		return
	case err != nil:
		w.s.log.ErrorContext(ctx, "PIN change failed", "cf", Mask(cf), "err", err)
		w.fail(rw, r, v, http.StatusInternalServerError, "change_title", t["internal"])
		return
	}
	if v.challenge != "" {
		w.host.CompleteLogin(rw, r, v.challenge, LoginResult{Account: acct}.Identity())
		return
	}
	w.redirectDone(rw, r, v, "changed")
}
