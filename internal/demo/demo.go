// Package demo is a small relying party built into `ponte demo`: a page with
// two buttons (log in at the consultazione or at the dispositivo level) that
// runs the authorization code flow with PKCE against Ponte itself, through a
// real OIDC client (go-oidc and x/oauth2), and shows the verified ID token and
// userinfo claims. It exists so that a new user can walk through Ponte in a
// browser; it is not mounted by `ponte serve`.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// ClientID is the demo relying party's client_id.
const ClientID = "ponte-demo"

// Path is where the demo relying party is mounted.
const Path = "/demo"

// RP is the demo relying party.
type RP struct {
	issuer, secret string
	client         *http.Client
	log            *slog.Logger

	mu      sync.Mutex
	op      *oidc.Provider
	pending map[string]pending // by state
}

// pending is an authorization in flight.
type pending struct {
	verifier, nonce string
	at              time.Time
}

// New returns the demo RP for a client registered with secret.
func New(issuer, secret string, log *slog.Logger) *RP {
	return &RP{issuer: issuer, secret: secret, log: log, client: &http.Client{Timeout: 10 * time.Second},
		pending: map[string]pending{}}
}

// RedirectURI is the callback the demo client must register.
func RedirectURI(issuer string) string { return issuer + Path + "/callback" }

// Handler serves the demo pages below Path, and mailbox (the development
// mailbox of sent messages) at Path/mailbox.
func (rp *RP) Handler(mailbox http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+Path+"/mailbox", mailbox)
	mux.HandleFunc("GET "+Path+"/{$}", rp.home)
	mux.HandleFunc("GET "+Path+"/login", rp.login)
	mux.HandleFunc("GET "+Path+"/callback", rp.callback)
	return mux
}

// provider discovers Ponte lazily (the server must be listening first).
func (rp *RP) provider(ctx context.Context) (*oidc.Provider, error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.op != nil {
		return rp.op, nil
	}
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, rp.client), rp.issuer)
	if err != nil {
		return nil, err
	}
	rp.op = op
	return op, nil
}

func (rp *RP) config(op *oidc.Provider, scopes ...string) oauth2.Config {
	ep := op.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	return oauth2.Config{ClientID: ClientID, ClientSecret: rp.secret, Endpoint: ep,
		RedirectURL: RedirectURI(rp.issuer), Scopes: append([]string{oidc.ScopeOpenID, "profile", "email", "fiscal_number"}, scopes...)}
}

func random() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (rp *RP) home(w http.ResponseWriter, r *http.Request) {
	render(w, http.StatusOK, view{})
}

// login starts an authorization; level=dispositivo asks for the elevated scope.
func (rp *RP) login(w http.ResponseWriter, r *http.Request) {
	op, err := rp.provider(r.Context())
	if err != nil {
		rp.fail(w, "discovery failed", err)
		return
	}
	var scopes []string
	if r.URL.Query().Get("level") == "dispositivo" {
		scopes = append(scopes, "inps.dispositivo")
	}
	state, p := random(), pending{verifier: oauth2.GenerateVerifier(), nonce: random(), at: time.Now()}
	rp.mu.Lock()
	for s, old := range rp.pending {
		if time.Since(old.at) > 30*time.Minute {
			delete(rp.pending, s)
		}
	}
	rp.pending[state] = p
	rp.mu.Unlock()
	conf := rp.config(op, scopes...)
	http.Redirect(w, r, conf.AuthCodeURL(state, oauth2.S256ChallengeOption(p.verifier), oidc.Nonce(p.nonce)), http.StatusSeeOther)
}

// callback redeems the code and shows what the relying party learned.
func (rp *RP) callback(w http.ResponseWriter, r *http.Request) {
	ctx := oidc.ClientContext(r.Context(), rp.client)
	q := r.URL.Query()
	rp.mu.Lock()
	p, ok := rp.pending[q.Get("state")]
	delete(rp.pending, q.Get("state"))
	rp.mu.Unlock()
	if !ok {
		render(w, http.StatusBadRequest, view{Error: "unknown state: start again"})
		return
	}
	if e := q.Get("error"); e != "" {
		render(w, http.StatusOK, view{Error: e + ": " + q.Get("error_description")})
		return
	}
	if q.Get("iss") != rp.issuer {
		render(w, http.StatusBadRequest, view{Error: "iss mismatch (RFC 9207)"})
		return
	}
	op, err := rp.provider(ctx)
	if err != nil {
		rp.fail(w, "discovery failed", err)
		return
	}
	conf := rp.config(op)
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(p.verifier))
	if err != nil {
		rp.fail(w, "token exchange failed", err)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := op.Verifier(&oidc.Config{ClientID: ClientID, SupportedSigningAlgs: []string{"ES256", "RS256"}}).Verify(ctx, raw)
	if err != nil || idt.Nonce != p.nonce {
		rp.fail(w, "ID token verification failed", err)
		return
	}
	var claims map[string]any
	_ = idt.Claims(&claims)
	ui, err := op.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	var uiClaims map[string]any
	if err == nil {
		_ = ui.Claims(&uiClaims)
	}
	scope, _ := tok.Extra("scope").(string)
	render(w, http.StatusOK, view{Claims: pretty(claims), UserInfo: pretty(uiClaims), Scope: scope, Issuer: rp.issuer})
}

func (rp *RP) fail(w http.ResponseWriter, msg string, err error) {
	rp.log.Error("demo relying party: "+msg, "err", err)
	render(w, http.StatusBadGateway, view{Error: msg})
}

func pretty(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

type view struct {
	Error, Claims, UserInfo, Scope, Issuer string
}

var page = template.Must(template.New("demo").Parse(`<!doctype html>
<html lang="it"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ponte demo: servizio di esempio</title>
<style>body{font-family:Geneva,Tahoma,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
a.b{display:inline-block;margin:.5rem .5rem .5rem 0;padding:.7rem 1rem;background:#0066cc;color:#fff;text-decoration:none;border-radius:4px}
pre{background:#f4f4f4;padding:1rem;overflow:auto}.e{border-left:4px solid #d9364f;background:#fdecef;padding:.5rem 1rem}</style></head>
<body><h1>Servizio di esempio (relying party)</h1>
<p>Questo è un servizio INPS fittizio che usa Ponte per l'accesso. / A pretend INPS service that logs in through Ponte.</p>
<p><a class="b" href="/demo/login">Accedi (consultazione)</a><a class="b" href="/demo/login?level=dispositivo">Accedi per un'operazione dispositiva</a></p>
<p><a href="/demo/mailbox">Casella di sviluppo (messaggi inviati) / development mailbox</a></p>
<p><a href="/account/">I tuoi accessi (sessioni aperte, accessi recenti) / Your logins (open sessions, recent logins)</a></p>
{{if .Error}}<div class="e" role="alert"><p>{{.Error}}</p></div>{{end}}
{{if .Claims}}<h2>ID token (verificato / verified)</h2><p>scope: <code>{{.Scope}}</code></p><pre>{{.Claims}}</pre>
<h2>Userinfo</h2><pre>{{.UserInfo}}</pre>
<p><a href="/logout?client_id=ponte-demo&amp;post_logout_redirect_uri={{.Issuer}}/demo/">Esci / Log out</a></p>{{end}}
</body></html>`))

func render(w http.ResponseWriter, status int, v view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = page.Execute(w, v)
}
