package keys

import (
	"encoding/json"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// SignJWT signs claims as a compact JWS with the current key of alg (the
// provider default if empty), with the kid of the key and the JOSE header typ
// (logout+jwt for a back-channel logout token: OpenID Connect Back-Channel
// Logout 1.0 §2.4 and RFC 8725 §3.11, so that it cannot pass for an ID token).
func (m *Manager) SignJWT(alg, typ string, claims map[string]any) (string, error) {
	if alg == "" {
		alg = m.opts.DefaultAlg
	}
	k, err := m.current(alg)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("keys: claims: %w", err)
	}
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader(jose.HeaderKey("kid"), k.rec.ID)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: k.signer}, opts)
	if err != nil {
		return "", fmt.Errorf("keys: signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("keys: sign: %w", err)
	}
	return jws.CompactSerialize()
}
