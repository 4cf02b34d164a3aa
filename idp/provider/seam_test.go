package provider_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/clientcert"
	"github.com/ponte-id/ponte/internal/clientcert/certtest"
	"github.com/ponte-id/ponte/internal/edge"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// kit is a login method that uses every capability of the seam, the way SPID
// (leaving the site, coming back cross-site, single logout) and CNS (client
// certificates) will. It lives in this test package and touches nothing of
// the core: adding it is one entry in Config.Authenticators.
//
//	GET  /start?challenge=   the browser leaves for the "upstream": a relay state is saved
//	POST /acs                the upstream's cross-site return: relay, assertion, cf, level
//	POST /slo                the upstream's cross-site logout: ends the sessions it names
//	GET  /cert               how many client certificates the core gives the method
//	POST /upload             a body larger than the core's default limit
type kit struct {
	name        idp.Method
	runs, sweep atomic.Int32
	mu          sync.Mutex
	loggedOut   [][]byte
}

var (
	_ idp.Authenticator     = (*kit)(nil)
	_ idp.BodyLimit         = (*kit)(nil)
	_ idp.CrossSiteReturns  = (*kit)(nil)
	_ idp.Runner            = (*kit)(nil)
	_ idp.OperatorAPI       = (*kit)(nil)
	_ idp.Sweeper           = (*kit)(nil)
	_ idp.LogoutParticipant = (*kit)(nil)
	_ idp.StepUpHinter      = (*kit)(nil)
)

func (k *kit) Method() idp.Method     { return k.name }
func (*kit) Label(string) string      { return "Kit" }
func (*kit) MaxLevel() idp.Level      { return idp.LevelDispositivo }
func (*kit) MaxBodyBytes() int64      { return 1 << 20 }
func (*kit) CrossSitePaths() []string { return []string{"/acs", "/slo"} }

func (k *kit) Run(ctx context.Context) error {
	k.runs.Add(1)
	<-ctx.Done()
	return nil
}

func (k *kit) Sweep(context.Context, time.Time) error { k.sweep.Add(1); return nil }

func (k *kit) OperatorHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "operator=%s path=%s", idp.OperatorFrom(r.Context()), r.URL.Path)
	})
}

// Logout stands for a SAML single logout: the upstream is told (here, the
// data recorded) and the browser sent on.
func (k *kit) Logout(w http.ResponseWriter, r *http.Request, data []byte, next string) bool {
	k.mu.Lock()
	k.loggedOut = append(k.loggedOut, data)
	k.mu.Unlock()
	http.Redirect(w, r, next, http.StatusSeeOther)
	return true
}

func (k *kit) StepUpHint(locale string) (idp.Hint, bool) {
	return idp.Hint{Text: "kit-hint-" + locale, LinkURL: "/login/" + string(k.name) + "/upgrade", LinkText: "upgrade"}, true
}

func (k *kit) Handler(h idp.Host) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /start", func(w http.ResponseWriter, r *http.Request) {
		challenge := r.FormValue("challenge")
		if _, err := h.LoginRequest(r, challenge); err != nil {
			http.Error(w, "unknown challenge", http.StatusBadRequest)
			return
		}
		relay := "relay-" + randomString()
		if err := h.SaveState(r.Context(), relay, challenge, []byte("sent-at-start"), time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "relay=%s acs=%s", relay, h.MethodURL("/acs"))
	})
	mux.HandleFunc("POST /acs", func(w http.ResponseWriter, r *http.Request) {
		challenge, data, err := h.TakeState(r.Context(), r.FormValue("relay"))
		if errors.Is(err, idp.ErrUnknownState) || string(data) != "sent-at-start" {
			http.Error(w, "unknown relay state", http.StatusBadRequest)
			return
		}
		if err := h.UseOnce(r.Context(), r.FormValue("assertion"), time.Now().Add(time.Minute)); errors.Is(err, idp.ErrReplay) {
			http.Error(w, "assertion replayed", http.StatusBadRequest)
			return
		}
		var level idp.Level
		_, _ = fmt.Sscan(r.FormValue("level"), &level)
		h.ReturnLogin(w, r, challenge, idp.Identity{
			FiscalNumber: r.FormValue("cf"), GivenName: "Mario", FamilyName: "Rossi",
			Level: level, Method: k.name, AMR: []string{"pwd"}, SessionData: []byte("index:" + r.FormValue("assertion")),
			SessionKey: "upstream-session:" + r.FormValue("cf"),
		})
	})
	// The upstream ends its session (identity-provider-initiated logout).
	mux.HandleFunc("POST /slo", func(w http.ResponseWriter, r *http.Request) {
		n, err := h.EndSessions(r.Context(), "upstream-session:"+r.FormValue("cf"))
		fmt.Fprintf(w, "ended=%d err=%v", n, err)
	})
	mux.HandleFunc("GET /cert", func(w http.ResponseWriter, r *http.Request) {
		chain, err := h.ClientCertificates(r)
		fmt.Fprintf(w, "certs=%d err=%v", len(chain), err)
	})
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		fmt.Fprintf(w, "read=%d", n)
	})
	return mux
}

