package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/ponte-id/ponte/api"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/admin"
	"github.com/ponte-id/ponte/idp/keys"
	"github.com/ponte-id/ponte/idp/operators"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/account"
	"github.com/ponte-id/ponte/internal/clientcert"
	"github.com/ponte-id/ponte/internal/config"
	"github.com/ponte-id/ponte/internal/console"
	"github.com/ponte-id/ponte/internal/edge"
	"github.com/ponte-id/ponte/internal/ratelimit"
	"github.com/ponte-id/ponte/internal/selfclient"
	"github.com/ponte-id/ponte/storage"
)

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := loadConfig(flag.NewFlagSet("serve", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	methods, err := a.openMethods()
	if err != nil {
		return err
	}
	return a.serve(ctx, methods, nil)
}

// operatorAuth is the operators' authentication in front of the methods'
// operator APIs: API tokens with operator roles, and the static bootstrap
// list of PONTE_OPERATORS.
func (a *app) operatorAuth() (func(http.Handler) http.Handler, error) {
	var static *operators.Registry
	if len(a.cfg.Operators) > 0 {
		reg, err := operators.Parse(a.cfg.Operators)
		if err != nil {
			return nil, err
		}
		static = reg
	}
	return operators.Require(static, a.staff.OperatorToken, a.log, ratelimit.Failures{Limiter: a.limiter}), nil
}

// serve runs the provider until ctx ends, then shuts down gracefully. Beside
// the provider's routes (the methods' pages and operator APIs included) it
// mounts extra (the demo relying party); the methods' background work runs
// with it, and the janitor sweeps their records too.
func (a *app) serve(ctx context.Context, methods []idp.Authenticator, extra []provider.Route) error {
	cfg := a.cfg
	opAuth, err := a.operatorAuth()
	if err != nil {
		return err
	}
	if err := a.keys.EnsureKeys(ctx, keys.ES256, keys.RS256); err != nil {
		return err
	}
	tokens, err := a.tokenGate()
	if err != nil {
		return err
	}
	node, err := a.nodeGate()
	if err != nil {
		return err
	}
	m, err := a.newMetrics(methods, tokens, node)
	if err != nil {
		return err
	}
	tracer, flushTraces, err := a.tracer(ctx)
	if err != nil {
		return err
	}
	defer func() {
		flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := flushTraces(flush); err != nil {
			a.log.Warn("flushing traces failed", "err", err)
		}
	}()
	p, err := provider.New(provider.Config{
		Issuer: cfg.Issuer, Store: a.store, Keys: a.keys, Hasher: a.hasher,
		HMACSecret: a.box.Derive("fosite-hmac", 32), PairwiseKey: a.box.Derive("pairwise", 32),
		Authenticators: methods, Operators: opAuth,
		AuthorizeCodeTTL: cfg.Tokens.AuthorizeCodeTTL.D(), AccessTokenTTL: cfg.Tokens.AccessTokenTTL.D(),
		RefreshTokenTTL: cfg.Tokens.RefreshTokenTTL.D(), IDTokenTTL: cfg.Tokens.IDTokenTTL.D(),
		SessionTTL: cfg.Session.TTL.D(), ChallengeTTL: cfg.Login.ChallengeTTL.D(),
		MaxChallengesPerBrowser: cfg.Login.MaxChallengesPerBrowser, MaxChallengesPerIP: cfg.Login.MaxChallengesPerIP,
		CookieName: cfg.Session.CookieName, CookieSecure: cfg.CookieSecure(),
		LogoutQueued: a.logouts.Wake, TokenGate: tokens, Observer: m,
		Logger: a.log,
	})
	if err != nil {
		return err
	}
	// handler is the whole server, set below: the account pages' self client
	// reaches the provider through it, in process.
	var handler http.Handler
	accountRoute, err := a.accountPages(ctx, p, func() http.Handler { return handler })
	if err != nil {
		return err
	}
	consoleRoute, err := a.consolePages(ctx, p, methods, func() http.Handler { return handler })
	if err != nil {
		return err
	}
	routes := append(append(p.Routes(), accountRoute, consoleRoute), extra...)
	routes = append(routes, provider.Route{Path: admin.Prefix, Prefix: true, Handler: admin.Handler(a.admin, api.OpenAPI, a.log, ratelimit.Failures{Limiter: a.limiter})})
	certs, err := clientcert.New(clientcert.Options{TrustedProxies: cfg.ClientCertProxies, Header: cfg.ClientCertHeader}, a.log)
	if err != nil {
		return err
	}
	ready := a.readiness(methods)
	handler, err = edge.New(routes, edge.Options{TrustedProxies: cfg.TrustedProxies, Readiness: ready, Logger: a.log,
		Issuer: cfg.Issuer, ClientCerts: certs, Metrics: m, Tracer: tracer, Gate: node})
	if err != nil {
		return err
	}
	servers, err := a.listeners(handler, edge.Admin(m, ready, a.log))
	if err != nil {
		return err
	}
	bg, stop := context.WithCancel(ctx)
	defer stop()
	go a.keys.Refresh(bg, cfg.Keys.RefreshInterval.D())
	go storage.RunJanitor(bg, a.store, cfg.Janitor.Interval.D(), time.Now, a.log, append(p.Sweepers(), p.Sessions())...)
	methodsDone, logoutsDone := make(chan struct{}), make(chan struct{})
	go func() { p.RunMethods(bg); close(methodsDone) }()
	go func() { _ = a.logouts.Run(bg); close(logoutsDone) }()
	defer func() { stop(); <-methodsDone; <-logoutsDone }()

	served := make(chan error, len(servers))
	for _, s := range servers {
		a.log.Info("ponte is serving", "addr", s.ln.Addr().String(), "tls", s.srv.TLSConfig != nil, "admin", s.admin, "issuer", cfg.Issuer, "db", a.store.Dialect())
		go func() { served <- s.serve() }()
	}
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	a.log.Info("shutting down", "timeout", cfg.ShutdownTimeout.D())
	shutdown, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.D())
	defer cancel()
	var errs []error
	for _, s := range servers {
		if err := s.srv.Shutdown(shutdown); err != nil {
			errs = append(errs, fmt.Errorf("shutdown %s: %w", s.ln.Addr(), err))
		}
	}
	for range servers {
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// server is one listener and its HTTP server.
type server struct {
	ln  net.Listener
	srv *http.Server
	// admin is the admin listener's (metrics, detailed readiness).
	admin bool
}

func (s server) serve() error {
	if s.srv.TLSConfig != nil {
		return s.srv.ServeTLS(s.ln, "", "") // ServeTLS offers h2 and http/1.1
	}
	return s.srv.Serve(s.ln)
}

// listeners opens the main listener and, when configured, the card listener
// (TLS, asking for a client certificate), both serving handler, and the admin
// listener serving admin.
func (a *app) listeners(handler, admin http.Handler) ([]server, error) {
	newServer := func() *http.Server {
		return &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		}
	}
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", a.cfg.Addr, err)
	}
	servers := []server{{ln: ln, srv: newServer()}}
	closeAll := func() {
		for _, s := range servers {
			s.ln.Close()
		}
	}
	if a.cfg.AdminAddr != "" {
		adminLn, err := net.Listen("tcp", a.cfg.AdminAddr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("admin listener: listen on %s: %w", a.cfg.AdminAddr, err)
		}
		if ap, err := netip.ParseAddrPort(adminLn.Addr().String()); err != nil || !ap.Addr().IsLoopback() {
			a.log.Warn("the admin listener is not on loopback: it has no authentication, so only the monitoring network may reach it", "addr", adminLn.Addr().String())
		}
		srv := newServer()
		srv.Handler = admin
		servers = append(servers, server{ln: adminLn, srv: srv, admin: true})
	}
	if a.cfg.CardListener.Addr == "" {
		return servers, nil
	}
	cardLn, tlsCfg, err := cardListener(a.cfg.CardListener)
	if err != nil {
		closeAll()
		return nil, err
	}
	srv := newServer()
	srv.TLSConfig = tlsCfg
	// One request a connection: a connection made with a card must not stay
	// open for the next person at the same browser.
	srv.SetKeepAlivesEnabled(false)
	return append(servers, server{ln: cardLn, srv: srv}), nil
}

