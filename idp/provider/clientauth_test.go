package provider_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/storage"
)

// logRecorder is a slog.Handler that keeps every record, to check what the
// provider logged and at which level.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// errors returns the messages logged at ERROR level or above.
func (l *logRecorder) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		if r.Level >= slog.LevelError {
			out = append(out, r.Message)
		}
	}
	return out
}

// recordLogs sends the provider's log to l.
func recordLogs(l *logRecorder) func(*provider.Config) {
	return func(c *provider.Config) { c.Logger = slog.New(l) }
}

// jwtClient is a private_key_jwt client's key pair.
type jwtClient struct {
	key  *ecdsa.PrivateKey
	jwks []byte
}

func newJWTClient(t *testing.T) jwtClient {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	return jwtClient{key: key, jwks: set}
}

// assertion signs a client assertion (RFC 7523) for clientID with the given
// jti, iat and exp; a zero time leaves the claim out.
func (k jwtClient) assertion(t *testing.T, clientID, aud, jti string, iat, exp time.Time) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	claims := josejwt.Claims{Issuer: clientID, Subject: clientID, Audience: josejwt.Audience{aud}, ID: jti}
	if !iat.IsZero() {
		claims.IssuedAt = josejwt.NewNumericDate(iat)
	}
	if !exp.IsZero() {
		claims.Expiry = josejwt.NewNumericDate(exp)
	}
	s, err := josejwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// clientCall posts form to the provider's path, authenticated by auth (if
// not nil), and returns the status and the decoded JSON body (nil if none).
func clientCall(t *testing.T, e *env, path string, form url.Values, auth func(*http.Request, url.Values)) (int, map[string]any) {
	t.Helper()
	form = cloneForm(form)
	req, _ := http.NewRequest(http.MethodPost, e.Issuer+path, nil)
	if auth != nil {
		auth(req, form)
	}
	body := form.Encode()
	req.Body, req.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func cloneForm(form url.Values) url.Values {
	out := url.Values{}
	for k, v := range form {
		out[k] = slices.Clone(v)
	}
	return out
}

// TestClientAssertionLifetime: a private_key_jwt assertion that has expired is
// refused with 401 invalid_client (not a 500 and an ERROR log), and one whose
// exp lies far ahead is refused before its jti is kept, at the token and the
// revocation endpoints alike.
func TestClientAssertionLifetime(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		logs := &logRecorder{}
		e := newEnv(t, store, recordLogs(logs))
		k := newJWTClient(t)
		r := e.NewRP(clients.Spec{AuthMethod: clients.AuthPrivateKeyJWT, JWKS: k.jwks})
		aud := e.Issuer + "/token"
		now := time.Now()
		for _, ep := range []struct {
			path   string
			form   url.Values
			wantOK int // the status when the client is authenticated
		}{
			// A bad code after a good authentication is invalid_grant (RFC 6749 §5.2).
			{"/token", url.Values{"grant_type": {"authorization_code"}, "code": {"unknown"}, "redirect_uri": {redirectURI}}, http.StatusBadRequest},
			// An unknown token is not an error (RFC 7009 §2.2).
			{"/revoke", url.Values{"token": {"unknown"}}, http.StatusOK},
		} {
			for _, tc := range []struct {
				name     string
				iat, exp time.Time
				wantOK   bool
			}{
				{"valid", now, now.Add(time.Minute), true},
				{"expired", now.Add(-10 * time.Minute), now.Add(-5 * time.Minute), false},
				{"exp 10 years ahead", now, now.AddDate(10, 0, 0), false},
				{"exp 10 years ahead, no iat", time.Time{}, now.AddDate(10, 0, 0), false},
				{"exp 6 minutes after iat", now.Add(-time.Minute), now.Add(5 * time.Minute), false},
				{"no exp", now, time.Time{}, false},
			} {
				t.Run(strings.TrimPrefix(ep.path, "/")+" "+tc.name, func(t *testing.T) {
					jti := randomString()
					send := func(iat, exp time.Time) (int, map[string]any) {
						return clientCall(t, e, ep.path, ep.form, func(_ *http.Request, form url.Values) {
							form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
							form.Set("client_assertion", k.assertion(t, r.ID, aud, jti, iat, exp))
						})
					}
					status, body := send(tc.iat, tc.exp)
					if tc.wantOK {
						if status != ep.wantOK {
							t.Fatalf("valid assertion: %d %v, want %d", status, body, ep.wantOK)
						}
						return
					}
					if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
						t.Fatalf("got %d %v, want 401 invalid_client", status, body)
					}
					if errs := logs.errors(); len(errs) > 0 {
						t.Fatalf("a refused client assertion was logged as an error: %q", errs)
					}
					// Nothing of the refused assertion was kept: its jti is still unused.
					if status, body := send(now, now.Add(time.Minute)); status != ep.wantOK {
						t.Fatalf("the jti of a refused assertion is spent: %d %v", status, body)
					}
				})
			}
		}
	})
}