// kitEnv starts a provider with the kit as its only method and operators
// authenticated by a fixed header.
func kitEnv(t *testing.T, store storage.Store) (*env, *kit) {
	k := &kit{name: "kit"}
	e := newEnv(t, store, func(c *provider.Config) {
		c.Authenticators = []idp.Authenticator{k}
		c.Operators = func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer op-token" {
					http.Error(w, "no operator", http.StatusUnauthorized)
					return
				}
				next.ServeHTTP(w, r.WithContext(idp.WithOperator(r.Context(), "op-1")))
			})
		}
	})
	return e, k
}

var relayRE = regexp.MustCompile(`relay=(\S+) acs=(\S+)`)

// leave starts an authorization in b and leaves for the upstream; it returns
// the relay state and the path of the method's assertion consumer.
func leave(t *testing.T, e *env, r *rp, b *browser) (relay, acs string) {
	t.Helper()
	resp, body := b.Get(r.Conf.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	m := challengeRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("chooser: %d %.300s", resp.StatusCode, body)
	}
	_, body = b.Get(e.Issuer + "/login/kit/start?challenge=" + url.QueryEscape(html.UnescapeString(m[1])))
	s := relayRE.FindStringSubmatch(body)
	if s == nil {
		t.Fatalf("start: %.300s", body)
	}
	return s[1], s[2]
}

// crossSitePost posts form as an identity provider's page in a real browser
// does: cross-site, with an Origin, and none of the issuer's cookies
// (SameSite=Lax). headers=false posts without Sec-Fetch-Site and Origin, as
// an old browser would. It does not follow redirects.
func crossSitePost(t *testing.T, u string, form url.Values, headers bool) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if headers {
		req.Header.Set("Origin", "https://idp.example.org")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestCrossSiteReturn: the kit leaves the site and comes back with a POST
// that carries what real browsers send cross-site. The assertion consumer
// answers (where every other path refuses cross-site posts), sets no cookie,
// and sends the browser to the issuer's resume, where the browser that made
// the challenge is logged in and gets its code.
func TestCrossSiteReturn(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e, k := kitEnv(t, store)
		r := e.NewRP(clients.Spec{})
		b := newBrowser(t)
		relay, acs := leave(t, e, r, b)
		if acs != "/login/kit/acs" {
			t.Fatalf("MethodURL = %q", acs)
		}
		resp := crossSitePost(t, e.Issuer+acs, url.Values{"relay": {relay}, "assertion": {"A1"}, "cf": {citizenCF}, "level": {"1"}}, true)
		loc, _ := resp.Location()
		if resp.StatusCode != http.StatusSeeOther || loc == nil || !strings.HasPrefix(loc.String(), e.Issuer+provider.PathResume+"?") ||
			loc.Query().Get("challenge") == "" || loc.Query().Get("r") == "" {
			t.Fatalf("cross-site return: %d %v, want a redirect to the issuer's resume", resp.StatusCode, loc)
		}
		if len(resp.Cookies()) != 0 {
			t.Fatalf("the cross-site return set cookies: %v", resp.Cookies())
		}
		resp, body := b.Get(loc.String())
		code := rpRedirect(resp)
		if code == nil || code.Query().Get("code") == "" {
			t.Fatalf("the browser that made the challenge: %d %.300s", resp.StatusCode, body)
		}
		// Every other path of the method keeps the origin check.
		if got := crossSitePost(t, e.Issuer+"/login/kit/upload", url.Values{"x": {"1"}}, true).StatusCode; got != http.StatusForbidden {
			t.Fatalf("a cross-site post to another page of the method: %d, want 403", got)
		}
		// The state is taken once; an assertion ID is used once.
		if got := crossSitePost(t, e.Issuer+acs, url.Values{"relay": {relay}, "assertion": {"A2"}, "cf": {citizenCF}, "level": {"1"}}, true).StatusCode; got != http.StatusBadRequest {
			t.Fatalf("a relay state taken twice: %d", got)
		}
		relay2, _ := leave(t, e, r, newBrowser(t))
		if got := crossSitePost(t, e.Issuer+acs, url.Values{"relay": {relay2}, "assertion": {"A1"}, "cf": {citizenCF}, "level": {"1"}}, true).StatusCode; got != http.StatusBadRequest {
			t.Fatalf("a replayed assertion: %d", got)
		}
		_ = k
	})
}

