package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// binding ties one setting to its YAML path and its environment variable.
type binding struct {
	path string // YAML path, e.g. "tokens.access_token_ttl"
	env  string // environment variable, e.g. "PONTE_ACCESS_TOKEN_TTL"
	set  func(c *Config, v string) error
}

// bindings lists every setting; tests check it covers every Config field.
func bindings() []binding {
	return []binding{
		{"addr", "PONTE_ADDR", setString(func(c *Config) *string { return &c.Addr })},
		{"issuer", "PONTE_ISSUER", setString(func(c *Config) *string { return &c.Issuer })},
		{"db", "PONTE_DB", setString(func(c *Config) *string { return &c.DB })},
		{"master_key", "PONTE_MASTER_KEY", setString(func(c *Config) *string { return &c.MasterKey })},
		{"master_key_file", "PONTE_MASTER_KEY_FILE", setString(func(c *Config) *string { return &c.MasterKeyFile })},
		{"dev", "PONTE_DEV", setBool(func(c *Config) *bool { return &c.Dev })},
		{"log.level", "PONTE_LOG_LEVEL", setString(func(c *Config) *string { return &c.Log.Level })},
		{"log.format", "PONTE_LOG_FORMAT", setString(func(c *Config) *string { return &c.Log.Format })},
		{"trusted_proxies", "PONTE_TRUSTED_PROXIES", setList(func(c *Config) *[]string { return &c.TrustedProxies })},
		{"tokens.authorize_code_ttl", "PONTE_AUTHORIZE_CODE_TTL", setDuration(func(c *Config) *Duration { return &c.Tokens.AuthorizeCodeTTL })},
		{"tokens.access_token_ttl", "PONTE_ACCESS_TOKEN_TTL", setDuration(func(c *Config) *Duration { return &c.Tokens.AccessTokenTTL })},
		{"tokens.refresh_token_ttl", "PONTE_REFRESH_TOKEN_TTL", setDuration(func(c *Config) *Duration { return &c.Tokens.RefreshTokenTTL })},
		{"tokens.id_token_ttl", "PONTE_ID_TOKEN_TTL", setDuration(func(c *Config) *Duration { return &c.Tokens.IDTokenTTL })},
		{"session.ttl", "PONTE_SESSION_TTL", setDuration(func(c *Config) *Duration { return &c.Session.TTL })},
		{"session.cookie_name", "PONTE_SESSION_COOKIE", setString(func(c *Config) *string { return &c.Session.CookieName })},
		{"session.cookie_secure", "PONTE_SESSION_COOKIE_SECURE", setOptBool(func(c *Config) **bool { return &c.Session.CookieSecure })},
		{"login.challenge_ttl", "PONTE_CHALLENGE_TTL", setDuration(func(c *Config) *Duration { return &c.Login.ChallengeTTL })},
		{"login.max_challenges_per_browser", "PONTE_MAX_CHALLENGES_PER_BROWSER", setInt(func(c *Config) *int { return &c.Login.MaxChallengesPerBrowser })},
		{"login.max_challenges_per_ip", "PONTE_MAX_CHALLENGES_PER_IP", setInt(func(c *Config) *int { return &c.Login.MaxChallengesPerIP })},
		{"keys.algorithm", "PONTE_KEYS_ALGORITHM", setString(func(c *Config) *string { return &c.Keys.Algorithm })},
		{"keys.publish_delay", "PONTE_KEYS_PUBLISH_DELAY", setDuration(func(c *Config) *Duration { return &c.Keys.PublishDelay })},
		{"keys.refresh_interval", "PONTE_KEYS_REFRESH_INTERVAL", setDuration(func(c *Config) *Duration { return &c.Keys.RefreshInterval })},
		{"janitor.interval", "PONTE_JANITOR_INTERVAL", setDuration(func(c *Config) *Duration { return &c.Janitor.Interval })},
		{"card_listener.addr", "PONTE_CARD_ADDR", setString(func(c *Config) *string { return &c.CardListener.Addr })},
		{"card_listener.cert_file", "PONTE_CARD_CERT_FILE", setString(func(c *Config) *string { return &c.CardListener.CertFile })},
		{"card_listener.key_file", "PONTE_CARD_KEY_FILE", setString(func(c *Config) *string { return &c.CardListener.KeyFile })},
		{"card_listener.max_tls_version", "PONTE_CARD_MAX_TLS_VERSION", setString(func(c *Config) *string { return &c.CardListener.MaxTLSVersion })},
		{"client_cert_proxies", "PONTE_CLIENT_CERT_PROXIES", setList(func(c *Config) *[]string { return &c.ClientCertProxies })},
		{"client_cert_header", "PONTE_CLIENT_CERT_HEADER", setString(func(c *Config) *string { return &c.ClientCertHeader })},
		{"operators", "PONTE_OPERATORS", setList(func(c *Config) *[]string { return &c.Operators })},
		{"shutdown_timeout", "PONTE_SHUTDOWN_TIMEOUT", setDuration(func(c *Config) *Duration { return &c.ShutdownTimeout })},
		{"redis.url", "PONTE_REDIS_URL", setString(func(c *Config) *string { return &c.Redis.URL })},
		{"redis.timeout", "PONTE_REDIS_TIMEOUT", setDuration(func(c *Config) *Duration { return &c.Redis.Timeout })},
		{"admin_addr", "PONTE_ADMIN_ADDR", setString(func(c *Config) *string { return &c.AdminAddr })},
		{"tracing.otlp_endpoint", "PONTE_OTLP_ENDPOINT", setString(func(c *Config) *string { return &c.Tracing.OTLPEndpoint })},
		{"tracing.sample_ratio", "PONTE_TRACE_SAMPLE_RATIO", setFloat(func(c *Config) *float64 { return &c.Tracing.SampleRatio })},
		{"admission.token_concurrency", "PONTE_TOKEN_CONCURRENCY", setInt(func(c *Config) *int { return &c.Admission.TokenConcurrency })},
		{"admission.token_queue", "PONTE_TOKEN_QUEUE", setInt(func(c *Config) *int { return &c.Admission.TokenQueue })},
		{"admission.token_max_wait", "PONTE_TOKEN_MAX_WAIT", setDuration(func(c *Config) *Duration { return &c.Admission.TokenMaxWait })},
		{"admission.node_concurrency", "PONTE_NODE_CONCURRENCY", setInt(func(c *Config) *int { return &c.Admission.NodeConcurrency })},
		{"admission.node_queue", "PONTE_NODE_QUEUE", setInt(func(c *Config) *int { return &c.Admission.NodeQueue })},
		{"admission.node_max_wait", "PONTE_NODE_MAX_WAIT", setDuration(func(c *Config) *Duration { return &c.Admission.NodeMaxWait })},
		{"admission.node_start_concurrency", "PONTE_NODE_START_CONCURRENCY", setInt(func(c *Config) *int { return &c.Admission.NodeStartConcurrency })},
		{"admission.node_start_max_wait", "PONTE_NODE_START_MAX_WAIT", setDuration(func(c *Config) *Duration { return &c.Admission.NodeStartMaxWait })},
	}
}

