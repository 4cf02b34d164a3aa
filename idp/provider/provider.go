// Package provider is Ponte's OpenID Connect provider: fosite composed
// explicitly (authorization code with PKCE, refresh with rotation, OpenID Connect,
// revocation, introspection, PAR), and Ponte's own endpoints around it —
// discovery, JWKS, userinfo, RP-initiated logout — together with the browser
// side: the SSO session, the login challenge, the method chooser and the
// level-of-assurance ladder that decides when a citizen must log in again.
package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/openid"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/keys"
	"github.com/ponte-id/ponte/internal/admission"
	"github.com/ponte-id/ponte/internal/ratelimit"
	"github.com/ponte-id/ponte/storage"
)

// Config wires a Provider. Secrets come derived from the master key.
type Config struct {
	// Issuer is the provider's URL, without trailing slash.
	Issuer string
	Store  storage.Store
	Keys   *keys.Manager
	// HMACSecret signs opaque codes and tokens (32 bytes, shared by every node).
	HMACSecret []byte
	// Hasher checks client secrets.
	Hasher *clients.Hasher
	// PairwiseKey derives pairwise subjects (32 bytes).
	PairwiseKey []byte
	// Authenticators are the login methods, in chooser order.
	Authenticators []idp.Authenticator
	// LogoutQueued, if set, is called when back-channel logouts were queued
	// (to wake the sender at once rather than at its next poll).
	LogoutQueued func()
	// Operators authenticates INPS operators (putting the operator in the
	// request context, idp.WithOperator) in front of the methods' operator
	// APIs; nil leaves them unmounted.
	Operators func(http.Handler) http.Handler

	AuthorizeCodeTTL time.Duration
	AccessTokenTTL   time.Duration
	RefreshTokenTTL  time.Duration
	IDTokenTTL       time.Duration
	SessionTTL       time.Duration
	ChallengeTTL     time.Duration

	// LoginHistoryKeep is how many recent logins are kept per citizen (for
	// their own pages), and LoginHistoryRetention how long; zero means 50 and 90 days.
	LoginHistoryKeep      int
	LoginHistoryRetention time.Duration

	// MaxChallengesPerBrowser and MaxChallengesPerIP cap the login challenges
	// that one browser, and one client address (an IPv6 /64), may have pending
	// at once; /authorize answers 429 beyond them. Zero means 20 and 500.
	MaxChallengesPerBrowser int
	MaxChallengesPerIP      int

	CookieName   string
	CookieSecure bool

	// TokenGate bounds the token endpoint's requests in flight and waiting
	// (internal/admission); beyond it the endpoint answers 503
	// temporarily_unavailable with Retry-After. Nil admits every request.
	TokenGate *admission.Gate
	// Observer hears of logins and tokens, for metrics; nil hears nothing.
	Observer Observer

	Logger *slog.Logger
	Now    func() time.Time
}

// Observer hears what the provider does, for metrics (internal/metrics).
// Its methods must be quick and safe for concurrent use.
type Observer interface {
	// LoginCompleted: a login of method m started an SSO session.
	LoginCompleted(m idp.Method)
	// TokensIssued: the token endpoint answered a grant of grantType.
	TokensIssued(grantType string)
}

// Provider serves the OpenID Connect endpoints and the login pages.
type Provider struct {
	cfg   Config
	oauth fosite.OAuth2Provider
	// fosite is oauth itself, for what the interface lacks (client authentication).
	fosite *fosite.Fosite
	store  storage.Store
	// fstore is store as fosite's handlers see it, with the client cache.
	fstore  fositeStore
	methods map[idp.Method]idp.Authenticator
	log     *slog.Logger
	now     func() time.Time
	csrf    *http.CrossOriginProtection
	ender   SessionEnder
	// budget counts the continuing requests each browser cookie claims
	// (classify.go); codeMAC checks an authorization code's HMAC.
	budget  *ratelimit.Local
	codeMAC func(ctx context.Context, code string) bool
}

// Paths of the endpoints, relative to the issuer.
const (
	PathDiscovery  = "/.well-known/openid-configuration"
	PathJWKS       = "/jwks.json"
	PathAuthorize  = "/authorize"
	PathResume     = "/authorize/resume"
	PathToken      = "/token"
	PathUserinfo   = "/userinfo"
	PathRevoke     = "/revoke"
	PathIntrospect = "/introspect"
	PathPAR        = "/par"
	PathLogout     = "/logout"
	PathLogin      = "/login"
	// PathOperator is where methods' operator APIs are mounted, one folder each.
	PathOperator = "/operator"
)