// TestLoginCSRF replays the attack of issue 8: the attacker proves their own
// identity for their own challenge and has the victim's browser post that
// return. The victim's browser must not end up logged in as the attacker:
// the resume refuses it, and the victim's next authorization asks them to log
// in rather than returning a code for the attacker's citizen. Before seam v2,
// the return started the attacker's session in the victim's browser.
func TestLoginCSRF(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e, _ := kitEnv(t, store)
		r := e.NewRP(clients.Spec{})
		for _, headers := range []bool{true, false} {
			t.Run(fmt.Sprintf("browser headers %v", headers), func(t *testing.T) {
				attacker, victim := newBrowser(t), newBrowser(t)
				relay, acs := leave(t, e, r, attacker)
				// The victim's browser posts the attacker's return (an auto-submitted form).
				req, _ := http.NewRequest(http.MethodPost, e.Issuer+acs, strings.NewReader(url.Values{
					"relay": {relay}, "assertion": {"ATT"}, "cf": {otherCF}, "level": {"2"}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if headers {
					req.Header.Set("Origin", "https://evil.example")
					req.Header.Set("Sec-Fetch-Site", "cross-site")
				}
				resp, err := victim.Client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("the victim's browser at the resume: %d, want the 400 page", resp.StatusCode)
				}
				issuer, _ := url.Parse(e.Issuer)
				for _, c := range victim.Client.Jar.Cookies(issuer) {
					if c.Name == "ponte_session" {
						t.Fatal("the victim's browser holds an SSO session after the attacker's return")
					}
				}
				resp, body := victim.Get(r.Conf.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
				if loc := rpRedirect(resp); loc != nil {
					t.Fatalf("the victim's next authorization returned to the RP (%v): logged in as the attacker", loc)
				}
				if !strings.Contains(body, `name="challenge"`) {
					t.Fatalf("the victim's next authorization: %d %.300s, want the chooser", resp.StatusCode, body)
				}
			})
		}
	})
}

// TestMethodCapabilities: the core finds every optional capability by type
// assertion and names no method.
func TestMethodCapabilities(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e, k := kitEnv(t, store)
		// The operator API, under /operator/<method>, behind operator authentication.
		for _, tc := range []struct {
			token string
			want  int
			body  string
		}{
			{"", http.StatusUnauthorized, "no operator"},
			{"op-token", http.StatusOK, "operator=op-1 path=/queue"},
		} {
			req, _ := http.NewRequest(http.MethodGet, e.Issuer+"/operator/kit/queue", nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want || !strings.Contains(string(body), tc.body) {
				t.Fatalf("operator API with %q: %d %q", tc.token, resp.StatusCode, body)
			}
		}
		// The body limit the method asks for, and no more.
		for size, want := range map[int]int{512 << 10: http.StatusOK, 2 << 20: http.StatusRequestEntityTooLarge} {
			resp, err := http.Post(e.Issuer+"/login/kit/upload", "application/octet-stream", strings.NewReader(strings.Repeat("x", size)))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Fatalf("upload of %d bytes: %d, want %d", size, resp.StatusCode, want)
			}
		}
		// Background work runs until the server stops; the janitor calls the sweeper.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { e.Provider.RunMethods(ctx); close(done) }()
		for k.runs.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
		<-done
		sweepers := e.Provider.Sweepers()
		if len(sweepers) != 1 {
			t.Fatalf("sweepers: %d", len(sweepers))
		}
		jctx, jcancel := context.WithCancel(context.Background())
		jdone := make(chan struct{})
		go func() { storage.RunJanitor(jctx, store, time.Hour, nil, nil, sweepers...); close(jdone) }()
		for k.sweep.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		jcancel()
		<-jdone
		// No client certificate on a plain listener.
		_, body := newBrowser(t).Get(e.Issuer + "/login/kit/cert")
		if body != "certs=0 err=<nil>" {
			t.Fatalf("client certificates on plain http: %q", body)
		}
	})
}

