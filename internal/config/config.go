// Package config loads Ponte's configuration: defaults, then an optional YAML
// file, then PONTE_* environment variables, then validation that reports every
// problem at once, each naming both its YAML path and its environment variable.
package config

import (
	"net/netip"
	"net/url"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of a Ponte node. Obtain it from Load,
// which validates it; Default gives the values used for anything unset.
type Config struct {
	// Addr is the host:port the HTTP server listens on.
	Addr string `yaml:"addr"`
	// Issuer is the OpenID Provider's issuer URL, as relying parties see it.
	Issuer string `yaml:"issuer"`
	// DB is a SQLite file path, or a postgres:// (postgresql://) URL.
	DB string `yaml:"db"`
	// MasterKey is the base64 32-byte key everything at rest is sealed under.
	MasterKey string `yaml:"master_key"`
	// MasterKeyFile holds the master key in dev mode when MasterKey is empty;
	// it is generated on first start.
	MasterKeyFile string `yaml:"master_key_file"`
	// Dev enables development mode (generated master key file).
	Dev bool `yaml:"dev"`
	// Log configures the process logger.
	Log Log `yaml:"log"`
	// TrustedProxies are the IPs or CIDRs whose forwarding headers are
	// believed; none by default.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Tokens holds the lifetimes of issued codes and tokens.
	Tokens Tokens `yaml:"tokens"`
	// Session configures the end-user session at the provider.
	Session Session `yaml:"session"`
	// Login configures the login flow.
	Login Login `yaml:"login"`
	// Keys configures the signing keys.
	Keys Keys `yaml:"keys"`
	// Janitor configures the cleanup of expired records.
	Janitor Janitor `yaml:"janitor"`
	// CardListener is the optional TLS listener that asks browsers for a
	// client certificate (smart cards), for the methods that read one.
	CardListener CardListener `yaml:"card_listener"`
	// ClientCertProxies are the CIDRs or IPs of TLS-terminating proxies
	// trusted to forward a client certificate in ClientCertHeader (matched
	// against the TCP peer, never X-Forwarded-For).
	ClientCertProxies []string `yaml:"client_cert_proxies"`
	// ClientCertHeader is the header format those proxies use: rfc9440
	// (Client-Cert), nginx (X-SSL-Client-Cert) or envoy (XFCC); "" for none.
	ClientCertHeader string `yaml:"client_cert_header"`
	// Operators are bootstrap credentials of the operator APIs, "id=<hex
	// SHA-256 of the token>", acting with every operator role. Once an admin
	// exists, issue API tokens with operator roles instead (ponte staff token create).
	Operators []string `yaml:"operators"`
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// Redis, when its URL is set, shares the rate limits between every node.
	Redis Redis `yaml:"redis"`
	// AdminAddr is the admin listener's host:port (/metrics, /healthz, the
	// detailed /readyz), for operators and monitoring only; "" is off.
	AdminAddr string `yaml:"admin_addr"`
	// Tracing configures OpenTelemetry tracing; off by default.
	Tracing Tracing `yaml:"tracing"`
	// Admission bounds the token endpoint's work in flight.
	Admission Admission `yaml:"admission"`
	// Sections are the top-level keys that are not Ponte's own: each belongs
	// to a login method, which decodes it (Section, Decode).
	Sections map[string]yaml.Node `yaml:",inline"`

	// environ holds the PONTE_* variables, for the methods' sections.
	environ map[string]string
}

// Log configures the process logger.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is json or text.
	Format string `yaml:"format"`
}

// Tokens holds the lifetimes of what the provider issues.
type Tokens struct {
	// AuthorizeCodeTTL is the lifetime of an authorization code (at most 10m).
	AuthorizeCodeTTL Duration `yaml:"authorize_code_ttl"`
	// AccessTokenTTL is the lifetime of an access token.
	AccessTokenTTL Duration `yaml:"access_token_ttl"`
	// RefreshTokenTTL is the lifetime of a refresh token.
	RefreshTokenTTL Duration `yaml:"refresh_token_ttl"`
	// IDTokenTTL is the lifetime of an ID token.
	IDTokenTTL Duration `yaml:"id_token_ttl"`
}

// Session configures the end-user session at the provider.
type Session struct {
	// TTL is how long a session lasts.
	TTL Duration `yaml:"ttl"`
	// CookieName is the name of the session cookie.
	CookieName string `yaml:"cookie_name"`
	// CookieSecure forces the Secure attribute on or off; nil derives it from
	// the issuer (see Config.CookieSecure).
	CookieSecure *bool `yaml:"cookie_secure"`
}

// Login configures the login flow.
type Login struct {
	// ChallengeTTL is how long a pending login challenge stays valid.
	ChallengeTTL Duration `yaml:"challenge_ttl"`
	// MaxChallengesPerBrowser and MaxChallengesPerIP cap the login challenges
	// pending at once for one browser and for one client address (an IPv6
	// /64); beyond them /authorize answers 429 Too Many Requests.
	MaxChallengesPerBrowser int `yaml:"max_challenges_per_browser"`
	MaxChallengesPerIP      int `yaml:"max_challenges_per_ip"`
}

