package provider

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/hmac"

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
//   - the chooser, the resume and the login methods' pages: a request from a
//     browser that /authorize bound to its logins (the browser cookie, which
//     carries its issue time and a MAC of ours, browser.go: a made-up value,
//     or one issued longer ago than a challenge lives, ranks as new), within
//     that browser's budget of continuing requests (browserBudget), a method's
//     cross-site return (a SAML response, idp.CrossSiteReturns), or a page
//     on another host than the issuer's (the CNS card page, which the
//     cookie does not reach, idp.OffHostSteps);
//   - never: /authorize, /par (a new login), a method's pages opened without
//     any of the above (the recovery form from a new browser), operators'
//     APIs, and every route the provider does not own.
//
// At the token endpoint a code's redemption goes before the other grants
// (tokenClass) when the code carries fosite's HMAC: a made-up code does not.
//
// This is a ranking, not a check: a request that claims to continue a login
// is still bounded by the node's gate, and every handler still validates
// the challenge and the cookie as before. What a stranger can still claim,
// and its bound: each cookie it got from /authorize ranks browserBudget
// requests per browserBudgetWindow, for as long as a challenge lives; a
// cookie is issued only with a challenge, under the caps of pending
// challenges per browser and per address, so gathering enough of them to
// fill the table of browsers counted (browserBudgetKeys, after which new
// browsers rank as new) takes many addresses within that time; a real code ranks as finishing codeBudget times; the
// "always" routes (token, userinfo and the rest), the cross-site returns and
// the pages on another host are ranked continuing for anyone, with no budget
// (a made-up token or code is refused after its HMAC check, a made-up client
// after a read of the clients' version).

// always: every request of the route continues a login.
func always(*http.Request) bool { return true }

// The continuing requests one browser cookie may claim in a window, per
// node: a login's pages, a few PIN attempts, a method or two tried, several
// times over. Beyond, the browser's requests rank as new ones.
const (
	browserBudget       = 60
	browserBudgetWindow = 10 * time.Minute
	// browserBudgetKeys bounds the browsers counted at once: beyond, a
	// browser not yet counted ranks as new.
	browserBudgetKeys = 1 << 18
)

// codePrefix starts every authorization code fosite issues (its prefixed
// HMAC strategy), before the HMAC-signed part.
const codePrefix = "ory_ac_"

// codeMAC returns the check of an authorization code's HMAC under fc's
// secrets (the current one and the rotated ones), as fosite makes it.
func codeMAC(fc *fosite.Config) func(ctx context.Context, code string) bool {
	codes := &hmac.HMACStrategy{Config: fc}
	return func(ctx context.Context, code string) bool {
		rest, ok := strings.CutPrefix(code, codePrefix)
		return ok && codes.Validate(ctx, rest) == nil
	}
}

// loginStep is the Continues of login pages; steps, if not nil, reports the
// full paths that continue a login without the browser cookie (cross-site
// returns, pages on another host).
func (p *Provider) loginStep(steps func(path string) bool) func(*http.Request) bool {
	return func(r *http.Request) bool {
		if steps != nil && steps(r.URL.Path) {
			return true
		}
		tag, ok := p.browserCurrent(r)
		return ok && p.budget.Allow(r.Context(), tag, browserBudget, browserBudgetWindow).Allowed
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
// waits for a slot ahead of every other grant, bounded by the node's gate.
// Only a code that carries fosite's HMAC (checked here, without the
// database: a microsecond) ranks so, codeBudget times at most; a made-up
// one, and the other grants (refresh, client credentials), are continuing
// calls, refused when the line is full. The form is the edge's, limited in size; reading it here
// spares fosite nothing and costs nothing.
func (p *Provider) tokenClass(r *http.Request) admission.Class {
	code := r.PostFormValue("code")
	if r.PostFormValue("grant_type") != "authorization_code" || !p.codeMAC(r.Context(), code) {
		return admission.Continuing
	}
	// A code is redeemed once (a client's retry makes it twice or three
	// times); one sent again and again, or a token of another kind under
	// the code's prefix (fosite signs every kind alike), ranks as the
	// other grants beyond that.
	sig := code[strings.LastIndexByte(code, '.')+1:]
	if !p.budget.Allow(r.Context(), "code:"+sig, codeBudget, p.cfg.AuthorizeCodeTTL).Allowed {
		return admission.Continuing
	}
	return admission.Finishing
}

// codeBudget is how many times one code ranks as finishing a login.
const codeBudget = 3
