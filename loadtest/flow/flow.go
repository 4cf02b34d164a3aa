// Package flow drives Ponte over HTTP as a citizen's browser and a relying
// party do (go-oidc and x/oauth2 on the relying party's side), for the crash
// and load tests: a PIN, SPID (through the test identity provider) or CNS
// (a card on the card host) login up to the code, the code's redemption with
// the ID token verified (retried once after a 502 or 503, as a robust relying
// party does), userinfo. Every failure is an error, never a panic or a test
// failure, so that a caller can count them while servers die under it.
package flow

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Scopes are what the test relying party asks: the fiscal number tells whose
// token it is.
var Scopes = []string{oidc.ScopeOpenID, "profile", "fiscal_number"}

// StatusError is an answer other than the one the step expects.
type StatusError struct {
	Step       string
	Status     int
	RetryAfter string
	Body       string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: HTTP %d (Retry-After %q): %.200s", e.Step, e.Status, e.RetryAfter, e.Body)
}

// RedirectError is a login sent back to the relying party with an OAuth
// error (RFC 6749 §4.1.2.1) instead of a code.
type RedirectError struct {
	Code, Description string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("login: the relying party got error %s: %s", e.Code, e.Description)
}

// RP is a relying party registered at Ponte.
type RP struct {
	Issuer   string
	Redirect string
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
	provider *oidc.Provider
	// HTTP is the relying party's own client (token, userinfo).
	HTTP *http.Client
}

// NewRP discovers the issuer and returns the relying party id/secret.
func NewRP(ctx context.Context, issuer, id, secret, redirect string) (*RP, error) {
	hc := &http.Client{Timeout: 30 * time.Second, Transport: transport()}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, hc), issuer)
	if err != nil {
		return nil, err
	}
	// client_secret_basic, said once: x/oauth2's auto-detection retries a
	// failed exchange with client_secret_post, which would hide the first error.
	endpoint := p.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	return &RP{Issuer: issuer, Redirect: redirect, provider: p, HTTP: hc,
		verifier: p.Verifier(&oidc.Config{ClientID: id}),
		conf:     oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: endpoint, RedirectURL: redirect, Scopes: Scopes}}, nil
}

func transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return t
}

// Login is a code the relying party got, with what redeems it.
type Login struct {
	Code, Verifier, Nonce string
}

// Browser is a citizen's browser: a cookie jar that stops at the relying party.
type Browser struct {
	HTTP *http.Client
}

// NewBrowser returns a browser for the relying party rp.
func NewBrowser(rp *RP) *Browser {
	return newBrowser(rp, transport())
}

func newBrowser(rp *RP, t *http.Transport) *Browser {
	jar, _ := cookiejar.New(nil)
	redirect, _ := url.Parse(rp.Redirect)
	return &Browser{HTTP: &http.Client{Jar: jar, Timeout: 60 * time.Second, Transport: browserHeaders{t},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host == redirect.Host || len(via) > 15 {
				return http.ErrUseLastResponse
			}
			return nil
		}}}
}

// browserHeaders sends what a browser's navigation sends: Accept with
// text/html (Ponte answers a browser's 503 with a page, anyone else's with
// JSON) and Accept-Language.
type browserHeaders struct{ next http.RoundTripper }

func (b browserHeaders) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if r.Header.Get("Accept") == "" {
		r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	}
	if r.Header.Get("Accept-Language") == "" {
		r.Header.Set("Accept-Language", "it-IT,it;q=0.9,en;q=0.8")
	}
	return b.next.RoundTrip(r)
}

var challengeField = regexp.MustCompile(`name="challenge" value="([^"]*)"`)

// start returns the authorization URL of a login with idp_hint, and what redeems its code.
func (rp *RP) start(hint string) (string, Login) {
	l := Login{Verifier: oauth2.GenerateVerifier(), Nonce: oauth2.GenerateVerifier()[:22]}
	u := rp.conf.AuthCodeURL(oauth2.GenerateVerifier()[:22], oauth2.S256ChallengeOption(l.Verifier),
		oidc.Nonce(l.Nonce), oauth2.SetAuthURLParam("idp_hint", hint))
	return u, l
}

// PINLogin logs cf in with the PIN in browser b and returns the code the
// relying party gets.
func (rp *RP) PINLogin(ctx context.Context, b *Browser, cf, pin string) (Login, error) {
	return rp.PINLoginThen(ctx, b, cf, pin, nil)
}

