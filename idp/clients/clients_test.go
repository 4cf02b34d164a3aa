package clients_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

var hasherKey = bytes.Repeat([]byte{0x42}, 32)

// env is a Registry on a fresh real store, with a clock the test moves.
type env struct {
	reg    *clients.Registry
	store  storage.Clients
	hasher *clients.Hasher
	now    time.Time
}

func newEnv(t *testing.T, open func(testing.TB) storage.Clients) *env {
	t.Helper()
	h, err := clients.NewHasher(hasherKey)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: open(t), hasher: h, now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	e.reg = clients.NewRegistry(e.store, h, func() time.Time { return e.now })
	return e
}

// forEachBackend runs fn on SQLite, and on PostgreSQL when PONTE_TEST_POSTGRES_DSN is set.
func forEachBackend(t *testing.T, fn func(t *testing.T, open func(testing.TB) storage.Clients)) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			fn(t, func(tb testing.TB) storage.Clients { return b.Open(tb) })
		})
	}
}

// jwks returns a one-key JSON Web Key Set for a fresh P-256 key, public or with its private part.
func jwks(t *testing.T, private bool) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var key any = k.Public()
	if private {
		key = k
	}
	raw, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key, KeyID: "rp-key-1", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// valid is a spec every refusal case starts from, changing one thing.
func valid() clients.Spec {
	return clients.Spec{ID: "rp-test", Name: "Test", RedirectURIs: []string{"https://app.example.it/cb"}}
}

