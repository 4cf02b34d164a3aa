package cns_test

import (
	"crypto/tls"
	"crypto/x509"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/adapters/cns"
	"github.com/ponte-id/ponte/adapters/cns/cnstest"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// formMethod is a second login method for the end-to-end tests: a form
// that asserts a codice fiscale at the consultazione level, as an ordinary
// PIN would. CNS must link to the same subject.
type formMethod struct{}

func (formMethod) Method() idp.Method  { return "form" }
func (formMethod) Label(string) string { return "Form" }
func (formMethod) MaxLevel() idp.Level { return idp.LevelDispositivo }
func (formMethod) Handler(h idp.Host) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.CompleteLogin(w, r, r.FormValue("challenge"), idp.Identity{
			FiscalNumber: r.FormValue("cf"), GivenName: "Mario", FamilyName: "Rossi",
			Level: idp.LevelConsultazione, Method: idp.MethodPIN, AMR: []string{"pwd"},
		})
	})
}

// ponte is a provider with the CNS and the form method, its plain listener
// the issuer, beside its card listener: the same handler behind TLS that
// asks for a certificate.
type ponte struct {
	*oidctest.Env
	cardURL string
	pool    *x509.CertPool
	method  idp.Authenticator
	logs    *logBook
}

func startPonte(t *testing.T, store storage.Store, p *pki) *ponte {
	t.Helper()
	ln := listen(t)
	pt := &ponte{cardURL: "https://" + ln.Addr().String(), logs: &logBook{}}
	pt.Env = oidctest.Start(t, store, oidctest.Options{Methods: func(issuer string) []idp.Authenticator {
		pt.method = must(cns.New(p.config(pt.cardURL, issuer), cns.Deps{Logger: pt.logs.logger()}))
		return []idp.Authenticator{pt.method, formMethod{}}
	}})
	pt.pool = tlsListener(t, ln, pt.Server.Config.Handler)
	return pt
}

// browser is a browser that trusts the card listener and presents card
// when asked (none if nil).
func (pt *ponte) browser(t *testing.T, card *tls.Certificate) *oidctest.Browser {
	b := oidctest.NewBrowser(t)
	cfg := &tls.Config{RootCAs: pt.pool}
	if card != nil {
		cfg.Certificates = []tls.Certificate{*card}
	}
	b.Client.Transport = &http.Transport{TLSClientConfig: cfg}
	t.Cleanup(b.Client.CloseIdleConnections)
	return b
}

var cnsLinkRE = regexp.MustCompile(`href="(/login/cns/\?challenge=[^"]+)"`)

// authorize starts an authorization in b and returns the chooser's CNS link.
func authorize(t *testing.T, pt *ponte, r *oidctest.RP, b *oidctest.Browser, opts ...oauth2.AuthCodeOption) string {
	t.Helper()
	resp, body := b.Get(r.Conf.AuthCodeURL(oidctest.RandomString(), opts...))
	m := cnsLinkRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("chooser: %d %.600s", resp.StatusCode, body)
	}
	return pt.Issuer + html.UnescapeString(m[1])
}

// idClaims are the ID token claims the tests read.
type idClaims struct {
	ACR        string   `json:"acr"`
	AMR        []string `json:"amr"`
	AuthMethod string   `json:"auth_method"`
	FamilyName string   `json:"family_name"`
}

// exchange redeems the code of loc and verifies the ID token.
func exchange(t *testing.T, r *oidctest.RP, loc *url.URL, verifier string) (*oauth2.Token, *oidc.IDToken, idClaims) {
	t.Helper()
	if loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("no code: %v", loc)
	}
	tok, err := r.Conf.Exchange(r.Ctx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.Verifier.Verify(r.Ctx(), raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return tok, idt, c
}

// backends runs f on SQLite, and on PostgreSQL when PONTE_TEST_POSTGRES_DSN
// names one, in parallel.
func backends(t *testing.T, f func(t *testing.T, store storage.Store)) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			f(t, b.Open(t))
		})
	}
}

