package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateFieldErrors(t *testing.T) {
	no := false
	tests := []struct {
		name  string
		edit  func(c *Config)
		field string // expected "field (ENV)" prefix
		msg   string // expected substring of the reason
	}{
		{"addr no port", func(c *Config) { c.Addr = "localhost" }, "addr (PONTE_ADDR)", "host:port"},
		{"card listener without certificate", func(c *Config) { c.CardListener.Addr, c.CardListener.KeyFile = "127.0.0.1:8443", "k.pem" }, "card_listener.cert_file (PONTE_CARD_CERT_FILE)", "required"},
		{"card listener without key", func(c *Config) { c.CardListener.Addr, c.CardListener.CertFile = "127.0.0.1:8443", "c.pem" }, "card_listener.key_file (PONTE_CARD_KEY_FILE)", "required"},
		{"card listener bad TLS version", func(c *Config) { c.CardListener.MaxTLSVersion = "1.1" }, "card_listener.max_tls_version (PONTE_CARD_MAX_TLS_VERSION)", "one of 1.2, 1.3"},
		{"certificate header without proxies", func(c *Config) { c.ClientCertHeader = "nginx" }, "client_cert_proxies (PONTE_CLIENT_CERT_PROXIES)", "must name the proxies"},
		{"certificate proxies without header", func(c *Config) { c.ClientCertProxies = []string{"10.0.0.1"} }, "client_cert_header (PONTE_CLIENT_CERT_HEADER)", "one of rfc9440, nginx, envoy"},
		{"certificate proxy not an address", func(c *Config) { c.ClientCertProxies, c.ClientCertHeader = []string{"proxy"}, "nginx" }, "client_cert_proxies[0] (PONTE_CLIENT_CERT_PROXIES)", "not an IP"},
		{"addr bad port", func(c *Config) { c.Addr = ":http" }, "addr (PONTE_ADDR)", "numeric port"},
		{"admin addr no port", func(c *Config) { c.AdminAddr = "localhost" }, "admin_addr (PONTE_ADMIN_ADDR)", "host:port"},
		{"admin addr is the public one", func(c *Config) { c.AdminAddr = c.Addr }, "admin_addr (PONTE_ADMIN_ADDR)", "must differ from addr"},
		{"otlp endpoint not a URL", func(c *Config) { c.Tracing.OTLPEndpoint = "127.0.0.1:4318" }, "tracing.otlp_endpoint (PONTE_OTLP_ENDPOINT)", "http or https URL"},
		{"sample ratio above 1", func(c *Config) { c.Tracing.SampleRatio = 1.5 }, "tracing.sample_ratio (PONTE_TRACE_SAMPLE_RATIO)", "between 0 and 1"},
		{"sample ratio negative", func(c *Config) { c.Tracing.SampleRatio = -0.1 }, "tracing.sample_ratio (PONTE_TRACE_SAMPLE_RATIO)", "between 0 and 1"},
		{"token concurrency negative", func(c *Config) { c.Admission.TokenConcurrency = -1 }, "admission.token_concurrency (PONTE_TOKEN_CONCURRENCY)", "between 0"},
		{"token concurrency too big", func(c *Config) { c.Admission.TokenConcurrency = 4097 }, "admission.token_concurrency (PONTE_TOKEN_CONCURRENCY)", "between 0"},
		{"token queue negative", func(c *Config) { c.Admission.TokenQueue = -1 }, "admission.token_queue (PONTE_TOKEN_QUEUE)", "not be negative"},
		{"token wait negative", func(c *Config) { c.Admission.TokenMaxWait = Duration(-time.Second) }, "admission.token_max_wait (PONTE_TOKEN_MAX_WAIT)", "not be negative"},
		{"node concurrency negative", func(c *Config) { c.Admission.NodeConcurrency = -1 }, "admission.node_concurrency (PONTE_NODE_CONCURRENCY)", "between 0"},
		{"node concurrency too big", func(c *Config) { c.Admission.NodeConcurrency = 65537 }, "admission.node_concurrency (PONTE_NODE_CONCURRENCY)", "between 0"},
		{"node queue negative", func(c *Config) { c.Admission.NodeQueue = -1 }, "admission.node_queue (PONTE_NODE_QUEUE)", "not be negative"},
		{"node wait negative", func(c *Config) { c.Admission.NodeMaxWait = Duration(-time.Second) }, "admission.node_max_wait (PONTE_NODE_MAX_WAIT)", "not be negative"},
		{"node start concurrency negative", func(c *Config) { c.Admission.NodeStartConcurrency = -1 }, "admission.node_start_concurrency (PONTE_NODE_START_CONCURRENCY)", "between 0"},
		{"node start concurrency above the node's", func(c *Config) { c.Admission.NodeConcurrency, c.Admission.NodeStartConcurrency = 8, 9 }, "admission.node_start_concurrency (PONTE_NODE_START_CONCURRENCY)", "not exceed"},
		{"node start wait negative", func(c *Config) { c.Admission.NodeStartMaxWait = Duration(-time.Second) }, "admission.node_start_max_wait (PONTE_NODE_START_MAX_WAIT)", "not be negative"},
		{"addr port too big", func(c *Config) { c.Addr = ":70000" }, "addr (PONTE_ADDR)", "numeric port"},
		{"issuer empty", func(c *Config) { c.Issuer = "" }, "issuer (PONTE_ISSUER)", "is required"},
		{"db empty", func(c *Config) { c.DB = "" }, "db (PONTE_DB)", "SQLite file path"},
		{"db unknown scheme", func(c *Config) { c.DB = "mysql://u:pw@h/db" }, "db (PONTE_DB)", `unsupported URL scheme "mysql"`},
		{"db bad postgres url", func(c *Config) { c.DB = "postgres://u:pw@h:port/db" }, "db (PONTE_DB)", "not a valid PostgreSQL URL"},
		{"master key missing", func(c *Config) { c.Dev = false }, "master_key (PONTE_MASTER_KEY)", "required outside dev mode"},
		{"master key bad", func(c *Config) { c.MasterKey = "c2hvcnQ=" }, "master_key (PONTE_MASTER_KEY)", "want 32"},
		{"master key file empty in dev", func(c *Config) { c.MasterKeyFile = "" }, "master_key_file (PONTE_MASTER_KEY_FILE)", "required in dev mode"},
		{"log level", func(c *Config) { c.Log.Level = "INFO" }, "log.level (PONTE_LOG_LEVEL)", "debug, info, warn, error"},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, "log.format (PONTE_LOG_FORMAT)", "json, text"},
		{"trusted proxy", func(c *Config) { c.TrustedProxies = []string{"10.0.0.1", "proxy.local"} }, "trusted_proxies[1] (PONTE_TRUSTED_PROXIES)", "not an IP address or CIDR"},
		{"trusted proxy cidr", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/33"} }, "trusted_proxies[0] (PONTE_TRUSTED_PROXIES)", "not a valid CIDR"},
		{"trusted proxy zone", func(c *Config) { c.TrustedProxies = []string{"fe80::1%eth0"} }, "trusted_proxies[0] (PONTE_TRUSTED_PROXIES)", "not an IP"},
		{"code ttl zero", func(c *Config) { c.Tokens.AuthorizeCodeTTL = 0 }, "tokens.authorize_code_ttl (PONTE_AUTHORIZE_CODE_TTL)", "positive"},
		{"code ttl too long", func(c *Config) { c.Tokens.AuthorizeCodeTTL = Duration(11 * time.Minute) }, "tokens.authorize_code_ttl (PONTE_AUTHORIZE_CODE_TTL)", "at most 10m0s"},
		{"access ttl", func(c *Config) { c.Tokens.AccessTokenTTL = -1 }, "tokens.access_token_ttl (PONTE_ACCESS_TOKEN_TTL)", "positive"},
		{"refresh ttl", func(c *Config) { c.Tokens.RefreshTokenTTL = 0 }, "tokens.refresh_token_ttl (PONTE_REFRESH_TOKEN_TTL)", "positive"},
		{"id ttl", func(c *Config) { c.Tokens.IDTokenTTL = 0 }, "tokens.id_token_ttl (PONTE_ID_TOKEN_TTL)", "positive"},
		{"session ttl", func(c *Config) { c.Session.TTL = 0 }, "session.ttl (PONTE_SESSION_TTL)", "positive"},
		{"cookie name empty", func(c *Config) { c.Session.CookieName = "" }, "session.cookie_name (PONTE_SESSION_COOKIE)", "empty"},
		{"cookie name chars", func(c *Config) { c.Session.CookieName = "ponte session" }, "session.cookie_name (PONTE_SESSION_COOKIE)", "cookie name"},
		{"cookie prefix needs secure", func(c *Config) { c.Session.CookieName = "__Host-ponte" }, "session.cookie_name (PONTE_SESSION_COOKIE)", "Secure"},
		{"cookie prefix forced insecure", func(c *Config) {
			c.Issuer, c.Session.CookieName, c.Session.CookieSecure = "https://id.example.it", "__Secure-ponte", &no
		}, "session.cookie_name (PONTE_SESSION_COOKIE)", "Secure"},
		{"challenge ttl", func(c *Config) { c.Login.ChallengeTTL = 0 }, "login.challenge_ttl (PONTE_CHALLENGE_TTL)", "positive"},
		{"challenges per browser", func(c *Config) { c.Login.MaxChallengesPerBrowser = 0 }, "login.max_challenges_per_browser (PONTE_MAX_CHALLENGES_PER_BROWSER)", "at least 1"},
		{"challenges per ip below per browser", func(c *Config) { c.Login.MaxChallengesPerIP = 19 }, "login.max_challenges_per_ip (PONTE_MAX_CHALLENGES_PER_IP)", "at least login.max_challenges_per_browser"},
		{"algorithm", func(c *Config) { c.Keys.Algorithm = "HS256" }, "keys.algorithm (PONTE_KEYS_ALGORITHM)", "ES256, RS256"},
		{"publish delay negative", func(c *Config) { c.Keys.PublishDelay = Duration(-time.Second) }, "keys.publish_delay (PONTE_KEYS_PUBLISH_DELAY)", "negative"},
		{"publish delay below refresh", func(c *Config) { c.Keys.PublishDelay = Duration(10 * time.Second) }, "keys.publish_delay (PONTE_KEYS_PUBLISH_DELAY)", "at least keys.refresh_interval"},
		{"refresh interval", func(c *Config) { c.Keys.RefreshInterval = 0 }, "keys.refresh_interval (PONTE_KEYS_REFRESH_INTERVAL)", "positive"},
		{"janitor interval", func(c *Config) { c.Janitor.Interval = 0 }, "janitor.interval (PONTE_JANITOR_INTERVAL)", "positive"},
		{"shutdown timeout", func(c *Config) { c.ShutdownTimeout = 0 }, "shutdown_timeout (PONTE_SHUTDOWN_TIMEOUT)", "positive"},
		{"redis url scheme", func(c *Config) { c.Redis.URL = "http://cache:6379" }, "redis.url (PONTE_REDIS_URL)", "redis://"},
		{"redis url database", func(c *Config) { c.Redis.URL = "redis://cache:6379/x" }, "redis.url (PONTE_REDIS_URL)", "redis://"},
		{"redis timeout", func(c *Config) { c.Redis.Timeout = 0 }, "redis.timeout (PONTE_REDIS_TIMEOUT)", "positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := devDefault()
			tt.edit(&c)
			errs := fieldErrors(t, c.Validate())
			if len(errs) != 1 {
				t.Fatalf("want exactly one error, got %d: %v", len(errs), errs)
			}
			got := errs[0].Error()
			if !strings.HasPrefix(got, tt.field+": ") || !strings.Contains(got, tt.msg) {
				t.Fatalf("error %q, want prefix %q and %q", got, tt.field+": ", tt.msg)
			}
		})
	}
}