// TestCreateRefuses: each bad setting alone is refused, nothing is stored, and
// the error names the setting and only it.
func TestCreateRefuses(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(testing.TB) storage.Clients) {
		cases := []struct {
			name string
			edit func(*clients.Spec)
			want string
		}{
			{"http redirect URI off loopback", func(s *clients.Spec) { s.RedirectURIs = []string{"http://app.example.it/cb"} },
				`redirect URI "http://app.example.it/cb": http is allowed only on loopback; use https`},
			{"http redirect URI on a name that starts with localhost", func(s *clients.Spec) { s.RedirectURIs = []string{"http://localhost.example.it/cb"} },
				`redirect URI "http://localhost.example.it/cb": http is allowed only on loopback`},
			{"http redirect URI on a private address", func(s *clients.Spec) { s.RedirectURIs = []string{"http://10.0.0.1/cb"} },
				`redirect URI "http://10.0.0.1/cb": http is allowed only on loopback`},
			{"second redirect URI bad", func(s *clients.Spec) {
				s.RedirectURIs = []string{"https://app.example.it/cb", "http://app.example.it/cb2"}
			}, `redirect URI "http://app.example.it/cb2": http is allowed only on loopback`},
			{"redirect URI with fragment", func(s *clients.Spec) { s.RedirectURIs = []string{"https://app.example.it/cb#top"} },
				`redirect URI "https://app.example.it/cb#top": must not have a fragment`},
			{"redirect URI with empty fragment", func(s *clients.Spec) { s.RedirectURIs = []string{"https://app.example.it/cb#"} },
				`redirect URI "https://app.example.it/cb#": must not have a fragment`},
			{"relative redirect URI", func(s *clients.Spec) { s.RedirectURIs = []string{"/cb"} },
				`redirect URI "/cb": must be an absolute https URI`},
			{"https redirect URI without host", func(s *clients.Spec) { s.RedirectURIs = []string{"https:///cb"} },
				`redirect URI "https:///cb": must be an absolute https URI`},
			{"unparsable redirect URI", func(s *clients.Spec) { s.RedirectURIs = []string{"https://[::1/cb"} },
				`redirect URI "https://[::1/cb": not a URI`},
			{"custom scheme for a confidential client", func(s *clients.Spec) { s.RedirectURIs = []string{"it.inps.app:/cb"} },
				`redirect URI "it.inps.app:/cb": must be an absolute https URI`},
			{"custom scheme without a dot for a public client", func(s *clients.Spec) {
				s.AuthMethod, s.RedirectURIs = clients.AuthNone, []string{"inpsapp:/cb"}
			}, `redirect URI "inpsapp:/cb": must be an absolute https URI`},
			{"no redirect URI", func(s *clients.Spec) { s.RedirectURIs = nil },
				`at least one redirect URI is required`},
			{"http post-logout URI off loopback", func(s *clients.Spec) { s.PostLogoutRedirectURIs = []string{"http://app.example.it/bye"} },
				`post-logout redirect URI "http://app.example.it/bye": http is allowed only on loopback`},
			{"post-logout URI with fragment", func(s *clients.Spec) { s.PostLogoutRedirectURIs = []string{"https://app.example.it/bye#x"} },
				`post-logout redirect URI "https://app.example.it/bye#x": must not have a fragment`},
			{"custom post-logout scheme for a confidential client", func(s *clients.Spec) { s.PostLogoutRedirectURIs = []string{"it.inps.app:/bye"} },
				`post-logout redirect URI "it.inps.app:/bye": must be an absolute https URI`},
			{"http back-channel logout URI off loopback", func(s *clients.Spec) { s.BackchannelLogoutURI = "http://app.example.it/bcl" },
				`back-channel logout URI "http://app.example.it/bcl": http is allowed only on loopback; use https`},
			{"relative back-channel logout URI", func(s *clients.Spec) { s.BackchannelLogoutURI = "/bcl" },
				`back-channel logout URI "/bcl": must be an absolute https URI`},
			{"back-channel logout URI with fragment", func(s *clients.Spec) { s.BackchannelLogoutURI = "https://app.example.it/bcl#x" },
				`back-channel logout URI "https://app.example.it/bcl#x": must not have a fragment`},
			{"back-channel logout URI of a private scheme", func(s *clients.Spec) {
				s.AuthMethod, s.BackchannelLogoutURI = clients.AuthNone, "it.inps.app:/bcl"
			}, `back-channel logout URI "it.inps.app:/bcl": must be an absolute https URI`},
			{"session required without a URI", func(s *clients.Spec) { s.BackchannelLogoutSessionRequired = true },
				`back-channel logout session required without a back-channel logout URI`},
			{"unknown scope", func(s *clients.Spec) { s.Scopes = []string{"openid", "admin"} },
				`unknown scope "admin"`},
			{"scope differing in case", func(s *clients.Spec) { s.Scopes = []string{"openid", "Profile"} },
				`unknown scope "Profile"`},
			{"no openid", func(s *clients.Spec) { s.Scopes = []string{"profile"} },
				`scopes must include openid`},
			{"HS256", func(s *clients.Spec) { s.SigningAlg = "HS256" }, `signing alg "HS256": want ES256 or RS256`},
			{"alg none", func(s *clients.Spec) { s.SigningAlg = "none" }, `signing alg "none": want ES256 or RS256`},
			{"lower-case alg", func(s *clients.Spec) { s.SigningAlg = "es256" }, `signing alg "es256": want ES256 or RS256`},
			{"unknown auth method", func(s *clients.Spec) { s.AuthMethod = "client_secret_jwt" },
				`auth method "client_secret_jwt": want client_secret_basic, client_secret_post, private_key_jwt or none`},
			{"private_key_jwt without keys", func(s *clients.Spec) { s.AuthMethod = clients.AuthPrivateKeyJWT },
				`private_key_jwt needs jwks or jwks_uri`},
			{"private_key_jwt with a private key", func(s *clients.Spec) {
				s.AuthMethod, s.JWKS = clients.AuthPrivateKeyJWT, jwks(t, true)
			}, `jwks key "rp-key-1" is not a public key`},
			{"private_key_jwt with an empty key set", func(s *clients.Spec) {
				s.AuthMethod, s.JWKS = clients.AuthPrivateKeyJWT, []byte(`{"keys":[]}`)
			}, `jwks is not a JSON Web Key Set with at least one key`},
			{"private_key_jwt with JSON that is no key set", func(s *clients.Spec) {
				s.AuthMethod, s.JWKS = clients.AuthPrivateKeyJWT, []byte(`{"keys":`)
			}, `jwks is not a JSON Web Key Set with at least one key`},
			{"private_key_jwt with an http jwks_uri", func(s *clients.Spec) {
				s.AuthMethod, s.JWKSURI = clients.AuthPrivateKeyJWT, "http://app.example.it/jwks"
			}, `jwks_uri: http is allowed only on loopback`},
			{"private_key_jwt with a custom-scheme jwks_uri", func(s *clients.Spec) {
				s.AuthMethod, s.JWKSURI = clients.AuthPrivateKeyJWT, "it.inps.app:/jwks"
			}, `jwks_uri: must be an absolute https URI`},
			{"http sector identifier", func(s *clients.Spec) { s.SectorIdentifier = "http://sector.example.it" },
				`sector identifier: http is allowed only on loopback`},
			{"sector identifier with fragment", func(s *clients.Spec) { s.SectorIdentifier = "https://sector.example.it/#s" },
				`sector identifier: must not have a fragment`},
			{"negative access token TTL", func(s *clients.Spec) { s.AccessTokenTTL = -time.Second },
				`access token TTL must not be negative`},
			{"negative refresh token TTL", func(s *clients.Spec) { s.RefreshTokenTTL = -time.Nanosecond },
				`refresh token TTL must not be negative`},
			{"negative ID token TTL", func(s *clients.Spec) { s.IDTokenTTL = -time.Hour },
				`ID token TTL must not be negative`},
			{"ID with a space", func(s *clients.Spec) { s.ID = "rp test" }, `id "rp test": at most 128 characters`},
			{"ID with a tab", func(s *clients.Spec) { s.ID = "rp\ttest" }, `id "rp\ttest": at most 128 characters`},
			{"ID with a newline", func(s *clients.Spec) { s.ID = "rp\ntest" }, `id "rp\ntest": at most 128 characters`},
			{"ID with a colon", func(s *clients.Spec) { s.ID = "rp:test" }, `id "rp:test": at most 128 characters`},
			{"ID with a slash", func(s *clients.Spec) { s.ID = "rp/test" }, `id "rp/test": at most 128 characters`},
			{"ID with a question mark", func(s *clients.Spec) { s.ID = "rp?test" }, `id "rp?test": at most 128 characters`},
			{"ID with a hash", func(s *clients.Spec) { s.ID = "rp#test" }, `id "rp#test": at most 128 characters`},
			{"ID of 129 characters", func(s *clients.Spec) { s.ID = strings.Repeat("a", 129) }, `id "aaaa`},
		}
		// One store for all cases (a fresh PostgreSQL schema per case is slow);
		// each case has its own client ID and looks only for it.
		store := open(t)
		shared := func(testing.TB) storage.Clients { return store }
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := newEnv(t, shared)
				spec := valid()
				spec.ID = fmt.Sprintf("rp-case-%d", i)
				tc.edit(&spec)
				c, secret, err := e.reg.Create(context.Background(), spec)
				if err == nil {
					t.Fatalf("created %+v", c)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %q does not contain %q", err, tc.want)
				}
				if n := strings.Count(err.Error(), "\n") + 1; n != 1 {
					t.Errorf("error reports %d problems, want 1: %q", n, err)
				}
				if secret != "" || c.ID != "" {
					t.Errorf("refusal returned client %q and a secret", c.ID)
				}
				if got, err := e.store.GetClient(context.Background(), spec.ID); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("refused client stored: %+v, %v", got, err)
				}
			})
		}
	})
}