// applyEnv overrides c with the PONTE_* variables found in environ
// ("KEY=value" entries; the first entry for a key wins, as with os.Getenv).
// An empty value counts as unset. Every malformed variable is reported.
func applyEnv(c *Config, environ []string) error {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if _, seen := vars[k]; ok && !seen {
			vars[k] = v
		}
	}
	c.environ = vars
	var errs []error
	for _, b := range bindings() {
		v := vars[b.env]
		if v == "" {
			continue
		}
		if err := b.set(c, v); err != nil {
			errs = append(errs, fmt.Errorf("environment variable %s (%s): %w", b.env, b.path, err))
		}
	}
	return errors.Join(errs...)
}

func setString(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		*field(c) = v
		return nil
	}
}

func setBool(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := parseBool(v)
		if err != nil {
			return err
		}
		*field(c) = b
		return nil
	}
}

func setOptBool(field func(*Config) **bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := parseBool(v)
		if err != nil {
			return err
		}
		*field(c) = &b
		return nil
	}
}

func setInt(field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("not a whole number: %q", v)
		}
		*field(c) = n
		return nil
	}
}

func setDuration(field func(*Config) *Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		return field(c).UnmarshalText([]byte(v))
	}
}

// setList splits a comma-separated value, dropping blanks around and between
// items.
func setList(field func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		var items []string
		for item := range strings.SplitSeq(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		*field(c) = items
		return nil
	}
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("invalid boolean %q: use true or false", v)
	}
	return b, nil
}

func setFloat(field func(*Config) *float64) func(*Config, string) error {
	return func(c *Config, v string) error {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", v)
		}
		*field(c) = f
		return nil
	}
}
