package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ponte-id/ponte/internal/seal"
)

// maxAuthorizeCodeTTL caps authorization codes, which must be short-lived
// (OpenID Connect Core 1.0 and RFC 6749 section 4.1.2 recommend 10 minutes at most).
const maxAuthorizeCodeTTL = 10 * time.Minute

// FieldError is one invalid setting, named by its YAML path (with an index
// for list items, e.g. "trusted_proxies[1]") and its environment variable.
type FieldError struct {
	// Field is the YAML path of the setting.
	Field string
	// Env is the environment variable that sets it.
	Env string
	// Err says what is wrong.
	Err error
}

// Error formats the problem as "field (ENV): reason".
func (e *FieldError) Error() string {
	return fmt.Sprintf("%s (%s): %v", e.Field, e.Env, e.Err)
}

// Unwrap returns the underlying reason.
func (e *FieldError) Unwrap() error { return e.Err }

// Validate checks every setting and reports all problems together, each a
// *FieldError, joined with errors.Join. Secrets are never echoed.
func (c Config) Validate() error {
	v := validator{env: map[string]string{}}
	for _, b := range bindings() {
		v.env[b.path] = b.env
	}
	v.check("addr", checkAddr(c.Addr))
	v.check("issuer", checkIssuer(c.Issuer))
	v.check("db", checkDB(c.DB))
	c.validateMasterKey(&v)
	v.check("log.level", oneOf(c.Log.Level, "debug", "info", "warn", "error"))
	v.check("log.format", oneOf(c.Log.Format, "json", "text"))
	for i, p := range c.TrustedProxies {
		if _, err := parseProxy(p); err != nil {
			v.check(fmt.Sprintf("trusted_proxies[%d]", i), err)
		}
	}
	v.check("tokens.authorize_code_ttl", positive(c.Tokens.AuthorizeCodeTTL))
	if c.Tokens.AuthorizeCodeTTL.D() > maxAuthorizeCodeTTL {
		v.check("tokens.authorize_code_ttl", fmt.Errorf("must be at most %v, got %v", maxAuthorizeCodeTTL, c.Tokens.AuthorizeCodeTTL))
	}
	v.check("tokens.access_token_ttl", positive(c.Tokens.AccessTokenTTL))
	v.check("tokens.refresh_token_ttl", positive(c.Tokens.RefreshTokenTTL))
	v.check("tokens.id_token_ttl", positive(c.Tokens.IDTokenTTL))
	v.check("session.ttl", positive(c.Session.TTL))
	v.check("session.cookie_name", checkCookieName(c.Session.CookieName, c.CookieSecure()))
	v.check("login.challenge_ttl", positive(c.Login.ChallengeTTL))
	if c.Login.MaxChallengesPerBrowser < 1 {
		v.check("login.max_challenges_per_browser", errors.New("must be at least 1"))
	}
	if c.Login.MaxChallengesPerIP < c.Login.MaxChallengesPerBrowser {
		v.check("login.max_challenges_per_ip", errors.New("must be at least login.max_challenges_per_browser"))
	}
	v.check("keys.algorithm", oneOf(c.Keys.Algorithm, "ES256", "RS256"))
	v.check("keys.refresh_interval", positive(c.Keys.RefreshInterval))
	v.check("keys.publish_delay", checkPublishDelay(c.Keys.PublishDelay, c.Keys.RefreshInterval))
	v.check("janitor.interval", positive(c.Janitor.Interval))
	v.check("shutdown_timeout", positive(c.ShutdownTimeout))
	if c.Redis.URL != "" {
		v.check("redis.url", checkRedisURL(c.Redis.URL))
	}
	v.check("redis.timeout", positive(c.Redis.Timeout))
	if c.AdminAddr != "" {
		v.check("admin_addr", checkAddr(c.AdminAddr))
		if c.AdminAddr == c.Addr && !strings.HasSuffix(c.Addr, ":0") {
			v.check("admin_addr", errors.New("must differ from addr: the admin listener is not for citizens"))
		}
	}
	if e := c.Tracing.OTLPEndpoint; e != "" {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.check("tracing.otlp_endpoint", errors.New("must be an http or https URL, like http://127.0.0.1:4318/v1/traces"))
		}
	}
	if r := c.Tracing.SampleRatio; r < 0 || r > 1 {
		v.check("tracing.sample_ratio", errors.New("must be between 0 and 1"))
	}
	if n := c.Admission.TokenConcurrency; n < 0 || n > 4096 {
		v.check("admission.token_concurrency", errors.New("must be between 0 (8 per core) and 4096"))
	}
	if c.Admission.TokenQueue < 0 {
		v.check("admission.token_queue", errors.New("must not be negative (0 is 64 per core)"))
	}
	if c.Admission.TokenMaxWait < 0 {
		v.check("admission.token_max_wait", errors.New("must not be negative (0 is 2s)"))
	}
	if n := c.Admission.NodeConcurrency; n < 0 || n > 65536 {
		v.check("admission.node_concurrency", errors.New("must be between 0 (64 per core) and 65536"))
	}
	if c.Admission.NodeQueue < 0 {
		v.check("admission.node_queue", errors.New("must not be negative (0 is 256 per core)"))
	}
	if c.Admission.NodeMaxWait < 0 {
		v.check("admission.node_max_wait", errors.New("must not be negative (0 is 1s)"))
	}
	if n := c.Admission.NodeStartConcurrency; n < 0 || n > 65536 {
		v.check("admission.node_start_concurrency", errors.New("must be between 0 (an eighth of node_concurrency) and 65536"))
	} else if m := c.Admission.NodeConcurrency; m > 0 && n > m {
		v.check("admission.node_start_concurrency", fmt.Errorf("must not exceed admission.node_concurrency (%d)", m))
	}
	if c.Admission.NodeStartMaxWait < 0 {
		v.check("admission.node_start_max_wait", errors.New("must not be negative (0: requests starting a login do not wait)"))
	}
	if l := c.CardListener; l.Addr != "" {
		v.check("card_listener.addr", checkAddr(l.Addr))
		if l.CertFile == "" {
			v.check("card_listener.cert_file", errors.New("is required with card_listener.addr"))
		}
		if l.KeyFile == "" {
			v.check("card_listener.key_file", errors.New("is required with card_listener.addr"))
		}
	}
	if m := c.CardListener.MaxTLSVersion; m != "" {
		v.check("card_listener.max_tls_version", oneOf(m, "1.2", "1.3"))
	}
	for i, p := range c.ClientCertProxies {
		if _, err := parseProxy(p); err != nil {
			v.check(fmt.Sprintf("client_cert_proxies[%d]", i), err)
		}
	}
	if h := c.ClientCertHeader; h != "" || len(c.ClientCertProxies) > 0 {
		v.check("client_cert_header", oneOf(h, "rfc9440", "nginx", "envoy"))
		if len(c.ClientCertProxies) == 0 {
			v.check("client_cert_proxies", errors.New("must name the proxies that set client_cert_header"))
		}
	}
	for _, e := range c.Operators {
		if !operatorEntry.MatchString(e) {
			v.check("operators", errors.New("each entry is id=<64 hex digits of SHA-256(token)>"))
			break
		}
	}
	return errors.Join(v.errs...)
}

