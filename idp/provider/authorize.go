package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/storage"
)

// errUnmetAuthenticationRequirements is OIDC's error for an essential acr that
// the citizen could not reach (OpenID Connect Core errata, §3.1.2.6 unmet_authentication_requirements).
var errUnmetAuthenticationRequirements = &fosite.RFC6749Error{
	ErrorField:       "unmet_authentication_requirements",
	DescriptionField: "The authentication requirements of the request could not be met.",
	CodeField:        http.StatusBadRequest,
}

// challengeData is what a login challenge keeps of the pending authorization:
// its parameters (as resolved from a pushed request, which is single-use) and
// the browser it belongs to.
type challengeData struct {
	Form    url.Values `json:"form"`
	Browser string     `json:"browser"`
	// What the chooser and the login methods need, read once when the challenge
	// is made; the resume parses Form again, through fosite, before any code.
	Level      idp.Level `json:"level"`
	Essential  bool      `json:"essential"`
	LoginHint  string    `json:"login_hint,omitempty"`
	IDPHint    string    `json:"idp_hint,omitempty"`
	ClientName string    `json:"client_name"`
}

// authorize is the authorization endpoint.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	ar, err := p.newAuthorizeRequest(r)
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	p.proceed(w, r, ar, nil, false)
}

// newAuthorizeRequest parses an authorization request through fosite, with
// the checks Ponte adds around it. A nil request with the error means that
// the error must not go to the redirect URI.
func (p *Provider) newAuthorizeRequest(r *http.Request) (fosite.AuthorizeRequester, error) {
	if err := p.checkPushedClient(r); err != nil {
		return nil, err
	}
	ar, err := p.oauth.NewAuthorizeRequest(r.Context(), r)
	if err != nil {
		return ar, err
	}
	if err := checkRedirectURI(ar); err != nil {
		return nil, err
	}
	return ar, nil
}

// checkPushedClient refuses a request_uri (RFC 9126 §4) sent with another
// client_id than the one that pushed it, before fosite reads it: fosite
// deletes the pushed request before it compares the client, so anyone who saw
// a request_uri could otherwise spoil it for its client. The redirect URI is
// not verified for the client that was named, so the error is a page.
func (p *Provider) checkPushedClient(r *http.Request) error {
	if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return nil // fosite reports the malformed body
	}
	uri := r.Form.Get("request_uri")
	if uri == "" || !strings.HasPrefix(uri, parURIPrefix) {
		return nil
	}
	owner, err := p.fstore.parClient(r.Context(), uri)
	if err != nil {
		return nil // unknown or expired: fosite answers invalid_request_uri
	}
	if owner != r.Form.Get("client_id") {
		return fosite.ErrInvalidRequest.WithHint("The 'client_id' must match the one sent in the pushed authorization request.")
	}
	return nil
}

// checkRedirectURI matches redirect_uri to a registered URI character for
// character (RFC 9700 §2.1). fosite also applies the any-port rule for
// loopback URIs of native apps (RFC 8252 §7.3) to every client; Ponte keeps it
// for public clients only: for a confidential client, another port on the
// loopback interface is another program.
func checkRedirectURI(ar fosite.AuthorizeRequester) error {
	raw := ar.GetRequestForm().Get("redirect_uri")
	c := ar.GetClient()
	if raw == "" || c.IsPublic() || slices.Contains(c.GetRedirectURIs(), raw) {
		return nil
	}
	return fosite.ErrInvalidRequest.WithHint("The 'redirect_uri' parameter does not match any of the OAuth 2.0 Client's pre-registered redirect urls.")
}

// resume continues an authorization on the issuer, in the browser that made
// the challenge (replayChallenge checks the binding): with the identity a
// method's cross-site return kept on the challenge (Host.ReturnLogin) and the
// key that return handed this browser, the browser is logged in now;
// otherwise the request proceeds as at /authorize.
func (p *Provider) resume(w http.ResponseWriter, r *http.Request) {
	ch, ar, err := p.replayChallenge(r, r.URL.Query().Get("challenge"))
	if err != nil {
		p.challengeError(w, r, ar, err)
		return
	}
	if ch.Returned != nil {
		id, err := p.claimReturn(r, ch)
		if errors.Is(err, idp.ErrUnknownChallenge) {
			p.log.InfoContext(r.Context(), "a returned login claimed without its key")
			p.errorPage(w, r, http.StatusBadRequest, msgChallengeExpired)
			return
		}
		if err != nil {
			p.loginFailed(w, r, err)
			return
		}
		p.login(w, r, ch, ar, id)
		return
	}
	p.proceed(w, r, ar, &ch, false)
}

