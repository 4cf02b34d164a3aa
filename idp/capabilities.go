package idp

import (
	"context"
	"html/template"
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

// OffHostSteps is implemented by a method with pages that a browser reaches
// during a login on another host than the issuer's (the CNS card listener),
// where the browser's binding cookie is not sent. Under load the node's gate
// ranks requests to them as steps of a login under way, not as new work;
// nothing else changes for them.
type OffHostSteps interface {
	// OffHostPaths are paths below the method's prefix (like "/card").
	OffHostPaths() []string
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

// MetricKind is the kind of a Sample, as Prometheus knows them.
type MetricKind int

// The kinds of metric a method reports.
const (
	// Counter only goes up (a total since the process started).
	Counter MetricKind = iota
	// Gauge is a value now (a queue's depth).
	Gauge
	// Histogram is a distribution: Buckets, Count and Sum.
	Histogram
)

// Label is one label of a Sample. Its values must come from a small, fixed
// set (reasons, results): never a codice fiscale, an address or a URL a
// stranger chooses.
type Label struct{ Name, Value string }

// Bucket is one cumulative bucket of a Histogram: how many observations were
// at most UpperBound.
type Bucket struct {
	UpperBound float64
	Count      uint64
}

// Sample is one value of a metric a method reports. The core adds the label
// method; Name must start with "ponte_" and is one family whatever its labels.
type Sample struct {
	Name, Help string
	Kind       MetricKind
	Labels     []Label
	// Value of a Counter or a Gauge.
	Value float64
	// Buckets, Count and Sum of a Histogram.
	Buckets []Bucket
	Count   uint64
	Sum     float64
}

// MetricLogins is the family of login attempts by result. The core counts
// result "success" (a login that started an SSO session); a method reports
// its refusals under this name with a label result (like "bad_credentials").
const MetricLogins = "ponte_logins_total"

// Metered is implemented by a method that reports metrics: its refusals by
// reason, its queues. The core calls CollectMetrics at every scrape of
// /metrics; it must be quick (ctx bounds any storage read).
type Metered interface {
	CollectMetrics(ctx context.Context, emit func(Sample))
}

// Health is a method's view of what it depends on outside Ponte.
type Health struct {
	// Degraded is true while something the method depends on fails (an OCSP
	// responder down, a stale CRL): the method still serves what it can.
	Degraded bool
	// Problems are short sentences for operators, naming what fails.
	Problems []string
}

// HealthReporter is implemented by a method that depends on outside services.
// /readyz shows each method's Health in its detail; a degraded method never
// makes the node unready (other methods still log citizens in).
type HealthReporter interface {
	Health(ctx context.Context) Health
}

// ConsolePages is implemented by a method with pages for INPS staff in the
// back office. The console mounts the section's handler under
// /console/<method>/ (prefix stripped) for staff holding one of its roles,
// after its own login, role and CSRF checks; the request context carries the
// staff member as the operator (OperatorFrom is their codice fiscale,
// OperatorHasRole their roles) and the console's frame (ConsoleFrameFrom).
type ConsolePages interface {
	ConsoleSection() ConsoleSection
}

// ConsoleSection is a method's part of the console.
type ConsoleSection struct {
	Handler http.Handler
	// Title is the menu entry, by locale ("it", "en").
	Title map[string]string
	// Roles may open the section; each page checks its own procedure's role.
	Roles []string
}

// ConsoleFrame is what the console lends a method's pages.
type ConsoleFrame struct {
	// Lang is the staff member's language ("it" or "en").
	Lang string
	// CSRF is the token every POST form must carry in the field "csrf"; the
	// console refuses a POST without it before the method's handler runs.
	CSRF string
	// Render writes body inside the console's layout, no-store.
	Render func(w http.ResponseWriter, r *http.Request, status int, title string, body template.HTML)
}

type consoleFrameKey struct{}

// WithConsoleFrame returns ctx carrying f (the console sets it).
func WithConsoleFrame(ctx context.Context, f ConsoleFrame) context.Context {
	return context.WithValue(ctx, consoleFrameKey{}, f)
}

// ConsoleFrameFrom returns the console's frame of ctx.
func ConsoleFrameFrom(ctx context.Context) (ConsoleFrame, bool) {
	f, ok := ctx.Value(consoleFrameKey{}).(ConsoleFrame)
	return f, ok
}
