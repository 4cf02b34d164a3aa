// Package oidctest runs a real Ponte provider on a loopback listener, with real
// storage, for end-to-end tests, and drives it the way a relying party and a
// browser do: go-oidc and x/oauth2 for the relying party, an http.Client with a
// cookie jar for the browser. It is test support: only _test files import it.
package oidctest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
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
)

// RedirectURI is where test relying parties receive codes; nothing listens
// there: the Browser stops at it.
const RedirectURI = "http://127.0.0.1:9/callback"

// rpHost is the host of RedirectURI.
const rpHost = "127.0.0.1:9"

// Env is one running provider.
type Env struct {
	T        testing.TB
	Issuer   string
	Server   *httptest.Server
	Store    storage.Store
	Keys     *keys.Manager
	Registry *clients.Registry
	Provider *provider.Provider
	// Box is the master key's box.
	Box *seal.Box
	// Handler is the server's whole handler (the edge).
	Handler http.Handler
}

// Options shape an Env.
type Options struct {
	// MasterKey is random if nil; nodes sharing a database share it.
	MasterKey []byte
	// Methods returns the login methods, given the issuer (for their links).
	Methods func(issuer string) []idp.Authenticator
	// Tweak adjusts the provider's configuration.
	Tweak func(*provider.Config)
	// Routes returns routes mounted beside the provider's (pages that log in
	// through it, say); env.Handler serves every route once the server runs.
	Routes func(env *Env) []provider.Route
}

// Start runs a provider on store until the test ends.
func Start(t testing.TB, store storage.Store, opts Options) *Env {
	t.Helper()
	master := opts.MasterKey
	if master == nil {
		master = make([]byte, 32)
		_, _ = rand.Read(master)
	}
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
	}
	if opts.Methods != nil {
		cfg.Authenticators = opts.Methods(issuer)
	}
	if opts.Tweak != nil {
		opts.Tweak(&cfg)
	}
	p, err := provider.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{T: t, Issuer: issuer, Server: srv, Store: store, Keys: km,
		Registry: clients.NewRegistry(store, hasher, nil), Provider: p, Box: box}
	routes := p.Routes()
	if opts.Routes != nil {
		routes = append(routes, opts.Routes(e)...)
	}
	h, err := edge.New(routes, edge.Options{Readiness: edge.Readiness{Checks: []edge.Check{{Name: "database", Run: store.Ping}}}})
	if err != nil {
		t.Fatal(err)
	}
	e.Handler = h
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	return e
}

// RP is a registered client driven through go-oidc and x/oauth2.
type RP struct {
	Env      *Env
	ID       string
	Secret   string
	Conf     oauth2.Config
	Verifier *oidc.IDTokenVerifier
	Provider *oidc.Provider
}

// NewRP registers spec (RedirectURI and a post-logout URI by default) and
// discovers the provider.
func (e *Env) NewRP(spec clients.Spec) *RP {
	e.T.Helper()
	if len(spec.RedirectURIs) == 0 {
		spec.RedirectURIs = []string{RedirectURI}
	}
	if spec.PostLogoutRedirectURIs == nil {
		spec.PostLogoutRedirectURIs = []string{"http://" + rpHost + "/bye"}
	}
	c, secret, err := e.Registry.Create(context.Background(), spec)
	if err != nil {
		e.T.Fatal(err)
	}
	op, err := oidc.NewProvider(oidc.ClientContext(context.Background(), e.Server.Client()), e.Issuer)
	if err != nil {
		e.T.Fatal(err)
	}
	endpoint := op.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	return &RP{
		Env: e, ID: c.ID, Secret: secret, Provider: op,
		Conf: oauth2.Config{ClientID: c.ID, ClientSecret: secret, Endpoint: endpoint,
			RedirectURL: c.RedirectURIs[0], Scopes: []string{oidc.ScopeOpenID, "profile", "offline_access"}},
		Verifier: op.Verifier(&oidc.Config{ClientID: c.ID, SupportedSigningAlgs: []string{"ES256", "RS256"}}),
	}
}

// Ctx is a context whose HTTP client reaches the provider.
func (r *RP) Ctx() context.Context {
	return oidc.ClientContext(context.Background(), r.Env.Server.Client())
}

// Browser is a user agent with a cookie jar that stops at the relying party.
type Browser struct {
	T      testing.TB
	Client *http.Client
}

// NewBrowser returns a browser with an empty cookie jar.
func NewBrowser(t testing.TB) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{T: t, Client: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.Host == rpHost {
				return http.ErrUseLastResponse
			}
			return nil
		}}}
}

// Get fetches u, following redirects up to the relying party.
func (b *Browser) Get(u string) (*http.Response, string) {
	b.T.Helper()
	resp, err := b.Client.Get(u)
	if err != nil {
		b.T.Fatal(err)
	}
	return readAll(resp)
}

// Post submits a form like a same-origin page would.
func (b *Browser) Post(u string, form url.Values) (*http.Response, string) {
	b.T.Helper()
	resp, err := b.Client.PostForm(u, form)
	if err != nil {
		b.T.Fatal(err)
	}
	return readAll(resp)
}

func readAll(resp *http.Response) (*http.Response, string) {
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// RPRedirect returns the redirect to the relying party that ended a response
// chain, or nil.
func RPRedirect(resp *http.Response) *url.URL {
	if resp.StatusCode/100 != 3 {
		return nil
	}
	loc, err := resp.Location()
	if err != nil || loc.Host != rpHost {
		return nil
	}
	return loc
}

// RandomString is a 22-character random value (state, nonce).
func RandomString() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// CrossSitePost posts form to u as a cross-site page would (Sec-Fetch-Site:
// cross-site) and returns the status: CSRF protection answers 403.
func CrossSitePost(t testing.TB, u string, form url.Values) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
