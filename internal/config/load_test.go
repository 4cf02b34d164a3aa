package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ponte.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoad(t *testing.T) {
	yes := true
	tests := []struct {
		name    string
		file    string // YAML content; "" means no file
		environ []string
		want    func(c *Config) // edits to devDefault() expected
	}{
		{
			name:    "no file, env only",
			environ: []string{"PONTE_DEV=true"},
			want:    func(c *Config) {},
		},
		{
			name: "file overrides defaults",
			file: "dev: true\nissuer: https://id.example.it\ntokens:\n  access_token_ttl: 5m\nlog:\n  format: text\n",
			want: func(c *Config) {
				c.Issuer = "https://id.example.it"
				c.Tokens.AccessTokenTTL = Duration(5 * time.Minute)
				c.Log.Format = "text"
			},
		},
		{
			name:    "env overrides file",
			file:    "dev: true\naddr: 0.0.0.0:9000\nissuer: http://localhost:7000\ntokens:\n  access_token_ttl: 5m\n",
			environ: []string{"PONTE_ADDR=:7000", "PONTE_ACCESS_TOKEN_TTL=2m", "HOME=/root"},
			want: func(c *Config) {
				c.Addr, c.Issuer = ":7000", "http://localhost:7000"
				c.Tokens.AccessTokenTTL = Duration(2 * time.Minute)
			},
		},
		{
			name:    "empty env value is unset",
			file:    "dev: true\naddr: 127.0.0.1:9000\n",
			environ: []string{"PONTE_ADDR="},
			want:    func(c *Config) { c.Addr, c.Issuer = "127.0.0.1:9000", "http://127.0.0.1:9000" },
		},
		{
			name:    "only the address set: the issuer follows it",
			environ: []string{"PONTE_DEV=true", "PONTE_ADDR=127.0.0.1:18080"},
			want:    func(c *Config) { c.Addr, c.Issuer = "127.0.0.1:18080", "http://127.0.0.1:18080" },
		},
		{
			name:    "an IPv6 loopback address",
			environ: []string{"PONTE_DEV=true", "PONTE_ADDR=[::1]:18080"},
			want:    func(c *Config) { c.Addr, c.Issuer = "[::1]:18080", "http://[::1]:18080" },
		},
		{
			name:    "first env entry wins",
			environ: []string{"PONTE_DEV=1", "PONTE_LOG_LEVEL=debug", "PONTE_LOG_LEVEL=bogus"},
			want:    func(c *Config) { c.Log.Level = "debug" },
		},
		{
			name:    "every env variable",
			environ: allEnv(),
			want: func(c *Config) {
				*c = Config{
					Addr: ":9090", Issuer: "https://login.example.it/ponte", DB: "postgres://p:secret@db/ponte",
					MasterKey: testKey, MasterKeyFile: "/tmp/k", Dev: false,
					Log:            Log{Level: "debug", Format: "text"},
					TrustedProxies: []string{"10.0.0.0/8", "192.168.1.1"},
					Tokens: Tokens{
						AuthorizeCodeTTL: Duration(30 * time.Second), AccessTokenTTL: Duration(10 * time.Minute),
						RefreshTokenTTL: Duration(48 * time.Hour), IDTokenTTL: Duration(20 * time.Minute),
					},
					Session: Session{TTL: Duration(time.Hour), CookieName: "__Host-ponte", CookieSecure: &yes},
					Login:   Login{ChallengeTTL: Duration(10 * time.Minute), MaxChallengesPerBrowser: 5, MaxChallengesPerIP: 50},
					Keys: Keys{Algorithm: "RS256", PublishDelay: Duration(2 * time.Minute),
						RefreshInterval: Duration(time.Minute)},
					Janitor: Janitor{Interval: Duration(time.Hour)},
					CardListener: CardListener{Addr: "0.0.0.0:8443", CertFile: "/etc/ponte/card.crt", KeyFile: "/etc/ponte/card.key",
						MaxTLSVersion: "1.2"},
					ClientCertProxies: []string{"10.9.0.0/16"}, ClientCertHeader: "nginx",
					Operators:       []string{"op-1=" + strings.Repeat("ab", 32)},
					ShutdownTimeout: Duration(5 * time.Second),
					Redis:           Redis{URL: "redis://:pw@cache:6380/2", Timeout: Duration(50 * time.Millisecond)},
					AdminAddr:       "127.0.0.1:9091",
					Tracing:         Tracing{OTLPEndpoint: "http://127.0.0.1:4318/v1/traces", SampleRatio: 0.25},
					Admission: Admission{TokenConcurrency: 3, TokenQueue: 7, TokenMaxWait: Duration(time.Second),
						NodeConcurrency: 300, NodeQueue: 900, NodeMaxWait: Duration(3 * time.Second),
						NodeStartConcurrency: 40, NodeStartMaxWait: Duration(200 * time.Millisecond)},
				}
			},
		},
		{
			name:    "empty file",
			file:    "# nothing\n",
			environ: []string{"PONTE_DEV=true"},
			want:    func(c *Config) {},
		},
		{
			name: "null sections keep defaults",
			file: "dev: true\nlog:\ntokens:\n  access_token_ttl:\ntrusted_proxies:\n",
			want: func(c *Config) {},
		},
		{
			name: "cookie_secure in file",
			file: "dev: true\nsession:\n  cookie_secure: true\n",
			want: func(c *Config) { c.Session.CookieSecure = &yes },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			got, err := Load(path, tt.environ)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got.environ = nil // kept for the methods' sections; see TestSections
			want := devDefault()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Load =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

// allEnv sets every variable to a non-default value.
func allEnv() []string {
	return []string{
		"PONTE_ADDR=:9090",
		"PONTE_ISSUER=https://login.example.it/ponte",
		"PONTE_DB=postgres://p:secret@db/ponte",
		"PONTE_MASTER_KEY=" + testKey,
		"PONTE_MASTER_KEY_FILE=/tmp/k",
		"PONTE_DEV=false",
		"PONTE_LOG_LEVEL=debug",
		"PONTE_LOG_FORMAT=text",
		"PONTE_TRUSTED_PROXIES= 10.0.0.0/8, ,192.168.1.1 ",
		"PONTE_AUTHORIZE_CODE_TTL=30s",
		"PONTE_ACCESS_TOKEN_TTL=10m",
		"PONTE_REFRESH_TOKEN_TTL=48h",
		"PONTE_ID_TOKEN_TTL=20m",
		"PONTE_SESSION_TTL=1h",
		"PONTE_SESSION_COOKIE=__Host-ponte",
		"PONTE_SESSION_COOKIE_SECURE=true",
		"PONTE_CHALLENGE_TTL=10m",
		"PONTE_MAX_CHALLENGES_PER_BROWSER=5",
		"PONTE_MAX_CHALLENGES_PER_IP=50",
		"PONTE_KEYS_ALGORITHM=RS256",
		"PONTE_KEYS_PUBLISH_DELAY=2m",
		"PONTE_KEYS_REFRESH_INTERVAL=1m",
		"PONTE_JANITOR_INTERVAL=1h",
		"PONTE_CARD_ADDR=0.0.0.0:8443", "PONTE_CARD_CERT_FILE=/etc/ponte/card.crt", "PONTE_CARD_KEY_FILE=/etc/ponte/card.key",
		"PONTE_CARD_MAX_TLS_VERSION=1.2", "PONTE_CLIENT_CERT_PROXIES=10.9.0.0/16", "PONTE_CLIENT_CERT_HEADER=nginx",
		"PONTE_OPERATORS=op-1=" + strings.Repeat("ab", 32),
		"PONTE_SHUTDOWN_TIMEOUT=5s",
		"PONTE_REDIS_URL=redis://:pw@cache:6380/2",
		"PONTE_REDIS_TIMEOUT=50ms",
		"PONTE_ADMIN_ADDR=127.0.0.1:9091",
		"PONTE_OTLP_ENDPOINT=http://127.0.0.1:4318/v1/traces",
		"PONTE_TRACE_SAMPLE_RATIO=0.25",
		"PONTE_TOKEN_CONCURRENCY=3",
		"PONTE_TOKEN_QUEUE=7",
		"PONTE_TOKEN_MAX_WAIT=1s",
		"PONTE_NODE_CONCURRENCY=300",
		"PONTE_NODE_QUEUE=900",
		"PONTE_NODE_MAX_WAIT=3s",
		"PONTE_NODE_START_CONCURRENCY=40",
		"PONTE_NODE_START_MAX_WAIT=200ms",
	}
}

func TestAllEnvCoversEveryBinding(t *testing.T) {
	set := map[string]bool{}
	for _, kv := range allEnv() {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = true
	}
	for _, b := range bindings() {
		if !set[b.env] {
			t.Errorf("allEnv does not set %s", b.env)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		environ []string
		want    []string // substrings of the error
	}{
		{"unknown nested field", "dev: true\nlog:\n  levle: debug\n", nil, []string{"line 3", `unknown field "levle"`}},
		{"bad duration in file", "dev: true\ntokens:\n  id_token_ttl: 1 hour\n", nil, []string{"line 3", `invalid duration "1 hour"`}},
		{"bare number duration", "dev: true\nshutdown_timeout: 15\n", nil, []string{"line 2", `invalid duration "15"`}},
		{"mapping as duration", "dev: true\nshutdown_timeout: {a: 1}\n", nil, []string{"line 2", "want a duration"}},
		{"wrong type", "dev: maybe\n", nil, []string{"line 1", "bool"}},
		{"not a mapping", "- a\n- b\n", nil, []string{"line 1"}},
		{"two documents", "dev: true\n---\ndev: false\n", nil, []string{"single YAML document"}},
		{"bad YAML", "dev: [\n", nil, []string{"yaml"}},
		{"every interface without an issuer", "", []string{"PONTE_DEV=true", "PONTE_ADDR=0.0.0.0:8080"},
			[]string{"issuer (PONTE_ISSUER)", "listens on every interface"}},
		{"variables and settings wrong together", "", []string{"PONTE_DEV=true", "PONTE_ACCESS_TOKEN_TTL=soon", "PONTE_LOG_LEVEL=loud"},
			[]string{"PONTE_ACCESS_TOKEN_TTL", `invalid duration "soon"`, "log.level (PONTE_LOG_LEVEL)"}},
		{"bad env duration", "", []string{"PONTE_DEV=true", "PONTE_ACCESS_TOKEN_TTL=soon"},
			[]string{"PONTE_ACCESS_TOKEN_TTL", "tokens.access_token_ttl", `invalid duration "soon"`}},
		{"bad env bool", "", []string{"PONTE_DEV=yes please"}, []string{"PONTE_DEV", `invalid boolean "yes please"`}},
		{"every bad env reported", "", []string{"PONTE_DEV=nope", "PONTE_SESSION_COOKIE_SECURE=x", "PONTE_JANITOR_INTERVAL=1"},
			[]string{"PONTE_DEV", "PONTE_SESSION_COOKIE_SECURE", "PONTE_JANITOR_INTERVAL"}},
		{"validation after env", "dev: true\n", []string{"PONTE_LOG_LEVEL=loud"}, []string{"log.level (PONTE_LOG_LEVEL)", `"loud"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			got, err := Load(path, tt.environ)
			if err == nil {
				t.Fatal("Load: want error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.file != "" && !strings.Contains(err.Error(), path) && strings.Contains(tt.name, "field") {
				t.Errorf("error %q does not name the file", err)
			}
			if !reflect.DeepEqual(got, Config{}) {
				t.Errorf("Load returned a non-zero Config on error")
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), []string{"PONTE_DEV=1"})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want a not-exist error", err)
	}
}
