package main

import (
	"github.com/ponte-id/ponte/adapters/cns"
	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/adapters/spid"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/method"
)

// plugs are the login methods, in the order the chooser lists them. Adding a
// method is one line here; everything else lives in its own folder.
var plugs = []method.Plug{
	pin.Plug,
	spid.Plug,
	cns.Plug,
}

// openMethods opens every login method from its configuration section
// (loadConfig has refused any section that no method claims).
func (a *app) openMethods() ([]idp.Authenticator, error) {
	citizens := provider.Revoker{Store: a.store, Logger: a.log, LogoutQueued: a.logouts.Wake}
	deps := method.Deps{
		Store: a.store, Box: a.box, Revoker: citizens, Citizens: citizens,
		Limiter: a.limiter, Issuer: a.cfg.Issuer, Dev: a.cfg.Dev, Logger: a.log,
	}
	var methods []idp.Authenticator
	for _, p := range plugs {
		m, err := p.Open(a.cfg.Section(p.Section), deps)
		if err != nil {
			return nil, err
		}
		methods = append(methods, m)
	}
	return methods, nil
}