// PINLoginThen is PINLogin calling ready (if not nil) once the PIN form is
// loaded, just before the PIN is posted.
func (rp *RP) PINLoginThen(ctx context.Context, b *Browser, cf, pin string, ready func()) (Login, error) {
	u, l := rp.start("pin")
	resp, body, err := b.do(ctx, http.MethodGet, u, nil)
	if err != nil {
		return l, err
	}
	m := challengeField.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		return l, statusError("PIN form", resp, body)
	}
	form := url.Values{"challenge": {html.UnescapeString(m[1])}, "fiscal_number": {cf}, "pin": {pin}}
	if ready != nil {
		ready()
	}
	resp, body, err = b.do(ctx, http.MethodPost, rp.Issuer+"/login/pin/", form)
	if err != nil {
		return l, err
	}
	return rp.code(l, resp, body)
}

func (rp *RP) code(l Login, resp *http.Response, body string) (Login, error) {
	loc, _ := resp.Location()
	if resp.StatusCode/100 != 3 || loc == nil || !strings.HasPrefix(loc.String(), rp.Redirect) {
		return l, statusError("login", resp, body)
	}
	if e := loc.Query().Get("error"); e != "" {
		return l, &RedirectError{Code: e, Description: loc.Query().Get("error_description")}
	}
	if l.Code = loc.Query().Get("code"); l.Code == "" {
		return l, errors.New("login: redirect without a code")
	}
	return l, nil
}

func statusError(step string, resp *http.Response, body string) error {
	return &StatusError{Step: step, Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After"), Body: body}
}

// do sends a request and reads the answer (at most 1 MiB).
func (b *Browser) do(ctx context.Context, method, u string, form url.Values) (*http.Response, string, error) {
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.HTTP.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, string(body), err
}

// Tokens are what a redeemed code gave, the ID token verified.
type Tokens struct {
	Access, Refresh string
	Subject         string
	FiscalNumber    string
}

// Redeem exchanges the code and verifies the ID token (signature, issuer,
// audience, expiry, nonce).
func (rp *RP) Redeem(ctx context.Context, l Login) (Tokens, error) {
	ctx = oidc.ClientContext(ctx, rp.HTTP)
	tok, err := rp.conf.Exchange(ctx, l.Code, oauth2.VerifierOption(l.Verifier))
	if err != nil {
		return Tokens{}, fmt.Errorf("token: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		return Tokens{}, fmt.Errorf("ID token: %w", err)
	}
	if idt.Nonce != l.Nonce {
		return Tokens{}, errors.New("ID token: another nonce")
	}
	var claims struct {
		FiscalNumber string `json:"fiscal_number"`
	}
	_ = idt.Claims(&claims)
	return Tokens{Access: tok.AccessToken, Refresh: tok.RefreshToken, Subject: idt.Subject, FiscalNumber: claims.FiscalNumber}, nil
}

// WithScopes returns a copy of rp that asks scopes instead of Scopes (with
// offline_access, say, for a refresh token).
func (rp *RP) WithScopes(scopes ...string) *RP {
	c := *rp
	c.conf.Scopes = scopes
	return &c
}

// Refresh redeems a refresh token; the ID token, if one comes back, is verified.
func (rp *RP) Refresh(ctx context.Context, refresh string) (Tokens, error) {
	ctx = oidc.ClientContext(ctx, rp.HTTP)
	tok, err := rp.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refresh}).Token()
	if err != nil {
		return Tokens{}, fmt.Errorf("refresh: %w", err)
	}
	out := Tokens{Access: tok.AccessToken, Refresh: tok.RefreshToken}
	if raw, _ := tok.Extra("id_token").(string); raw != "" {
		idt, err := rp.verifier.Verify(ctx, raw)
		if err != nil {
			return Tokens{}, fmt.Errorf("refreshed ID token: %w", err)
		}
		out.Subject = idt.Subject
	}
	return out, nil
}

// UserInfo returns the subject and fiscal number userinfo gives for access.
func (rp *RP) UserInfo(ctx context.Context, access string) (sub, fiscalNumber string, err error) {
	ctx = oidc.ClientContext(ctx, rp.HTTP)
	ui, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: access, TokenType: "Bearer"}))
	if err != nil {
		return "", "", fmt.Errorf("userinfo: %w", err)
	}
	var claims struct {
		FiscalNumber string `json:"fiscal_number"`
	}
	_ = ui.Claims(&claims)
	return ui.Subject, claims.FiscalNumber, nil
}

// Status is the HTTP status an error carries (0 for a transport error).
func Status(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode
	}
	if err != nil && strings.Contains(err.Error(), "userinfo: ") {
		if i := strings.Index(err.Error(), ": "); i > 0 {
			if n, e := strconv.Atoi(strings.Fields(err.Error()[i+2:] + " x")[0]); e == nil {
				return n
			}
		}
	}
	return 0
}