// Keys configures the signing keys.
type Keys struct {
	// Algorithm is the signing algorithm of new keys: ES256 or RS256.
	Algorithm string `yaml:"algorithm"`
	// PublishDelay is how long a new key is published in the JWKS before it
	// signs anything; 0 signs at once.
	PublishDelay Duration `yaml:"publish_delay"`
	// RefreshInterval is how often a node reloads keys from the database.
	RefreshInterval Duration `yaml:"refresh_interval"`
}

// CardListener is a second listener, with TLS, that requests a client
// certificate; off while Addr is empty.
type CardListener struct {
	Addr     string `yaml:"addr"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// MaxTLSVersion is "1.2" or "1.3" (the default, ""): some cards cannot
	// sign for TLS 1.3.
	MaxTLSVersion string `yaml:"max_tls_version"`
}

// Redis is the server that shares rate limits between the nodes; without a
// URL each node limits alone. While it is down or slow each node limits alone
// too (never less).
type Redis struct {
	// URL is redis://[user:password@]host:port[/db], or rediss:// for TLS.
	URL string `yaml:"url"`
	// Timeout bounds each call; beyond it the node decides alone.
	Timeout Duration `yaml:"timeout"`
}

// Tracing configures OpenTelemetry tracing of every request.
type Tracing struct {
	// OTLPEndpoint is the OTLP/HTTP traces URL (like
	// http://127.0.0.1:4318/v1/traces); "" switches tracing off.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// SampleRatio is the share of new traces recorded (0 to 1); a request
	// that comes with a sampled parent is recorded.
	SampleRatio float64 `yaml:"sample_ratio"`
}

// Admission bounds the token endpoint: TokenConcurrency requests in flight,
// TokenQueue more waiting at most TokenMaxWait; beyond, 503
// temporarily_unavailable with Retry-After. Zero picks 8 per core, 64 per
// core and 2s. The Node* settings bound every request of the node the same
// way (zero picks 64 per core, 256 per core and 1s): under a surge the
// requests beyond them get 503 at once instead of queuing for the database
// and the CPU until clients and proxies time out. Requests that start a new
// login (/authorize, /par, a method's pages opened without a login under way,
// provider.Route.Continues) are admitted only while fewer than
// NodeStartConcurrency are in flight (zero picks an eighth of the node's
// concurrency, 8 per core at its default), and wait at most
// NodeStartMaxWait (zero: they do not wait, 503 at once): the slots above
// are kept for the logins already under way, so those finish first.
type Admission struct {
	TokenConcurrency     int      `yaml:"token_concurrency"`
	TokenQueue           int      `yaml:"token_queue"`
	TokenMaxWait         Duration `yaml:"token_max_wait"`
	NodeConcurrency      int      `yaml:"node_concurrency"`
	NodeQueue            int      `yaml:"node_queue"`
	NodeMaxWait          Duration `yaml:"node_max_wait"`
	NodeStartConcurrency int      `yaml:"node_start_concurrency"`
	NodeStartMaxWait     Duration `yaml:"node_start_max_wait"`
}

// Janitor configures the cleanup of expired records.
type Janitor struct {
	// Interval is the time between two cleanup runs.
	Interval Duration `yaml:"interval"`
}

// Default returns the configuration used for every setting left unset.
// It is valid once a master key is given or Dev is set.
func Default() Config {
	return Config{
		Addr:          "127.0.0.1:8080",
		Issuer:        "http://127.0.0.1:8080",
		DB:            "ponte.db",
		MasterKeyFile: "ponte.master.key",
		Log:           Log{Level: "info", Format: "json"},
		Tokens: Tokens{
			AuthorizeCodeTTL: Duration(60 * time.Second),
			AccessTokenTTL:   Duration(15 * time.Minute),
			RefreshTokenTTL:  Duration(720 * time.Hour),
			IDTokenTTL:       Duration(time.Hour),
		},
		Session: Session{
			TTL:        Duration(8 * time.Hour),
			CookieName: "ponte_session",
		},
		Login: Login{ChallengeTTL: Duration(30 * time.Minute), MaxChallengesPerBrowser: 20, MaxChallengesPerIP: 500},
		Keys: Keys{
			Algorithm:       "ES256",
			PublishDelay:    Duration(5 * time.Minute),
			RefreshInterval: Duration(30 * time.Second),
		},
		Janitor:           Janitor{Interval: Duration(10 * time.Minute)},
		Operators:         []string{},
		ClientCertProxies: []string{},
		ShutdownTimeout:   Duration(15 * time.Second),
		Redis:             Redis{Timeout: Duration(100 * time.Millisecond)},
		Tracing:           Tracing{SampleRatio: 1},
	}
}

// DBIsPostgres reports whether DB selects PostgreSQL (a postgres:// or
// postgresql:// URL) rather than a SQLite file.
func (c Config) DBIsPostgres() bool {
	return isPostgresURL(c.DB)
}

// CookieSecure reports whether the session cookie carries the Secure
// attribute: Session.CookieSecure if set, otherwise whether the issuer is https.
func (c Config) CookieSecure() bool {
	if c.Session.CookieSecure != nil {
		return *c.Session.CookieSecure
	}
	u, err := url.Parse(c.Issuer)
	return err == nil && strings.EqualFold(u.Scheme, "https")
}

// TrustedProxyPrefixes returns TrustedProxies as prefixes, a single address
// becoming a /32 or /128. Entries that do not parse (Validate rejects them)
// are skipped.
func (c Config) TrustedProxyPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		if p, err := parseProxy(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func isPostgresURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}
