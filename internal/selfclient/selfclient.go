// Package selfclient logs a person in to Ponte's own pages (the citizen's
// account pages, the staff console) the way any relying party does: as an
// OpenID Connect client of Ponte itself. It runs the authorization code flow
// with PKCE (S256) through go-oidc and x/oauth2, verifies the ID token (issuer,
// audience, signature against the JWKS, nonce, expiry, acr), and keeps the
// result in a short-lived cookie sealed with a key derived from the master key
// (internal/seal). The page session is bound to the SSO session it came from:
// on every request the browser's SSO session must still be the one named by
// the ID token's sid, so that a logout, a revocation or an administrator
// ending the session ends the page session too.
//
// Use: New with a Config, register the client at start (Register: the secret
// is derived from the master key, so every node registers the same one),
// mount Handler at Config.Path, and wrap the pages in Require. A page reads
// the person with FromContext.
package selfclient

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/internal/ui"
	"github.com/ponte-id/ponte/storage"
)

// Sessions is what the client asks of the provider: the sid and internal
// subject of the live SSO session of the browser making r (provider.Provider
// implements it).
type Sessions interface {
	BrowserSession(r *http.Request) (sid, subject string, ok bool)
}

// Config shapes a Client.
type Config struct {
	// Issuer is Ponte's issuer URL.
	Issuer string
	// ClientID names the client (one per set of pages: "ponte-account").
	ClientID string
	// Name is the client's display name (the login chooser shows it).
	Name string
	// Path is where the pages are mounted, without trailing slash ("/account").
	// The callback is Path+"/callback"; after a logout the browser returns to Path+"/".
	Path string
	// Scopes are asked beyond openid.
	Scopes []string
	// Level is the lowest level of assurance the pages accept; the client
	// demands it as an essential acr. Zero means LevelConsultazione.
	Level idp.Level
	// Box is the master key's box: the client secret and the cookie key are
	// derived from it.
	Box *seal.Box
	// Sessions binds page sessions to the SSO session.
	Sessions Sessions
	// HTTPClient reaches the issuer (discovery, token, JWKS); in a server it
	// is usually InProcess, so that Ponte need not reach its public address.
	HTTPClient *http.Client
	// TTL is how long a page session lasts before the client asks Ponte again
	// (which answers at once while the SSO session lives). Zero means 15 minutes.
	TTL time.Duration
	// CookieSecure marks the cookies Secure (an https issuer).
	CookieSecure bool
	Logger       *slog.Logger
	Now          func() time.Time
}

// Session is a person logged in to the pages.
type Session struct {
	// Subject is the internal subject (the sub claim: self clients get no pairwise alias).
	Subject string `json:"sub"`
	// SID is the SSO session's sid.
	SID string `json:"sid"`
	// ACR is the level reached, AuthMethod the login method.
	ACR        string `json:"acr"`
	AuthMethod string `json:"am,omitempty"`
	// FiscalNumber, GivenName and FamilyName are released by the fiscal_number and profile scopes.
	FiscalNumber string    `json:"cf,omitempty"`
	GivenName    string    `json:"gn,omitempty"`
	FamilyName   string    `json:"fn,omitempty"`
	AuthTime     time.Time `json:"at"`
	Expires      time.Time `json:"exp"`
}

// Level is the session's level of assurance.
func (s Session) Level() idp.Level {
	l, _ := idp.ParseACR(s.ACR)
	return l
}

// flow is an authorization in flight, kept in its own sealed cookie.
type flow struct {
	State    string    `json:"s"`
	Verifier string    `json:"v"`
	Nonce    string    `json:"n"`
	Return   string    `json:"r"`
	Expires  time.Time `json:"e"`
}

// flowTTL bounds an authorization in flight (the login itself included).
const flowTTL = 30 * time.Minute

// Client is one set of Ponte's pages logged in through Ponte.
type Client struct {
	cfg    Config
	secret string
	cookie *seal.Box
	log    *slog.Logger
	now    func() time.Time

	mu sync.Mutex
	op *oidc.Provider
}

