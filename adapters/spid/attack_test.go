//go:build !fuzzing

package spid_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/adapters/spid/testidp"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage/sqlstore"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// TestHostileInput: what a hostile poster sends to the ACS gets the 403
// courtesy page, never a 500 nor a login: a DTD, entity expansion, an
// oversized message, no base64, a RelayState that is not the request's, a
// response posted twice, an assertion ID used again for another request.
func TestHostileInput(t *testing.T) {
	s := newSite(t, storagetest.SQLite(t))
	good := func(p *pending) []byte {
		raw, err := s.idp.Build(testidp.Response{RequestID: p.id, User: mario})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	b64 := base64.StdEncoding.EncodeToString
	for name, send := range map[string]func(p *pending) (*http.Response, string){
		"DTD with an external entity": func(p *pending) (*http.Response, string) {
			return s.postRaw(t, p, b64(append([]byte(`<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>`), good(p)...)), p.relay)
		},
		"billion laughs": func(p *pending) (*http.Response, string) {
			bomb := `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><r>&c;</r>`
			return s.postRaw(t, p, b64([]byte(bomb)), p.relay)
		},
		"oversized": func(p *pending) (*http.Response, string) {
			return s.postRaw(t, p, strings.Repeat("A", 300<<10), p.relay)
		},
		"not base64": func(p *pending) (*http.Response, string) { return s.postRaw(t, p, "%%%not base64%%%", p.relay) },
		"not XML": func(p *pending) (*http.Response, string) {
			return s.postRaw(t, p, b64([]byte("<samlp:Response")), p.relay)
		},
		"another RelayState": func(p *pending) (*http.Response, string) {
			return s.postRaw(t, p, b64(good(p)), "forged")
		},
		"posted twice": func(p *pending) (*http.Response, string) {
			raw := good(p)
			if resp, _ := s.postRaw(t, p, b64(raw), p.relay); oidctest.RPRedirect(resp) == nil {
				t.Fatalf("the first post was refused: %d", resp.StatusCode)
			}
			return s.postRaw(t, p, b64(raw), p.relay)
		},
		"an assertion ID used again": func(p *pending) (*http.Response, string) {
			first := s.startLogin(t)
			raw := good(first)
			if resp, _ := s.postRaw(t, first, b64(raw), first.relay); oidctest.RPRedirect(resp) == nil {
				t.Fatalf("the first login was refused: %d", resp.StatusCode)
			}
			used := regexp.MustCompile(`<saml:Assertion [^>]*ID="([^"]+)"`).FindSubmatch(raw)[1]
			return s.answer(t, p, testidp.Response{User: mario, Mutate: attrSet("A", "ID", string(used))})
		},
	} {
		t.Run(name, func(t *testing.T) {
			p := s.startLogin(t)
			resp, body := send(p)
			if resp.StatusCode != http.StatusForbidden || oidctest.RPRedirect(resp) != nil || !strings.Contains(body, "SPID") {
				t.Fatalf("%d %.300s", resp.StatusCode, body)
			}
		})
	}
}

// TestErrorCodes: the identity provider's anomalies (SPID ErrorCode nr19 to
// nr25 and nr30 in StatusMessage) get the 403 courtesy page with their own
// message, and a way back to the chooser.
func TestErrorCodes(t *testing.T) {
	s := newSite(t, storagetest.SQLite(t))
	for code, want := range map[int]string{
		19: "troppe volte", 20: "livello di sicurezza", 21: "Tempo scaduto", 22: "negato il consenso",
		23: "sospesa o revocata", 25: "annullato", 30: "non è del tipo",
	} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			p := s.startLogin(t)
			resp, body := s.answer(t, p, testidp.Response{Status: "urn:oasis:names:tc:SAML:2.0:status:Responder",
				SubStatus: "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed", StatusMessage: fmt.Sprintf("ErrorCode nr%d", code)})
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, want) || !strings.Contains(body, "/login?challenge=") {
				t.Fatalf("ErrorCode nr%d: %d %.600s", code, resp.StatusCode, body)
			}
		})
	}
}

