// Package clients registers OpenID Connect relying parties: it validates a
// client's settings, generates its secret (256 bits) and stores only a keyed
// hash of it. The same Hasher checks secrets at the token endpoint, so a secret
// costs one HMAC to verify rather than a bcrypt round.
package clients

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/ponte-id/ponte/internal/fields"
	"github.com/ponte-id/ponte/storage"
)

// Token endpoint authentication methods.
const (
	AuthSecretBasic   = "client_secret_basic"
	AuthSecretPost    = "client_secret_post"
	AuthPrivateKeyJWT = "private_key_jwt"
	AuthNone          = "none"
)

// Limits of a client's settings.
const (
	// MaxSecretOverlap bounds how long a rotated secret keeps working.
	MaxSecretOverlap = 30 * 24 * time.Hour
	// MaxTokenTTL bounds a client's own token lifetimes.
	MaxTokenTTL = 90 * 24 * time.Hour
	// MaxURIs bounds each list of URIs.
	MaxURIs = 50
	// MaxName bounds the display name.
	MaxName = 200
)

// Scopes is every scope Ponte knows; a client may be allowed a subset.
var Scopes = []string{
	"openid", "offline_access", "profile", "email", "phone", "fiscal_number",
	"inps.consultazione", "inps.dispositivo",
}

// DefaultScopes are given to a client created without a scope list: all but the elevated scope.
var DefaultScopes = []string{
	"openid", "offline_access", "profile", "email", "phone", "fiscal_number", "inps.consultazione",
}

// Hasher hashes and checks client secrets with HMAC-SHA256 under a server key.
// It implements fosite.Hasher.
type Hasher struct{ key []byte }

// NewHasher returns a Hasher keyed by key (at least 32 bytes).
func NewHasher(key []byte) (*Hasher, error) {
	if len(key) < 32 {
		return nil, errors.New("clients: hasher key must be at least 32 bytes")
	}
	return &Hasher{key: slices.Clone(key)}, nil
}

// Hash returns the keyed hash of data.
func (h *Hasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	m := hmac.New(sha256.New, h.key)
	m.Write(data)
	return m.Sum(nil), nil
}

// Compare checks data against hash in constant time.
func (h *Hasher) Compare(ctx context.Context, hash, data []byte) error {
	want, _ := h.Hash(ctx, data)
	if !hmac.Equal(want, hash) {
		return errors.New("clients: secret mismatch")
	}
	return nil
}

// Spec is what an administrator asks for when registering a client.
type Spec struct {
	ID                     string
	Name                   string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// BackchannelLogoutURI is where the client takes logout tokens (OpenID
	// Connect Back-Channel Logout 1.0): absolute https, or http on loopback
	// (development), without fragment. Empty: no back-channel logout.
	BackchannelLogoutURI string
	// BackchannelLogoutSessionRequired: the client needs the sid in logout
	// tokens (Ponte always sends it; the flag is recorded for the client).
	BackchannelLogoutSessionRequired bool
	// Scopes the client may request; DefaultScopes if empty.
	Scopes []string
	// AuthMethod is one of the Auth* constants; client_secret_basic if empty.
	AuthMethod string
	// JWKS is the client's public key set (JSON) for private_key_jwt.
	JWKS []byte
	// JWKSURI is where the client publishes its keys, for private_key_jwt.
	JWKSURI string
	// SigningAlg for ID tokens: ES256 (default) or RS256.
	SigningAlg string
	// SectorIdentifier, when set, gives the client pairwise subjects.
	SectorIdentifier string
	// PKCEExempt lets a legacy confidential client that cannot send PKCE use
	// the code flow without it. Ponte otherwise requires PKCE of every client
	// (RFC 9700 §2.1.1); a public client can never be exempted.
	PKCEExempt      bool
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	IDTokenTTL      time.Duration
}

// existsError refuses a client ID that is taken; it is a storage.ErrConflict.
type existsError struct{ id string }

func (e existsError) Error() string { return fmt.Sprintf("clients: a client with id %q exists", e.id) }
func (e existsError) Unwrap() error { return storage.ErrConflict }

// Registry creates and manages clients in storage.
type Registry struct {
	store  storage.Clients
	hasher *Hasher
	now    func() time.Time
}