// TestEndToEnd: a relying party (go-oidc, x/oauth2) asks for the dispositivo
// level; the citizen picks CNS on the chooser, the browser presents the card
// on the card listener, comes back to the issuer and then to the relying
// party, whose ID token says acr dispositivo, amr hwk+sc, auth_method cns,
// and the same sub as the citizen's earlier login with another method (the
// codice fiscale links them). The scope inps.dispositivo is granted.
func TestEndToEnd(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		p := newPKI(t)
		pt := startPonte(t, store, p)
		r := pt.NewRP(clients.Spec{Scopes: []string{"openid", "profile", "inps.consultazione", "inps.dispositivo"}})

		// The citizen's earlier login, at the base level, with the form.
		r.Conf.Scopes = []string{"openid", "profile"}
		pinBrowser := pt.browser(t, nil)
		verifier := oauth2.GenerateVerifier()
		resp, body := pinBrowser.Get(r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(verifier)))
		ch := regexp.MustCompile(`challenge=([^"&]+)`).FindStringSubmatch(body)
		if ch == nil {
			t.Fatalf("chooser: %d %.300s", resp.StatusCode, body)
		}
		resp, _ = pinBrowser.Post(pt.Issuer+"/login/form/", url.Values{"challenge": {html.UnescapeString(ch[1])}, "cf": {citizenCF}})
		_, pinToken, _ := exchange(t, r, oidctest.RPRedirect(resp), verifier)

		// Now with the card, asking for the dispositivo level.
		for _, key := range []string{"ECDSA", "RSA-2048"} {
			t.Run(key, func(t *testing.T) {
				card := p.card()
				if key == "RSA-2048" {
					card = p.card(func(c *cnstest.Card) { c.Key = cnstest.RSA })
				}
				b := pt.browser(t, &card)
				r.Conf.Scopes = []string{"openid", "profile", "inps.dispositivo"}
				verifier := oauth2.GenerateVerifier()
				link := authorize(t, pt, r, b, oauth2.S256ChallengeOption(verifier))
				resp, body := b.Get(link)
				loc := oidctest.RPRedirect(resp)
				if loc == nil {
					t.Fatalf("the CNS login did not return to the RP: %d %s %.600s\nlog:\n%s", resp.StatusCode, resp.Request.URL, body, pt.logs.text())
				}
				hops := []string{}
				for req := resp.Request; req != nil; {
					hops = append([]string{req.URL.Host + req.URL.Path}, hops...)
					if req.Response == nil {
						break
					}
					req = req.Response.Request
				}
				tok, idt, c := exchange(t, r, loc, verifier)
				if c.ACR != idp.ACRDispositivo || c.AuthMethod != "cns" || !slices.Equal(c.AMR, []string{"hwk", "sc"}) {
					t.Fatalf("claims %+v: want acr dispositivo, auth_method cns, amr [hwk sc]", c)
				}
				if idt.Subject != pinToken.Subject {
					t.Fatalf("sub %q, want the citizen's %q", idt.Subject, pinToken.Subject)
				}
				if c.FamilyName != "ROSSI" {
					t.Errorf("family_name %q, want the card's", c.FamilyName)
				}
				if scope, _ := tok.Extra("scope").(string); !strings.Contains(scope, "inps.dispositivo") {
					t.Fatalf("scope %q lacks inps.dispositivo", scope)
				}
				// The card was read on the card listener, the login made on the issuer.
				cardHost, _ := url.Parse(pt.cardURL)
				issuerHost, _ := url.Parse(pt.Issuer)
				want := []string{issuerHost.Host + "/login/cns/", cardHost.Host + "/login/cns/card", issuerHost.Host + "/login/cns/done"}
				if !containsInOrder(hops, want) {
					t.Fatalf("hops %v, want %v among them", hops, want)
				}
			})
		}
	})
}