// validator collects field errors.
type validator struct {
	env  map[string]string // YAML path → environment variable
	errs []error
}

// check records err, if any, against the setting at path.
func (v *validator) check(path string, err error) {
	if err == nil {
		return
	}
	base, _, _ := strings.Cut(path, "[")
	v.errs = append(v.errs, &FieldError{Field: path, Env: v.env[base], Err: err})
}

func (c Config) validateMasterKey(v *validator) {
	switch {
	case c.MasterKey != "":
		if _, err := seal.ParseMasterKey(c.MasterKey); err != nil {
			v.check("master_key", err)
		}
	case !c.Dev:
		v.check("master_key", errors.New("required outside dev mode: 32 random bytes in base64, e.g. from `openssl rand -base64 32`"))
	case strings.TrimSpace(c.MasterKeyFile) == "":
		v.check("master_key_file", errors.New("required in dev mode when master_key is empty"))
	}
}

func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return fmt.Errorf("must be host:port with a numeric port, e.g. 127.0.0.1:8080 or :8080, got %q", addr)
	}
	return nil
}

func checkIssuer(issuer string) error {
	if issuer == "" {
		return errors.New("is required when addr listens on every interface: the public URL relying parties and browsers use")
	}
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(issuer, "#") {
		return fmt.Errorf("must be an absolute http(s) URL without query or fragment, got %q", issuer)
	}
	if u.User != nil {
		return errors.New("must not contain user info")
	}
	if strings.HasSuffix(u.Path, "/") {
		return fmt.Errorf("must not end with a slash, got %q", issuer)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("must use https unless the host is loopback (127.0.0.0/8, ::1, localhost), got %q", issuer)
	}
	return nil
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}

