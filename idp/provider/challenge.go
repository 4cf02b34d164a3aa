package provider

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ory/fosite"

	"github.com/ponte-id/ponte/internal/clientaddr"
	"github.com/ponte-id/ponte/storage"
)

// challengeParams are the authorization parameters a login challenge keeps:
// those that fosite reads when the request is replayed on resume, and those
// Ponte reads (the level ladder, hints, locale). Anything else a client sends
// is not stored, so the size of a challenge does not depend on the sender.
var challengeParams = []string{
	"response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "response_mode",
	"prompt", "max_age", "id_token_hint", // read by fosite's OpenID Connect validator
	"login_hint", "ui_locales", "acr_values", "claims", "idp_hint",
}

// Size limits of what a challenge stores: each parameter's value, and the sum
// of names and values. An ID token hint (about 1 KiB) and a claims request fit
// with room to spare.
const (
	maxChallengeValue = 4 << 10
	maxChallengeForm  = 8 << 10
)

// challengeForm returns the parameters of form that a challenge keeps, with
// the first value of each (the one fosite and Ponte read).
func challengeForm(form url.Values) url.Values {
	out := url.Values{}
	for _, k := range challengeParams {
		if v, ok := form[k]; ok && len(v) > 0 {
			out.Set(k, v[0])
		}
	}
	return out
}

// checkChallengeSize refuses an authorization request whose known parameters
// are larger than a challenge may store (invalid_request, RFC 6749 §4.1.2.1).
func checkChallengeSize(form url.Values) error {
	total := 0
	for k, v := range challengeForm(form) {
		if len(v[0]) > maxChallengeValue {
			return fosite.ErrInvalidRequest.WithHintf("The %s parameter is longer than %d bytes.", k, maxChallengeValue)
		}
		total += len(k) + len(v[0])
	}
	if total > maxChallengeForm {
		return fosite.ErrInvalidRequest.WithHintf("The authorization parameters are longer than %d bytes in all.", maxChallengeForm)
	}
	return nil
}

// errTooManyChallenges is a browser or client address over its cap of pending
// login challenges; retryAfter is when the earliest of them expires.
type errTooManyChallenges struct{ retryAfter time.Duration }

func (e errTooManyChallenges) Error() string {
	return "provider: too many pending login challenges"
}

// underCaps checks the live challenges of the browser and address making a
// new one against the provider's caps.
func (p *Provider) underCaps(n storage.ChallengeCount, now time.Time) error {
	overBrowser, overIP := n.Browser >= p.cfg.MaxChallengesPerBrowser, n.ClientIP >= p.cfg.MaxChallengesPerIP
	if !overBrowser && !overIP {
		return nil
	}
	var next time.Time // a slot frees when the group over its cap loses its oldest
	if overBrowser {
		next = n.BrowserNextExpiry
	}
	if overIP && n.ClientIPNextExpiry.After(next) {
		next = n.ClientIPNextExpiry
	}
	wait := next.Sub(now)
	if next.IsZero() || wait <= 0 {
		wait = p.cfg.ChallengeTTL
	}
	return errTooManyChallenges{retryAfter: wait}
}

// tooManyChallenges answers a browser or address over its cap: 429 with
// Retry-After (RFC 6585 §4), on a page for the person.
func (p *Provider) tooManyChallenges(w http.ResponseWriter, r *http.Request, e errTooManyChallenges) {
	p.log.InfoContext(r.Context(), "login challenge refused: too many pending", "retry_after", e.retryAfter)
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.retryAfter.Seconds()))))
	p.errorPage(w, r, http.StatusTooManyRequests, msgTooManyChallenges)
}

// addressKey is the key under which the client address of r is counted: a
// keyed hash of the IPv4 address, or of the IPv6 /64 (one subscriber's
// network), so the database holds no address. The edge sets RemoteAddr from
// trusted proxies' headers only. An unreadable address gives "", counted
// under no address.
func (p *Provider) addressKey(r *http.Request) string {
	key := clientaddr.Of(r)
	if key == "" {
		return ""
	}
	m := hmac.New(sha256.New, p.cfg.HMACSecret)
	m.Write([]byte("ponte.challenge.address\x00"))
	m.Write([]byte(key))
	return hex.EncodeToString(m.Sum(nil))
}

// isTooMany reports whether err is a cap refusal, and which.
func isTooMany(err error) (errTooManyChallenges, bool) {
	var e errTooManyChallenges
	ok := errors.As(err, &e)
	return e, ok
}
