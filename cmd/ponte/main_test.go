package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-id/ponte/internal/config"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// envRunMain makes the test binary run main() instead of the tests, so that
// TestExitCodes sees the real exit status.
const envRunMain = "PONTE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testMasterKey is 32 bytes in base64.
var testMasterKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 32))

// setup clears every PONTE_* setting of the surrounding environment, then
// sets a master key and a fresh SQLite file; it returns the file's path.
// Tests using it cannot run in parallel (they change the environment).
func setup(t *testing.T) string {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "PONTE_") && !strings.HasPrefix(k, "PONTE_TEST_") {
			t.Setenv(k, "")
		}
	}
	db := filepath.Join(t.TempDir(), "ponte.db")
	t.Setenv("PONTE_DB", db)
	t.Setenv("PONTE_MASTER_KEY", testMasterKey)
	t.Setenv("PONTE_LOG_LEVEL", "warn")
	return db
}

// ponte runs the command line args in-process.
func ponte(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = run(ctx, args, &out, &errb)
	return out.String(), errb.String(), err
}

// mustPonte runs args and fails the test on error.
func mustPonte(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := ponte(t, args...)
	if err != nil {
		t.Fatalf("ponte %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func TestUsage(t *testing.T) {
	setup(t)
	cases := []struct {
		name    string
		args    []string
		wantErr string // "" for success
		usageOn string // "stdout" or "stderr"
	}{
		{"no command", nil, "no command", "stderr"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`, "stderr"},
		{"help", []string{"help"}, "", "stdout"},
		{"-h", []string{"-h"}, "", "stdout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := ponte(t, tc.args...)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			usageOut, other := out, errOut
			if tc.usageOn == "stderr" {
				usageOut, other = errOut, out
			}
			if usageOut != usage || other != "" {
				t.Errorf("usage on %s: stdout %q, stderr %q", tc.usageOn, out, errOut)
			}
		})
	}
}

func TestSubcommandUsage(t *testing.T) {
	setup(t)
	cases := []struct {
		args      []string
		wantErr   string
		wantUsage string
	}{
		{[]string{"client"}, "client: no subcommand", clientUsage},
		{[]string{"client", "rename"}, `client: unknown subcommand "rename"`, clientUsage},
		{[]string{"keys"}, "keys: want list, rotate, rotate-master or retire-master", "usage: ponte keys list|rotate"},
		{[]string{"keys", "delete"}, "keys: want list, rotate, rotate-master or retire-master", "usage: ponte keys list|rotate"},
		{[]string{"client", "list", "--no-such-flag"}, "flag provided but not defined: -no-such-flag", "Usage of client list"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, errOut, err := ponte(t, tc.args...)
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if !strings.Contains(errOut, tc.wantUsage) {
				t.Errorf("stderr %q lacks %q", errOut, tc.wantUsage)
			}
		})
	}
}

// TestExitCodes runs the real main in a child process.
func TestExitCodes(t *testing.T) {
	setup(t)
	cases := []struct {
		args       []string
		wantCode   int
		wantStderr string
	}{
		{nil, 2, "ponte: no command"},
		{[]string{"frobnicate"}, 2, `ponte: unknown command "frobnicate"`},
		{[]string{"help"}, 0, ""},
		{[]string{"migrate", "-h"}, 2, "Usage of migrate"},
		{[]string{"keys", "list"}, 0, ""},
	}
	for _, tc := range cases {
		t.Run(strings.Join(append([]string{"ponte"}, tc.args...), " "), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], tc.args...)
			cmd.Env = append(os.Environ(), envRunMain+"=1")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.wantCode, stderr.String())
			}
			if tc.wantStderr != "" && !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.wantStderr)
			}
			if tc.args != nil && tc.args[len(tc.args)-1] == "-h" && strings.Contains(stderr.String(), "ponte: flag: help requested") {
				t.Error("-h reported as an error")
			}
		})
	}
}

// TestConfigErrors: a bad setting is reported by name and variable, and a
// secret is never echoed.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	unknownKey := filepath.Join(dir, "unknown.yaml")
	if err := os.WriteFile(unknownKey, []byte("addr: \"127.0.0.1:8080\"\nlisten: \"0.0.0.0:80\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		want    []string
		secrets []string // must not appear in the error
	}{
		{"bad address", map[string]string{"PONTE_ADDR": "nonsense"}, nil, []string{"addr (PONTE_ADDR)"}, nil},
		{"bad issuer", map[string]string{"PONTE_ISSUER": "ftp://x"}, nil, []string{"issuer (PONTE_ISSUER)"}, nil},
		{"short master key", map[string]string{"PONTE_MASTER_KEY": "c2hvcnQta2V5LXNlY3JldA=="}, nil,
			[]string{"master_key (PONTE_MASTER_KEY)"}, []string{"c2hvcnQta2V5LXNlY3JldA==", "short-key-secret"}},
		{"no master key outside dev mode", map[string]string{"PONTE_MASTER_KEY": ""}, nil, []string{"master_key (PONTE_MASTER_KEY): required outside dev mode"}, nil},
		{"malformed duration", map[string]string{"PONTE_ACCESS_TOKEN_TTL": "soon"}, nil, []string{"PONTE_ACCESS_TOKEN_TTL (tokens.access_token_ttl)"}, nil},
		{"two bad settings at once", map[string]string{"PONTE_ADDR": "nonsense", "PONTE_KEYS_ALGORITHM": "HS256"}, nil,
			[]string{"addr (PONTE_ADDR)", "keys.algorithm (PONTE_KEYS_ALGORITHM)"}, nil},
		{"missing config file", nil, []string{"--config", filepath.Join(dir, "absent.yaml")}, []string{"absent.yaml"}, nil},
		{"unknown key in the config file", nil, []string{"--config", unknownKey}, []string{"listen"}, nil},
	}
	for _, tc := range cases {
		for _, cmd := range [][]string{{"migrate"}, {"client", "list"}, {"keys", "list"}, {"serve"}} {
			t.Run(tc.name+"/"+strings.Join(cmd, " "), func(t *testing.T) {
				db := setup(t)
				for k, v := range tc.env {
					t.Setenv(k, v)
				}
				out, _, err := ponte(t, append(cmd, tc.args...)...)
				if err == nil {
					t.Fatalf("accepted; stdout %q", out)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not name %q", err, w)
					}
				}
				for _, s := range tc.secrets {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error %q echoes a secret", err)
					}
				}
				if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a bad configuration still created the database (%v)", err)
				}
			})
		}
	}
}

func TestMigrate(t *testing.T) {
	setup(t)
	first := mustPonte(t, "migrate")
	m := regexp.MustCompile(`^applied (\d+) migrations \(sqlite\)\n$`).FindStringSubmatch(first)
	if m == nil || m[1] == "0" {
		t.Fatalf("first migrate: %q", first)
	}
	if again := mustPonte(t, "migrate"); again != "applied 0 migrations (sqlite)\n" {
		t.Fatalf("second migrate: %q", again)
	}
}

// TestMigratePostgres: on PostgreSQL, shared by several nodes, commands refuse
// a database with pending migrations until `ponte migrate` has run.
func TestMigratePostgres(t *testing.T) {
	setup(t)
	t.Setenv("PONTE_DB", storagetest.PostgresDSN(t))
	_, _, err := ponte(t, "client", "list")
	if err == nil || !regexp.MustCompile(`^the database has [1-9]\d* pending migrations: run 'ponte migrate' first$`).MatchString(err.Error()) {
		t.Fatalf("client list before migrate: %v", err)
	}
	if out := mustPonte(t, "migrate"); !regexp.MustCompile(`^applied [1-9]\d* migrations \(postgres\)\n$`).MatchString(out) {
		t.Fatalf("migrate: %q", out)
	}
	if out := mustPonte(t, "client", "list"); !strings.HasPrefix(out, "CLIENT_ID") {
		t.Fatalf("client list after migrate: %q", out)
	}
}

// TestClientCommands: create, list, rotate-secret and delete on one database;
// the secrets printed are the ones stored (as hashes).
func TestClientCommands(t *testing.T) {
	setup(t)
	ctx := context.Background()

	var created struct {
		ClientID string   `json:"client_id"`
		Secret   string   `json:"client_secret"`
		Auth     string   `json:"token_endpoint_auth_method"`
		Redirect []string `json:"redirect_uris"`
		Scopes   []string `json:"scopes"`
	}
	out := mustPonte(t, "client", "create", "--id", "rp-cassetto", "--name", "Cassetto previdenziale",
		"--redirect-uri", "https://app.inps.it/cb", "--redirect-uri", "https://app.inps.it/cb2", "--scopes", "openid profile", "--alg", "RS256")
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("create output %q: %v", out, err)
	}
	if created.ClientID != "rp-cassetto" || created.Auth != "client_secret_basic" || len(created.Secret) != 43 ||
		strings.Join(created.Redirect, " ") != "https://app.inps.it/cb https://app.inps.it/cb2" || strings.Join(created.Scopes, " ") != "openid profile" {
		t.Fatalf("create output %q", out)
	}
	checkSecret(t, ctx, "rp-cassetto", created.Secret, true)

	public := mustPonte(t, "client", "create", "--id", "rp-app", "--auth", "none", "--redirect-uri", "it.inps.app:/cb")
	if strings.Contains(public, "client_secret\"") || !strings.Contains(public, `"token_endpoint_auth_method": "none"`) {
		t.Fatalf("public client output %q", public)
	}

	refusals := []struct {
		name string
		args []string
		want string
	}{
		{"http redirect off loopback", []string{"--redirect-uri", "http://app.inps.it/cb"}, `redirect URI "http://app.inps.it/cb": http is allowed only on loopback`},
		{"taken ID", []string{"--id", "rp-cassetto", "--redirect-uri", "https://app.inps.it/cb"}, `a client with id "rp-cassetto" exists`},
		{"bad alg", []string{"--alg", "HS256", "--redirect-uri", "https://app.inps.it/cb"}, `signing alg "HS256"`},
		{"missing JWKS file", []string{"--auth", "private_key_jwt", "--jwks-file", "/nonexistent/jwks.json", "--redirect-uri", "https://app.inps.it/cb"}, "/nonexistent/jwks.json"},
	}
	for _, r := range refusals {
		t.Run("create refuses "+r.name, func(t *testing.T) {
			out, _, err := ponte(t, append([]string{"client", "create"}, r.args...)...)
			if err == nil || !strings.Contains(err.Error(), r.want) {
				t.Fatalf("error %v, want %q", err, r.want)
			}
			if out != "" {
				t.Errorf("refusal printed %q", out)
			}
		})
	}

	list := mustPonte(t, "client", "list")
	lines := strings.Split(strings.TrimSuffix(list, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "CLIENT_ID") {
		t.Fatalf("list %q", list)
	}
	if !regexp.MustCompile(`(?m)^rp-cassetto +Cassetto previdenziale +client_secret_basic +RS256 +openid profile +https://app.inps.it/cb https://app.inps.it/cb2$`).MatchString(list) ||
		!regexp.MustCompile(`(?m)^rp-app +none +ES256 `).MatchString(list) {
		t.Errorf("list %q", list)
	}
	if strings.Contains(list, created.Secret) {
		t.Error("list shows a secret")
	}

	var rotated struct {
		ClientID string `json:"client_id"`
		Secret   string `json:"client_secret"`
	}
	out = mustPonte(t, "client", "rotate-secret", "--id", "rp-cassetto")
	if err := json.Unmarshal([]byte(out), &rotated); err != nil || rotated.ClientID != "rp-cassetto" || rotated.Secret == "" || rotated.Secret == created.Secret {
		t.Fatalf("rotate-secret output %q (%v)", out, err)
	}
	checkSecret(t, ctx, "rp-cassetto", rotated.Secret, true)
	checkSecret(t, ctx, "rp-cassetto", created.Secret, false)
	if _, _, err := ponte(t, "client", "rotate-secret", "--id", "rp-app"); err == nil || !strings.Contains(err.Error(), "authenticates with none, not a secret") {
		t.Errorf("rotate-secret of a public client: %v", err)
	}
	if _, _, err := ponte(t, "client", "rotate-secret", "--id", "rp-nobody"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("rotate-secret of an unknown client: %v", err)
	}

	if out := mustPonte(t, "client", "delete", "--id", "rp-cassetto"); out != "" {
		t.Errorf("delete printed %q", out)
	}
	if _, _, err := ponte(t, "client", "delete", "--id", "rp-cassetto"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second delete: %v, want storage.ErrNotFound", err)
	}
	list = mustPonte(t, "client", "list")
	if strings.Contains(list, "rp-cassetto") || !strings.Contains(list, "rp-app") {
		t.Errorf("list after delete %q", list)
	}
}

// checkSecret opens the database as the commands do and compares secret with
// the client's stored hash.
func checkSecret(t *testing.T, ctx context.Context, id, secret string, want bool) {
	t.Helper()
	cfg, err := config.Load("", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	a, err := openApp(ctx, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c, err := a.store.GetClient(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(c.SecretHash, []byte(secret)) {
		t.Errorf("%s: the secret is stored in clear", id)
	}
	if err := a.hasher.Compare(ctx, c.SecretHash, []byte(secret)); (err == nil) != want {
		t.Errorf("%s: secret verifies %v, want %v", id, err == nil, want)
	}
}

func TestKeysCommands(t *testing.T) {
	setup(t)
	t.Setenv("PONTE_KEYS_PUBLISH_DELAY", "5m")
	t.Setenv("PONTE_ID_TOKEN_TTL", "30m")
	if out := mustPonte(t, "keys", "list"); !strings.HasPrefix(out, "KID  ALG  STATE  SIGNS_FROM  PUBLISHED_UNTIL\n\nMASTER_KEY") {
		t.Fatalf("list of no keys %q", out)
	}
	before := time.Now().Truncate(time.Second)
	rotated := regexp.MustCompile(`^new (ES256|RS256) key ([A-Za-z0-9_-]{43}) is published now and signs from (\S+)\n$`)
	var kids []string
	for _, tc := range []struct{ args, alg string }{{"", "ES256"}, {"--alg RS256", "RS256"}} {
		out := mustPonte(t, append([]string{"keys", "rotate"}, strings.Fields(tc.args)...)...)
		m := rotated.FindStringSubmatch(out)
		if m == nil || m[1] != tc.alg {
			t.Fatalf("keys rotate %s: %q", tc.args, out)
		}
		from, err := time.Parse(time.RFC3339, m[3])
		if err != nil {
			t.Fatal(err)
		}
		if d := from.Sub(before); d < 5*time.Minute || d > 6*time.Minute {
			t.Errorf("%s key signs from %v, %v after now; want the 5m publish delay", tc.alg, from, d)
		}
		kids = append(kids, m[2])
	}
	list := mustPonte(t, "keys", "list")
	for i, alg := range []string{"ES256", "RS256"} {
		if !regexp.MustCompile(`(?m)^` + kids[i] + ` +` + alg + ` +active +\S+ +-$`).MatchString(list) {
			t.Errorf("list lacks the active %s key %s: %q", alg, kids[i], list)
		}
	}
	// A second ES256 rotation retires the first key, published until the ID
	// token lifetime and an hour after the new key starts signing.
	m := rotated.FindStringSubmatch(mustPonte(t, "keys", "rotate", "--alg", "ES256"))
	if m == nil {
		t.Fatal("second ES256 rotation printed no key")
	}
	from, err := time.Parse(time.RFC3339, m[3])
	if err != nil {
		t.Fatal(err)
	}
	until := from.Add(30*time.Minute + time.Hour).UTC().Format(time.RFC3339)
	list = mustPonte(t, "keys", "list")
	if !regexp.MustCompile(`(?m)^` + kids[0] + ` +ES256 +retired +\S+ +` + regexp.QuoteMeta(until) + `$`).MatchString(list) {
		t.Errorf("list after the second rotation lacks the first key retired until %s: %q", until, list)
	}
	if _, _, err := ponte(t, "keys", "rotate", "--alg", "HS256"); err == nil || !strings.Contains(err.Error(), `alg: want ES256 or RS256`) {
		t.Errorf("rotate HS256: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the server's log writes while the
// test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServe starts `ponte serve` on a free port, asks it for health,
// discovery and keys, and stops it by cancelling its context.
func TestServe(t *testing.T) {
	setup(t)
	t.Setenv("PONTE_ADDR", "127.0.0.1:0")
	t.Setenv("PONTE_ISSUER", "https://login.inps.example")
	t.Setenv("PONTE_LOG_LEVEL", "info")
	t.Setenv("PONTE_SHUTDOWN_TIMEOUT", "5s")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, io.Discard, logs) }()

	addr := ""
	deadline := time.Now().Add(30 * time.Second)
	for addr == "" {
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "ponte is serving" {
				addr = line.Addr
			}
		}
	}
	base := "http://" + addr
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}

	if code, body := get("/healthz"); code != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz: %d", code)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"healthcheck", "--addr", addr}, &out, io.Discard); err != nil || !strings.Contains(out.String(), "/readyz: 200") {
		t.Errorf("healthcheck of a serving node: %v %q", err, out.String())
	}
	_, port, _ := net.SplitHostPort(addr)
	t.Setenv("PONTE_ADDR", "0.0.0.0:"+port) // every interface: asked on loopback
	if err := run(ctx, []string{"healthcheck"}, io.Discard, io.Discard); err != nil {
		t.Errorf("healthcheck from PONTE_ADDR on every interface: %v", err)
	}
	code, body := get("/.well-known/openid-configuration")
	var disc struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &disc) != nil {
		t.Fatalf("discovery: %d %s", code, body)
	}
	if disc.Issuer != "https://login.inps.example" || !strings.HasPrefix(disc.JWKSURI, "https://login.inps.example/") {
		t.Errorf("discovery issuer %q, jwks_uri %q", disc.Issuer, disc.JWKSURI)
	}
	// The account pages log in through the provider itself: discovery is
	// read in process (the issuer's public address is not reachable here).
	noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(base + "/account/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "https://login.inps.example/authorize?") ||
		!strings.Contains(loc, "client_id=ponte-account") || !strings.Contains(loc, "code_challenge_method=S256") {
		t.Errorf("/account/: %d %s", resp.StatusCode, loc)
	}
	code, body = get(strings.TrimPrefix(disc.JWKSURI, "https://login.inps.example"))
	var jwks struct {
		Keys []struct {
			Kid string `json:"kid"`
			Alg string `json:"alg"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &jwks) != nil {
		t.Fatalf("jwks: %d %s", code, body)
	}
	algs := map[string]bool{}
	for _, k := range jwks.Keys {
		algs[k.Alg] = true
		if k.D != "" {
			t.Errorf("jwks publishes the private part of %s", k.Kid)
		}
	}
	if !algs["ES256"] || !algs["RS256"] {
		t.Errorf("jwks algorithms %v, want the ES256 and RS256 keys serve ensures", algs)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop after its context ended")
	}
	if _, err := client.Get(base + "/healthz"); err == nil {
		t.Error("still answering after shutdown")
	}
	var coded interface{ ExitCode() int }
	if err := run(context.Background(), []string{"healthcheck", "--addr", addr}, io.Discard, io.Discard); !errors.As(err, &coded) || coded.ExitCode() != 1 {
		t.Errorf("healthcheck of a stopped node: %v, want exit status 1", err)
	}
	if err := run(context.Background(), []string{"healthcheck", "--addr", "nonsense"}, io.Discard, io.Discard); err == nil || errors.As(err, &coded) {
		t.Errorf("healthcheck of a bad address: %v, want a usage error (status 2)", err)
	}
	if !strings.Contains(logs.String(), `"msg":"shutting down"`) {
		t.Errorf("no shutdown logged:\n%s", logs.String())
	}
}