// TestCreateReportsEveryProblem: one error lists every bad setting (an
// administrator fixes them in one go).
func TestCreateReportsEveryProblem(t *testing.T) {
	e := newEnv(t, func(tb testing.TB) storage.Clients { return storagetest.SQLite(tb) })
	_, _, err := e.reg.Create(context.Background(), clients.Spec{
		ID: "a b", RedirectURIs: []string{"http://app.example.it/cb"}, Scopes: []string{"admin"},
		SigningAlg: "HS256", AuthMethod: "magic", IDTokenTTL: -1,
	})
	if err == nil {
		t.Fatal("created")
	}
	for _, want := range []string{`id "a b"`, `redirect URI "http://app.example.it/cb"`, `unknown scope "admin"`,
		`scopes must include openid`, `signing alg "HS256"`, `auth method "magic"`, `ID token TTL must not be negative`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not report %s", err, want)
		}
	}
}

// TestCreateAccepts: what a client may register, and what it gets.
func TestCreateAccepts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(testing.TB) storage.Clients) {
		pub := jwks(t, false)
		cases := []struct {
			name       string
			spec       clients.Spec
			wantScopes []string
			wantGrants []string
			wantAlg    string
			wantAuth   string
			wantPublic bool
			wantSecret bool
		}{
			{"defaults", clients.Spec{RedirectURIs: []string{"https://app.example.it/cb"}},
				clients.DefaultScopes, []string{"authorization_code", "refresh_token"}, "ES256", clients.AuthSecretBasic, false, true},
			{"no offline_access: no refresh tokens", clients.Spec{RedirectURIs: []string{"https://app.example.it/cb"}, Scopes: []string{"openid", "profile"}},
				[]string{"openid", "profile"}, []string{"authorization_code"}, "ES256", clients.AuthSecretBasic, false, true},
			{"offline_access: refresh tokens", clients.Spec{RedirectURIs: []string{"https://app.example.it/cb"}, Scopes: []string{"openid", "offline_access", "inps.dispositivo"}},
				[]string{"openid", "offline_access", "inps.dispositivo"}, []string{"authorization_code", "refresh_token"}, "ES256", clients.AuthSecretBasic, false, true},
			{"client_secret_post, RS256", clients.Spec{RedirectURIs: []string{"https://app.example.it/cb"}, AuthMethod: clients.AuthSecretPost, SigningAlg: "RS256"},
				clients.DefaultScopes, []string{"authorization_code", "refresh_token"}, "RS256", clients.AuthSecretPost, false, true},
			{"public native client: loopback and private-use scheme", clients.Spec{
				AuthMethod:             clients.AuthNone,
				RedirectURIs:           []string{"http://127.0.0.1:51004/cb", "http://[::1]/cb", "http://localhost:8080/cb", "it.inps.app:/oauth2redirect"},
				PostLogoutRedirectURIs: []string{"it.inps.app:/bye"},
			}, clients.DefaultScopes, []string{"authorization_code", "refresh_token"}, "ES256", clients.AuthNone, true, false},
			{"back-channel logout, https and session required", clients.Spec{RedirectURIs: []string{"https://app.example.it/cb"},
				BackchannelLogoutURI: "https://app.example.it/logout/backchannel?tenant=inps", BackchannelLogoutSessionRequired: true},
				clients.DefaultScopes, []string{"authorization_code", "refresh_token"}, "ES256", clients.AuthSecretBasic, false, true},
			{"confidential client on loopback http", clients.Spec{RedirectURIs: []string{"http://127.0.0.2:9000/cb"}, PostLogoutRedirectURIs: []string{"http://localhost/bye"},
				BackchannelLogoutURI: "http://127.0.0.1:9000/bcl"},
				clients.DefaultScopes, []string{"authorization_code", "refresh_token"}, "ES256", clients.AuthSecretBasic, false, true},
			{"private_key_jwt with a public JWKS", clients.Spec{RedirectURIs: []string{"https://app.example.it/cb"}, AuthMethod: clients.AuthPrivateKeyJWT, JWKS: pub},
				clients.DefaultScopes, []string{"authorization_code", "refresh_token"}, "ES256", clients.AuthPrivateKeyJWT, false, false},
			{"private_key_jwt with a jwks_uri", clients.Spec{RedirectURIs: []string{"https://app.example.it/cb"}, AuthMethod: clients.AuthPrivateKeyJWT, JWKSURI: "https://app.example.it/jwks"},
				clients.DefaultScopes, []string{"authorization_code", "refresh_token"}, "ES256", clients.AuthPrivateKeyJWT, false, false},
			{"ID of 128 characters, sector, TTLs", clients.Spec{ID: strings.Repeat("a", 128), RedirectURIs: []string{"https://app.example.it/cb"},
				SectorIdentifier: "https://sector.example.it/uris.json", AccessTokenTTL: time.Minute, RefreshTokenTTL: time.Hour, IDTokenTTL: 0},
				clients.DefaultScopes, []string{"authorization_code", "refresh_token"}, "ES256", clients.AuthSecretBasic, false, true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := newEnv(t, open)
				ctx := context.Background()
				c, secret, err := e.reg.Create(ctx, tc.spec)
				if err != nil {
					t.Fatal(err)
				}
				if tc.spec.ID != "" && c.ID != tc.spec.ID {
					t.Errorf("id %q, want %q", c.ID, tc.spec.ID)
				}
				if tc.spec.ID == "" && (!strings.HasPrefix(c.ID, "rp-") || len(c.ID) != len("rp-")+16) {
					t.Errorf("generated id %q, want rp- and 16 characters", c.ID)
				}
				got, err := e.store.GetClient(ctx, c.ID)
				if err != nil {
					t.Fatal(err)
				}
				checks := []struct {
					what      string
					got, want any
				}{
					{"scopes", got.Scopes, tc.wantScopes},
					{"grant types", got.GrantTypes, tc.wantGrants},
					{"response types", got.ResponseTypes, []string{"code"}},
					{"alg", got.IDTokenSigningAlg, tc.wantAlg},
					{"auth method", got.TokenEndpointAuthMethod, tc.wantAuth},
					{"public", got.Public, tc.wantPublic},
					{"redirect URIs", got.RedirectURIs, tc.spec.RedirectURIs},
					{"jwks_uri", got.JWKSURI, tc.spec.JWKSURI},
					{"sector", got.SectorIdentifier, tc.spec.SectorIdentifier},
					{"back-channel logout URI", got.BackchannelLogoutURI, tc.spec.BackchannelLogoutURI},
					{"back-channel logout session required", got.BackchannelLogoutSessionRequired, tc.spec.BackchannelLogoutSessionRequired},
					{"access TTL", got.AccessTokenTTL, tc.spec.AccessTokenTTL},
					{"refresh TTL", got.RefreshTokenTTL, tc.spec.RefreshTokenTTL},
					{"ID TTL", got.IDTokenTTL, tc.spec.IDTokenTTL},
					{"created", got.CreatedAt.Equal(e.now), true},
					{"secret shown", secret != "", tc.wantSecret},
					{"secret hash stored", len(got.SecretHash) > 0, tc.wantSecret},
				}
				for _, ck := range checks {
					if !equal(ck.got, ck.want) {
						t.Errorf("%s = %v, want %v", ck.what, ck.got, ck.want)
					}
				}
				if len(tc.spec.PostLogoutRedirectURIs) > 0 && !slices.Equal(got.PostLogoutRedirectURIs, tc.spec.PostLogoutRedirectURIs) {
					t.Errorf("post-logout URIs %v", got.PostLogoutRedirectURIs)
				}
				if len(tc.spec.JWKS) > 0 && !bytes.Equal(got.JWKS, tc.spec.JWKS) {
					t.Errorf("jwks %s", got.JWKS)
				}
			})
		}
	})
}

