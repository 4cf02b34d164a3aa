package cns

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/config"
	"github.com/ponte-id/ponte/internal/method"
)

// Plug is the CNS as cmd/ponte lists it: its configuration section and Open.
var Plug = method.Plug{Section: section, Open: Open}

// Open decodes the "cns" section (defaults, YAML, PONTE_CNS_* variables),
// validates it, loads the CA bundle and CRL files, and returns the CNS login
// method. It does no network I/O. Not enabled, the method hides itself.
func Open(sec config.Section, d method.Deps) (idp.Authenticator, error) {
	cfg := DefaultConfig()
	if err := config.Decode(sec, &cfg, settings); err != nil {
		return nil, err
	}
	cfg.Issuer = d.Issuer
	return New(cfg, Deps{Now: d.Now, Logger: d.Logger})
}

// Deps are what the method uses from outside.
type Deps struct {
	// HTTPClient fetches CRLs and asks OCSP responders; nil is a client with
	// the configured timeout.
	HTTPClient *http.Client
	// Now is the clock; nil is time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// New validates cfg, loads its files, and returns the CNS login method.
func New(cfg Config, d Deps) (idp.Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	a := &authenticator{cfg: cfg, now: d.Now, log: d.Logger.With("method", string(idp.MethodCNS)), metrics: newMetrics()}
	if !cfg.Enabled {
		return a, nil
	}
	if cfg.Issuer == "" || strings.HasSuffix(cfg.Issuer, "/") {
		return nil, errors.New("cns: the issuer URL is required, without trailing slash")
	}
	trust, err := newTrustStore(cfg.CAFile, cfg.Revocation.CRLDir, d.Now())
	if err != nil {
		return nil, fmt.Errorf("config: %w", config.Invalid(section, settings, "ca_file", err))
	}
	client := d.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: cfg.Revocation.Timeout}
	}
	policy, _ := x509.ParseOID(cfg.PolicyOID) // Validate checked it
	a.trust = trust
	a.health = newHealthBook()
	a.revoker = &revocationChecker{
		cfg: cfg.Revocation, trust: trust, client: client, now: d.Now, log: a.log,
		ocspCache: newLRU[ocspKey, ocspAnswer](cfg.Revocation.CacheSize),
		fetched:   newLRU[string, *fetchedCRL](maxFetchedCRLs),
		health:    a.health, metrics: a.metrics,
	}
	a.verifier = &verifier{cfg: cfg, trust: trust, revoker: a.revoker, now: d.Now, policy: policy}
	a.cardURL = strings.TrimSuffix(cfg.CardURL, "/")
	return a, nil
}

// authenticator is the CNS as a login method: its pages read the card, it
// reloads its CAs and CRLs in the background, and it shows operators its
// status and counters.
type authenticator struct {
	cfg      Config
	cardURL  string
	now      func() time.Time
	log      *slog.Logger
	trust    *trustStore
	revoker  *revocationChecker
	verifier *verifier
	health   *healthBook
	metrics  *metrics
}

var (
	_ idp.Authenticator = (*authenticator)(nil)
	_ idp.Runner        = (*authenticator)(nil)
	_ idp.OperatorAPI   = (*authenticator)(nil)
	_ idp.OffHostSteps  = (*authenticator)(nil)
)

func (*authenticator) Method() idp.Method { return idp.MethodCNS }

// OffHostPaths is the card page: the browser reaches it on the card
// listener's host, without the issuer's cookies.
func (*authenticator) OffHostPaths() []string { return []string{PathCard} }

func (*authenticator) Label(locale string) string {
	if locale == "en" {
		return "National Services Card (CNS)"
	}
	return "Carta Nazionale dei Servizi (CNS)"
}

// MaxLevel is dispositivo; a method that is not enabled reaches no level, so
// the chooser never lists it.
func (a *authenticator) MaxLevel() idp.Level {
	if !a.cfg.Enabled {
		return idp.LevelNone
	}
	return idp.LevelDispositivo
}

// Run reloads the CA bundle and CRL files when they change, and downloads
// the CRLs of distribution points before they are due, every
// ReloadInterval, until ctx ends.
func (a *authenticator) Run(ctx context.Context) error {
	if !a.cfg.Enabled {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(a.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			a.reload(ctx)
		}
	}
}

// reload is one round of Run.
func (a *authenticator) reload(ctx context.Context) {
	changed, err := a.trust.reload(a.now())
	switch {
	case err != nil:
		a.metrics.reloadFailures.Add(1)
		a.log.ErrorContext(ctx, "cns: reloading the CA bundle or CRL files failed; the previous ones stay in force", "err", err)
	case changed:
		a.metrics.reloads.Add(1)
		ts := a.trust.current()
		a.log.InfoContext(ctx, "cns: CA bundle and CRL files reloaded", "cas", len(ts.cas), "crl_issuers", len(ts.crls))
	}
	a.revoker.refresh(ctx)
}
