package provider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"
)

// jwtBearerAssertion is the client_assertion_type of private_key_jwt (RFC 7523 §2.2).
const jwtBearerAssertion = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// maxAssertionLifetime bounds a client assertion's exp: at most this long after
// its iat, or after now when it has no iat. Its jti is kept until exp, so an
// unbounded exp would keep it (and let the assertion be replayed elsewhere) for
// as long as the client likes.
const maxAssertionLifetime = 5 * time.Minute

// authenticateClient is the client authentication of every endpoint that
// authenticates clients (token, revocation, introspection, PAR): fosite's
// default strategy, with two changes.
//
// A private_key_jwt assertion (RFC 7523 §3, OIDC Core §9) must carry an exp
// no more than maxAssertionLifetime ahead; that is checked before anything is
// verified or stored, so a long-lived assertion leaves no jti behind.
//
// Every error that is not already an OAuth error becomes invalid_client (401,
// RFC 6749 §5.2): fosite returns the bare cause of a failed JWT validation (an
// expired assertion is "Token is expired"), which would otherwise be answered as
// a server error.
func (p *Provider) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	if form.Get("client_assertion_type") == jwtBearerAssertion {
		if err := checkAssertionLifetime(form.Get("client_assertion"), p.now()); err != nil {
			return nil, err
		}
	}
	c, err := p.fosite.DefaultClientAuthenticationStrategy(ctx, r, form)
	if err != nil {
		var rfc *fosite.RFC6749Error
		if errors.As(err, &rfc) {
			return nil, err
		}
		return nil, fosite.ErrInvalidClient.WithHint("The client assertion could not be verified.").WithWrap(err).WithDebug(err.Error())
	}
	return c, nil
}

// checkAssertionLifetime reads, without verifying it, the exp and iat of a
// client assertion and refuses one that lacks exp or whose exp lies more than
// maxAssertionLifetime after its iat (after now, when it has no iat). The
// signature is checked later; this check only decides whether to look further.
func checkAssertionLifetime(assertion string, now time.Time) error {
	refuse := func(hint string) error { return fosite.ErrInvalidClient.WithHint(hint) }
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return refuse("The client_assertion is not a signed JSON Web Token.")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return refuse("The client_assertion is not a signed JSON Web Token.")
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
		Iat *json.Number `json:"iat"`
	}
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		return refuse("The client_assertion's claims are not a JSON object.")
	}
	exp, ok := numericDate(claims.Exp)
	if !ok {
		return refuse("The client_assertion must have an exp claim (RFC 7523 §3).")
	}
	from := now
	if claims.Iat != nil {
		// An iat in the future is refused by the validation that follows.
		if from, ok = numericDate(claims.Iat); !ok {
			return refuse("The client_assertion's iat claim is not a number.")
		}
	}
	if exp.Sub(from) > maxAssertionLifetime {
		return refuse("The client_assertion's exp may be at most 5 minutes after its iat (or after now, without iat).")
	}
	return nil
}

// numericDate reads a JWT NumericDate (RFC 7519 §2): seconds since the epoch,
// possibly fractional.
func numericDate(n *json.Number) (time.Time, bool) {
	if n == nil {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1<<40 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}