func equal(a, b any) bool {
	as, aok := a.([]string)
	bs, bok := b.([]string)
	if aok || bok {
		return slices.Equal(as, bs)
	}
	return a == b
}

// TestCreateDefaultScopesNotShared: a client's default scopes are its own
// copy; changing them does not change DefaultScopes, and so the next client's.
func TestCreateDefaultScopesNotShared(t *testing.T) {
	e := newEnv(t, func(tb testing.TB) storage.Clients { return storagetest.SQLite(tb) })
	want := slices.Clone(clients.DefaultScopes)
	t.Cleanup(func() { copy(clients.DefaultScopes, want) })
	c, _, err := e.reg.Create(context.Background(), clients.Spec{RedirectURIs: []string{"https://app.example.it/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	c.Scopes[0] = "changed"
	if !slices.Equal(clients.DefaultScopes, want) {
		t.Fatalf("DefaultScopes changed through a client: %v", clients.DefaultScopes)
	}
}

// TestDefaultScopes: every scope but the elevated one.
func TestDefaultScopes(t *testing.T) {
	want := slices.DeleteFunc(slices.Clone(clients.Scopes), func(s string) bool { return s == "inps.dispositivo" })
	if !slices.Equal(clients.DefaultScopes, want) {
		t.Errorf("DefaultScopes %v, want %v", clients.DefaultScopes, want)
	}
}

// TestCreateIDTaken: a second client with the same ID is refused by name.
func TestCreateIDTaken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(testing.TB) storage.Clients) {
		e := newEnv(t, open)
		ctx := context.Background()
		if _, _, err := e.reg.Create(ctx, valid()); err != nil {
			t.Fatal(err)
		}
		_, secret, err := e.reg.Create(ctx, valid())
		if err == nil || err.Error() != `clients: a client with id "rp-test" exists` {
			t.Fatalf("second create: %v", err)
		}
		if secret != "" {
			t.Error("refused create returned a secret")
		}
	})
}

