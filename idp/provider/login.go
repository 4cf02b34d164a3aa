package provider

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/clientcert"
	"github.com/ponte-id/ponte/storage"
)

// loginHost is the provider as one login method sees it.
type loginHost struct {
	p      *Provider
	method idp.Method
}

var _ idp.Host = loginHost{}

// LoginRequest returns what the pending authorization asks of the login.
func (h loginHost) LoginRequest(r *http.Request, challenge string) (idp.LoginRequest, error) {
	_, data, err := h.p.loadChallenge(r, challenge)
	if unavailable(err) {
		return idp.LoginRequest{}, fmt.Errorf("provider: read login challenge: %w", err)
	}
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

// CompleteLogin logs in the browser that made the challenge: the session
// starts and, when it satisfies the request, the authorization is granted in
// the same transaction, with no further round trip. A request from any other
// browser is refused: a method whose login comes back cross-site uses
// ReturnLogin.
func (h loginHost) CompleteLogin(w http.ResponseWriter, r *http.Request, challenge string, id idp.Identity) {
	p := h.p
	if err := id.Validate(); err != nil {
		p.log.ErrorContext(r.Context(), "login method returned an invalid identity", "method", id.Method, "err", err)
		p.errorPage(w, r, http.StatusInternalServerError, msgInternal)
		return
	}
	ch, ar, err := p.replayChallenge(r, challenge)
	if err != nil {
		p.challengeError(w, r, ar, err)
		return
	}
	p.login(w, r, ch, ar, id)
}

// returned is what a cross-site return keeps on the challenge: the identity,
// and the hash of a key handed only to the browser that posted the return.
type returned struct {
	Identity idp.Identity `json:"identity"`
	KeyHash  string       `json:"key_hash"`
}

// ReturnLogin keeps the identity a method proved on the challenge and sends
// the browser to the issuer's resume with a fresh key. The resume logs in only
// a browser that has both the challenge's binding cookie and that key: a
// return posted by another browser gives that browser no session (no login
// CSRF), and the browser that made the challenge cannot claim an identity
// proved in another browser (a forwarded identity-provider link).
func (h loginHost) ReturnLogin(w http.ResponseWriter, r *http.Request, challenge string, id idp.Identity) {
	p := h.p
	ctx := r.Context()
	if err := id.Validate(); err != nil {
		p.log.ErrorContext(ctx, "login method returned an invalid identity", "method", id.Method, "err", err)
		p.errorPage(w, r, http.StatusInternalServerError, msgInternal)
		return
	}
	key := randomToken()
	data, err := json.Marshal(returned{Identity: id, KeyHash: hashKey(key)})
	if err == nil {
		err = p.store.ReturnChallenge(ctx, challenge, data, p.now())
	}
	if errors.Is(err, storage.ErrNotFound) {
		p.errorPage(w, r, http.StatusBadRequest, msgChallengeExpired)
		return
	}
	if err != nil {
		p.loginFailed(w, r, err)
		return
	}
	q := url.Values{"challenge": {challenge}, "r": {key}}
	http.Redirect(w, r, p.cfg.Issuer+PathResume+"?"+q.Encode(), http.StatusSeeOther)
}

// claimReturn reads the identity kept on a challenge by ReturnLogin, for a
// request that presents the key; a wrong or missing key clears the identity
// (it was proved in another browser) and is refused.
func (p *Provider) claimReturn(r *http.Request, ch storage.Challenge) (idp.Identity, error) {
	var ret returned
	if err := json.Unmarshal(ch.Returned, &ret); err != nil {
		return idp.Identity{}, fmt.Errorf("decode returned identity: %w", err)
	}
	key := r.URL.Query().Get("r")
	if key == "" || subtle.ConstantTimeCompare([]byte(hashKey(key)), []byte(ret.KeyHash)) != 1 {
		if err := p.store.ReturnChallenge(r.Context(), ch.ID, nil, p.now()); err != nil && !errors.Is(err, storage.ErrNotFound) {
			p.log.ErrorContext(r.Context(), "clearing a returned identity failed", "err", err)
		}
		return idp.Identity{}, idp.ErrUnknownChallenge
	}
	return ret.Identity, nil
}

// login starts the SSO session of id's citizen for a challenge whose browser
// binding has been checked, and grants the authorization in the same
// transaction when the session satisfies it; a login below the level the
// request needs goes back to the chooser, which explains the step up.
func (p *Provider) login(w http.ResponseWriter, r *http.Request, ch storage.Challenge, ar fosite.AuthorizeRequester, id idp.Identity) {
	ctx := r.Context()
	req, err := requirementOf(ar)
	if err == nil {
		err = p.precheck(ar)
	}
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	tx, err := p.store.BeginTx(ctx)
	if err != nil {
		p.loginFailed(w, r, err)
		return
	}
	sso, subj, err := p.createSession(tx, r, id)
	if err == nil {
		err = p.recordLogin(tx, r, sso.Session, ch.ClientID)
	}
	if err != nil {
		_ = p.store.Rollback(tx)
		p.loginFailed(w, r, err)
		return
	}
	granted := p.satisfies(sso.Session, subj, req, &ch, false)
	var resp fosite.AuthorizeResponder
	if granted {
		resp, err = p.issue(tx, ar, sso.Session, subj, ch.CreatedAt, &ch)
	} else if ch.Returned != nil {
		err = p.store.ReturnChallenge(tx, ch.ID, nil, p.now()) // used: the next method starts afresh
	}
	if err = p.endTx(tx, err); err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	p.setCookie(w, p.cfg.CookieName, sso.value, 0)
	p.log.InfoContext(ctx, "citizen logged in", "subject", sso.Subject, "method", id.Method, "acr", sso.Level)
	if p.cfg.Observer != nil {
		p.cfg.Observer.LoginCompleted(id.Method)
	}
	if !granted {
		http.Redirect(w, r, PathLogin+"?challenge="+url.QueryEscape(ch.ID), http.StatusSeeOther)
		return
	}
	p.respond(ctx, w, ar, resp, sso.Session, subj)
}

// loginFailed answers a login that could not be recorded.
func (p *Provider) loginFailed(w http.ResponseWriter, r *http.Request, err error) {
	if unavailable(err) {
		p.comeBack(w, r, "starting SSO session", err)
		return
	}
	p.log.ErrorContext(r.Context(), "starting SSO session failed", "err", err)
	p.errorPage(w, r, http.StatusInternalServerError, msgInternal)
}

// MethodURL is the path of one of the method's own pages.
func (h loginHost) MethodURL(page string) string {
	return PathLogin + "/" + string(h.method) + page
}

// stateKey namespaces a method's key, so that methods cannot read each other's state.
func (h loginHost) stateKey(key string) string { return string(h.method) + ":" + key }

// SaveState keeps a method's state for a login.
func (h loginHost) SaveState(ctx context.Context, key, challenge string, data []byte, ttl time.Duration) error {
	if key == "" || ttl <= 0 {
		return errors.New("provider: a login state needs a key and a lifetime")
	}
	err := h.p.store.PutLoginState(ctx, storage.LoginState{Key: h.stateKey(key), Challenge: challenge, Data: data, ExpiresAt: h.p.now().Add(ttl)})
	if err != nil {
		return fmt.Errorf("provider: save login state: %w", err)
	}
	return nil
}

// TakeState returns a method's state once.
func (h loginHost) TakeState(ctx context.Context, key string) (string, []byte, error) {
	st, err := h.p.store.TakeLoginState(ctx, h.stateKey(key), h.p.now())
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil, idp.ErrUnknownState
	}
	if err != nil {
		return "", nil, fmt.Errorf("provider: take login state: %w", err)
	}
	return st.Challenge, st.Data, nil
}

