package main

import (
	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/provider"
)

// openPIN opens the PIN service from the configuration.
func (a *app) openPIN() (*pin.Service, error) {
	cfg := pin.DefaultConfig()
	cfg.Expiry = a.cfg.PIN.Expiry.D()
	cutoff, err := a.cfg.PINRequestCutoff()
	if err != nil {
		return nil, err
	}
	cfg.RequestCutoff = cutoff
	cfg.HashConcurrency = a.cfg.PIN.HashConcurrency
	cfg.Throttle.MaxAccountFailures = a.cfg.PIN.MaxFailures
	cfg.Throttle.Lockout = a.cfg.PIN.Lockout.D()
	cfg.BaseURL = a.cfg.Issuer
	return pin.NewService(cfg, pin.Deps{
		Store: a.store, Box: a.box, Revoker: provider.Revoker{Store: a.store, Logger: a.log}, Logger: a.log,
	})
}

// authenticators opens the login methods, in the order the chooser lists them.
// Registration is explicit: each adapter is opened here from its configuration.
func (a *app) authenticators() ([]idp.Authenticator, *pin.Service, error) {
	p, err := a.openPIN()
	if err != nil {
		return nil, nil, err
	}
	return []idp.Authenticator{p.Authenticator()}, p, nil
}