// checkDB accepts a SQLite path (or file: URI) or a PostgreSQL URL. It never
// echoes the value, which may carry a password.
func checkDB(db string) error {
	switch {
	case strings.TrimSpace(db) == "":
		return errors.New("must be a SQLite file path or a postgres:// URL")
	case isPostgresURL(db):
		if u, err := url.Parse(db); err != nil || u.Opaque != "" {
			return errors.New("is not a valid PostgreSQL URL (postgres://user:password@host:5432/dbname)")
		}
	case strings.Contains(db, "://") && !strings.HasPrefix(strings.ToLower(db), "file:"):
		scheme, _, _ := strings.Cut(db, "://")
		return fmt.Errorf("unsupported URL scheme %q: use a file path for SQLite or a postgres:// URL for PostgreSQL", scheme)
	}
	return nil
}

func oneOf(got string, allowed ...string) error {
	for _, a := range allowed {
		if got == a {
			return nil
		}
	}
	return fmt.Errorf("must be one of %s, got %q", strings.Join(allowed, ", "), got)
}

func positive(d Duration) error {
	if d <= 0 {
		return fmt.Errorf("must be a positive duration such as 15m, got %v", d)
	}
	return nil
}

// checkPublishDelay wants every node to have loaded a new key (within one
// refresh interval) before the key starts signing; 0 signs at once, for a
// single node.
func checkPublishDelay(delay, refresh Duration) error {
	switch {
	case delay < 0:
		return fmt.Errorf("must not be negative, got %v", delay)
	case delay > 0 && refresh > 0 && delay < refresh:
		return fmt.Errorf("must be at least keys.refresh_interval (%v), so every node loads a new key before it signs, or 0 to sign at once; got %v", refresh, delay)
	}
	return nil
}

// checkCookieName wants an RFC 6265 cookie name; the __Secure- and __Host-
// prefixes also need the Secure attribute.
func checkCookieName(name string, secure bool) error {
	if name == "" {
		return errors.New("must not be empty")
	}
	for _, r := range name {
		if !isTokenChar(r) {
			return fmt.Errorf("must be a cookie name (letters, digits and !#$%%&'*+-.^_`|~), got %q", name)
		}
	}
	if !secure && (strings.HasPrefix(name, "__Secure-") || strings.HasPrefix(name, "__Host-")) {
		return fmt.Errorf("%q needs a Secure cookie: use an https issuer or set session.cookie_secure", name)
	}
	return nil
}

func isTokenChar(r rune) bool {
	return r < 0x7f && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		strings.ContainsRune("!#$%&'*+-.^_`|~", r))
}

// parseProxy reads an IP address or a CIDR as a prefix.
func parseProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a valid CIDR", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// operatorEntry is "id=<hex SHA-256>".
var operatorEntry = regexp.MustCompile(`^[A-Za-z0-9._-]+=[0-9a-f]{64}$`)

// checkRedisURL accepts what the Redis client accepts: redis:// or rediss://
// with a host, and an optional database number. The URL may hold a password:
// it is never echoed.
func checkRedisURL(s string) error {
	if _, err := redis.ParseURL(s); err != nil {
		return errors.New("must be redis://[user:password@]host:port[/db] or rediss://…")
	}
	return nil
}