// TestSessionDataAndStepUpHint: what the method kept about a login comes back
// to it at logout, and a citizen logged in with it below the level asked sees
// its step-up hint on the chooser.
func TestSessionDataAndStepUpHint(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e, k := kitEnv(t, store)
		r := e.NewRP(clients.Spec{Scopes: []string{"openid", "inps.consultazione", "inps.dispositivo"}})
		r.Conf.Scopes = []string{"openid", "inps.consultazione"}
		b := newBrowser(t)
		relay, acs := leave(t, e, r, b)
		resp := crossSitePost(t, e.Issuer+acs, url.Values{"relay": {relay}, "assertion": {"S1"}, "cf": {citizenCF}, "level": {"1"}}, true)
		loc, _ := resp.Location()
		if resp, _ := b.Get(loc.String()); rpRedirect(resp) == nil {
			t.Fatalf("login: %d", resp.StatusCode)
		}
		r.Conf.Scopes = []string{"openid", "inps.dispositivo"}
		_, body := b.Get(r.Conf.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if !strings.Contains(body, "kit-hint-it") || !strings.Contains(body, `href="/login/kit/upgrade?challenge=`) {
			t.Fatalf("the chooser does not show the method's step-up hint: %.600s", body)
		}
		resp, body = b.Post(e.Issuer+provider.PathLogout, url.Values{"confirm": {"yes"}})
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Request.URL.Path, provider.PathLogout) {
			t.Fatalf("logout: %d %s %.200s", resp.StatusCode, resp.Request.URL, body)
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		if len(k.loggedOut) != 1 || string(k.loggedOut[0]) != "index:S1" {
			t.Fatalf("the method heard of logout with %q, want index:S1", k.loggedOut)
		}
	})
}

// TestClientCertificatesReachTheMethod: on a card listener (TLS asking for a
// client certificate), the method gets the chain the browser presented
// through Host.ClientCertificates; a browser with no card gets through the
// handshake and the method sees none; a certificate header forged by a
// browser on the plain listener never reaches it.
func TestClientCertificatesReachTheMethod(t *testing.T) {
	e, _ := kitEnv(t, storagetest.SQLite(t))
	root := certtest.NewCA(t, "CNS root")
	issuing := root.Intermediate(t, "CNS issuing CA")
	certFile, keyFile := certtest.WriteKeyPair(t, t.TempDir(), root.Server(t))
	tlsCfg, err := clientcert.CardTLSConfig(certFile, keyFile, 0)
	if err != nil {
		t.Fatal(err)
	}
	h, err := edge.New(e.Provider.Routes(), edge.Options{})
	if err != nil {
		t.Fatal(err)
	}
	card := httptest.NewUnstartedServer(h)
	card.TLS = tlsCfg
	card.StartTLS()
	t.Cleanup(card.Close)
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	get := func(certs ...tls.Certificate) string {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}}
		resp, err := c.Get(card.URL + "/login/kit/cert")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get(issuing.Card(t, "RSSMRA80A01H501U/1234567890.abcdef")); got != "certs=2 err=<nil>" {
		t.Fatalf("with a card: %q, want the leaf and its issuing CA", got)
	}
	if got := get(); got != "certs=0 err=<nil>" {
		t.Fatalf("without a card: %q", got)
	}
	req, _ := http.NewRequest(http.MethodGet, e.Issuer+"/login/kit/cert", nil)
	req.Header.Set("Client-Cert", ":"+base64.StdEncoding.EncodeToString(issuing.Cert.Raw)+":")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "certs=0 err=<nil>" {
		t.Fatalf("a forged certificate header reached the method: %q", b)
	}
}

