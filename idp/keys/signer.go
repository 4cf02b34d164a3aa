package keys

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	jose3 "github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite/token/jwt"
)

// Signer returns the fosite jwt.Signer backed by m.
func (m *Manager) Signer() jwt.Signer { return signer{m} }

// signer adapts a Manager to fosite's jwt.Signer. The "alg" header a session
// sets chooses the key (the client's id_token_signed_response_alg); the key's
// kid is written into every token.
type signer struct{ m *Manager }

var _ jwt.Signer = signer{}

// Generate signs claims with the current key of the header's algorithm.
func (s signer) Generate(_ context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	if claims == nil || header == nil {
		return "", "", errors.New("keys: claims and header are required")
	}
	alg := s.m.opts.DefaultAlg
	if a, ok := header.Get("alg").(string); ok && a != "" {
		alg = a
	}
	k, err := s.m.current(alg)
	if err != nil {
		return "", "", err
	}
	tok := jwt.NewWithClaims(jose3.SignatureAlgorithm(alg), claims)
	for name, v := range header.ToMap() {
		if name != "alg" && name != "kid" && name != "typ" {
			tok.Header[name] = v
		}
	}
	tok.Header["kid"] = k.rec.ID
	raw, err := tok.SignedString(k.signer)
	if err != nil {
		return "", "", fmt.Errorf("keys: sign: %w", err)
	}
	return raw, raw[strings.LastIndexByte(raw, '.')+1:], nil
}

// Decode parses and verifies a token signed by any published key.
func (s signer) Decode(_ context.Context, token string) (*jwt.Token, error) {
	return jwt.ParseWithClaims(token, jwt.MapClaims{}, func(t *jwt.Token) (interface{}, error) {
		kid, _ := t.Header["kid"].(string)
		k, ok := s.m.byID(kid)
		if !ok {
			return nil, fmt.Errorf("keys: unknown kid %q", kid)
		}
		if string(t.Method) != k.rec.Algorithm {
			return nil, fmt.Errorf("keys: token alg %q does not match key %q", t.Method, k.rec.Algorithm)
		}
		return k.signer.Public(), nil
	})
}

// Validate verifies a token and returns its signature.
func (s signer) Validate(ctx context.Context, token string) (string, error) {
	if _, err := s.Decode(ctx, token); err != nil {
		return "", err
	}
	return s.GetSignature(ctx, token)
}

// GetSignature returns the signature part of a compact JWS.
func (signer) GetSignature(_ context.Context, token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("keys: a token has three parts")
	}
	return parts[2], nil
}

// Hash is SHA-256, as fosite's default signer.
func (signer) Hash(_ context.Context, in []byte) ([]byte, error) {
	sum := sha256.Sum256(in)
	return sum[:], nil
}

// GetSigningMethodLength is the SHA-256 size.
func (signer) GetSigningMethodLength(context.Context) int { return sha256.Size }
