package keys_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite/token/jwt"

	"github.com/ponte-id/ponte/idp/keys"
	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/sqlstore"
	"github.com/ponte-id/ponte/storage/storagetest"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// clock is a settable time source shared by the managers of one test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time   { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time)  { c.mu.Lock(); c.now = t; c.mu.Unlock() }
func newClock(t time.Time) *clock { return &clock{now: t} }
func box(t *testing.T, b byte) *seal.Box {
	t.Helper()
	bx, err := seal.New(bytes.Repeat([]byte{b}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return bx
}

const (
	publishDelay = 10 * time.Minute
	retention    = 2 * time.Hour
)

func manager(t *testing.T, store storage.Keys, bx *seal.Box, c *clock) *keys.Manager {
	t.Helper()
	m, err := keys.New(store, bx, keys.Options{PublishDelay: publishDelay, Retention: retention, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// backends runs fn on SQLite, and on PostgreSQL when PONTE_TEST_POSTGRES_DSN is set.
func backends(t *testing.T, fn func(t *testing.T, store *sqlstore.Store)) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, b.Open(t)) })
	}
}

// twoNodes runs fn with two stores on one database, as two Ponte nodes have.
func twoNodes(t *testing.T, fn func(t *testing.T, a, b *sqlstore.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ponte.db")
		fn(t, storagetest.OpenMigrated(t, path), storagetest.OpenMigrated(t, path))
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := storagetest.PostgresDSN(t)
		fn(t, storagetest.OpenMigrated(t, dsn), storagetest.OpenMigrated(t, dsn))
	})
}

func kids(set jose.JSONWebKeySet) []string {
	var ids []string
	for _, k := range set.Keys {
		ids = append(ids, k.KeyID)
	}
	return ids
}

func TestNewOptions(t *testing.T) {
	store := storagetest.SQLite(t)
	for _, tc := range []struct {
		alg string
		ok  bool
	}{{"", true}, {keys.ES256, true}, {keys.RS256, true}, {"HS256", false}, {"none", false}, {"es256", false}} {
		_, err := keys.New(store, box(t, 1), keys.Options{DefaultAlg: tc.alg})
		if (err == nil) != tc.ok {
			t.Errorf("default alg %q: %v, want ok %v", tc.alg, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), `unsupported default algorithm "`+tc.alg+`"`) {
			t.Errorf("default alg %q: error %q does not name it", tc.alg, err)
		}
	}
}

// TestSealedAtRest: the stored key is the PKCS#8 DER sealed under the master
// key, bound to its kid; nothing of the private key is stored in clear, and
// another master key cannot open it.
func TestSealedAtRest(t *testing.T) {
	backends(t, func(t *testing.T, store *sqlstore.Store) {
		for _, alg := range []string{keys.ES256, keys.RS256} {
			t.Run(alg, func(t *testing.T) {
				ctx := context.Background()
				bx := box(t, 1)
				m := manager(t, store, bx, newClock(t0))
				rec, err := m.Rotate(ctx, alg)
				if err != nil {
					t.Fatal(err)
				}
				stored := storedKey(t, store, rec.ID)
				der, err := bx.Open(stored.Sealed, []byte("signing-key:"+rec.ID))
				if err != nil {
					t.Fatalf("the stored key does not open under the master key and its kid: %v", err)
				}
				priv, err := x509.ParsePKCS8PrivateKey(der)
				if err != nil {
					t.Fatalf("sealed content is not PKCS#8: %v", err)
				}
				if bytes.Contains(stored.Sealed, der[len(der)-32:]) {
					t.Error("the stored blob holds the private key's DER in clear")
				}
				var secret []byte
				switch p := priv.(type) {
				case *ecdsa.PrivateKey:
					secret, _ = p.Bytes()
				case *rsa.PrivateKey:
					secret = p.Primes[0].Bytes()
				}
				if len(secret) == 0 || bytes.Contains(stored.Sealed, secret) {
					t.Error("the stored blob holds the private scalar or prime in clear")
				}
				if got := thumbprint(t, priv.(crypto.Signer).Public()); got != rec.ID {
					t.Errorf("kid %s is not the sealed key's thumbprint %s", rec.ID, got)
				}
				if _, err := bx.Open(stored.Sealed, []byte("signing-key:other")); !errors.Is(err, seal.ErrAuth) {
					t.Errorf("opened under another kid: %v", err)
				}

				err = manager(t, store, box(t, 2), newClock(t0)).Load(ctx)
				if err == nil || !strings.Contains(err.Error(), "keys: open "+rec.ID+" (wrong master key?)") {
					t.Errorf("load with another master key: %v", err)
				}
				for _, k := range listAll(t, store) {
					if err := store.DeleteKey(ctx, k.ID); err != nil {
						t.Fatal(err)
					}
				}
			})
		}
	})
}