// TestForwardedReturn: the attacker starts a login, leaves for the upstream,
// and forwards the upstream's link to a citizen, who authenticates there: the
// return is posted by the citizen's browser. Neither browser may be logged
// in: the citizen's did not make the challenge, and the attacker's, which
// did, does not have the key the return handed the citizen's browser. Without
// the key, the attacker's browser claiming the challenge at the resume would
// be logged in as the citizen.
func TestForwardedReturn(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e, _ := kitEnv(t, store)
		r := e.NewRP(clients.Spec{})
		attacker, citizen := newBrowser(t), newBrowser(t)
		relay, acs := leave(t, e, r, attacker)
		resp := crossSitePost(t, e.Issuer+acs, url.Values{"relay": {relay}, "assertion": {"FWD"}, "cf": {citizenCF}, "level": {"2"}}, true)
		loc, _ := resp.Location()
		if resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Query().Get("r") == "" {
			t.Fatalf("the return: %d %v, want a redirect to the resume with a key", resp.StatusCode, loc)
		}
		// The citizen's browser follows it: it did not make the challenge.
		if resp, _ := citizen.Get(loc.String()); resp.StatusCode != http.StatusBadRequest || rpRedirect(resp) != nil {
			t.Fatalf("the citizen's browser at the resume: %d", resp.StatusCode)
		}
		// The attacker's browser claims the challenge without the key, then with a wrong one.
		for _, key := range []string{"", "not-the-key"} {
			q := url.Values{"challenge": {loc.Query().Get("challenge")}}
			if key != "" {
				q.Set("r", key)
			}
			resp, body := attacker.Get(e.Issuer + provider.PathResume + "?" + q.Encode())
			if code := rpRedirect(resp); code != nil {
				t.Fatalf("the attacker's browser got %v: logged in as the citizen", code)
			}
			if resp.StatusCode != http.StatusBadRequest && !strings.Contains(body, `name="challenge"`) {
				t.Fatalf("the attacker's claim with key %q: %d %.200s", key, resp.StatusCode, body)
			}
		}
		// And even with the key now, the identity is gone: a claim without the key cleared it.
		resp, _ = attacker.Get(loc.String())
		if code := rpRedirect(resp); code != nil {
			t.Fatalf("the identity survived a wrong claim: %v", code)
		}
	})
}

// TestUpstreamLogout: the upstream ends its session and the method ends the
// SSO sessions its logins named, and no other.
func TestUpstreamLogout(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e, _ := kitEnv(t, store)
		r := e.NewRP(clients.Spec{})
		loginAs := func(cf string) *browser {
			b := newBrowser(t)
			relay, acs := leave(t, e, r, b)
			resp := crossSitePost(t, e.Issuer+acs, url.Values{"relay": {relay}, "assertion": {"A-" + cf + randomString()}, "cf": {cf}, "level": {"1"}}, true)
			loc, _ := resp.Location()
			if resp, _ := b.Get(loc.String()); rpRedirect(resp) == nil {
				t.Fatalf("login of %s: %d", cf, resp.StatusCode)
			}
			return b
		}
		mario, other := loginAs(citizenCF), loginAs(otherCF)
		resp := crossSitePost(t, e.Issuer+"/login/kit/slo", url.Values{"cf": {citizenCF}}, true)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("upstream logout: %d", resp.StatusCode)
		}
		authURL := r.Conf.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
		if resp, _ := mario.Get(authURL); rpRedirect(resp) != nil {
			t.Fatal("the session the upstream ended still answers")
		}
		if resp, _ := other.Get(authURL); rpRedirect(resp) == nil {
			t.Fatal("another citizen's session was ended")
		}
	})
}
