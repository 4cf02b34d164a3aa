//go:build !fuzzing

package spid_test

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ponte-id/ponte/adapters/spid/testidp"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage/sqlstore"
)

// TestStateNamespaces: the state Ponte keeps for an AuthnRequest and for a
// LogoutRequest live in separate namespaces, so neither can be taken as the
// other. A LogoutResponse (signed by the identity provider) whose
// InResponseTo names a pending AuthnRequest is refused and leaves the login
// to complete; a Response naming a pending LogoutRequest is refused and
// leaves the logout to complete. SQLite and PostgreSQL.
func TestStateNamespaces(t *testing.T) {
	backends(t, func(t *testing.T, store *sqlstore.Store) {
		s := newSite(t, store)
		b64 := base64.StdEncoding.EncodeToString

		t.Run("a LogoutResponse naming an AuthnRequest", func(t *testing.T) {
			p := s.startLogin(t)
			raw, slo, err := s.idp.LogoutResponse(p.id)
			if err != nil {
				t.Fatal(err)
			}
			resp, body := post(t, p.b, slo, url.Values{"SAMLResponse": {b64(raw)}})
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "SPID") {
				t.Fatalf("the LogoutResponse: %d %q %.300s, want the 403 courtesy page", resp.StatusCode, resp.Header.Get("Location"), body)
			}
			resp, body = s.answer(t, p, testidp.Response{User: mario})
			if oidctest.RPRedirect(resp) == nil {
				t.Fatalf("the login it named no longer completes: %d %.300s", resp.StatusCode, body)
			}
		})

		t.Run("a Response naming a LogoutRequest", func(t *testing.T) {
			b := oidctest.NewBrowser(t)
			s.spidLogin(b, s.rp())
			// Ponte's logout, stopped on its way to the identity provider.
			var toIdP *url.URL
			follow := b.Client.CheckRedirect
			b.Client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
				if strings.HasPrefix(req.URL.String(), s.idpSrv.URL+"/slo") {
					toIdP = req.URL
					return http.ErrUseLastResponse
				}
				return follow(req, via)
			}
			b.Post(s.env.Issuer+provider.PathLogout, url.Values{"confirm": {"yes"}})
			b.Client.CheckRedirect = follow
			if toIdP == nil {
				t.Fatal("no LogoutRequest sent to the identity provider")
			}
			deflated, err := base64.StdEncoding.DecodeString(toIdP.Query().Get("SAMLRequest"))
			if err != nil {
				t.Fatal(err)
			}
			x, err := io.ReadAll(flate.NewReader(bytes.NewReader(deflated)))
			if err != nil {
				t.Fatal(err)
			}
			logoutID := idRE.FindStringSubmatch(string(x))[1]

			raw, err := s.idp.Build(testidp.Response{RequestID: logoutID, User: mario})
			if err != nil {
				t.Fatal(err)
			}
			resp, body := post(t, oidctest.NewBrowser(t), s.env.Issuer+"/login/spid/acs", url.Values{"SAMLResponse": {b64(raw)}})
			if resp.StatusCode != http.StatusForbidden || oidctest.RPRedirect(resp) != nil {
				t.Fatalf("the Response: %d %.300s, want the 403 courtesy page", resp.StatusCode, body)
			}
			resp, body = b.Get(toIdP.String())
			if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != provider.PathLogout {
				t.Fatalf("the logout it named no longer completes: %d %s %.300s", resp.StatusCode, resp.Request.URL, body)
			}
			issuer, _ := url.Parse(s.env.Issuer)
			for _, c := range b.Client.Jar.Cookies(issuer) {
				if c.Name == "ponte_session" {
					t.Fatal("the session survived the logout")
				}
			}
		})
	})
}
