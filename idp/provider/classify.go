package provider

import (
	"net/http"
	"strings"

	"github.com/ponte-id/ponte/internal/admission"
)

// Under load the edge admits the requests of logins already under way
// before those that start new ones (internal/admission's classes), so that a
// login once begun is finished rather than abandoned half done. A route
// tells which of its requests continue a login (Route.Continues):
//
//   - always: the resume, the token endpoint, userinfo, revocation,
//     introspection, logout, aborting a login, discovery and the JWKS (a
//     relying party needs them to check the tokens of a login it started);
//   - the chooser and the login methods' pages: a request that names a
//     login challenge (?challenge=), comes from a browser bound to its
//     logins (the browser cookie, set by /authorize, which the PIN form's
//     post carries), or is a method's cross-site return (a SAML response,
//     idp.CrossSiteReturns);
//   - never: /authorize, /par (a new login), a method's pages opened without
//     any of the above (the recovery form from a new browser), operators'
//     APIs, and every route the provider does not own.
//
// This is a ranking, not a check: a request that claims to continue a login
// is still bounded by the node's gate, and every handler still validates
// the challenge and the cookie as before.

// always: every request of the route continues a login.
func always(*http.Request) bool { return true }

// loginStep is the Continues of login pages; crossSite, if not nil, reports
// the full paths that are cross-site returns.
func loginStep(crossSite func(path string) bool) func(*http.Request) bool {
	return func(r *http.Request) bool {
		if r.URL.Query().Has("challenge") {
			return true
		}
		if c, err := r.Cookie(browserCookie); err == nil && len(c.Value) >= 32 {
			return true
		}
		return crossSite != nil && crossSite(r.URL.Path)
	}
}

// prefixed reports the paths of paths (relative to prefix, as a method
// declares them) under prefix.
func prefixed(prefix string, paths map[string]bool) func(string) bool {
	if len(paths) == 0 {
		return nil
	}
	return func(path string) bool {
		rest, ok := strings.CutPrefix(path, prefix)
		return ok && paths[rest]
	}
}

// tokenClass ranks a token request in the token endpoint's gate: the
// redemption of an authorization code finishes a login whose citizen has
// already authenticated, and refusing it would lose that login (a client
// such as x/oauth2 does not retry), so it is never refused for load: it
// waits for a slot ahead of every other grant, bounded by the node's gate
// and the codes issued. The other grants (refresh, client credentials) are
// continuing calls, refused when the line is full. The form is the edge's,
// limited in size; reading it here spares fosite nothing and costs nothing.
func tokenClass(r *http.Request) admission.Class {
	if r.PostFormValue("grant_type") == "authorization_code" {
		return admission.Finishing
	}
	return admission.Continuing
}