// cardListener opens the card listener and makes its TLS configuration.
func cardListener(c config.CardListener) (net.Listener, *tls.Config, error) {
	maxVersion, err := clientcert.ParseTLSVersion(c.MaxTLSVersion)
	if err != nil {
		return nil, nil, fmt.Errorf("card listener: %w", err)
	}
	tlsCfg, err := clientcert.CardTLSConfig(c.CertFile, c.KeyFile, maxVersion)
	if err != nil {
		return nil, nil, fmt.Errorf("card listener: %w", err)
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("card listener: listen on %s: %w", c.Addr, err)
	}
	return ln, tlsCfg, nil
}

// accountPages registers the account pages' self client and returns their
// route: the citizen's sessions and recent logins at /account.
func (a *app) accountPages(ctx context.Context, p *provider.Provider, handler func() http.Handler) (provider.Route, error) {
	self, err := selfclient.New(selfclient.Config{
		Issuer: a.cfg.Issuer, ClientID: account.ClientID, Name: "Area personale (accessi)", Path: account.Path,
		Scopes: []string{"profile"}, Box: a.box, Sessions: p, HTTPClient: selfclient.InProcess(handler),
		CookieSecure: a.cfg.CookieSecure(), Logger: a.log,
	})
	if err != nil {
		return provider.Route{}, err
	}
	if err := self.Register(ctx, a.registry); err != nil {
		return provider.Route{}, err
	}
	pages, err := account.New(account.Config{Self: self, Store: a.store, Sessions: p.Sessions(),
		CSRFKey: a.box.Derive("account-csrf", 32), Logger: a.log})
	if err != nil {
		return provider.Route{}, err
	}
	return provider.Route{Path: account.Path, Prefix: true, Handler: pages.Handler(), Continues: selfCallback(account.Path)}, nil
}