// New checks cfg and returns the client; it does no network I/O (discovery
// happens at the first login, when the server listens).
func New(cfg Config) (*Client, error) {
	var errs []error
	if cfg.Issuer == "" || strings.HasSuffix(cfg.Issuer, "/") {
		errs = append(errs, errors.New("selfclient: issuer is required, without trailing slash"))
	}
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("selfclient: client ID is required"))
	}
	if !strings.HasPrefix(cfg.Path, "/") || strings.HasSuffix(cfg.Path, "/") {
		errs = append(errs, fmt.Errorf("selfclient: path %q must start and not end with /", cfg.Path))
	}
	if cfg.Box == nil || cfg.Sessions == nil {
		errs = append(errs, errors.New("selfclient: box and sessions are required"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Level == idp.LevelNone {
		cfg.Level = idp.LevelConsultazione
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 15 * time.Minute
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cookieBox, err := seal.New(cfg.Box.Derive("selfclient-cookie:"+cfg.ClientID, seal.KeySize))
	if err != nil {
		return nil, err
	}
	secret := fmt.Sprintf("%x", cfg.Box.Derive("selfclient-secret:"+cfg.ClientID, 32))
	return &Client{cfg: cfg, secret: secret, cookie: cookieBox, log: cfg.Logger, now: cfg.Now}, nil
}

// CallbackURL is the redirect URI the client registers.
func (c *Client) CallbackURL() string { return c.cfg.Issuer + c.cfg.Path + "/callback" }

// HomeURL is the pages' root, where a logout returns.
func (c *Client) HomeURL() string { return c.cfg.Issuer + c.cfg.Path + "/" }

// Spec is the client's registration.
func (c *Client) Spec() clients.Spec {
	scopes := append([]string{oidc.ScopeOpenID}, c.cfg.Scopes...)
	return clients.Spec{
		ID: c.cfg.ClientID, Name: c.cfg.Name,
		RedirectURIs: []string{c.CallbackURL()}, PostLogoutRedirectURIs: []string{c.HomeURL()},
		Scopes: scopes, AuthMethod: clients.AuthSecretBasic,
	}
}

// Register registers (or refreshes) the client with its derived secret.
// Every node may call it at start.
func (c *Client) Register(ctx context.Context, reg *clients.Registry) error {
	return reg.Ensure(ctx, c.Spec(), c.secret)
}

// LogoutURL is Ponte's RP-initiated logout for this client: it ends the SSO
// session (after the person confirms) and comes back to the pages' root.
func (c *Client) LogoutURL() string {
	q := url.Values{"client_id": {c.cfg.ClientID}, "post_logout_redirect_uri": {c.HomeURL()}}
	return c.cfg.Issuer + "/logout?" + q.Encode()
}

// cookieName is the page session's cookie; flowCookie the authorization's.
func (c *Client) cookieName() string { return "ponte_self_" + c.cfg.ClientID }
func (c *Client) flowCookie() string { return c.cookieName() + "_flow" }

// provider discovers Ponte lazily.
func (c *Client) provider(ctx context.Context) (*oidc.Provider, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.op != nil {
		return c.op, nil
	}
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, c.cfg.HTTPClient), c.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("selfclient: discovery: %w", err)
	}
	c.op = op
	return op, nil
}

func (c *Client) oauthConfig(op *oidc.Provider) oauth2.Config {
	ep := op.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	return oauth2.Config{ClientID: c.cfg.ClientID, ClientSecret: c.secret, Endpoint: ep,
		RedirectURL: c.CallbackURL(), Scopes: append([]string{oidc.ScopeOpenID}, c.cfg.Scopes...)}
}

// sessionKey is the context key of the Session.
type sessionKey struct{}

// FromContext returns the person Require let through.
func FromContext(ctx context.Context) (Session, bool) {
	s, ok := ctx.Value(sessionKey{}).(Session)
	return s, ok
}

// Current returns the page session of r if it is live, at the level the
// pages demand, and still bound to the browser's SSO session.
func (c *Client) Current(r *http.Request) (Session, bool) {
	ck, err := r.Cookie(c.cookieName())
	if err != nil {
		return Session{}, false
	}
	var s Session
	if !c.open(ck.Value, "session", &s) || !c.now().Before(s.Expires) || s.Level() < c.cfg.Level {
		return Session{}, false
	}
	sid, sub, ok := c.cfg.Sessions.BrowserSession(r)
	if !ok || subtle.ConstantTimeCompare([]byte(sid), []byte(s.SID)) != 1 || sub != s.Subject {
		return Session{}, false
	}
	return s, true
}

// Require lets through requests with a live page session (FromContext gives
// it to next). Without one, a GET starts a login that comes back to the same
// address; any other method is refused with 401 and a page that says to
// reload (a form must not be replayed across a login).
func (c *Client) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := c.Current(r)
		if ok {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
			return
		}
		c.clearCookie(w, c.cookieName())
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			c.errorPage(w, r, http.StatusUnauthorized, msgExpired)
			return
		}
		c.Login(w, r, r.URL.RequestURI())
	})
}

