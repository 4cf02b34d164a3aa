package provider

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/ory/fosite"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/storage"
)

// loginHost is the provider as a login method sees it.
type loginHost struct{ p *Provider }

var _ idp.Host = loginHost{}

// LoginRequest returns what the pending authorization asks of the login.
func (h loginHost) LoginRequest(r *http.Request, challenge string) (idp.LoginRequest, error) {
	_, data, err := h.p.loadChallenge(r, challenge)
	if err != nil {
		if !errors.Is(err, idp.ErrUnknownChallenge) {
			h.p.log.ErrorContext(r.Context(), "reading login challenge failed", "err", err)
		}
		return idp.LoginRequest{}, idp.ErrUnknownChallenge
	}
	_, idpHint, _ := strings.Cut(data.IDPHint, ":")
	return idp.LoginRequest{
		Challenge: challenge, MinLevel: data.Level, LoginHint: data.LoginHint, IDPHint: idpHint,
		Locale: locale(r, data.Form), ClientName: data.ClientName,
	}, nil
}

// CompleteLogin starts the SSO session for id's citizen. When the browser that
// made the challenge completes it, the authorization is granted in the same
// transaction and the client gets its code without a further round trip.
// Otherwise the browser goes to the resume, which checks the binding: a method
// that left the site comes back cross-site (SAML POST), where the binding
// cookie is not sent.
func (h loginHost) CompleteLogin(w http.ResponseWriter, r *http.Request, challenge string, id idp.Identity) {
	p := h.p
	ctx := r.Context()
	if err := id.Validate(); err != nil {
		p.log.ErrorContext(ctx, "login method returned an invalid identity", "method", id.Method, "err", err)
		p.errorPage(w, r, http.StatusInternalServerError, msgInternal)
		return
	}
	ch, ar, err := p.replayChallenge(r, challenge)
	var req requirement
	if err == nil {
		req, err = requirementOf(ar)
	}
	if err == nil {
		err = p.precheck(ar)
	}
	if err != nil {
		h.completeAndResume(w, r, challenge, id)
		return
	}
	tx, err := p.store.BeginTx(ctx)
	if err != nil {
		p.loginFailed(w, r, err)
		return
	}
	sso, subj, err := p.createSession(tx, r, id)
	if err != nil {
		_ = p.store.Rollback(tx)
		p.loginFailed(w, r, err)
		return
	}
	// A login below the level the request needs goes back to the chooser,
	// which explains the step up.
	granted := p.satisfies(sso.Session, subj, req, &ch, false)
	var resp fosite.AuthorizeResponder
	if granted {
		resp, err = p.issue(tx, ar, sso.Session, subj, ch.CreatedAt, &ch)
	}
	if err = p.endTx(tx, err); err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	p.setCookie(w, p.cfg.CookieName, sso.value, 0)
	p.log.InfoContext(ctx, "citizen logged in", "subject", sso.Subject, "method", id.Method, "acr", sso.Level)
	if !granted {
		http.Redirect(w, r, h.LoginURL(challenge), http.StatusSeeOther)
		return
	}
	p.respond(ctx, w, ar, resp, sso.Session, subj)
}

// completeAndResume starts the SSO session for a live challenge and sends the
// browser to the resume, which checks the browser binding and the request again.
func (h loginHost) completeAndResume(w http.ResponseWriter, r *http.Request, challenge string, id idp.Identity) {
	p := h.p
	ctx := r.Context()
	if _, err := p.store.GetChallenge(ctx, challenge); err != nil {
		p.errorPage(w, r, http.StatusBadRequest, msgChallengeExpired)
		return
	}
	sso, _, err := p.startSession(w, r, id)
	if err != nil {
		p.loginFailed(w, r, err)
		return
	}
	p.log.InfoContext(ctx, "citizen logged in", "subject", sso.Subject, "method", id.Method, "acr", sso.Level)
	http.Redirect(w, r, PathResume+"?challenge="+url.QueryEscape(challenge), http.StatusSeeOther)
}

// loginFailed answers a login that could not be recorded.
func (p *Provider) loginFailed(w http.ResponseWriter, r *http.Request, err error) {
	p.log.ErrorContext(r.Context(), "starting SSO session failed", "err", err)
	p.errorPage(w, r, http.StatusInternalServerError, msgInternal)
}

// LoginURL is the chooser for a challenge.
func (loginHost) LoginURL(challenge string) string {
	return PathLogin + "?challenge=" + url.QueryEscape(challenge)
}

// chooserView is the data of the method chooser page.
type chooserView struct {
	Challenge   string
	ClientName  string
	Methods     []methodLink
	StepUp      bool
	CanContinue bool
	Dispositivo bool
}

type methodLink struct {
	Label string
	URL   string
}

// chooser shows the login methods that can reach the level the request needs.
// A citizen logged in below it sees why, how an ordinary PIN becomes
// dispositivo, and (when the level is only asked, not demanded) how to go on without it.
func (p *Provider) chooser(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("challenge")
	_, data, err := p.loadChallenge(r, id)
	if err != nil {
		p.challengeError(w, r, nil, err)
		return
	}
	loc := locale(r, data.Form)
	sso, _, loggedIn := p.currentSession(r)
	stepUp := loggedIn && levelOf(sso.Level) < data.Level
	view := chooserView{
		Challenge: id, ClientName: data.ClientName, StepUp: stepUp,
		CanContinue: stepUp && !data.Essential, Dispositivo: data.Level >= idp.LevelDispositivo,
	}
	method, _, _ := strings.Cut(data.IDPHint, ":")
	for _, a := range p.cfg.Authenticators {
		if a.MaxLevel() < data.Level {
			continue
		}
		link := methodLink{Label: a.Label(loc), URL: PathLogin + "/" + string(a.Method()) + "/?challenge=" + url.QueryEscape(id)}
		if method == string(a.Method()) && !stepUp {
			http.Redirect(w, r, link.URL, http.StatusSeeOther) // idp_hint: straight to the method
			return
		}
		view.Methods = append(view.Methods, link)
	}
	p.render(w, r, loc, http.StatusOK, "chooser", view)
}

// abortLogin handles the chooser's two ways out: go on at the level the
// citizen has (only when the higher level was voluntary), or cancel.
func (p *Provider) abortLogin(w http.ResponseWriter, r *http.Request) {
	ch, ar, req, ok := p.pending(w, r, r.PostFormValue("challenge"))
	if !ok {
		return
	}
	if r.PostFormValue("action") == "continue" && !req.essential {
		p.proceed(w, r, ar, &ch, true)
		return
	}
	_ = p.store.DeleteChallenge(r.Context(), ch.ID)
	if req.essential {
		p.authorizeError(w, r, ar, errUnmetAuthenticationRequirements)
		return
	}
	p.authorizeError(w, r, ar, fosite.ErrAccessDenied.WithHint("The citizen cancelled the login."))
}

// pending replays a challenge and reads its requirement; on failure it has
// answered the request and ok is false.
func (p *Provider) pending(w http.ResponseWriter, r *http.Request, id string) (storage.Challenge, fosite.AuthorizeRequester, requirement, bool) {
	ch, ar, err := p.replayChallenge(r, id)
	if err != nil {
		p.challengeError(w, r, ar, err)
		return ch, ar, requirement{}, false
	}
	req, err := requirementOf(ar)
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return ch, ar, req, false
	}
	return ch, ar, req, true
}

func clientName(ar fosite.AuthorizeRequester) string {
	if c, ok := ar.GetClient().(*client); ok && c.Name != "" {
		return c.Name
	}
	return ar.GetClient().GetID()
}