// containsInOrder reports whether want appear in got, in order.
func containsInOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// noRedirects is a client of b's that stops at every redirect.
func noRedirects(b *oidctest.Browser) *http.Client {
	c := *b.Client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func hasSession(t *testing.T, pt *ponte, b *oidctest.Browser) bool {
	issuer, _ := url.Parse(pt.Issuer)
	for _, c := range b.Client.Jar.Cookies(issuer) {
		if c.Name == "ponte_session" {
			return true
		}
	}
	return false
}

// TestForwardedCardLink: an attacker starts a login, takes the card
// listener's link for their challenge, and has a citizen open it (a
// phishing mail). The citizen's card is read, but the login completes only
// in the browser that made the challenge — the citizen's is not it, and the
// attacker never sees the key that would complete it: nobody is logged in,
// neither the citizen's browser nor, by resuming the challenge, the
// attacker's. (Had the card page kept the identity on the challenge, with
// Host.ReturnLogin, the attacker's resume would have logged them in as the
// citizen.)
func TestForwardedCardLink(t *testing.T) {
	p := newPKI(t)
	pt := startPonte(t, storagetest.SQLite(t), p)
	r := pt.NewRP(clients.Spec{Scopes: []string{"openid", "inps.dispositivo"}})
	r.Conf.Scopes = []string{"openid", "inps.dispositivo"}
	attacker := pt.browser(t, nil)
	link := authorize(t, pt, r, attacker, oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	resp, err := noRedirects(attacker).Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cardLink := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(cardLink, pt.cardURL+"/login/cns/card?") {
		t.Fatalf("the chooser's link: %d %q, want the card listener", resp.StatusCode, cardLink)
	}
	card := p.card()
	victim := pt.browser(t, &card)
	resp, body := victim.Get(cardLink)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "non è stato avviato da questo browser") {
		t.Fatalf("the citizen's browser: %d %.600s", resp.StatusCode, body)
	}
	if hasSession(t, pt, victim) {
		t.Fatal("the citizen's browser holds a session")
	}
	if got := pt.logs.reasons(); !slices.Equal(got, []string{string(cns.ReasonUnboundReturn)}) {
		t.Fatalf("logged reasons %v", got)
	}
	challenge, _ := url.Parse(cardLink)
	resp, body = attacker.Get(pt.Issuer + provider.PathResume + "?challenge=" + url.QueryEscape(challenge.Query().Get("challenge")))
	if loc := oidctest.RPRedirect(resp); loc != nil {
		t.Fatalf("the attacker's resume returned to the RP (%v): logged in as the citizen", loc)
	}
	if hasSession(t, pt, attacker) || !strings.Contains(body, `/login/cns/?challenge=`) {
		t.Fatalf("the attacker's resume: %d %.300s, want the chooser and no session", resp.StatusCode, body)
	}
}

// TestCardLoginCSRF: an attacker logs in with their own card for their own
// challenge, stops before the issuer, and makes a citizen's browser follow
// the completion link (login CSRF). The citizen's browser did not make the
// challenge: it is refused and holds no session; the key is spent.
func TestCardLoginCSRF(t *testing.T) {
	p := newPKI(t)
	pt := startPonte(t, storagetest.SQLite(t), p)
	r := pt.NewRP(clients.Spec{Scopes: []string{"openid", "inps.dispositivo"}})
	r.Conf.Scopes = []string{"openid", "inps.dispositivo"}
	card := p.card(func(c *cnstest.Card) { c.FiscalNumber = otherCF })
	attacker := pt.browser(t, &card)
	link := authorize(t, pt, r, attacker, oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	stop := noRedirects(attacker)
	resp, err := stop.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = stop.Get(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	done := resp.Header.Get("Location")
	if !strings.HasPrefix(done, pt.Issuer+"/login/cns/done?r=") {
		t.Fatalf("the card page: %d %q", resp.StatusCode, done)
	}
	victim := pt.browser(t, nil)
	resp, body := victim.Get(done)
	if resp.StatusCode != http.StatusBadRequest || hasSession(t, pt, victim) {
		t.Fatalf("the citizen's browser at the attacker's completion: %d, session %v: %.300s", resp.StatusCode, hasSession(t, pt, victim), body)
	}
	// The key was single-use: the attacker's own browser cannot use it now.
	resp, body = attacker.Get(done)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "scaduta o è già stata usata") {
		t.Fatalf("the key used twice: %d %.300s", resp.StatusCode, body)
	}
}

// TestNoCardEndToEnd: a browser without a card completes the handshake on
// the card listener and gets the page that explains what to do, with a link
// back to the chooser on the issuer, which still holds the login.
func TestNoCardEndToEnd(t *testing.T) {
	p := newPKI(t)
	pt := startPonte(t, storagetest.SQLite(t), p)
	r := pt.NewRP(clients.Spec{})
	b := pt.browser(t, nil)
	resp, body := b.Get(authorize(t, pt, r, b, oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, pageNoCard) || !strings.HasPrefix(resp.Request.URL.String(), pt.cardURL) {
		t.Fatalf("%d %s %.600s", resp.StatusCode, resp.Request.URL, body)
	}
	back := regexp.MustCompile(`href="(` + regexp.QuoteMeta(pt.Issuer) + `/login\?challenge=[^"]+)"`).FindStringSubmatch(body)
	if back == nil {
		t.Fatalf("no link back to the chooser: %.800s", body)
	}
	resp, body = b.Get(html.UnescapeString(back[1]))
	if resp.StatusCode != http.StatusOK || !cnsLinkRE.MatchString(body) {
		t.Fatalf("back to the chooser: %d %.300s", resp.StatusCode, body)
	}
	// English, when the login asked for it.
	resp, body = b.Get(authorize(t, pt, r, b, oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("ui_locales", "en")))
	if !strings.Contains(body, "No card found") || !strings.Contains(body, `lang="en"`) {
		t.Fatalf("English page: %d %.600s", resp.StatusCode, body)
	}
}