// TestSealedBoundToKid: a sealed key moved to another key's record does not open.
func TestSealedBoundToKid(t *testing.T) {
	ctx := context.Background()
	store := storagetest.SQLite(t)
	bx := box(t, 1)
	m := manager(t, store, bx, newClock(t0))
	if err := m.EnsureKeys(ctx, keys.ES256, keys.RS256); err != nil {
		t.Fatal(err)
	}
	all := listAll(t, store)
	if len(all) != 2 {
		t.Fatalf("%d keys, want 2", len(all))
	}
	err := store.UpdateKey(ctx, all[0].ID, func(k storage.SigningKey) (storage.SigningKey, error) {
		k.Sealed = all[1].Sealed
		return k, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(ctx); err == nil || !strings.Contains(err.Error(), "keys: open "+all[0].ID) {
		t.Fatalf("load of a swapped key: %v", err)
	}
}

// TestJWKS: one public key per kid, the kid its RFC 7638 thumbprint, alg and use set.
func TestJWKS(t *testing.T) {
	backends(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		m := manager(t, store, box(t, 1), newClock(t0))
		if err := m.EnsureKeys(ctx, keys.ES256, keys.RS256); err != nil {
			t.Fatal(err)
		}
		set := m.JWKS()
		if len(set.Keys) != 2 {
			t.Fatalf("JWKS has %d keys, want 2: %v", len(set.Keys), kids(set))
		}
		algs := map[string]bool{}
		for _, k := range set.Keys {
			algs[k.Algorithm] = true
			if !k.IsPublic() || !k.Valid() {
				t.Errorf("%s: not a valid public key", k.KeyID)
			}
			if got := thumbprint(t, k.Key); got != k.KeyID {
				t.Errorf("kid %s, thumbprint %s", k.KeyID, got)
			}
			if k.Use != "sig" {
				t.Errorf("%s: use %q", k.KeyID, k.Use)
			}
			raw, err := json.Marshal(k)
			if err != nil {
				t.Fatal(err)
			}
			var fields map[string]any
			if err := json.Unmarshal(raw, &fields); err != nil {
				t.Fatal(err)
			}
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
				if _, ok := fields[private]; ok {
					t.Errorf("%s: published JWK has private member %q", k.KeyID, private)
				}
			}
		}
		if !algs[keys.ES256] || !algs[keys.RS256] {
			t.Errorf("algorithms %v, want ES256 and RS256", algs)
		}
		if got := m.Algorithms(); strings.Join(got, " ") != "ES256 RS256" {
			t.Errorf("Algorithms() = %v", got)
		}

		// EnsureKeys again creates nothing.
		if err := m.EnsureKeys(ctx, keys.ES256, keys.RS256); err != nil {
			t.Fatal(err)
		}
		if n := len(listAll(t, store)); n != 2 {
			t.Errorf("EnsureKeys on a keyed store: %d keys, want 2", n)
		}
		list, err := m.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range list {
			if k.Sealed != nil {
				t.Errorf("List returns %s's sealed key", k.ID)
			}
		}
	})
}