// TestSecrets: a secret is issued only to a secret-authenticated client,
// shown once, and stored only as its keyed hash; rotation replaces it.
func TestSecrets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(testing.TB) storage.Clients) {
		e := newEnv(t, open)
		ctx := context.Background()
		spec := valid()
		c, secret, err := e.reg.Create(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(secret)
		if err != nil || len(raw) != 32 {
			t.Fatalf("secret %q is not 256 bits in base64url: %v", secret, err)
		}
		stored, err := e.store.GetClient(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := hmacSHA256(hasherKey, secret); !bytes.Equal(stored.SecretHash, want) {
			t.Fatalf("stored hash %x, want HMAC-SHA256 under the hasher key %x", stored.SecretHash, want)
		}
		if bytes.Contains(stored.SecretHash, []byte(secret)) || bytes.Contains(stored.SecretHash, raw) {
			t.Fatal("the secret is stored in clear")
		}
		if err := e.hasher.Compare(ctx, stored.SecretHash, []byte(secret)); err != nil {
			t.Fatalf("the issued secret does not verify: %v", err)
		}

		spec.ID = "rp-other"
		_, other, err := e.reg.Create(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if other == secret {
			t.Fatal("two clients got the same secret")
		}

		e.now = e.now.Add(time.Hour)
		fresh, err := e.reg.RotateSecret(ctx, c.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if fresh == "" || fresh == secret {
			t.Fatalf("rotated secret %q", fresh)
		}
		rotated, err := e.store.GetClient(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.hasher.Compare(ctx, rotated.SecretHash, []byte(fresh)); err != nil {
			t.Errorf("the new secret does not verify: %v", err)
		}
		if err := e.hasher.Compare(ctx, rotated.SecretHash, []byte(secret)); err == nil {
			t.Error("the old secret still verifies after rotation")
		}
		if !rotated.UpdatedAt.Equal(e.now) || !rotated.CreatedAt.Equal(stored.CreatedAt) {
			t.Errorf("after rotation created %v updated %v, want %v and %v", rotated.CreatedAt, rotated.UpdatedAt, stored.CreatedAt, e.now)
		}
		if !slices.Equal(rotated.RedirectURIs, stored.RedirectURIs) || rotated.TokenEndpointAuthMethod != stored.TokenEndpointAuthMethod {
			t.Errorf("rotation changed more than the secret: %+v", rotated)
		}
	})
}

// TestRotateSecretRefuses: a client without a secret gets none by rotation,
// and an unknown client is not found.
func TestRotateSecretRefuses(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(testing.TB) storage.Clients) {
		cases := []struct {
			name string
			spec clients.Spec
			want string
		}{
			{"public client", clients.Spec{ID: "rp-public", AuthMethod: clients.AuthNone, RedirectURIs: []string{"it.inps.app:/cb"}},
				`token_endpoint_auth_method: "rp-public" authenticates with none, not a secret`},
			{"private_key_jwt client", clients.Spec{ID: "rp-jwt", AuthMethod: clients.AuthPrivateKeyJWT, JWKSURI: "https://app.example.it/jwks", RedirectURIs: []string{"https://app.example.it/cb"}},
				`token_endpoint_auth_method: "rp-jwt" authenticates with private_key_jwt, not a secret`},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := newEnv(t, open)
				ctx := context.Background()
				if _, _, err := e.reg.Create(ctx, tc.spec); err != nil {
					t.Fatal(err)
				}
				secret, err := e.reg.RotateSecret(ctx, tc.spec.ID, 0)
				if err == nil || err.Error() != tc.want {
					t.Fatalf("rotate: %q, %v; want error %q", secret, err, tc.want)
				}
				if secret != "" {
					t.Error("refused rotation returned a secret")
				}
				got, err := e.store.GetClient(ctx, tc.spec.ID)
				if err != nil {
					t.Fatal(err)
				}
				if len(got.SecretHash) != 0 {
					t.Error("refused rotation stored a secret hash")
				}
			})
		}
		t.Run("unknown client", func(t *testing.T) {
			e := newEnv(t, open)
			secret, err := e.reg.RotateSecret(context.Background(), "rp-nobody", 0)
			if !errors.Is(err, storage.ErrNotFound) || secret != "" {
				t.Fatalf("rotate unknown: %q, %v; want storage.ErrNotFound", secret, err)
			}
		})
	})
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func TestNewHasherKeyLength(t *testing.T) {
	for _, n := range []int{0, 16, 31, 32, 64} {
		_, err := clients.NewHasher(make([]byte, n))
		if ok := n >= 32; (err == nil) != ok {
			t.Errorf("key of %d bytes: err %v, want accepted %v", n, err, ok)
		}
	}
}

