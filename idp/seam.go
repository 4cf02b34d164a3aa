package idp

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"time"
)

// Errors a Host returns to a login method.
var (
	// ErrUnknownChallenge: the challenge does not exist, has expired, or (for
	// LoginRequest) belongs to another browser.
	ErrUnknownChallenge = errors.New("idp: unknown or expired login challenge")
	// ErrUnknownState: no live login state under that key (never saved,
	// expired, or already taken).
	ErrUnknownState = errors.New("idp: unknown or expired login state")
	// ErrReplay: UseOnce was given an ID that was already used and has not expired.
	ErrReplay = errors.New("idp: already used")
)

// Any other error of a Host method that wraps storage.ErrUnavailable means
// that the core's database could not be reached and nothing was done: the
// method answers 503 with Retry-After (ui.ComeBack), and the same request may
// be sent again once the database is back.

// LoginRequest is what the core asks of a login method for one pending authorization.
type LoginRequest struct {
	// Challenge identifies the pending authorization; a method that leaves the
	// site carries it through (as SAML RelayState, say) and hands it back to CompleteLogin.
	Challenge string
	// MinLevel is the lowest level that satisfies the relying party.
	MinLevel Level
	// LoginHint is the codice fiscale the relying party expects, if it named one.
	LoginHint string
	// IDPHint is the part of idp_hint after the method (for SPID, the identity provider).
	IDPHint string
	// Locale is "it" or "en".
	Locale string
	// ClientName is the relying party's display name.
	ClientName string
}

// Host is what the core offers a login method while a user logs in. Each
// method gets its own Host: paths and state keys are the method's own.
type Host interface {
	// LoginRequest returns the pending request named by challenge, checked against
	// the browser that makes r; ErrUnknownChallenge if there is none.
	LoginRequest(r *http.Request, challenge string) (LoginRequest, error)
	// CompleteLogin records a login proved in the browser that made the
	// challenge (a form posted on the site) and sends the browser back to the
	// authorization. It writes the response.
	CompleteLogin(w http.ResponseWriter, r *http.Request, challenge string, id Identity)
	// ReturnLogin records a login proved by a request that may not come from
	// the browser that made the challenge: a cross-site return (a SAML POST
	// from an identity provider) or a request on another host (a certificate
	// read on the card listener). The identity is kept on the challenge and
	// the browser goes to the issuer's resume, which starts the session only
	// if the browser is the one that made the challenge. It writes the response.
	ReturnLogin(w http.ResponseWriter, r *http.Request, challenge string, id Identity)
	// LoginURL is the path of the method chooser for challenge, for "back" links.
	LoginURL(challenge string) string
	// MethodURL is the path of the method's own page p (like "/request"),
	// below the prefix the core mounts the method on.
	MethodURL(p string) string
	// SaveState keeps data for the method until ttl has passed, under the
	// method's own key (a SAML AuthnRequest ID, a RelayState), tied to the
	// challenge: what a method that leaves the site needs when it comes back.
	SaveState(ctx context.Context, key, challenge string, data []byte, ttl time.Duration) error
	// TakeState returns and deletes what SaveState kept under key, once;
	// ErrUnknownState if there is nothing live.
	TakeState(ctx context.Context, key string) (challenge string, data []byte, err error)
	// UseOnce records that id (an assertion ID, a nonce) was used, until
	// until; ErrReplay if it was already used. Every node shares it.
	UseOnce(ctx context.Context, id string, until time.Time) error
	// EndSessions ends every SSO session started by a login of this method
	// whose Identity.SessionKey was key (the upstream ended its own), and
	// reports how many.
	EndSessions(ctx context.Context, key string) (int, error)
	// ClientCertificates returns the client certificate chain of r, leaf
	// first, as presented on the core's TLS listener or forwarded by a proxy
	// the core trusts for it; nil when there is none. The chain is not
	// verified: the method verifies it.
	ClientCertificates(r *http.Request) ([]*x509.Certificate, error)
}

// Authenticator is a login method that plugs into the core.
type Authenticator interface {
	// Method names the method; the core mounts Handler under /login/<method>/.
	Method() Method
	// Label is the method's name on the chooser, in locale ("it" or "en").
	Label(locale string) string
	// MaxLevel is the highest level the method can reach; the chooser hides the
	// method when a request needs more.
	MaxLevel() Level
	// Handler serves the method's pages. The core sends the user to
	// /login/<method>/?challenge=<id>; the handler sees paths with the prefix stripped.
	Handler(host Host) http.Handler
}

// Citizens is what the core knows of citizens, for a method that must not
// take a codice fiscale it has no record of for a newcomer (a PIN request
// for a citizen who logs in with SPID or CNS). The core implements it.
type Citizens interface {
	// Known reports whether the citizen has logged in with any method, and
	// the email the core holds for them (empty if none).
	Known(ctx context.Context, fiscalNumber string) (known bool, email string, err error)
}

// Revoker ends every session and token of a citizen. The core implements it; a
// method that revokes a credential (PIN revoca) asks for it at construction.
type Revoker interface {
	RevokeCitizen(ctx context.Context, fiscalNumber string) error
}
