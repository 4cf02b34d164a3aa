package idp

import (
	"context"
	"net/http"
	"time"
)

// The optional capabilities of an Authenticator. The core finds each by type
// assertion (as Dex finds its connectors' capabilities) and names no method:
// a method that implements none of them still plugs in.

// BodyLimit is implemented by a method whose pages accept request bodies
// larger than the core's default limit (64 KiB, enough for any form), such as
// a document upload. The core lets requests below the method's prefix carry
// up to MaxBodyBytes and refuses larger ones before reading them.
type BodyLimit interface {
	// MaxBodyBytes is the largest request body the method's pages accept.
	MaxBodyBytes() int64
}

// CrossSiteReturns is implemented by a method whose pages receive POSTs from
// other sites: a SAML assertion consumer service or single-logout endpoint.
// Only those paths skip the core's cross-origin (CSRF) protection, and a login
// proved there must go through Host.ReturnLogin.
type CrossSiteReturns interface {
	// CrossSitePaths are paths below the method's prefix (like "/acs").
	CrossSitePaths() []string
}

// Runner is implemented by a method with background work (delivering its
// messages, refreshing metadata). The core runs it with the server and
// cancels ctx on shutdown; Run returns when ctx ends.
type Runner interface {
	Run(ctx context.Context) error
}

// OperatorAPI is implemented by a method with an API for INPS operators. The
// core mounts the handler under /operator/<method>/ behind operator
// authentication, which puts the operator in the request context
// (OperatorFrom); the handler sees paths with the prefix stripped.
type OperatorAPI interface {
	OperatorHandler() http.Handler
}

// Sweeper is implemented by a method that keeps records which expire. The
// core's janitor calls Sweep periodically.
type Sweeper interface {
	Sweep(ctx context.Context, now time.Time) error
}

// LogoutParticipant is implemented by a method whose upstream must hear of a
// logout (SAML single logout). The core calls Logout after it has ended the
// SSO session that the method's login started, with the Identity.SessionData
// of that login. The method either returns false, or writes the response
// (a redirect to its upstream), returns true, and later sends the browser to
// next.
type LogoutParticipant interface {
	Logout(w http.ResponseWriter, r *http.Request, sessionData []byte, next string) bool
}

// Hint is a sentence for the chooser with an optional link.
type Hint struct {
	Text     string
	LinkURL  string
	LinkText string
}

// StepUpHinter is implemented by a method that can tell a citizen logged in
// below the level asked how to reach it with this method (an ordinary PIN
// becomes dispositivo by conversion). The chooser shows the hint.
type StepUpHinter interface {
	StepUpHint(locale string) (Hint, bool)
}