// TestRotation follows one ES256 key's replacement with the clock: the new key
// is published at once and signs only after the publish delay; the old one
// signs until then, stays published for the retention, then is gone from the
// JWKS and, at the next rotation, from storage. The RS256 key is untouched.
func TestRotation(t *testing.T) {
	backends(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		c := newClock(t0)
		m := manager(t, store, box(t, 1), c)
		if err := m.EnsureKeys(ctx, keys.ES256, keys.RS256); err != nil {
			t.Fatal(err)
		}
		oldKid, rsaKid := currentKid(t, m, keys.ES256), currentKid(t, m, keys.RS256)
		oldToken := sign(t, m, keys.ES256)

		rotated := t0.Add(time.Hour)
		c.Set(rotated)
		rec, err := m.Rotate(ctx, keys.ES256)
		if err != nil {
			t.Fatal(err)
		}
		signsFrom := rotated.Add(publishDelay)
		until := signsFrom.Add(retention)
		if !rec.NotBefore.Equal(signsFrom) || rec.State != storage.KeyActive || rec.Algorithm != keys.ES256 || rec.ID == oldKid {
			t.Fatalf("rotated key %+v, want active ES256 signing from %v", rec, signsFrom)
		}
		old := storedKey(t, store, oldKid)
		if old.State != storage.KeyRetired || !old.NotAfter.Equal(until) {
			t.Fatalf("old key %s until %v, want retired until %v", old.State, old.NotAfter, until)
		}
		if k := storedKey(t, store, rsaKid); k.State != storage.KeyActive || !k.NotAfter.IsZero() {
			t.Fatalf("rotating ES256 changed the RS256 key: %+v", k)
		}

		steps := []struct {
			name      string
			at        time.Time
			signer    string
			published []string
		}{
			{"just rotated", rotated, oldKid, []string{rec.ID, oldKid, rsaKid}},
			{"before the publish delay ends", signsFrom.Add(-time.Nanosecond), oldKid, []string{rec.ID, oldKid, rsaKid}},
			{"publish delay over", signsFrom, rec.ID, []string{rec.ID, oldKid, rsaKid}},
			{"last moment of retention", until.Add(-time.Nanosecond), rec.ID, []string{rec.ID, oldKid, rsaKid}},
			{"retention over", until, rec.ID, []string{rec.ID, rsaKid}},
		}
		for _, st := range steps {
			t.Run(st.name, func(t *testing.T) {
				c.Set(st.at)
				if got := currentKid(t, m, keys.ES256); got != st.signer {
					t.Errorf("signs with %s, want %s", got, st.signer)
				}
				if got := currentKid(t, m, keys.RS256); got != rsaKid {
					t.Errorf("RS256 signs with %s, want %s", got, rsaKid)
				}
				if got := kids(m.JWKS()); !sameSet(got, st.published) {
					t.Errorf("published %v, want %v", got, st.published)
				}
				_, err := m.Signer().Decode(ctx, oldToken)
				if oldPublished := slices.Contains(st.published, oldKid); (err == nil) != oldPublished {
					t.Errorf("a token of the old key: decode error %v, old key published %v", err, oldPublished)
				}
			})
		}

		// Another rotation once the old key is past its NotAfter deletes it.
		c.Set(until)
		next, err := m.Rotate(ctx, keys.ES256)
		if err != nil {
			t.Fatal(err)
		}
		var stored []string
		for _, k := range listAll(t, store) {
			stored = append(stored, k.ID)
		}
		if !sameSet(stored, []string{next.ID, rec.ID, rsaKid}) {
			t.Errorf("stored after the second rotation %v, want %v", stored, []string{next.ID, rec.ID, rsaKid})
		}
		if k := storedKey(t, store, rec.ID); k.State != storage.KeyRetired || !k.NotAfter.Equal(until.Add(publishDelay+retention)) {
			t.Errorf("second rotation: previous key %s until %v", k.State, k.NotAfter)
		}
	})
}

// TestNoKey: nothing signs before a key exists or before its NotBefore.
func TestNoKey(t *testing.T) {
	ctx := context.Background()
	store := storagetest.SQLite(t)
	c := newClock(t0)
	m := manager(t, store, box(t, 1), c)
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Signer().Generate(ctx, jwt.MapClaims{"sub": "x"}, &jwt.Headers{}); !errors.Is(err, keys.ErrNoKey) {
		t.Fatalf("sign without keys: %v, want ErrNoKey", err)
	}
	if _, err := m.Rotate(ctx, keys.ES256); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Signer().Generate(ctx, jwt.MapClaims{"sub": "x"}, &jwt.Headers{}); !errors.Is(err, keys.ErrNoKey) {
		t.Fatalf("sign during the publish delay of the only key: %v, want ErrNoKey", err)
	}
	if len(m.Algorithms()) != 0 || len(m.JWKS().Keys) != 1 {
		t.Fatalf("algorithms %v, published %d", m.Algorithms(), len(m.JWKS().Keys))
	}
	if _, err := m.Rotate(ctx, "HS256"); err == nil || !strings.Contains(err.Error(), `unsupported algorithm "HS256"`) {
		t.Fatalf("rotate HS256: %v", err)
	}
	if err := m.EnsureKeys(ctx, "none"); err == nil {
		t.Fatal("EnsureKeys(none) succeeded")
	}
}

