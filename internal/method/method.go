// Package method is how cmd/ponte opens the login methods: what every method
// is given (Deps), and the one value each method's package exports for cmd to
// list (Plug). A method owns its configuration section, its validation and
// its wiring; cmd names it once, in its list of plugs.
package method

import (
	"log/slog"
	"time"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/config"
	"github.com/ponte-id/ponte/internal/ratelimit"
	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/storage"
)

// Deps are what the core gives every login method when it opens.
type Deps struct {
	// Store is the node's storage; a method uses the aggregates it needs.
	Store storage.Backend
	// Box seals the method's secrets at rest under the master key.
	Box *seal.Box
	// Revoker ends a citizen's sessions and tokens.
	Revoker idp.Revoker
	// Citizens tells whether the core already knows a citizen.
	Citizens idp.Citizens
	// Limiter counts the events a method limits (per client address, ...),
	// shared by every node when Redis is configured.
	Limiter ratelimit.Limiter
	// Issuer is the provider's public URL: links in messages start with it.
	Issuer string
	// Dev is development mode (local stand-ins for outside services).
	Dev    bool
	Logger *slog.Logger
	Now    func() time.Time
}

// Plug is a login method as cmd/ponte lists it.
type Plug struct {
	// Section is the method's top-level configuration key, e.g. "pin".
	Section string
	// Open decodes and validates the method's section (reporting every bad
	// setting with its variable) and returns the method, doing no network I/O.
	Open func(sec config.Section, d Deps) (idp.Authenticator, error)
}