// UseOnce records a single-use ID of the method in the shared replay store.
func (h loginHost) UseOnce(ctx context.Context, id string, until time.Time) error {
	if id == "" {
		return errors.New("provider: an empty single-use ID")
	}
	err := h.p.store.UseOnce(ctx, h.stateKey(id), until)
	if errors.Is(err, storage.ErrConflict) {
		return idp.ErrReplay
	}
	if err != nil {
		return fmt.Errorf("provider: use once: %w", err)
	}
	return nil
}

// sessionKey is the stored form of a method's session key: hashed, and
// namespaced by the method.
func sessionKey(method idp.Method, key string) string {
	if key == "" {
		return ""
	}
	return hashKey(string(method) + ":" + key)
}

// EndSessions ends the SSO sessions this method's logins named key.
func (h loginHost) EndSessions(ctx context.Context, key string) (int, error) {
	if key == "" {
		return 0, errors.New("provider: an empty session key")
	}
	n, err := h.p.ender.EndMethodSessions(ctx, sessionKey(h.method, key))
	if err != nil {
		return 0, fmt.Errorf("provider: end sessions: %w", err)
	}
	if n > 0 {
		h.p.log.InfoContext(ctx, "sessions ended by their login method", "method", h.method, "sessions", n)
	}
	return n, nil
}

// ClientCertificates returns the client certificate chain the edge found for r.
func (h loginHost) ClientCertificates(r *http.Request) ([]*x509.Certificate, error) {
	return clientcert.From(r.Context()), nil
}

// LoginURL is the chooser for a challenge.
func (loginHost) LoginURL(challenge string) string {
	return PathLogin + "?challenge=" + url.QueryEscape(challenge)
}

// chooserView is the data of the method chooser page.
type chooserView struct {
	Challenge  string
	ClientName string
	Methods    []methodLink
	StepUp     bool
	// Hints are what the method the citizen logged in with says about
	// reaching the level (idp.StepUpHinter).
	Hints       []idp.Hint
	CanContinue bool
	Dispositivo bool
}

type methodLink struct {
	Label string
	URL   string
}

// chooser shows the login methods that can reach the level the request needs.
// A citizen logged in below it sees why, what the method they used says about
// reaching it (an ordinary PIN becomes dispositivo by conversion), and (when
// the level is only asked, not demanded) how to go on without it.
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
		if h, ok := a.(idp.StepUpHinter); ok && stepUp && string(a.Method()) == sso.Method {
			if hint, ok := h.StepUpHint(loc); ok {
				view.Hints = append(view.Hints, hint)
			}
		}
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