// authMethod authenticates a request to a client endpoint the way one
// token_endpoint_auth_method says (RFC 6749 §2.3.1, RFC 7523 §2.2, OIDC Core §9).
type authMethod func(t *testing.T, e *env, c *authClient) func(*http.Request, url.Values)

// authClient is a registered client and what it authenticates with.
type authClient struct {
	*rp
	jwt jwtClient
}

var authMethods = map[string]authMethod{
	clients.AuthSecretBasic: func(_ *testing.T, _ *env, c *authClient) func(*http.Request, url.Values) {
		return func(req *http.Request, _ url.Values) {
			req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
		}
	},
	clients.AuthSecretPost: func(_ *testing.T, _ *env, c *authClient) func(*http.Request, url.Values) {
		return func(_ *http.Request, form url.Values) {
			form.Set("client_id", c.ID)
			form.Set("client_secret", c.Secret)
		}
	},
	clients.AuthPrivateKeyJWT: func(t *testing.T, e *env, c *authClient) func(*http.Request, url.Values) {
		return func(_ *http.Request, form url.Values) {
			form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
			form.Set("client_assertion", c.jwt.assertion(t, c.ID, e.Issuer+"/token", randomString(), time.Now(), time.Now().Add(time.Minute)))
		}
	},
	clients.AuthNone: func(_ *testing.T, _ *env, c *authClient) func(*http.Request, url.Values) {
		return func(_ *http.Request, form url.Values) { form.Set("client_id", c.ID) }
	},
}

// newAuthClient registers a client that authenticates with method.
func newAuthClient(t *testing.T, e *env, method string) *authClient {
	c := &authClient{jwt: newJWTClient(t)}
	spec := clients.Spec{AuthMethod: method}
	if method == clients.AuthPrivateKeyJWT {
		spec.JWKS = c.jwt.jwks
	}
	c.rp = e.NewRP(spec)
	return c
}

// tokensFor logs in and redeems the code as c, authenticated by method, and
// returns the access and refresh tokens.
func tokensFor(t *testing.T, e *env, c *authClient, method string) (access, refresh string) {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	loc := login(newBrowser(t), e.Issuer, c.Conf.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(verifier)), citizenCF, idp.LevelConsultazione)
	status, body := clientCall(t, e, "/token", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {redirectURI}, "code_verifier": {verifier}}, authMethods[method](t, e, c))
	access, _ = body["access_token"].(string)
	refresh, _ = body["refresh_token"].(string)
	if status != http.StatusOK || access == "" || refresh == "" {
		t.Fatalf("token endpoint with %s: %d %v", method, status, body)
	}
	return access, refresh
}