// proceed grants the authorization if the browser's session satisfies it, and
// otherwise sends the browser to the login chooser (or the client an error for prompt=none).
// acceptLower is the citizen's choice to continue below a voluntary level.
func (p *Provider) proceed(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, ch *storage.Challenge, acceptLower bool) {
	req, err := requirementOf(ar)
	if err == nil {
		err = p.precheck(ar)
	}
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	sso, subj, ok := p.currentSession(r)
	requestedAt := p.now()
	if ch != nil {
		requestedAt = ch.CreatedAt
	}
	if ok && p.satisfies(sso, subj, req, ch, acceptLower || req.promptNone) {
		p.grant(w, r, ar, sso, subj, requestedAt, ch)
		return
	}
	if req.promptNone {
		p.authorizeError(w, r, ar, fosite.ErrLoginRequired.WithHint("The citizen must log in, and prompt=none forbids it."))
		return
	}
	if ch == nil {
		c, err := p.newChallenge(w, r, ar, req)
		if tooMany, ok := isTooMany(err); ok {
			p.tooManyChallenges(w, r, tooMany)
			return
		}
		if err != nil {
			p.authorizeError(w, r, ar, fosite.ErrServerError.WithWrap(err))
			return
		}
		ch = &c
	}
	http.Redirect(w, r, PathLogin+"?challenge="+url.QueryEscape(ch.ID), http.StatusSeeOther)
}

// satisfies says whether an existing SSO session answers the request without a
// new login. A login made during this very request (after the challenge was
// created) satisfies prompt=login, max_age and login_hint; the level it must reach
// in any case.
func (p *Provider) satisfies(sso storage.Session, subj storage.Subject, req requirement, ch *storage.Challenge, acceptLower bool) bool {
	fresh := ch != nil && !sso.AuthTime.Before(ch.CreatedAt)
	switch {
	case req.promptLogin && !fresh:
		return false // OIDC Core §3.1.2.1: prompt=login re-authenticates
	case req.maxAge >= 0 && !fresh && p.now().Sub(sso.AuthTime.Truncate(time.Second)) > req.maxAge:
		return false
	case req.loginHint != "" && !fresh && subj.FiscalNumber != req.loginHint:
		return false
	case levelOf(sso.Level) < req.level && (req.essential || !acceptLower):
		return false // SPEC §2: never a silent upgrade
	}
	return true
}

// precheck refuses, before the citizen is asked to log in, what fosite would
// refuse only when issuing the code: PKCE missing or not S256 (RFC 7636; RFC
// 9700 §2.1.1 asks it of every client, and only a confidential client with an
// administrator's exemption goes without), a nonce too short to be
// unguessable, and parameters larger than a login challenge may store.
func (p *Provider) precheck(ar fosite.AuthorizeRequester) error {
	form := ar.GetRequestForm()
	if err := checkChallengeSize(form); err != nil {
		return err
	}
	challenge, method := form.Get("code_challenge"), form.Get("code_challenge_method")
	switch {
	case challenge == "" && !pkceExempt(ar.GetClient()):
		return fosite.ErrInvalidRequest.WithHint("Clients must include a code_challenge when performing the authorize code flow, but it is missing.")
	case challenge != "" && method != "S256":
		return fosite.ErrInvalidRequest.WithHint("The code_challenge_method must be S256.")
	}
	if n := form.Get("nonce"); n != "" && len(n) < fosite.MinParameterEntropy {
		return fosite.ErrInvalidRequest.WithHintf("The nonce must be at least %d characters.", fosite.MinParameterEntropy)
	}
	return nil
}