// Handler serves the callback; mount it at Path+"/callback".
func (c *Client) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+c.cfg.Path+"/callback", c.callback)
	return mux
}

// Login sends the browser to Ponte's authorization endpoint, to come back to
// returnTo (a path below Path; anything else means Path+"/").
func (c *Client) Login(w http.ResponseWriter, r *http.Request, returnTo string) {
	op, err := c.provider(r.Context())
	if err != nil {
		c.log.ErrorContext(r.Context(), "self client cannot reach the provider", "client", c.cfg.ClientID, "err", err)
		c.errorPage(w, r, http.StatusBadGateway, msgUnavailable)
		return
	}
	f := flow{State: rand32(), Verifier: oauth2.GenerateVerifier(), Nonce: rand32(),
		Return: c.safeReturn(returnTo), Expires: c.now().Add(flowTTL)}
	v, err := c.seal(f, "flow")
	if err != nil {
		c.errorPage(w, r, http.StatusInternalServerError, msgUnavailable)
		return
	}
	c.setCookie(w, c.flowCookie(), v, flowTTL)
	conf := c.oauthConfig(op)
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.Verifier), oidc.Nonce(f.Nonce)}
	if acr := c.cfg.Level.ACR(); acr != "" && c.cfg.Level > idp.LevelConsultazione {
		// An essential acr: below it Ponte issues nothing (no silent continue at a lower level).
		claims, _ := json.Marshal(map[string]any{"id_token": map[string]any{"acr": map[string]any{"essential": true, "values": []string{acr}}}})
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", acr), oauth2.SetAuthURLParam("claims", string(claims)))
	}
	if l := r.URL.Query().Get("lang"); l == "it" || l == "en" {
		opts = append(opts, oauth2.SetAuthURLParam("ui_locales", l))
	}
	http.Redirect(w, r, conf.AuthCodeURL(f.State, opts...), http.StatusSeeOther)
}

// safeReturn keeps only a local path below Path.
func (c *Client) safeReturn(p string) string {
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" ||
		!strings.HasPrefix(u.Path, c.cfg.Path+"/") || strings.HasPrefix(p, "//") || strings.Contains(p, "\\") ||
		u.Path == c.cfg.Path+"/callback" {
		return c.cfg.Path + "/"
	}
	return u.RequestURI()
}

// callback redeems the code, verifies the ID token and starts the page session.
func (c *Client) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	var f flow
	ck, err := r.Cookie(c.flowCookie())
	okFlow := err == nil && c.open(ck.Value, "flow", &f) && c.now().Before(f.Expires) &&
		subtle.ConstantTimeCompare([]byte(f.State), []byte(q.Get("state"))) == 1
	c.clearCookie(w, c.flowCookie())
	if !okFlow {
		// Another tab's callback, an expired flow, or a callback the browser
		// did not start (login CSRF): nothing is logged in.
		c.log.InfoContext(ctx, "self client callback without its flow", "client", c.cfg.ClientID)
		c.errorPage(w, r, http.StatusBadRequest, msgStartAgain)
		return
	}
	if e := q.Get("error"); e == "temporarily_unavailable" {
		// Ponte's database is away (RFC 6749 §4.1.2.1): the come-back page.
		c.log.WarnContext(ctx, "self client login: the provider is temporarily unavailable", "client", c.cfg.ClientID)
		ui.ComeBack(w, r, storage.RetryAfter, ui.Unavailable)
		return
	} else if e != "" {
		c.log.InfoContext(ctx, "self client login refused", "client", c.cfg.ClientID, "error", e)
		msg := msgRefused
		if e == "unmet_authentication_requirements" {
			msg = msgLevel
		}
		c.errorPage(w, r, http.StatusForbidden, msg)
		return
	}
	if q.Get("iss") != c.cfg.Issuer { // RFC 9207
		c.errorPage(w, r, http.StatusBadRequest, msgStartAgain)
		return
	}
	s, err := c.redeem(ctx, q.Get("code"), f)
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode == http.StatusServiceUnavailable {
		c.log.WarnContext(ctx, "self client login: the token endpoint is temporarily unavailable", "client", c.cfg.ClientID, "err", err)
		ui.ComeBack(w, r, storage.RetryAfter, ui.Unavailable)
		return
	}
	if err != nil {
		c.log.WarnContext(ctx, "self client login failed", "client", c.cfg.ClientID, "err", err)
		status, msg := http.StatusBadGateway, msgUnavailable
		if errors.Is(err, errLevel) {
			status, msg = http.StatusForbidden, msgLevel
		}
		c.errorPage(w, r, status, msg)
		return
	}
	v, err := c.seal(s, "session")
	if err != nil {
		c.errorPage(w, r, http.StatusInternalServerError, msgUnavailable)
		return
	}
	c.setCookie(w, c.cookieName(), v, c.cfg.TTL)
	http.Redirect(w, r, f.Return, http.StatusSeeOther)
}