// TestTwoNodes: a key rotated in on one node is published by the other after
// a reload, which Refresh does on its own.
func TestTwoNodes(t *testing.T) {
	twoNodes(t, func(t *testing.T, storeA, storeB *sqlstore.Store) {
		ctx := context.Background()
		c := newClock(t0)
		bx := box(t, 1)
		a, b := manager(t, storeA, bx, c), manager(t, storeB, bx, c)
		if err := a.EnsureKeys(ctx, keys.ES256); err != nil {
			t.Fatal(err)
		}
		if err := b.EnsureKeys(ctx, keys.ES256); err != nil {
			t.Fatal(err)
		}
		first := currentKid(t, a, keys.ES256)
		if got := currentKid(t, b, keys.ES256); got != first {
			t.Fatalf("node B made its own key %s instead of using %s", got, first)
		}

		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { b.Refresh(rctx, 10*time.Millisecond); close(done) }()
		defer func() {
			cancel()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Error("Refresh did not return after its context ended")
			}
		}()

		rec, err := a.Rotate(ctx, keys.ES256)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !slices.Contains(kids(b.JWKS()), rec.ID) {
			if time.Now().After(deadline) {
				t.Fatalf("node B never published %s: %v", rec.ID, kids(b.JWKS()))
			}
			time.Sleep(5 * time.Millisecond)
		}
		c.Set(rec.NotBefore)
		if got := currentKid(t, b, keys.ES256); got != rec.ID {
			t.Errorf("node B signs with %s after the delay, want %s", got, rec.ID)
		}
		// A token node B signs verifies on node A.
		tok := sign(t, b, keys.ES256)
		if _, err := a.Signer().Decode(ctx, tok); err != nil {
			t.Errorf("node A rejects node B's token: %v", err)
		}
	})
}