// TestLoginCSRF: the attacker logs in at the identity provider for their own
// login and has the victim's browser post the response (an auto-submitted
// form on the attacker's site). Ponte keeps the identity on the attacker's
// challenge; the victim's browser is not the one that made it, so the resume
// refuses it and the victim holds no session.
func TestLoginCSRF(t *testing.T) {
	backends(t, func(t *testing.T, store *sqlstore.Store) {
		s := newSite(t, store)
		attacker := s.startLogin(t)
		raw, err := s.idp.Build(testidp.Response{RequestID: attacker.id, User: mario})
		if err != nil {
			t.Fatal(err)
		}
		victim := oidctest.NewBrowser(t)
		resp, body := post(t, victim, s.env.Issuer+"/login/spid/acs", url.Values{
			"SAMLResponse": {base64.StdEncoding.EncodeToString(raw)}, "RelayState": {attacker.relay}})
		if oidctest.RPRedirect(resp) != nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("the victim's browser: %d %.300s, want the resume's 400 page", resp.StatusCode, body)
		}
		issuer, _ := url.Parse(s.env.Issuer)
		for _, c := range victim.Client.Jar.Cookies(issuer) {
			if c.Name == "ponte_session" {
				t.Fatal("the victim's browser holds an SSO session")
			}
		}
		r := s.rp()
		resp, _ = victim.Get(r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if oidctest.RPRedirect(resp) != nil {
			t.Fatal("the victim's next authorization returned a code: logged in as the attacker")
		}
	})
}

// TestPOSTBinding: with spid.binding post the login URL answers with a page
// that posts the AuthnRequest, signed with an enveloped signature after the
// Issuer, to the identity provider; the test identity provider accepts it.
func TestPOSTBinding(t *testing.T) {
	s := newSiteWith(t, storagetest.SQLite(t), []string{"PONTE_SPID_BINDING=post"})
	b := oidctest.NewBrowser(t)
	r := s.rp()
	u := r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
		oauth2.SetAuthURLParam("idp_hint", "spid:"+s.idp.EntityID()))
	resp, body := b.Get(u)
	action, v := form(t, body)
	if resp.StatusCode != http.StatusOK || action != s.idpSrv.URL+"/sso" || v.Get("RelayState") == "" {
		t.Fatalf("auto-post page: %d %s %v", resp.StatusCode, action, v)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'sha256-") {
		t.Fatalf("CSP %q", csp)
	}
	raw, _ := base64.StdEncoding.DecodeString(v.Get("SAMLRequest"))
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	kids := doc.Root().ChildElements()
	if len(kids) < 2 || kids[0].Tag != "Issuer" || kids[1].Tag != "Signature" {
		t.Fatalf("the Signature does not follow the Issuer: %s", raw)
	}
	resp, body = post(t, b, action, v)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, mario.FiscalNumber) {
		t.Fatalf("the identity provider refused the POST AuthnRequest: %d %.300s", resp.StatusCode, body)
	}
}

