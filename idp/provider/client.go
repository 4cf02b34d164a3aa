package provider

import (
	"crypto/ecdsa"
	"encoding/json"
	"time"

	jose3 "github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"

	"github.com/ponte-id/ponte/storage"
)

// client is a stored relying party seen through fosite's client interfaces.
type client struct {
	storage.Client
	jwks *jose3.JSONWebKeySet
	now  func() time.Time
}

var (
	_ fosite.Client                         = (*client)(nil)
	_ fosite.OpenIDConnectClient            = (*client)(nil)
	_ fosite.ResponseModeClient             = (*client)(nil)
	_ fosite.ClientWithCustomTokenLifespans = (*client)(nil)
	_ fosite.ClientWithSecretRotation       = (*client)(nil)
)

func newClient(c storage.Client, now func() time.Time) *client {
	out := &client{Client: c, now: now}
	if len(c.JWKS) > 0 {
		var set jose3.JSONWebKeySet
		if json.Unmarshal(c.JWKS, &set) == nil {
			out.jwks = &set
		}
	}
	return out
}

func (c *client) GetID() string           { return c.ID }
func (c *client) GetHashedSecret() []byte { return c.SecretHash }

// GetRotatedHashes is the secret a rotation replaced, while its overlap lasts
// (checked at each request, not when the client was read).
func (c *client) GetRotatedHashes() [][]byte {
	if len(c.PreviousSecretHash) == 0 || !c.now().Before(c.PreviousSecretExpiresAt) {
		return nil
	}
	return [][]byte{c.PreviousSecretHash}
}
func (c *client) GetRedirectURIs() []string       { return c.RedirectURIs }
func (c *client) GetGrantTypes() fosite.Arguments { return c.GrantTypes }
func (c *client) GetResponseTypes() fosite.Arguments {
	return c.ResponseTypes
}
func (c *client) GetScopes() fosite.Arguments   { return c.Scopes }
func (c *client) IsPublic() bool                { return c.Public }
func (c *client) GetAudience() fosite.Arguments { return nil }
func (c *client) GetRequestURIs() []string      { return nil }
func (c *client) GetJSONWebKeys() *jose3.JSONWebKeySet {
	return c.jwks
}
func (c *client) GetJSONWebKeysURI() string                { return c.JWKSURI }
func (c *client) GetRequestObjectSigningAlgorithm() string { return "" }
func (c *client) GetTokenEndpointAuthMethod() string       { return c.TokenEndpointAuthMethod }

// GetTokenEndpointAuthSigningAlgorithm is the alg a private_key_jwt assertion
// must use: ES256 for an EC key set, RS256 otherwise.
func (c *client) GetTokenEndpointAuthSigningAlgorithm() string {
	if c.jwks != nil && len(c.jwks.Keys) > 0 {
		if alg := c.jwks.Keys[0].Algorithm; alg != "" {
			return alg
		}
		if _, ok := c.jwks.Keys[0].Key.(*ecdsa.PublicKey); ok {
			return "ES256"
		}
	}
	return "RS256"
}

// GetResponseModes allows the query and form_post response modes.
func (c *client) GetResponseModes() []fosite.ResponseModeType {
	return []fosite.ResponseModeType{fosite.ResponseModeDefault, fosite.ResponseModeQuery, fosite.ResponseModeFormPost}
}

// GetEffectiveLifespan applies the client's own token lifetimes.
func (c *client) GetEffectiveLifespan(_ fosite.GrantType, tt fosite.TokenType, fallback time.Duration) time.Duration {
	var d time.Duration
	switch tt {
	case fosite.AccessToken:
		d = c.AccessTokenTTL
	case fosite.RefreshToken:
		d = c.RefreshTokenTTL
	case fosite.IDToken:
		d = c.IDTokenTTL
	}
	if d > 0 {
		return d
	}
	return fallback
}