// fieldErrors splits a Validate error into its *FieldError parts.
func fieldErrors(t *testing.T, err error) []*FieldError {
	t.Helper()
	if err == nil {
		return nil
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Validate error %T is not joined", err)
	}
	var out []*FieldError
	for _, e := range joined.Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("error %v is not a *FieldError", e)
		}
		out = append(out, fe)
	}
	return out
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default() // no master key, not dev
	c.Addr = "nope"
	c.Issuer = "http://id.example.it"
	c.Log.Level = "verbose"
	c.Tokens.AccessTokenTTL = 0
	c.Keys.Algorithm = "none"
	c.TrustedProxies = []string{"x", "y"}
	var got []string
	for _, fe := range fieldErrors(t, c.Validate()) {
		got = append(got, fe.Field)
	}
	want := []string{"addr", "issuer", "master_key", "log.level", "trusted_proxies[0]", "trusted_proxies[1]",
		"tokens.access_token_ttl", "keys.algorithm"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("fields = %v, want %v", got, want)
	}
}

func TestValidateIssuer(t *testing.T) {
	tests := []struct {
		issuer string
		want   string // "" means valid
	}{
		{"http://127.0.0.1:8080", ""},
		{"http://127.1.2.3", ""},
		{"http://localhost:8080", ""},
		{"http://LOCALHOST", ""},
		{"http://[::1]:8080", ""},
		{"https://id.example.it", ""},
		{"https://id.example.it/ponte", ""},
		{"https://id.example.it:8443/a/b", ""},
		{"http://id.example.it", "must use https"},
		{"http://10.0.0.1:8080", "must use https"},
		{"http://localhost.example.it", "must use https"},
		{"http://0.0.0.0:8080", "must use https"},
		{"https://id.example.it/", "trailing slash"},
		{"https://id.example.it/ponte/", "trailing slash"},
		{"https://id.example.it?x=1", "without query or fragment"},
		{"https://id.example.it?", "without query or fragment"},
		{"https://id.example.it#frag", "without query or fragment"},
		{"https://id.example.it#", "without query or fragment"},
		{"ftp://id.example.it", "absolute http(s) URL"},
		{"id.example.it", "absolute http(s) URL"},
		{"/ponte", "absolute http(s) URL"},
		{"https://", "absolute http(s) URL"},
		{"https:id.example.it", "absolute http(s) URL"},
		{"https://user:pw@id.example.it", "user info"},
		{"https://id.example.it/%zz", "absolute http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.issuer, func(t *testing.T) {
			c := devDefault()
			c.Issuer = tt.issuer
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			want := tt.want
			if want == "trailing slash" {
				want = "must not end with a slash"
			}
			if err == nil || !strings.Contains(err.Error(), "issuer (PONTE_ISSUER): ") || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want issuer error containing %q", err, want)
			}
		})
	}
}

func TestValidateDB(t *testing.T) {
	for _, db := range []string{
		"ponte.db", "/var/lib/ponte/ponte.db", "file:ponte.db?_pragma=foreign_keys(1)", "file:///var/lib/ponte.db",
		"postgres://ponte:secret@db:5432/ponte?sslmode=require", "postgresql:///ponte?host=/run/postgresql",
	} {
		c := devDefault()
		c.DB = db
		if err := c.Validate(); err != nil {
			t.Errorf("db %q: %v", db, err)
		}
	}
}

func TestValidateNeverEchoesSecrets(t *testing.T) {
	c := devDefault()
	c.DB = "postgres://ponte:s3cr3t-pw@db:bad/ponte"
	c.MasterKey = "s3cr3t-key-material"
	err := c.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error leaks a secret: %v", err)
	}
}

func TestValidatePublishDelayZero(t *testing.T) {
	c := devDefault()
	c.Keys.PublishDelay = 0
	if err := c.Validate(); err != nil {
		t.Fatalf("publish_delay 0: %v", err)
	}
}
