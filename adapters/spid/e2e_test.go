//go:build !fuzzing

package spid_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage/sqlstore"
)

// quietLog discards the method's log, unless PONTE_TEST_LOG is set.
func quietLog() *slog.Logger {
	if os.Getenv("PONTE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

// TestSPIDLoginEndToEnd: a relying party (go-oidc, x/oauth2) asks for the
// dispositivo level with idp_hint; the browser goes straight to the test
// identity provider, logs in at SpidL2, comes back through the ACS and the
// resume, and the RP gets acr dispositivo, auth_method spid, and the same
// sub as the citizen's PIN login.
func TestSPIDLoginEndToEnd(t *testing.T) {
	backends(t, func(t *testing.T, store *sqlstore.Store) {
		s := newSite(t, store)
		r := s.rp()
		claims := s.spidLogin(oidctest.NewBrowser(t), r)
		if claims["acr"] != "urn:inps:loa:dispositivo" || claims["auth_method"] != "spid" {
			t.Fatalf("claims: %v", claims)
		}
		// The same citizen with a PIN: the same subject.
		if err := s.pins.Seed(context.Background(), pinAccount(), "pinpin12"); err != nil {
			t.Fatal(err)
		}
		b := oidctest.NewBrowser(t)
		r.Conf.Scopes = []string{"openid"}
		verifier := oauth2.GenerateVerifier()
		_, body := b.Get(r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(verifier)))
		challenge := challengeOf(t, body)
		resp, body := b.Post(s.env.Issuer+"/login/pin/", url.Values{"challenge": {challenge}, "fiscal_number": {mario.FiscalNumber}, "pin": {"pinpin12"}})
		loc := oidctest.RPRedirect(resp)
		if loc == nil {
			t.Fatalf("PIN login: %d %.400s", resp.StatusCode, body)
		}
		pinClaims := exchange(t, r, loc, verifier)
		if pinClaims["sub"] != claims["sub"] || claims["sub"] == "" {
			t.Fatalf("SPID sub %v, PIN sub %v: want the same subject", claims["sub"], pinClaims["sub"])
		}
	})
}

func challengeOf(t testing.TB, body string) string {
	t.Helper()
	i := strings.Index(body, `name="challenge" value="`)
	if i < 0 {
		t.Fatalf("no challenge in %.300s", body)
	}
	rest := body[i+len(`name="challenge" value="`):]
	return rest[:strings.Index(rest, `"`)]
}

var _ = http.StatusOK