var errLevel = errors.New("selfclient: the login did not reach the level the pages demand")

// redeem exchanges the code (with the PKCE verifier) and verifies the ID token.
func (c *Client) redeem(ctx context.Context, code string, f flow) (Session, error) {
	op, err := c.provider(ctx)
	if err != nil {
		return Session{}, err
	}
	ctx = oidc.ClientContext(ctx, c.cfg.HTTPClient)
	conf := c.oauthConfig(op)
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return Session{}, fmt.Errorf("token exchange: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := op.Verifier(&oidc.Config{ClientID: c.cfg.ClientID, SupportedSigningAlgs: []string{"ES256", "RS256"}, Now: c.now}).Verify(ctx, raw)
	if err != nil {
		return Session{}, fmt.Errorf("ID token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		return Session{}, errors.New("ID token: nonce mismatch")
	}
	var cl struct {
		SID          string `json:"sid"`
		ACR          string `json:"acr"`
		AuthTime     int64  `json:"auth_time"`
		AuthMethod   string `json:"auth_method"`
		FiscalNumber string `json:"fiscal_number"`
		GivenName    string `json:"given_name"`
		FamilyName   string `json:"family_name"`
	}
	if err := idt.Claims(&cl); err != nil {
		return Session{}, fmt.Errorf("ID token claims: %w", err)
	}
	if cl.SID == "" {
		return Session{}, errors.New("ID token: no sid")
	}
	if l, ok := idp.ParseACR(cl.ACR); !ok || l < c.cfg.Level {
		return Session{}, errLevel
	}
	return Session{
		Subject: idt.Subject, SID: cl.SID, ACR: cl.ACR, AuthMethod: cl.AuthMethod,
		FiscalNumber: cl.FiscalNumber, GivenName: cl.GivenName, FamilyName: cl.FamilyName,
		AuthTime: time.Unix(cl.AuthTime, 0).UTC(), Expires: c.now().Add(c.cfg.TTL),
	}, nil
}

// EndPageSession drops the page session's cookie (the SSO session lives on).
func (c *Client) EndPageSession(w http.ResponseWriter) { c.clearCookie(w, c.cookieName()) }

func (c *Client) seal(v any, purpose string) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sealed, err := c.cookie.Seal(b, []byte(purpose+"\x00"+c.cfg.ClientID))
	if err != nil {
		return "", err
	}
	return b64(sealed), nil
}

// open reports whether value is a cookie this client sealed for purpose, and decodes it.
func (c *Client) open(value, purpose string, v any) bool {
	if len(value) > 4096 {
		return false
	}
	sealed, err := unb64(value)
	if err != nil {
		return false
	}
	b, err := c.cookie.Open(sealed, []byte(purpose+"\x00"+c.cfg.ClientID))
	return err == nil && json.Unmarshal(b, v) == nil
}

func (c *Client) setCookie(w http.ResponseWriter, name, value string, ttl time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: c.cfg.Path, MaxAge: int(ttl / time.Second),
		Secure: c.cfg.CookieSecure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

func (c *Client) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: c.cfg.Path, MaxAge: -1,
		Secure: c.cfg.CookieSecure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}