// parURIPrefix starts every request_uri that PAR returns (RFC 9126 §2.2).
const parURIPrefix = "urn:ietf:params:oauth:request_uri:"

// New composes the provider.
func New(cfg Config) (*Provider, error) {
	var errs []error
	if cfg.Issuer == "" || strings.HasSuffix(cfg.Issuer, "/") {
		errs = append(errs, errors.New("provider: issuer is required, without trailing slash"))
	} else if _, err := url.Parse(cfg.Issuer); err != nil {
		errs = append(errs, fmt.Errorf("provider: issuer: %w", err))
	}
	if cfg.Store == nil || cfg.Keys == nil || cfg.Hasher == nil {
		errs = append(errs, errors.New("provider: store, keys and hasher are required"))
	}
	if len(cfg.HMACSecret) < 32 || len(cfg.PairwiseKey) < 32 {
		errs = append(errs, errors.New("provider: HMAC secret and pairwise key must be at least 32 bytes"))
	}
	methods := map[idp.Method]idp.Authenticator{}
	for _, a := range cfg.Authenticators {
		if _, dup := methods[a.Method()]; dup || a.Method() == "" {
			errs = append(errs, fmt.Errorf("provider: login method %q registered twice or unnamed", a.Method()))
		}
		methods[a.Method()] = a
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	setDefault(&cfg.AuthorizeCodeTTL, time.Minute)
	setDefault(&cfg.AccessTokenTTL, 15*time.Minute)
	setDefault(&cfg.RefreshTokenTTL, 30*24*time.Hour)
	setDefault(&cfg.IDTokenTTL, time.Hour)
	setDefault(&cfg.SessionTTL, 8*time.Hour)
	setDefault(&cfg.ChallengeTTL, 30*time.Minute)
	if cfg.LoginHistoryKeep <= 0 {
		cfg.LoginHistoryKeep = 50
	}
	setDefault(&cfg.LoginHistoryRetention, 90*24*time.Hour)
	if cfg.MaxChallengesPerBrowser <= 0 {
		cfg.MaxChallengesPerBrowser = 20
	}
	if cfg.MaxChallengesPerIP <= 0 {
		cfg.MaxChallengesPerIP = 500
	}
	if cfg.CookieName == "" {
		cfg.CookieName = "ponte_session"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Provider{
		cfg: cfg, store: cfg.Store, methods: methods,
		log: cfg.Logger, now: cfg.Now, csrf: crossOriginProtection(cfg.Logger),
		budget: ratelimit.NewLocal(cfg.Now, browserBudgetKeys),
	}
	p.ender = SessionEnder{Store: cfg.Store, Now: cfg.Now, Queued: cfg.LogoutQueued, Logger: cfg.Logger}
	p.fosite = p.compose()
	p.oauth = p.fosite
	return p, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// compose builds fosite with exactly the handlers Ponte uses: no implicit,
// hybrid, password or client-credentials grant. PKCE is Ponte's pkceHandler
// (every client, S256, per-client exemption), client authentication Ponte's
// authenticateClient.
func (p *Provider) compose() *fosite.Fosite {
	fc := &fosite.Config{
		AccessTokenLifespan:             p.cfg.AccessTokenTTL,
		RefreshTokenLifespan:            p.cfg.RefreshTokenTTL,
		AuthorizeCodeLifespan:           p.cfg.AuthorizeCodeTTL,
		IDTokenLifespan:                 p.cfg.IDTokenTTL,
		IDTokenIssuer:                   p.cfg.Issuer,
		AccessTokenIssuer:               p.cfg.Issuer,
		TokenURL:                        p.cfg.Issuer + PathToken,
		GlobalSecret:                    p.cfg.HMACSecret,
		ClientSecretsHasher:             p.cfg.Hasher,
		ScopeStrategy:                   fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:        fosite.DefaultAudienceMatchingStrategy,
		MinParameterEntropy:             fosite.MinParameterEntropy,
		RefreshTokenScopes:              []string{"offline_access"},
		PushedAuthorizeContextLifespan:  90 * time.Second,
		PushedAuthorizeRequestURIPrefix: parURIPrefix,
		AllowedPromptValues:             []string{"login", "none", "consent", "select_account"},
		SendDebugMessagesToClients:      false,
		FormPostHTMLTemplate:            formPostTemplate,
		ClientAuthenticationStrategy:    p.authenticateClient,
		// The code's record keeps its OpenID Connect request and PKCE
		// challenge (fositeStore).
		SanitationWhiteList: codeParameters,
	}
	signer := p.cfg.Keys.Signer()
	core := compose.NewOAuth2HMACStrategy(fc)
	p.codeMAC = codeMAC(fc)
	strategy := &compose.CommonStrategy{
		CoreStrategy:               core,
		OpenIDConnectTokenStrategy: &openid.DefaultStrategy{Signer: signer, Config: fc},
		Signer:                     signer,
	}
	p.fstore = fositeStore{s: p.store, clients: newClientCache(p.store, p.now), codeSignature: core.AuthorizeCodeSignature}
	return compose.Compose(fc, p.fstore, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
		pkceFactory,
		compose.PushedAuthorizeHandlerFactory,
	).(*fosite.Fosite)
}

// Route is one endpoint for the HTTP edge to mount. Prefix routes serve every
// path below Path (a login method's pages).
type Route struct {
	Method  string // "" for any method
	Path    string
	Prefix  bool
	Handler http.Handler
	// MaxBody is the largest request body the route accepts; zero means the
	// edge's default (64 KiB).
	MaxBody int64
	// Continues reports whether a request continues a login already under
	// way (classify.go): under load the edge admits those before requests
	// that start new work. Nil: every request of the route starts new work.
	Continues func(r *http.Request) bool
}

// Routes lists every endpoint of the provider and of its login methods.
func (p *Provider) Routes() []Route {
	hf := func(f http.HandlerFunc) http.Handler { return f }
	// oauth and page take only form-encoded bodies (formOnly): an OAuth
	// endpoint answers otherwise with an RFC 6749 error, a browser's with a page.
	oauth := func(f http.HandlerFunc) http.Handler { return p.formOnly(f, true) }
	page := func(f http.HandlerFunc) http.Handler { return p.formOnly(f, false) }
	// Continues: see classify.go; /authorize, /par and the rest start new work.
	routes := []Route{
		{Method: http.MethodGet, Path: PathDiscovery, Handler: hf(p.discovery), Continues: always},
		{Method: http.MethodGet, Path: PathJWKS, Handler: hf(p.jwks), Continues: always},
		{Method: http.MethodGet, Path: PathAuthorize, Handler: hf(p.authorize)},
		{Method: http.MethodPost, Path: PathAuthorize, Handler: page(p.authorize)},
		{Method: http.MethodGet, Path: PathResume, Handler: hf(p.resume), Continues: p.loginStep(nil)},
		{Method: http.MethodPost, Path: PathToken, Handler: oauth(p.token), Continues: always},
		{Method: http.MethodGet, Path: PathUserinfo, Handler: hf(p.userinfo), Continues: always},
		{Method: http.MethodPost, Path: PathUserinfo, Handler: hf(p.userinfo), Continues: always},
		{Method: http.MethodPost, Path: PathRevoke, Handler: oauth(p.revoke), Continues: always},
		{Method: http.MethodPost, Path: PathIntrospect, Handler: oauth(p.introspect), Continues: always},
		{Method: http.MethodPost, Path: PathPAR, Handler: oauth(p.par)},
		{Method: http.MethodGet, Path: PathLogout, Handler: hf(p.logout), Continues: always},
		{Method: http.MethodPost, Path: PathLogout, Handler: p.csrf.Handler(page(p.logout)), Continues: always},
		{Method: http.MethodGet, Path: PathLogin, Handler: hf(p.chooser), Continues: p.loginStep(nil)},
		{Method: http.MethodPost, Path: PathLogin + "/abort", Handler: p.csrf.Handler(hf(p.abortLogin)), Continues: always},
	}
	for _, a := range p.cfg.Authenticators {
		routes = append(routes, p.methodRoutes(a)...)
	}
	// Any route that completes an authorization may answer with the
	// form_post page: give it its headers.
	// Every request reads the clients' version once, and a token record once.
	for i := range routes {
		routes[i].Handler = withRequestMemo(htmlHeaders(routes[i].Handler))
	}
	return routes
}

// methodRoutes mounts a login method's pages under /login/<method>, every
// path behind the cross-origin check but those it declares as cross-site
// returns (idp.CrossSiteReturns), and its operator API (idp.OperatorAPI)
// under /operator/<method> behind operator authentication, when configured.
func (p *Provider) methodRoutes(a idp.Authenticator) []Route {
	host := loginHost{p: p, method: a.Method()}
	prefix := PathLogin + "/" + string(a.Method())
	pages := a.Handler(host)
	protected := p.csrf.Handler(pages)
	var crossSite map[string]bool
	steps := map[string]bool{} // ranked as a login under way without the cookie
	if cs, ok := a.(idp.CrossSiteReturns); ok {
		crossSite = map[string]bool{}
		for _, path := range cs.CrossSitePaths() {
			crossSite[path], steps[path] = true, true
		}
	}
	if oh, ok := a.(idp.OffHostSteps); ok {
		for _, path := range oh.OffHostPaths() {
			steps[path] = true
		}
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if crossSite[r.URL.Path] {
			pages.ServeHTTP(w, r)
			return
		}
		protected.ServeHTTP(w, r)
	})
	r := Route{Path: prefix, Prefix: true, Handler: http.StripPrefix(prefix, h), Continues: p.loginStep(prefixed(prefix, steps))}
	if bl, ok := a.(idp.BodyLimit); ok {
		r.MaxBody = bl.MaxBodyBytes()
	}
	routes := []Route{r}
	if op, ok := a.(idp.OperatorAPI); ok && p.cfg.Operators != nil {
		opPrefix := PathOperator + "/" + string(a.Method())
		routes = append(routes, Route{Path: opPrefix, Prefix: true, Handler: p.cfg.Operators(http.StripPrefix(opPrefix, op.OperatorHandler()))})
	}
	return routes
}

// RunMethods runs the background work of every login method that has some
// (idp.Runner) until ctx ends, and returns when all of it has stopped. A
// runner that fails is logged; the others go on.
func (p *Provider) RunMethods(ctx context.Context) {
	var wg sync.WaitGroup
	for _, a := range p.cfg.Authenticators {
		r, ok := a.(idp.Runner)
		if !ok {
			continue
		}
		wg.Go(func() {
			if err := r.Run(ctx); err != nil && ctx.Err() == nil {
				p.log.ErrorContext(ctx, "login method's background work stopped", "method", a.Method(), "err", err)
			}
		})
	}
	wg.Wait()
}

// Sweepers are the login methods with expiring records of their own
// (idp.Sweeper), for the janitor.
func (p *Provider) Sweepers() []storage.Sweeper {
	var out []storage.Sweeper
	for _, a := range p.cfg.Authenticators {
		if s, ok := a.(idp.Sweeper); ok {
			out = append(out, s)
		}
	}
	return out
}

// Sessions ends citizens' sessions with the back-channel logouts they owe
// (for the citizen's pages and the staff's admin API).
func (p *Provider) Sessions() SessionEnder { return p.ender }

// Revoker ends every browser session (queueing the back-channel logouts they
// owe) and deletes every token of a citizen, found by codice fiscale. It
// implements idp.Revoker; called with a context that carries a storage
// transaction, it joins it.
type Revoker struct {
	Store  storage.Store
	Logger *slog.Logger
	// LogoutQueued, if set, is called when logouts were queued.
	LogoutQueued func()
}

var _ idp.Revoker = Revoker{}

// RevokeCitizen ends the citizen's sessions and tokens; an unknown citizen has none.
func (rv Revoker) RevokeCitizen(ctx context.Context, fiscalNumber string) error {
	subj, err := rv.Store.GetSubjectByFiscalNumber(ctx, fiscalNumber)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("provider: revoke: %w", err)
	}
	sessions, err := rv.Store.ListSubjectSessions(ctx, subj.ID)
	if err != nil {
		return fmt.Errorf("provider: revoke sessions: %w", err)
	}
	_, queued, err := SessionEnder{Store: rv.Store, Logger: rv.Logger}.EndIn(ctx, sessions)
	if err != nil {
		return fmt.Errorf("provider: revoke sessions: %w", err)
	}
	if queued > 0 && rv.LogoutQueued != nil {
		rv.LogoutQueued() // early, inside the caller's transaction: the sender's next pass finds them
	}
	n, err := rv.Store.DeleteSubjectTokens(ctx, subj.ID)
	if err != nil {
		return fmt.Errorf("provider: revoke tokens: %w", err)
	}
	if rv.Logger != nil {
		rv.Logger.InfoContext(ctx, "citizen revoked", "subject", subj.ID, "tokens", n)
	}
	return nil
}
