package main

import "github.com/ponte-id/ponte/idp"

// authenticators opens the login methods, in the order the chooser lists them.
// Registration is explicit: each adapter is opened here from its configuration.
func (a *app) authenticators() ([]idp.Authenticator, error) {
	return nil, nil
}
