package provider_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/keys"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/edge"
	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// testAuth is a login method for tests: a form that asserts a codice fiscale
// and a level. It goes through the same Host calls as a real adapter.
type testAuth struct{}

func (testAuth) Method() idp.Method  { return "test" }
func (testAuth) Label(string) string { return "Test login" }
func (testAuth) MaxLevel() idp.Level { return idp.LevelDispositivo }
func (testAuth) Handler(h idp.Host) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		challenge := r.FormValue("challenge")
		req, err := h.LoginRequest(r, challenge)
		if err != nil {
			http.Error(w, "unknown challenge", http.StatusBadRequest)
			return
		}
		if r.Method == http.MethodGet {
			fmt.Fprintf(w, `<form method="post" action="/login/test/"><input name="challenge" value="%s">min=%d hint=%s</form>`,
				html.EscapeString(challenge), req.MinLevel, req.LoginHint)
			return
		}
		level, _ := strconv.Atoi(r.FormValue("level"))
		h.CompleteLogin(w, r, challenge, idp.Identity{
			FiscalNumber: r.FormValue("cf"), GivenName: "Mario", FamilyName: "Rossi", Birthdate: "1980-01-01",
			Gender: "M", Email: "mario.rossi@example.it", Level: idp.Level(level), Method: idp.MethodPIN, AMR: []string{"pwd"},
		})
	})
}

// env is one running provider on a real listener with a real store.
type env struct {
	t        testing.TB
	issuer   string
	srv      *httptest.Server
	store    storage.Store
	keys     *keys.Manager
	registry *clients.Registry
	provider *provider.Provider
}

const (
	citizenCF = "RSSMRA80A01H501U"
	otherCF   = "VRDGPP75C15F205S"
)

// newEnv starts a provider on store; tweaks adjust its configuration.
func newEnv(t testing.TB, store storage.Store, tweaks ...func(*provider.Config)) *env {
	return newEnvWithKey(t, store, testMasterKey, tweaks...)
}

var testMasterKey = func() []byte { k := make([]byte, 32); _, _ = rand.Read(k); return k }()

func newEnvWithKey(t testing.TB, store storage.Store, master []byte, tweaks ...func(*provider.Config)) *env {
	t.Helper()
	box, err := seal.New(master)
	if err != nil {
		t.Fatal(err)
	}
	km, err := keys.New(store, box, keys.Options{PublishDelay: time.Minute, Retention: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := km.EnsureKeys(context.Background(), keys.ES256, keys.RS256); err != nil {
		t.Fatal(err)
	}
	hasher, err := clients.NewHasher(box.Derive("client-secret", 32))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	cfg := provider.Config{
		Issuer: issuer, Store: store, Keys: km, Hasher: hasher,
		HMACSecret: box.Derive("fosite-hmac", 32), PairwiseKey: box.Derive("pairwise", 32),
		Authenticators: []idp.Authenticator{testAuth{}},
	}
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	p, err := provider.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := edge.New(p.Routes(), edge.Options{Ready: store.Ping})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	return &env{t: t, issuer: issuer, srv: srv, store: store, keys: km,
		registry: clients.NewRegistry(store, hasher, nil), provider: p}
}

// rp is a relying party: a registered client driven through go-oidc and x/oauth2.
type rp struct {
	e        *env
	id       string
	secret   string
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
	provider *oidc.Provider
}

const redirectURI = "http://127.0.0.1:9/callback"

func (e *env) newRP(spec clients.Spec) *rp {
	e.t.Helper()
	if len(spec.RedirectURIs) == 0 {
		spec.RedirectURIs = []string{redirectURI}
	}
	if spec.PostLogoutRedirectURIs == nil {
		spec.PostLogoutRedirectURIs = []string{"http://127.0.0.1:9/bye"}
	}
	c, secret, err := e.registry.Create(context.Background(), spec)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx := oidc.ClientContext(context.Background(), e.srv.Client())
	op, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		e.t.Fatal(err)
	}
	scopes := []string{oidc.ScopeOpenID, "profile", "offline_access"}
	endpoint := op.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	return &rp{
		e: e, id: c.ID, secret: secret, provider: op,
		conf: oauth2.Config{ClientID: c.ID, ClientSecret: secret, Endpoint: endpoint,
			RedirectURL: c.RedirectURIs[0], Scopes: scopes},
		verifier: op.Verifier(&oidc.Config{ClientID: c.ID, SupportedSigningAlgs: []string{"ES256", "RS256"}}),
	}
}

func (r *rp) ctx() context.Context {
	return oidc.ClientContext(context.Background(), r.e.srv.Client())
}

// browser is a user agent with a cookie jar that stops at the relying party.
type browser struct {
	t      testing.TB
	client *http.Client
}

func newBrowser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, client: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.Host == "127.0.0.1:9" {
				return http.ErrUseLastResponse
			}
			return nil
		}}}
}

// get fetches u and returns the final response body and URL (or the RP redirect).
func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) post(u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.PostForm(u, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var challengeRE = regexp.MustCompile(`name="challenge" value="([^"]+)"`)

// login follows an authorization URL, logs in with the test method at level
// (unless the SSO session answers first) and returns the redirect to the RP.
func (b *browser) login(issuer, authURL, cf string, level idp.Level) *url.URL {
	b.t.Helper()
	resp, body := b.get(authURL)
	if loc := rpRedirect(resp); loc != nil {
		return loc
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Request.URL.Path, "/login") {
		b.t.Fatalf("expected the login page, got %d %s: %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	m := challengeRE.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no challenge on %s: %.500s", resp.Request.URL, body)
	}
	challenge := html.UnescapeString(m[1])
	resp, body = b.get(issuer + "/login/test/?challenge=" + url.QueryEscape(challenge))
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("test login page: %d %s", resp.StatusCode, body)
	}
	resp, body = b.post(issuer+"/login/test/", url.Values{
		"challenge": {challenge}, "cf": {cf}, "level": {strconv.Itoa(int(level))},
	})
	loc := rpRedirect(resp)
	if loc == nil {
		b.t.Fatalf("login did not return to the RP: %d %s %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	return loc
}

func rpRedirect(resp *http.Response) *url.URL {
	if resp.StatusCode/100 != 3 {
		return nil
	}
	loc, err := resp.Location()
	if err != nil || loc.Host != "127.0.0.1:9" {
		return nil
	}
	return loc
}

// pkce returns a verifier; authURL options for a full OIDC request.
func randomString() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// backends runs f once per storage backend.
func backends(t *testing.T, f func(t *testing.T, store storage.Store)) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { f(t, b.Open(t)) })
	}
}