// TestHasherVector checks Hash against RFC 4231 test case 6 (a key longer than the block).
func TestHasherVector(t *testing.T) {
	h, err := clients.NewHasher(bytes.Repeat([]byte{0xaa}, 131))
	if err != nil {
		t.Fatal(err)
	}
	got, err := h.Hash(context.Background(), []byte("Test Using Larger Than Block-Size Key - Hash Key First"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"; hex.EncodeToString(got) != want {
		t.Errorf("HMAC-SHA256 %x, want %s", got, want)
	}
}

func TestHasherCompare(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte{7}, 32)
	h, err := clients.NewHasher(key)
	if err != nil {
		t.Fatal(err)
	}
	key[0] = 8 // the hasher keeps its own copy
	hash, _ := h.Hash(ctx, []byte("right secret"))
	other, _ := clients.NewHasher(bytes.Repeat([]byte{9}, 32))
	otherHash, _ := other.Hash(ctx, []byte("right secret"))
	cases := []struct {
		name   string
		hash   []byte
		secret string
		ok     bool
	}{
		{"right secret", hash, "right secret", true},
		{"wrong secret", hash, "wrong secret", false},
		{"secret with a suffix", hash, "right secret ", false},
		{"empty secret", hash, "", false},
		{"hash under another key", otherHash, "right secret", false},
		{"truncated hash", hash[:16], "right secret", false},
		{"empty hash", nil, "right secret", false},
		{"the secret as its own hash", []byte("right secret"), "right secret", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := h.Compare(ctx, tc.hash, []byte(tc.secret))
			if (err == nil) != tc.ok {
				t.Fatalf("Compare: %v, want ok %v", err, tc.ok)
			}
			if !tc.ok && err.Error() != "clients: secret mismatch" {
				t.Errorf("error %q", err)
			}
		})
	}
	if want := hmacSHA256(bytes.Repeat([]byte{7}, 32), "right secret"); !bytes.Equal(hash, want) {
		t.Error("changing the caller's key slice changed the hasher")
	}
}