// TestChooser: the method's page lists every identity provider with a link
// that goes straight to it (a 302 with the AuthnRequest), in random order.
func TestChooser(t *testing.T) {
	others := make([]string, 0, 5)
	dir := t.TempDir()
	for i := range 5 {
		o, err := testidp.New(testidp.Config{EntityID: fmt.Sprintf("https://idp%d.example.it", i), BaseURL: fmt.Sprintf("https://idp%d.example.it", i)})
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, fmt.Sprintf("idp%d.xml", i))
		_ = os.WriteFile(f, o.Metadata(), 0o600)
		others = append(others, f)
	}
	s := newSite(t, storagetest.SQLite(t), others...)
	r := s.rp()
	orders := map[string]bool{}
	linkRE := regexp.MustCompile(`href="(/login/spid/start\?[^"]+)"`)
	for range 8 {
		b := oidctest.NewBrowser(t)
		_, body := b.Get(r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		challenge := challengeOf(t, body)
		resp, body := b.Get(s.env.Issuer + "/login/spid/?challenge=" + url.QueryEscape(challenge))
		links := linkRE.FindAllStringSubmatch(body, -1)
		if resp.StatusCode != http.StatusOK || len(links) != 6 || !strings.Contains(body, "Entra con SPID") {
			t.Fatalf("chooser: %d, %d links", resp.StatusCode, len(links))
		}
		var order []string
		for _, l := range links {
			order = append(order, l[1])
		}
		orders[fmt.Sprint(idpOrder(order))] = true
		// A link goes straight to its identity provider.
		b.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		start := strings.ReplaceAll(links[0][1], "&amp;", "&")
		resp, _ = b.Get(s.env.Issuer + start)
		if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "SAMLRequest=") {
			t.Fatalf("start: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if len(orders) < 2 {
		t.Fatalf("the identity providers came in the same order 8 times: %v", orders)
	}
}

func idpOrder(links []string) []string {
	out := make([]string, len(links))
	for i, l := range links {
		u, _ := url.Parse(strings.ReplaceAll(l, "&amp;", "&"))
		out[i] = u.Query().Get("idp")
	}
	return out
}

// TestSingleLogout: a citizen logged in with SPID logs out at Ponte; Ponte
// sends a signed LogoutRequest with the NameID and SessionIndex of the login
// to the identity provider, whose signed LogoutResponse comes back to /slo,
// which sends the browser on to the logout's end.
func TestSingleLogout(t *testing.T) {
	backends(t, func(t *testing.T, store *sqlstore.Store) {
		s := newSite(t, store)
		b := oidctest.NewBrowser(t)
		s.spidLogin(b, s.rp())
		var hops []string
		b.Client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			hops = append(hops, req.URL.Scheme+"://"+req.URL.Host+req.URL.Path)
			return nil
		}
		resp, body := b.Post(s.env.Issuer+provider.PathLogout, url.Values{"confirm": {"yes"}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("logout: %d %.300s", resp.StatusCode, body)
		}
		want := []string{s.idpSrv.URL + "/slo", s.env.Issuer + "/login/spid/slo", s.env.Issuer + provider.PathLogout}
		if strings.Join(hops, " ") != strings.Join(want, " ") {
			t.Fatalf("logout went through %v, want %v", hops, want)
		}
		issuer, _ := url.Parse(s.env.Issuer)
		for _, c := range b.Client.Jar.Cookies(issuer) {
			if c.Name == "ponte_session" {
				t.Fatal("the session survived the logout")
			}
		}
	})
}

// TestIdPInitiatedLogout: the identity provider ends a citizen's session and
// sends its own signed LogoutRequest; Ponte ends the SSO sessions that login
// started, answers Success, and leaves other citizens' sessions alone. The
// same request again is refused (single use).
func TestIdPInitiatedLogout(t *testing.T) {
	backends(t, func(t *testing.T, store *sqlstore.Store) {
		s := newSite(t, store)
		mario, other := oidctest.NewBrowser(t), oidctest.NewBrowser(t)
		r := s.rp()
		s.spidLogin(mario, r)
		nameID := s.idp.LastNameID()
		s.spidLogin(other, r)
		req, slo, err := s.idp.LogoutRequest(nameID)
		if err != nil {
			t.Fatal(err)
		}
		post := func() (int, string) {
			hreq, _ := http.NewRequest(http.MethodPost, slo, strings.NewReader(url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(req)}}.Encode()))
			hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			hreq.Header.Set("Origin", s.idpSrv.URL)
			hreq.Header.Set("Sec-Fetch-Site", "cross-site")
			resp, err := http.DefaultClient.Do(hreq)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		code, body := post()
		if code != http.StatusOK || !strings.Contains(body, "SAMLResponse") {
			t.Fatalf("the IdP's LogoutRequest: %d %.300s", code, body)
		}
		authURL := r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
		if resp, _ := mario.Get(authURL); oidctest.RPRedirect(resp) != nil {
			t.Fatal("the session the identity provider ended still answers")
		}
		if resp, _ := other.Get(authURL); oidctest.RPRedirect(resp) == nil {
			t.Fatal("another citizen's session was ended")
		}
		if code, _ := post(); code != http.StatusForbidden {
			t.Fatalf("the same LogoutRequest again: %d, want 403", code)
		}
	})
}

