package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/keys"
	"github.com/ponte-id/ponte/idp/operators"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/edge"
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
// operator APIs; nil (the APIs unmounted) when no operator is configured.
func (a *app) operatorAuth() (func(http.Handler) http.Handler, error) {
	if len(a.cfg.Operators) == 0 {
		return nil, nil
	}
	reg, err := operators.Parse(a.cfg.Operators)
	if err != nil {
		return nil, err
	}
	return reg.Require, nil
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
	p, err := provider.New(provider.Config{
		Issuer: cfg.Issuer, Store: a.store, Keys: a.keys, Hasher: a.hasher,
		HMACSecret: a.box.Derive("fosite-hmac", 32), PairwiseKey: a.box.Derive("pairwise", 32),
		Authenticators: methods, Operators: opAuth,
		AuthorizeCodeTTL: cfg.Tokens.AuthorizeCodeTTL.D(), AccessTokenTTL: cfg.Tokens.AccessTokenTTL.D(),
		RefreshTokenTTL: cfg.Tokens.RefreshTokenTTL.D(), IDTokenTTL: cfg.Tokens.IDTokenTTL.D(),
		SessionTTL: cfg.Session.TTL.D(), ChallengeTTL: cfg.Login.ChallengeTTL.D(),
		MaxChallengesPerBrowser: cfg.Login.MaxChallengesPerBrowser, MaxChallengesPerIP: cfg.Login.MaxChallengesPerIP,
		CookieName: cfg.Session.CookieName, CookieSecure: cfg.CookieSecure(),
		Logger: a.log,
	})
	if err != nil {
		return err
	}
	routes := append(p.Routes(), extra...)
	handler, err := edge.New(routes, edge.Options{TrustedProxies: cfg.TrustedProxies, Ready: a.store.Ping, Logger: a.log, Issuer: cfg.Issuer})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	bg, stop := context.WithCancel(ctx)
	defer stop()
	go a.keys.Refresh(bg, cfg.Keys.RefreshInterval.D())
	go storage.RunJanitor(bg, a.store, cfg.Janitor.Interval.D(), time.Now, a.log, p.Sweepers()...)
	methodsDone := make(chan struct{})
	go func() { p.RunMethods(bg); close(methodsDone) }()
	defer func() { stop(); <-methodsDone }()

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	a.log.Info("ponte is serving", "addr", ln.Addr().String(), "issuer", cfg.Issuer, "db", a.store.Dialect())
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	a.log.Info("shutting down", "timeout", cfg.ShutdownTimeout.D())
	shutdown, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.D())
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