// consolePages is the staff console (/console) with its self client, which
// asks for the dispositivo level and the codice fiscale (to find the roles).
func (a *app) consolePages(ctx context.Context, p *provider.Provider, methods []idp.Authenticator, handler func() http.Handler) (provider.Route, error) {
	scopes, level := console.SelfConfig()
	self, err := selfclient.New(selfclient.Config{
		Issuer: a.cfg.Issuer, ClientID: console.ClientID, Name: "Console di Ponte", Path: console.Path,
		Scopes: scopes, Level: level, Box: a.box, Sessions: p, HTTPClient: selfclient.InProcess(handler),
		CookieSecure: a.cfg.CookieSecure(), Logger: a.log,
	})
	if err != nil {
		return provider.Route{}, err
	}
	if err := self.Register(ctx, a.registry); err != nil {
		return provider.Route{}, err
	}
	sections := map[string]idp.ConsoleSection{}
	for _, m := range methods {
		if cp, ok := m.(idp.ConsolePages); ok {
			sections[string(m.Method())] = cp.ConsoleSection()
		}
	}
	pages, err := console.New(console.Config{Self: self, Admin: a.admin, CSRFKey: a.box.Derive("console-csrf", 32), Sections: sections, Logger: a.log})
	if err != nil {
		return provider.Route{}, err
	}
	return provider.Route{Path: console.Path, Prefix: true, Handler: pages.Handler(), Continues: selfCallback(console.Path)}, nil
}

// selfCallback is the Continues of pages that log in through the provider
// itself (internal/selfclient): their callback, which redeems the code,
// finishes a login; their other pages start new work.
func selfCallback(path string) func(*http.Request) bool {
	return func(r *http.Request) bool { return r.URL.Path == path+"/callback" }
}