// NewRegistry returns a Registry; now may be nil (time.Now).
func NewRegistry(store storage.Clients, hasher *Hasher, now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{store: store, hasher: hasher, now: now}
}

// Create validates spec, stores the client and returns it with its secret in
// clear (empty for public and private_key_jwt clients): the only time it is shown.
func (r *Registry) Create(ctx context.Context, spec Spec) (storage.Client, string, error) {
	c, err := spec.client()
	if err != nil {
		return storage.Client{}, "", err
	}
	var secret string
	if c.TokenEndpointAuthMethod == AuthSecretBasic || c.TokenEndpointAuthMethod == AuthSecretPost {
		secret, c.SecretHash, err = r.newSecret(ctx)
		if err != nil {
			return storage.Client{}, "", err
		}
	}
	now := r.now().UTC()
	c.CreatedAt, c.UpdatedAt = now, now
	if err := r.store.CreateClient(ctx, c); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return storage.Client{}, "", existsError{c.ID}
		}
		return storage.Client{}, "", fmt.Errorf("clients: create: %w", err)
	}
	return c, secret, nil
}

// RotateSecret replaces a confidential client's secret and returns the new
// one. The old secret keeps working for overlap (at most MaxSecretOverlap;
// zero ends it at once), so a relying party can move to the new one without
// downtime; a secret an earlier rotation kept is dropped.
func (r *Registry) RotateSecret(ctx context.Context, id string, overlap time.Duration) (string, error) {
	if overlap < 0 || overlap > MaxSecretOverlap {
		return "", fields.One("overlap", "must be between 0 and %s", MaxSecretOverlap)
	}
	secret, hash, err := r.newSecret(ctx)
	if err != nil {
		return "", err
	}
	err = r.store.UpdateClient(ctx, id, func(c storage.Client) (storage.Client, error) {
		if !usesSecret(c.TokenEndpointAuthMethod) {
			return c, fields.One("token_endpoint_auth_method", "%q authenticates with %s, not a secret", id, c.TokenEndpointAuthMethod)
		}
		now := r.now().UTC()
		c.PreviousSecretHash, c.PreviousSecretExpiresAt = nil, time.Time{}
		if overlap > 0 {
			c.PreviousSecretHash, c.PreviousSecretExpiresAt = c.SecretHash, now.Add(overlap)
		}
		c.SecretHash, c.UpdatedAt = hash, now
		return c, nil
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// Update replaces a client's settings with spec (spec.ID is ignored: id is
// the client). Its secret is kept while it authenticates with one, dropped
// when it no longer does; a client that moves to a secret method gets a new
// secret, returned (the only time it is shown). The creation time stays.
func (r *Registry) Update(ctx context.Context, id string, spec Spec) (storage.Client, string, error) {
	spec.ID = id
	c, err := spec.client()
	if err != nil {
		return storage.Client{}, "", err
	}
	var secret string
	var newHash []byte
	if usesSecret(c.TokenEndpointAuthMethod) {
		if secret, newHash, err = r.newSecret(ctx); err != nil {
			return storage.Client{}, "", err
		}
	}
	var out storage.Client
	err = r.store.UpdateClient(ctx, id, func(old storage.Client) (storage.Client, error) {
		next := c
		next.CreatedAt, next.UpdatedAt = old.CreatedAt, r.now().UTC()
		switch {
		case !usesSecret(next.TokenEndpointAuthMethod):
			secret = ""
		case len(old.SecretHash) > 0:
			next.SecretHash, next.PreviousSecretHash, next.PreviousSecretExpiresAt = old.SecretHash, old.PreviousSecretHash, old.PreviousSecretExpiresAt
			secret = ""
		default:
			next.SecretHash = newHash
		}
		out = next
		return next, nil
	})
	if err != nil {
		return storage.Client{}, "", err
	}
	return out, secret, nil
}

func usesSecret(method string) bool { return method == AuthSecretBasic || method == AuthSecretPost }

func (r *Registry) newSecret(ctx context.Context) (string, []byte, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, fmt.Errorf("clients: secret: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(raw)
	hash, _ := r.hasher.Hash(ctx, []byte(secret))
	return secret, hash, nil
}

// client validates a spec and turns it into a storage record, reporting every
// problem by the field the admin API names it with (a *fields.Error).
func (s Spec) client() (storage.Client, error) {
	errs := fields.Errors{}
	if s.ID == "" {
		raw := make([]byte, 12)
		_, _ = rand.Read(raw)
		s.ID = "rp-" + base64.RawURLEncoding.EncodeToString(raw)
	}
	if len(s.ID) > 128 || strings.ContainsAny(s.ID, " \t\r\n:/?#") {
		errs.Add("client_id", "id %q: at most 128 characters, no spaces and none of : / ? #", s.ID)
	}
	if len(s.Name) > MaxName {
		errs.Add("client_name", "at most %d characters", MaxName)
	}
	if s.AuthMethod == "" {
		s.AuthMethod = AuthSecretBasic
	}
	switch s.AuthMethod {
	case AuthSecretBasic, AuthSecretPost, AuthNone:
	case AuthPrivateKeyJWT:
		if len(s.JWKS) == 0 && s.JWKSURI == "" {
			errs.Add("jwks", "private_key_jwt needs jwks or jwks_uri")
		}
		if len(s.JWKS) > 0 {
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(s.JWKS, &set); err != nil || len(set.Keys) == 0 {
				errs.Add("jwks", "jwks is not a JSON Web Key Set with at least one key")
			} else {
				for _, k := range set.Keys {
					if !k.IsPublic() {
						errs.Add("jwks", "jwks key %q is not a public key", k.KeyID)
					}
				}
			}
		}
		if s.JWKSURI != "" {
			if err := checkURI(s.JWKSURI, false); err != nil {
				errs.Add("jwks_uri", "jwks_uri: %v", err)
			}
		}
	default:
		errs.Add("token_endpoint_auth_method", "auth method %q: want %s, %s, %s or %s", s.AuthMethod, AuthSecretBasic, AuthSecretPost, AuthPrivateKeyJWT, AuthNone)
	}
	if s.PKCEExempt && s.AuthMethod == AuthNone {
		errs.Add("pkce_exempt", "a public client cannot be exempted from PKCE (RFC 9700 §2.1.1)")
	}
	if len(s.RedirectURIs) == 0 {
		errs.Add("redirect_uris", "at least one redirect URI is required")
	}
	if len(s.RedirectURIs) > MaxURIs {
		errs.Add("redirect_uris", "at most %d", MaxURIs)
	}
	for i, u := range s.RedirectURIs {
		if err := checkURI(u, s.AuthMethod == AuthNone); err != nil {
			errs.Add(fmt.Sprintf("redirect_uris[%d]", i), "redirect URI %q: %v", u, err)
		}
	}
	if len(s.PostLogoutRedirectURIs) > MaxURIs {
		errs.Add("post_logout_redirect_uris", "at most %d", MaxURIs)
	}
	for i, u := range s.PostLogoutRedirectURIs {
		if err := checkURI(u, s.AuthMethod == AuthNone); err != nil {
			errs.Add(fmt.Sprintf("post_logout_redirect_uris[%d]", i), "post-logout redirect URI %q: %v", u, err)
		}
	}
	if s.BackchannelLogoutURI != "" {
		// Back-Channel Logout 1.0 §2.2: an absolute URI, no fragment; Ponte
		// posts only to it, and follows no redirect.
		if err := checkURI(s.BackchannelLogoutURI, false); err != nil {
			errs.Add("backchannel_logout_uri", "back-channel logout URI %q: %v", s.BackchannelLogoutURI, err)
		}
	} else if s.BackchannelLogoutSessionRequired {
		errs.Add("backchannel_logout_session_required", "back-channel logout session required without a back-channel logout URI")
	}
	if len(s.Scopes) == 0 {
		s.Scopes = slices.Clone(DefaultScopes)
	}
	for i, sc := range s.Scopes {
		if !slices.Contains(Scopes, sc) {
			errs.Add(fmt.Sprintf("scopes[%d]", i), "unknown scope %q (known: %s)", sc, strings.Join(Scopes, " "))
		}
	}
	if !slices.Contains(s.Scopes, "openid") {
		errs.Add("scopes", "scopes must include openid")
	}
	if s.SigningAlg == "" {
		s.SigningAlg = "ES256"
	}
	if s.SigningAlg != "ES256" && s.SigningAlg != "RS256" {
		errs.Add("id_token_signed_response_alg", "signing alg %q: want ES256 or RS256", s.SigningAlg)
	}
	if s.SectorIdentifier != "" {
		if err := checkURI(s.SectorIdentifier, false); err != nil {
			errs.Add("sector_identifier_uri", "sector identifier: %v", err)
		}
	}
	for _, ttl := range []struct {
		field, name string
		d           time.Duration
	}{{"access_token_ttl", "access token TTL", s.AccessTokenTTL}, {"refresh_token_ttl", "refresh token TTL", s.RefreshTokenTTL}, {"id_token_ttl", "ID token TTL", s.IDTokenTTL}} {
		if ttl.d < 0 {
			errs.Add(ttl.field, "%s must not be negative", ttl.name)
		}
		if ttl.d > MaxTokenTTL {
			errs.Add(ttl.field, "%s must be at most %s", ttl.name, MaxTokenTTL)
		}
	}
	if err := errs.Err(); err != nil {
		return storage.Client{}, err
	}
	grants := []string{"authorization_code"}
	if slices.Contains(s.Scopes, "offline_access") {
		grants = append(grants, "refresh_token")
	}
	return storage.Client{
		ID: s.ID, Name: s.Name, RedirectURIs: s.RedirectURIs, PostLogoutRedirectURIs: s.PostLogoutRedirectURIs,
		BackchannelLogoutURI: s.BackchannelLogoutURI, BackchannelLogoutSessionRequired: s.BackchannelLogoutSessionRequired,
		GrantTypes: grants, ResponseTypes: []string{"code"}, Scopes: s.Scopes,
		Public: s.AuthMethod == AuthNone, TokenEndpointAuthMethod: s.AuthMethod,
		JWKS: s.JWKS, JWKSURI: s.JWKSURI, IDTokenSigningAlg: s.SigningAlg, SectorIdentifier: s.SectorIdentifier,
		PKCEExempt: s.PKCEExempt, AccessTokenTTL: s.AccessTokenTTL, RefreshTokenTTL: s.RefreshTokenTTL, IDTokenTTL: s.IDTokenTTL,
	}, nil
}

// checkURI accepts an absolute URI without fragment; http only on loopback.
// Public (native) clients may also use a private-use scheme (RFC 8252 §7.1).
func checkURI(raw string, allowCustomScheme bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URI")
	}
	switch {
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return errors.New("must not have a fragment")
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return errors.New("http is allowed only on loopback; use https")
	case allowCustomScheme && strings.Contains(u.Scheme, "."):
		return nil
	}
	return errors.New("must be an absolute https URI")
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Ensure registers a client that Ponte itself runs (internal/selfclient), with
// a secret Ponte derives rather than one it generates: every node computes the
// same secret, so each may call Ensure at start. A client with spec.ID that
// exists already gets spec's settings and the secret again; its creation time
// is kept. The secret must be at least 32 characters.
func (r *Registry) Ensure(ctx context.Context, spec Spec, secret string) error {
	if len(secret) < 32 {
		return errors.New("clients: a built-in client's secret must be at least 32 characters")
	}
	if spec.AuthMethod != "" && spec.AuthMethod != AuthSecretBasic && spec.AuthMethod != AuthSecretPost {
		return fmt.Errorf("clients: a built-in client authenticates with a secret, not %s", spec.AuthMethod)
	}
	c, err := spec.client()
	if err != nil {
		return err
	}
	c.SecretHash, _ = r.hasher.Hash(ctx, []byte(secret))
	now := r.now().UTC()
	c.CreatedAt, c.UpdatedAt = now, now
	err = r.store.CreateClient(ctx, c)
	if !errors.Is(err, storage.ErrConflict) {
		if err != nil {
			return fmt.Errorf("clients: create %q: %w", c.ID, err)
		}
		return nil
	}
	err = r.store.UpdateClient(ctx, c.ID, func(old storage.Client) (storage.Client, error) {
		c.CreatedAt = old.CreatedAt
		return c, nil
	})
	if err != nil {
		return fmt.Errorf("clients: update %q: %w", c.ID, err)
	}
	return nil
}
