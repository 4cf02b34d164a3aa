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

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/adapters/pin/delivery"
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
	methods, pins, err := a.authenticators()
	if err != nil {
		return err
	}
	return a.serve(ctx, methods, pins, delivery.NewDev(delivery.DefaultDevMessages), nil)
}

// operatorRoutes mounts the methods' operator APIs behind operator
// authentication, when operators are configured.
func (a *app) operatorRoutes(pins *pin.Service) ([]provider.Route, error) {
	if len(a.cfg.Operators) == 0 {
		return nil, nil
	}
	reg, err := operators.Parse(a.cfg.Operators)
	if err != nil {
		return nil, err
	}
	const prefix = "/operator/pin"
	return []provider.Route{{Path: prefix, Prefix: true, Handler: reg.Require(http.StripPrefix(prefix, pins.OperatorHandler()))}}, nil
}

// serve runs the provider until ctx ends, then shuts down gracefully. Beside
// the provider's routes it mounts the operator APIs (when operators are
// configured) and extra (the demo relying party); it delivers the outbox, to dev
// for channels without a sender in dev mode.
func (a *app) serve(ctx context.Context, methods []idp.Authenticator, pins *pin.Service, dev *delivery.DevSender, extra []provider.Route) error {
	cfg := a.cfg
	opRoutes, err := a.operatorRoutes(pins)
	if err != nil {
		return err
	}
	outbox, err := a.dispatcher(dev)
	if err != nil {
		return err
	}
	if err := a.keys.EnsureKeys(ctx, keys.ES256, keys.RS256); err != nil {
		return err
	}
	p, err := provider.New(provider.Config{
		Issuer: cfg.Issuer, Store: a.store, Keys: a.keys, Hasher: a.hasher,
		HMACSecret: a.box.Derive("fosite-hmac", 32), PairwiseKey: a.box.Derive("pairwise", 32),
		Authenticators:   methods,
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
	routes := append(append(p.Routes(), opRoutes...), extra...)
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
	go storage.RunJanitor(bg, a.store, cfg.Janitor.Interval.D(), time.Now, a.log)
	go outbox.Run(bg, cfg.Delivery.Interval.D())

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
