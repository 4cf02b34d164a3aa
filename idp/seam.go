package idp

import (
	"context"
	"errors"
	"net/http"
)

// ErrUnknownChallenge is returned by Host.LoginRequest when the challenge does
// not exist, has expired or belongs to another browser.
var ErrUnknownChallenge = errors.New("idp: unknown or expired login challenge")

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

// Host is what the core offers a login method while a user logs in.
type Host interface {
	// LoginRequest returns the pending request named by challenge, checked against
	// the browser that makes r; ErrUnknownChallenge if there is none.
	LoginRequest(r *http.Request, challenge string) (LoginRequest, error)
	// CompleteLogin records a successful login and sends the browser back to the
	// authorization. It writes the response.
	CompleteLogin(w http.ResponseWriter, r *http.Request, challenge string, id Identity)
	// LoginURL is the path of the method chooser for challenge, for "back" links.
	LoginURL(challenge string) string
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

// BodyLimit is an optional capability of an Authenticator whose pages accept
// request bodies larger than the core's default limit (64 KiB, enough for any
// form), such as a document upload. The core lets requests below the method's
// prefix carry up to MaxBodyBytes and refuses larger ones before reading them.
type BodyLimit interface {
	// MaxBodyBytes is the largest request body the method's pages accept.
	MaxBodyBytes() int64
}

// Revoker ends every session and token of a citizen. The core implements it; a
// method that revokes a credential (PIN revoca) asks for it at construction.
type Revoker interface {
	RevokeCitizen(ctx context.Context, fiscalNumber string) error
}