// grant issues the authorization response for the session's citizen, in a
// transaction of its own.
func (p *Provider) grant(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, sso storage.Session, subj storage.Subject, requestedAt time.Time, ch *storage.Challenge) {
	ctx, err := p.store.BeginTx(r.Context())
	if err != nil {
		p.authorizeError(w, r, ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	resp, err := p.issue(ctx, ar, sso, subj, requestedAt, ch)
	if err = p.endTx(ctx, err); err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	p.respond(ctx, w, ar, resp, sso, subj)
}

// issue makes the authorization response for the session's citizen in the
// transaction carried by ctx: the code, its PKCE and OpenID Connect records
// and the end of the challenge are one commit. The elevated scope is granted
// only at the dispositivo level.
func (p *Provider) issue(ctx context.Context, ar fosite.AuthorizeRequester, sso storage.Session, subj storage.Subject, requestedAt time.Time, ch *storage.Challenge) (fosite.AuthorizeResponder, error) {
	c, ok := ar.GetClient().(*client)
	if !ok {
		return nil, fosite.ErrServerError.WithDebug("unexpected client type")
	}
	level := levelOf(sso.Level)
	for _, s := range ar.GetRequestedScopes() {
		if s == ScopeDispositivo && level < idp.LevelDispositivo {
			continue
		}
		ar.GrantScope(s)
	}
	sess := p.buildSession(c, sso, subj, ar.GetGrantedScopes(), requestedAt)
	resp, err := p.oauth.NewAuthorizeResponse(ctx, ar, sess)
	if err != nil {
		return nil, err
	}
	// The client takes part in the session: a back-channel logout reaches it
	// with the sub and sid its ID token carries.
	if err := p.store.AddSessionClient(ctx, storage.SessionClient{
		SessionID: sso.ID, ClientID: c.GetID(), Subject: sess.Subject, SID: SID(sso.ID),
		CreatedAt: p.now().UTC(), ExpiresAt: sso.ExpiresAt,
	}); err != nil {
		return nil, err
	}
	if ch != nil {
		if err := p.store.DeleteChallenge(ctx, ch.ID); errors.Is(err, storage.ErrNotFound) {
			return nil, fosite.ErrInvalidRequest.WithHint("The login request was already used.")
		} else if err != nil {
			return nil, err
		}
	}
	resp.AddParameter("iss", p.cfg.Issuer) // RFC 9207
	return resp, nil
}

// respond sends the committed authorization response to the client.
func (p *Provider) respond(ctx context.Context, w http.ResponseWriter, ar fosite.AuthorizeRequester, resp fosite.AuthorizeResponder, sso storage.Session, subj storage.Subject) {
	p.log.InfoContext(ctx, "authorization granted", "client", ar.GetClient().GetID(), "subject", subj.ID, "acr", sso.Level, "method", sso.Method)
	p.oauth.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// newChallenge stores the pending authorization, bound to this browser: only
// the parameters Ponte knows (challengeForm), and only while the browser and
// the client address are under their caps of pending challenges
// (errTooManyChallenges otherwise). The count and the insert are one
// transaction, in which storage makes concurrent counts for the same browser
// or address wait: parallel requests cannot exceed a cap.
func (p *Provider) newChallenge(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, req requirement) (storage.Challenge, error) {
	binding, setCookie := p.browserBinding(r)
	browser := hashKey(binding)
	data, err := json.Marshal(challengeData{
		Form:    challengeForm(ar.GetRequestForm()),
		Browser: browser,
		Level:   req.level, Essential: req.essential, LoginHint: req.loginHint, IDPHint: req.idpHint,
		ClientName: clientName(ar),
	})
	if err != nil {
		return storage.Challenge{}, err
	}
	now := p.now().UTC()
	ch := storage.Challenge{
		ID: randomToken(), ClientID: ar.GetClient().GetID(), Browser: browser, ClientIP: p.addressKey(r),
		Data: data, CreatedAt: now, ExpiresAt: now.Add(p.cfg.ChallengeTTL),
	}
	ctx, err := p.store.BeginTx(r.Context())
	if err != nil {
		return ch, err
	}
	n, err := p.store.CountChallenges(ctx, ch.Browser, ch.ClientIP, now)
	if err == nil {
		err = p.underCaps(n, now)
	}
	if err == nil {
		err = p.store.CreateChallenge(ctx, ch)
	}
	if err = p.endTx(ctx, err); err == nil && setCookie != "" {
		p.setCookie(w, browserCookie, setCookie, 0)
	}
	return ch, err
}

// loadChallenge reads a live challenge that belongs to the browser making r.
func (p *Provider) loadChallenge(r *http.Request, id string) (storage.Challenge, challengeData, error) {
	var data challengeData
	if id == "" || len(id) > 128 {
		return storage.Challenge{}, data, idp.ErrUnknownChallenge
	}
	ch, err := p.store.GetChallenge(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return ch, data, idp.ErrUnknownChallenge
	}
	if err != nil {
		return ch, data, err
	}
	if !p.now().Before(ch.ExpiresAt) {
		return ch, data, idp.ErrUnknownChallenge
	}
	if err := json.Unmarshal(ch.Data, &data); err != nil {
		return ch, data, err
	}
	c, err := r.Cookie(browserCookie)
	if err != nil || hashKey(browserRandom(c.Value)) != data.Browser {
		return ch, data, idp.ErrUnknownChallenge
	}
	return ch, data, nil
}

// replayChallenge loads a challenge and parses its authorization request again,
// so that every check fosite makes is made again on resume.
func (p *Provider) replayChallenge(r *http.Request, id string) (storage.Challenge, fosite.AuthorizeRequester, error) {
	ch, data, err := p.loadChallenge(r, id)
	if err != nil {
		return ch, nil, err
	}
	replay := r.Clone(r.Context())
	replay.Method = http.MethodGet
	replay.URL = &url.URL{Path: PathAuthorize, RawQuery: data.Form.Encode()}
	replay.Body, replay.Form, replay.PostForm, replay.ContentLength = http.NoBody, nil, nil, 0
	replay.Header.Del("Content-Type")
	ar, err := p.newAuthorizeRequest(replay)
	return ch, ar, err
}

// challengeError answers a bad or expired challenge: a page for the person, or
// the client's error if the replayed request itself failed.
func (p *Provider) challengeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	if unavailable(err) && (ar == nil || !ar.IsRedirectURIValid()) {
		p.comeBack(w, r, "login challenge", err)
		return
	}
	if errors.Is(err, idp.ErrUnknownChallenge) || ar == nil {
		p.log.InfoContext(r.Context(), "login challenge refused", "err", err)
		p.errorPage(w, r, http.StatusBadRequest, msgChallengeExpired)
		return
	}
	p.authorizeError(w, r, ar, err)
}

// authorizeError reports an authorization error: to the client's redirect URI
// with iss (RFC 9207) when that URI was verified, and otherwise on a page for
// the person — never a redirect to an unverified URI. An outage of the
// database is temporarily_unavailable at the redirect URI (RFC 6749
// §4.1.2.1), or the come-back page when the URI could not be verified (the
// client could not be read).
func (p *Provider) authorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	ctx := r.Context()
	if unavailable(err) && (ar == nil || !ar.IsRedirectURIValid()) {
		p.comeBack(w, r, "authorization", err)
		return
	}
	err = oauthUnavailable(w, err)
	rfc := fosite.ErrorToRFC6749Error(err)
	if unavailable(err) {
		p.log.WarnContext(ctx, "authorization: database unavailable", "debug", rfc.DebugField)
	} else if rfc.CodeField >= http.StatusInternalServerError {
		p.log.ErrorContext(ctx, "authorization failed", "err", rfc.ErrorField, "debug", rfc.GetDescription(), "cause", rfc.Cause())
	} else {
		p.log.InfoContext(ctx, "authorization refused", "err", rfc.ErrorField, "hint", rfc.HintField)
	}
	if ar == nil || !ar.IsRedirectURIValid() {
		p.errorPage(w, r, rfc.CodeField, msgBadRequest(rfc))
		return
	}
	values := url.Values{}
	values.Set("error", rfc.ErrorField)
	if d := rfc.GetDescription(); d != "" && rfc.CodeField < http.StatusInternalServerError {
		values.Set("error_description", d)
	}
	if s := ar.GetState(); s != "" && len(s) <= maxChallengeValue {
		values.Set("state", s) // an oversized state was refused, not echoed
	}
	values.Set("iss", p.cfg.Issuer)
	redirect := *ar.GetRedirectURI()
	redirect.Fragment = ""
	w.Header().Set("Cache-Control", "no-store")
	switch ar.GetResponseMode() {
	case fosite.ResponseModeFormPost:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		writeFormPost(w, redirect.String(), values)
	default:
		q := redirect.Query()
		for k, v := range values {
			q[k] = v
		}
		redirect.RawQuery = q.Encode()
		http.Redirect(w, r, redirect.String(), http.StatusSeeOther)
	}
}