// TestSigner: the header's alg picks the key, the kid is the key's (whatever
// the caller put), the token verifies against the published JWKS alone, and
// Decode refuses what no published key signed.
func TestSigner(t *testing.T) {
	ctx := context.Background()
	store := storagetest.SQLite(t)
	m := manager(t, store, box(t, 1), newClock(t0))
	if err := m.EnsureKeys(ctx, keys.ES256, keys.RS256); err != nil {
		t.Fatal(err)
	}
	set := m.JWKS()
	s := m.Signer()
	for _, tc := range []struct {
		name    string
		alg     any // the header's alg; nil: none
		wantAlg string
	}{
		{"no alg: the default", nil, keys.ES256},
		{"empty alg: the default", "", keys.ES256},
		{"ES256", keys.ES256, keys.ES256},
		{"RS256", keys.RS256, keys.RS256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &jwt.Headers{Extra: map[string]any{"kid": "attacker", "typ": "evil", "x-extra": "kept"}}
			if tc.alg != nil {
				h.Add("alg", tc.alg)
			}
			raw, sig, err := s.Generate(ctx, jwt.MapClaims{"sub": "subject-1", "aud": "rp"}, h)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(raw, "."+sig) || strings.Count(raw, ".") != 2 {
				t.Fatalf("signature %q is not the token's last part", sig)
			}
			jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(tc.wantAlg)})
			if err != nil {
				t.Fatalf("not a compact JWS with alg %s: %v", tc.wantAlg, err)
			}
			hdr := jws.Signatures[0].Header
			if hdr.KeyID != currentKid(t, m, tc.wantAlg) || hdr.Algorithm != tc.wantAlg {
				t.Errorf("header kid %s alg %s, want the current %s key", hdr.KeyID, hdr.Algorithm, tc.wantAlg)
			}
			if hdr.ExtraHeaders["typ"] != "JWT" || hdr.ExtraHeaders["x-extra"] != "kept" {
				t.Errorf("header %v: typ must be JWT, extra headers kept", hdr.ExtraHeaders)
			}
			keysFound := set.Key(hdr.KeyID)
			if len(keysFound) != 1 {
				t.Fatalf("kid %s not in the JWKS", hdr.KeyID)
			}
			payload, err := jws.Verify(keysFound[0].Key)
			if err != nil {
				t.Fatalf("does not verify against the JWKS: %v", err)
			}
			var claims map[string]any
			if err := json.Unmarshal(payload, &claims); err != nil || claims["sub"] != "subject-1" {
				t.Errorf("claims %s", payload)
			}
			got, err := s.Validate(ctx, raw)
			if err != nil || got != sig {
				t.Errorf("Validate: %q, %v; want %q", got, err, sig)
			}
		})
	}

	good := sign(t, m, keys.ES256)
	parts := strings.Split(good, ".")
	rsTok := sign(t, m, keys.RS256)
	rsParts := strings.Split(rsTok, ".")
	esKid := currentKid(t, m, keys.ES256)
	header := func(v map[string]string) string {
		raw, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(raw)
	}
	for _, tc := range []struct {
		name, token, want string
	}{
		{"tampered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"other"}`)) + "." + parts[2], ""},
		{"unknown kid", header(map[string]string{"alg": "ES256", "kid": "nobody", "typ": "JWT"}) + "." + parts[1] + "." + parts[2], `keys: unknown kid "nobody"`},
		{"no kid", header(map[string]string{"alg": "ES256", "typ": "JWT"}) + "." + parts[1] + "." + parts[2], `keys: unknown kid ""`},
		{"RS256 signature under the ES256 kid", header(map[string]string{"alg": "RS256", "kid": esKid, "typ": "JWT"}) + "." + rsParts[1] + "." + rsParts[2],
			`keys: token alg "RS256" does not match key "ES256"`},
		{"HS256 under the ES256 kid", header(map[string]string{"alg": "HS256", "kid": esKid, "typ": "JWT"}) + "." + parts[1] + ".c2ln",
			`keys: token alg "HS256" does not match key "ES256"`},
		{"alg none", header(map[string]string{"alg": "none", "kid": esKid, "typ": "JWT"}) + "." + parts[1] + ".", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Decode(ctx, tc.token); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode: %v, want an error containing %q", err, tc.want)
			}
			if _, err := s.Validate(ctx, tc.token); err == nil {
				t.Error("Validate accepted it")
			}
		})
	}
	if _, _, err := s.Generate(ctx, nil, &jwt.Headers{}); err == nil {
		t.Error("Generate without claims succeeded")
	}
	if _, _, err := s.Generate(ctx, jwt.MapClaims{}, nil); err == nil {
		t.Error("Generate without a header succeeded")
	}
	if _, err := s.GetSignature(ctx, "a.b"); err == nil {
		t.Error("GetSignature of a two-part token succeeded")
	}
	if got, _ := s.GetSignature(ctx, "a.b.c"); got != "c" {
		t.Errorf("GetSignature(a.b.c) = %q", got)
	}
	if n := s.GetSigningMethodLength(ctx); n != 32 {
		t.Errorf("GetSigningMethodLength = %d", n)
	}
	// SHA-256("abc"), FIPS 180-2 appendix B.1.
	if h, _ := s.Hash(ctx, []byte("abc")); base64.RawURLEncoding.EncodeToString(h) != "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0" {
		t.Errorf("Hash(abc) = %x", h)
	}
}

func sign(t *testing.T, m *keys.Manager, alg string) string {
	t.Helper()
	h := &jwt.Headers{}
	h.Add("alg", alg)
	raw, _, err := m.Signer().Generate(context.Background(), jwt.MapClaims{"sub": "subject-1"}, h)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// currentKid is the kid the signer writes for alg now.
func currentKid(t *testing.T, m *keys.Manager, alg string) string {
	t.Helper()
	jws, err := jose.ParseSignedCompact(sign(t, m, alg), []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID
}

func thumbprint(t *testing.T, pub any) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

func listAll(t *testing.T, store storage.Keys) []storage.SigningKey {
	t.Helper()
	recs, err := store.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func storedKey(t *testing.T, store storage.Keys, kid string) storage.SigningKey {
	t.Helper()
	for _, k := range listAll(t, store) {
		if k.ID == kid {
			return k
		}
	}
	t.Fatalf("key %s not stored", kid)
	return storage.SigningKey{}
}

func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}