// TestIdPInitiatedLogoutRedirect: the identity provider's LogoutRequest
// with the HTTP-Redirect binding (the signature in the query) ends the
// sessions of its NameID and is answered with a signed LogoutResponse on the
// Redirect binding, carrying its RelayState; the request with another
// message under its signature is refused and ends nothing; the same request
// again is refused (single use).
func TestIdPInitiatedLogoutRedirect(t *testing.T) {
	backends(t, func(t *testing.T, store *sqlstore.Store) {
		s := newSite(t, store)
		mario, other := oidctest.NewBrowser(t), oidctest.NewBrowser(t)
		r := s.rp()
		s.spidLogin(mario, r)
		nameID := s.idp.LastNameID()
		s.spidLogin(other, r)
		otherNameID := s.idp.LastNameID()
		u, err := s.idp.LogoutRedirect(testidp.Logout{NameID: nameID}, "relay-1")
		if err != nil {
			t.Fatal(err)
		}
		get := func(u string) *http.Response {
			t.Helper()
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := c.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		}
		// Another citizen's LogoutRequest under this one's signature.
		forged, err := s.idp.LogoutRedirect(testidp.Logout{NameID: otherNameID}, "relay-1")
		if err != nil {
			t.Fatal(err)
		}
		fu, _ := url.Parse(forged)
		gu, _ := url.Parse(u)
		swapped := *gu
		swapped.RawQuery = strings.Replace(gu.RawQuery, "SAMLRequest="+url.QueryEscape(gu.Query().Get("SAMLRequest")),
			"SAMLRequest="+url.QueryEscape(fu.Query().Get("SAMLRequest")), 1)
		if swapped.RawQuery == gu.RawQuery {
			t.Fatal("the message was not swapped")
		}
		if resp := get(swapped.String()); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("another message under the signature: %d, want 403", resp.StatusCode)
		}
		resp := get(u)
		loc, _ := resp.Location()
		if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), s.idpSrv.URL+"/slo?SAMLResponse=") ||
			loc.Query().Get("RelayState") != "relay-1" || loc.Query().Get("Signature") == "" {
			t.Fatalf("the answer: %d %v, want a signed LogoutResponse to the identity provider", resp.StatusCode, loc)
		}
		authURL := r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
		if resp, _ := mario.Get(authURL); oidctest.RPRedirect(resp) != nil {
			t.Fatal("the session the identity provider ended still answers")
		}
		if resp, _ := other.Get(authURL); oidctest.RPRedirect(resp) == nil {
			t.Fatal("another citizen's session was ended")
		}
		if resp := get(u); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("the same LogoutRequest again: %d, want 403", resp.StatusCode)
		}
	})
}

// TestIdPLogoutRequestTimes: an identity provider's LogoutRequest is held to
// the times a Response is (spid.request_ttl 15m, spid.clock_skew 2m): one
// issued too long ago or in the future, or past its NotOnOrAfter, gets the
// 403 page and ends no session, on either binding; one recent, or with a
// NotOnOrAfter to come, ends the session. SQLite and PostgreSQL.
func TestIdPLogoutRequestTimes(t *testing.T) {
	backends(t, func(t *testing.T, store *sqlstore.Store) {
		s := newSite(t, store)
		r := s.rp()
		now := time.Now()
		for _, tc := range []struct {
			name     string
			l        testidp.Logout
			redirect bool
			ended    bool
		}{
			{name: "issued now", ended: true},
			{name: "issued 10 minutes ago", l: testidp.Logout{IssueInstant: now.Add(-10 * time.Minute)}, ended: true},
			{name: "issued a minute ahead (clock skew)", l: testidp.Logout{IssueInstant: now.Add(time.Minute)}, ended: true},
			{name: "NotOnOrAfter to come", l: testidp.Logout{NotOnOrAfter: now.Add(5 * time.Minute)}, ended: true},
			{name: "issued an hour ago", l: testidp.Logout{IssueInstant: now.Add(-time.Hour)}},
			{name: "issued an hour ago, Redirect binding", l: testidp.Logout{IssueInstant: now.Add(-time.Hour)}, redirect: true},
			{name: "issued an hour ahead", l: testidp.Logout{IssueInstant: now.Add(time.Hour)}},
			{name: "past its NotOnOrAfter", l: testidp.Logout{NotOnOrAfter: now.Add(-5 * time.Minute)}},
			{name: "past its NotOnOrAfter, Redirect binding", l: testidp.Logout{NotOnOrAfter: now.Add(-5 * time.Minute)}, redirect: true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b := oidctest.NewBrowser(t)
				s.spidLogin(b, r)
				tc.l.NameID = s.idp.LastNameID()
				var req *http.Request
				if tc.redirect {
					u, err := s.idp.LogoutRedirect(tc.l, "")
					if err != nil {
						t.Fatal(err)
					}
					req, _ = http.NewRequest(http.MethodGet, u, nil)
				} else {
					x, slo, err := s.idp.BuildLogout(tc.l)
					if err != nil {
						t.Fatal(err)
					}
					req, _ = http.NewRequest(http.MethodPost, slo, strings.NewReader(url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(x)}}.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("Sec-Fetch-Site", "cross-site")
				}
				c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if answered := resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusFound; answered != tc.ended ||
					(!tc.ended && resp.StatusCode != http.StatusForbidden) {
					t.Fatalf("status %d, want it answered: %v", resp.StatusCode, tc.ended)
				}
				authURL := r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
				resp, _ = b.Get(authURL)
				if ended := oidctest.RPRedirect(resp) == nil; ended != tc.ended {
					t.Fatalf("session ended: %v, want %v", ended, tc.ended)
				}
			})
		}
	})
}