// TestDiscoveredAuthMethodsWork walks discovery: every client authentication
// method advertised for the token, revocation and introspection endpoints
// authenticates a client of that method there (OIDC Discovery §3: what is
// advertised works).
func TestDiscoveredAuthMethodsWork(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		resp, err := http.Get(e.Issuer + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		var meta map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&meta); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		advertised := func(key string) []string {
			var out []string
			list, _ := meta[key].([]any)
			for _, m := range list {
				out = append(out, m.(string))
			}
			if len(out) == 0 {
				t.Fatalf("discovery advertises no %s", key)
			}
			return out
		}
		methodClients := map[string]*authClient{}
		client := func(t *testing.T, method string) *authClient {
			if authMethods[method] == nil {
				t.Fatalf("discovery advertises %q, which this test does not know", method)
			}
			if methodClients[method] == nil {
				methodClients[method] = newAuthClient(t, e, method)
			}
			return methodClients[method]
		}
		for _, method := range advertised("token_endpoint_auth_methods_supported") {
			t.Run("token "+method, func(t *testing.T) { tokensFor(t, e, client(t, method), method) })
		}
		for _, method := range advertised("revocation_endpoint_auth_methods_supported") {
			t.Run("revocation "+method, func(t *testing.T) {
				c := client(t, method)
				_, refresh := tokensFor(t, e, c, method)
				if status, body := clientCall(t, e, "/revoke", url.Values{"token": {refresh}}, authMethods[method](t, e, c)); status != http.StatusOK {
					t.Fatalf("revoke with %s: %d %v", method, status, body)
				}
				if _, err := c.Conf.TokenSource(c.Ctx(), &oauth2.Token{RefreshToken: refresh}).Token(); err == nil {
					t.Fatal("the revoked refresh token still works")
				}
			})
		}
		introspector := client(t, clients.AuthSecretBasic)
		subject, _ := tokensFor(t, e, introspector, clients.AuthSecretBasic)
		for _, method := range advertised("introspection_endpoint_auth_methods_supported") {
			t.Run("introspection "+method, func(t *testing.T) {
				c := client(t, method)
				status, body := clientCall(t, e, "/introspect", url.Values{"token": {subject}}, authMethods[method](t, e, c))
				if status != http.StatusOK || body["active"] != true || body["client_id"] != introspector.ID {
					t.Fatalf("introspect with %s: %d %v", method, status, body)
				}
			})
		}
	})
}

// TestIntrospectionClientAuth: the introspection endpoint authenticates the
// client like the token endpoint (basic, post, private_key_jwt), refuses a
// public client (RFC 7662 §2.1) and a bad secret with 401 invalid_client, and
// answers inactive for a token it does not know.
func TestIntrospectionClientAuth(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		owner := newAuthClient(t, e, clients.AuthSecretBasic)
		access, _ := tokensFor(t, e, owner, clients.AuthSecretBasic)
		wrongSecret := func(req *http.Request, _ url.Values) { req.SetBasicAuth(url.QueryEscape(owner.ID), "wrong") }
		wrongPost := func(_ *http.Request, form url.Values) {
			form.Set("client_id", owner.ID)
			form.Set("client_secret", "wrong")
		}
		for _, tc := range []struct {
			name       string
			auth       func(*http.Request, url.Values)
			token      string
			wantStatus int
			wantError  string
			wantActive bool
		}{
			{name: "basic", auth: authMethods[clients.AuthSecretBasic](t, e, owner), token: access, wantStatus: 200, wantActive: true},
			{name: "post", auth: authMethods[clients.AuthSecretPost](t, e, newAuthClient(t, e, clients.AuthSecretPost)), token: access, wantStatus: 200, wantActive: true},
			{name: "private_key_jwt", auth: authMethods[clients.AuthPrivateKeyJWT](t, e, newAuthClient(t, e, clients.AuthPrivateKeyJWT)), token: access, wantStatus: 200, wantActive: true},
			{name: "unknown token", auth: authMethods[clients.AuthSecretBasic](t, e, owner), token: "nothing", wantStatus: 200},
			{name: "public client", auth: authMethods[clients.AuthNone](t, e, newAuthClient(t, e, clients.AuthNone)), token: access, wantStatus: 401, wantError: "invalid_client"},
			{name: "bad basic secret", auth: wrongSecret, token: access, wantStatus: 401, wantError: "invalid_client"},
			{name: "bad post secret", auth: wrongPost, token: access, wantStatus: 401, wantError: "invalid_client"},
			{name: "no client", token: access, wantStatus: 400, wantError: "invalid_request"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, body := clientCall(t, e, "/introspect", url.Values{"token": {tc.token}}, tc.auth)
				if status != tc.wantStatus {
					t.Fatalf("status %d %v, want %d", status, body, tc.wantStatus)
				}
				if tc.wantError != "" {
					if body["error"] != tc.wantError || body["active"] != nil {
						t.Fatalf("body %v, want error %s", body, tc.wantError)
					}
					return
				}
				if body["active"] != tc.wantActive {
					t.Fatalf("active = %v, want %v", body["active"], tc.wantActive)
				}
				if tc.wantActive && (body["client_id"] != owner.ID || !slices.Contains(strings.Fields(body["scope"].(string)), "openid")) {
					t.Fatalf("introspection response %v: want the owner's client_id and scopes", body)
				}
			})
		}
	})
}
