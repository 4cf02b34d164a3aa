package provider

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The browser cookie binds login challenges to the browser that started
// them, and tells the node's gate which requests continue a login under way
// (classify.go). Its value is "<random>.<issued>.<tag>": a random part of at
// least 32 characters, which is the binding (a challenge keeps its hash);
// the Unix second it was issued; and a MAC of both under the provider's
// secret. /authorize issues it, or issues it again with the same random part
// (so the browser's pending challenges stay bound) when it is older than
// browserRefresh or carries no valid MAC (set before the MAC); only once the
// challenge was created, so a refused /authorize hands out none. The gate
// ranks a request as continuing only with a cookie whose MAC is right and
// which was issued within the challenges' lifetime: a made-up one ranks as
// new, and cookies gathered beforehand stop counting.
const browserCookie = "ponte_browser"

const (
	// browserRefresh is the age beyond which /authorize issues the cookie
	// again (its random part kept).
	browserRefresh = 10 * time.Minute
	// maxBrowserRandom bounds the random part a browser may present.
	maxBrowserRandom = 128
)

// browserBinding returns the random part of the browser's cookie, which
// binds its challenges, and the value to set once a challenge is created
// ("" when the cookie is current). A browser without a usable cookie gets a
// new random part.
func (p *Provider) browserBinding(r *http.Request) (binding, set string) {
	now := p.now()
	if c, err := r.Cookie(browserCookie); err == nil {
		random := browserRandom(c.Value)
		if len(random) >= 32 && len(random) <= maxBrowserRandom {
			if issued, _, ok := p.browserMAC(c.Value); ok && now.Sub(issued) < browserRefresh {
				return random, ""
			}
			return random, p.browserValue(random, now)
		}
	}
	random := randomToken()
	return random, p.browserValue(random, now)
}

// browserRandom is the random part of a cookie value: the value itself for
// one set before the MAC.
func browserRandom(value string) string {
	random, _, _ := strings.Cut(value, ".")
	return random
}

// browserValue is the cookie value of random issued at t.
func (p *Provider) browserValue(random string, t time.Time) string {
	issued := strconv.FormatInt(t.Unix(), 10)
	return random + "." + issued + "." + p.browserTag(random, issued)
}

// browserTag is the MAC of a cookie's random part and issue time: 128 bits
// of HMAC-SHA256 under the provider's HMAC secret (its own domain), base64url.
func (p *Provider) browserTag(random, issued string) string {
	m := hmac.New(sha256.New, p.cfg.HMACSecret)
	m.Write([]byte("ponte.browser\x00"))
	m.Write([]byte(random))
	m.Write([]byte{0})
	m.Write([]byte(issued))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// browserMAC checks a cookie value's MAC: ok with its issue time and tag when
// right, false when made up, tampered or set before the MAC.
func (p *Provider) browserMAC(value string) (issued time.Time, tag string, ok bool) {
	random, rest, _ := strings.Cut(value, ".")
	sec, tag, _ := strings.Cut(rest, ".")
	if len(random) < 32 || len(random) > maxBrowserRandom || len(tag) != 22 || len(sec) == 0 || len(sec) > 12 {
		return time.Time{}, "", false
	}
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || !hmac.Equal([]byte(tag), []byte(p.browserTag(random, sec))) {
		return time.Time{}, "", false
	}
	return time.Unix(n, 0), tag, true
}

// browserCurrent reports whether r carries a cookie of ours issued within
// the challenges' lifetime (a minute of clock skew between nodes allowed),
// and its tag.
func (p *Provider) browserCurrent(r *http.Request) (tag string, ok bool) {
	c, err := r.Cookie(browserCookie)
	if err != nil {
		return "", false
	}
	issued, tag, ok := p.browserMAC(c.Value)
	age := p.now().Sub(issued)
	return tag, ok && age > -time.Minute && age < p.cfg.ChallengeTTL+browserRefresh
}