// TestEnsure: a built-in client is created with the secret given, refreshed
// by a second Ensure (every node at start), and refused a weak secret.
func TestEnsure(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(testing.TB) storage.Clients) {
		e := newEnv(t, open)
		ctx := context.Background()
		secret := strings.Repeat("s", 32)
		spec := clients.Spec{ID: "ponte-account", Name: "Account", RedirectURIs: []string{"https://login.inps.it/account/callback"}}
		if err := e.reg.Ensure(ctx, spec, secret); err != nil {
			t.Fatal(err)
		}
		first, _ := e.store.GetClient(ctx, "ponte-account")
		e.now = e.now.Add(time.Hour)
		spec.RedirectURIs = []string{"https://login.inps.it/account/cb2"}
		if err := e.reg.Ensure(ctx, spec, secret); err != nil {
			t.Fatal(err)
		}
		c, err := e.store.GetClient(ctx, "ponte-account")
		if err != nil {
			t.Fatal(err)
		}
		if !c.CreatedAt.Equal(first.CreatedAt) || !c.UpdatedAt.After(first.UpdatedAt) || c.RedirectURIs[0] != "https://login.inps.it/account/cb2" {
			t.Errorf("second Ensure: created %v updated %v uris %v", c.CreatedAt, c.UpdatedAt, c.RedirectURIs)
		}
		if e.hasher.Compare(ctx, c.SecretHash, []byte(secret)) != nil || e.hasher.Compare(ctx, c.SecretHash, []byte(secret+"x")) == nil {
			t.Error("the stored hash is not the given secret's")
		}
		for name, tc := range map[string]struct {
			spec   clients.Spec
			secret string
		}{
			"short secret": {spec, "short"},
			"public":       {clients.Spec{ID: "x", RedirectURIs: spec.RedirectURIs, AuthMethod: clients.AuthNone}, secret},
			"bad spec":     {clients.Spec{ID: "x", RedirectURIs: []string{"http://example.com/cb"}}, secret},
		} {
			if err := e.reg.Ensure(ctx, tc.spec, tc.secret); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
	})
}
