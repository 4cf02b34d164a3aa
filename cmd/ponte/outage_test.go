package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/idp/operators"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/codicefiscale"
	"github.com/ponte-id/ponte/internal/netcut"
	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/loadtest/flow"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/sqlstore"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// outageAnswer is what one endpoint must answer while the database is away.
type outageAnswer struct {
	status int
	// form: "page" (the come-back page, text/html), "json" (an OAuth JSON
	// error temporarily_unavailable), "redirect" (error=temporarily_unavailable
	// at the client's redirect URI), "readyz" (the not-ready report).
	form string
}

// TestDatabaseOutage runs `ponte serve` on PostgreSQL through a loopback
// proxy, logs a citizen in, then cuts the proxy (listener and live
// connections, as a database restart does) and drives every kind of
// endpoint with real clients (x/oauth2 for the token endpoint): each answers
// 503 with Retry-After in its protocol's own form — or, at /authorize for a
// known client, an error=temporarily_unavailable redirect — never a 500,
// and nothing is logged with a stack; /readyz fails. After the restore,
// without restarting Ponte, /readyz recovers, the code issued before the cut
// still redeems (nothing was spent), and a full login works (the ID token
// verified by go-oidc, userinfo).
func TestDatabaseOutage(t *testing.T) {
	setup(t)
	direct := storagetest.PostgresDSN(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := netcut.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	u.Host = proxy.Addr()
	t.Setenv("PONTE_DB", u.String())
	mustPonte(t, "migrate")

	const redirect = "http://127.0.0.1:9/cb"
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(mustPonte(t, "client", "create", "--name", "outage", "--redirect-uri", redirect,
		"--scopes", "openid profile fiscal_number")), &c); err != nil {
		t.Fatal(err)
	}
	var admin struct{ Token string }
	if err := json.Unmarshal([]byte(mustPonte(t, "staff", "token", "create", "--name", "ci", "--role", "admin")), &admin); err != nil {
		t.Fatal(err)
	}
	cf, pinCode := seedOutageCitizen(t, direct)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	base := "http://" + addr
	for k, v := range map[string]string{
		"PONTE_ADDR": addr, "PONTE_ISSUER": base, "PONTE_LOG_LEVEL": "info", "PONTE_LOG_FORMAT": "json",
		"PONTE_PIN_ARGON2_MEMORY_KIB": "8192", "PONTE_PIN_ARGON2_TIME": "1",
		"PONTE_OPERATORS": "op1=" + operators.HashToken("operator-token"),
	} {
		t.Setenv(k, v)
	}
	logs := serveInProcess(t, "ready", func(*securityLog) bool { return readyzOK(base) })

	// Before the cut: a login whose code is kept, and tokens.
	rp, err := flow.NewRP(t.Context(), base, c.ID, c.Secret, redirect)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := rp.PINLogin(t.Context(), flow.NewBrowser(rp), cf, pinCode)
	if err != nil {
		t.Fatalf("login before the cut: %v", err)
	}
	loggedIn := flow.NewBrowser(rp)
	login, err := rp.PINLogin(t.Context(), loggedIn, cf, pinCode)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := rp.Redeem(t.Context(), login)
	if err != nil {
		t.Fatalf("redeem before the cut: %v", err)
	}
	// A PIN form with its challenge, to post during the cut.
	browser := flow.NewBrowser(rp)
	challenge := pinChallenge(t, browser, authorizeURL(base, c.ID, redirect))

	proxy.Cut()
	cutAt := len(logs.String())
	oauthClient := func(req *http.Request) *http.Request { req.SetBasicAuth(c.ID, c.Secret); return req }
	for _, tc := range []struct {
		name string
		req  func() *http.Request
		want outageAnswer
	}{
		{"authorize, known client", func() *http.Request { return get(authorizeURL(base, c.ID, redirect)) }, outageAnswer{http.StatusSeeOther, "redirect"}},
		{"authorize, client not read yet", func() *http.Request { return asBrowser(get(authorizeURL(base, "unknown-client", redirect))) }, outageAnswer{http.StatusServiceUnavailable, "page"}},
		{"token, code", func() *http.Request {
			return oauthClient(post(base+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {kept.Code},
				"redirect_uri": {redirect}, "code_verifier": {kept.Verifier}}))
		}, outageAnswer{http.StatusServiceUnavailable, "json"}},
		{"introspection", func() *http.Request {
			return oauthClient(post(base+"/introspect", url.Values{"token": {tokens.Access}}))
		}, outageAnswer{http.StatusServiceUnavailable, "json"}},
		{"revocation", func() *http.Request {
			return oauthClient(post(base+"/revoke", url.Values{"token": {tokens.Access}}))
		}, outageAnswer{http.StatusServiceUnavailable, "json"}},
		{"PAR", func() *http.Request {
			q, _ := url.ParseQuery(strings.SplitN(authorizeURL(base, c.ID, redirect), "?", 2)[1])
			return oauthClient(post(base+"/par", q))
		}, outageAnswer{http.StatusServiceUnavailable, "json"}},
		{"userinfo", func() *http.Request {
			r := get(base + "/userinfo")
			r.Header.Set("Authorization", "Bearer "+tokens.Access)
			return r
		}, outageAnswer{http.StatusServiceUnavailable, "json"}},
		{"PIN form", func() *http.Request {
			return asBrowser(post(base+"/login/pin/", url.Values{"challenge": {challenge}, "fiscal_number": {cf}, "pin": {pinCode}}))
		}, outageAnswer{http.StatusServiceUnavailable, "page"}},
		{"PIN revocation form", func() *http.Request {
			return asBrowser(post(base+"/login/pin/revoke", url.Values{"fiscal_number": {cf}}))
		}, outageAnswer{http.StatusServiceUnavailable, "page"}},
		{"PIN recovery form", func() *http.Request {
			return asBrowser(post(base+"/login/pin/recover", url.Values{"fiscal_number": {cf}, "email": {"laura@example.it"}, "mobile": {"+393330000000"}}))
		}, outageAnswer{http.StatusServiceUnavailable, "page"}},
		{"logout", func() *http.Request { return asBrowser(post(base+"/logout", url.Values{"confirm": {"yes"}})) }, outageAnswer{http.StatusServiceUnavailable, "page"}},
		{"account", func() *http.Request { return asBrowser(get(base + "/account/")) }, outageAnswer{http.StatusServiceUnavailable, "page"}},
		{"console", func() *http.Request { return asBrowser(get(base + "/console/")) }, outageAnswer{http.StatusServiceUnavailable, "page"}},
		{"admin API", func() *http.Request {
			r := get(base + "/admin/api/v1/clients")
			r.Header.Set("Authorization", "Bearer "+admin.Token)
			return r
		}, outageAnswer{http.StatusServiceUnavailable, "json"}},
		{"operator API", func() *http.Request {
			r := get(base + "/operator/pin/outbox/parked")
			r.Header.Set("Authorization", "Bearer operator-token")
			return r
		}, outageAnswer{http.StatusServiceUnavailable, "json"}},
		{"readyz", func() *http.Request { return get(base + "/readyz") }, outageAnswer{http.StatusServiceUnavailable, "readyz"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The account and the console go through Ponte's own login
			// (redirects within the site); everything else is one request.
			hc := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			switch tc.name {
			case "account", "console":
				jar, _ := cookiejar.New(nil)
				hc = &http.Client{Timeout: 30 * time.Second, Jar: jar}
			case "logout": // the browser with an SSO session
				hc = loggedIn.HTTP
			}
			start := time.Now()
			resp, err := hc.Do(tc.req())
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("answered %d in %v", resp.StatusCode, time.Since(start).Round(time.Microsecond))
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			checkOutageAnswer(t, resp, string(body), tc.want, redirect)
		})
	}
	t.Run("token, code via x/oauth2", func(t *testing.T) {
		_, err := rp.Redeem(t.Context(), kept)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.Response.StatusCode != http.StatusServiceUnavailable ||
			re.ErrorCode != "temporarily_unavailable" || re.Response.Header.Get("Retry-After") == "" {
			t.Fatalf("redeeming during the cut: %v, want 503 temporarily_unavailable with Retry-After", err)
		}
	})
	duringCut := logs.String()[cutAt:]
	checkOutageLogs(t, duringCut)

	if err := proxy.Restore(); err != nil {
		t.Fatal(err)
	}
	restored := time.Now()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Logf("/readyz ready %v after the restore", time.Since(restored).Round(time.Millisecond))
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not recover after the restore: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	got, err := rp.Redeem(t.Context(), kept)
	if err != nil || got.FiscalNumber != cf {
		t.Fatalf("the code issued before the cut, after the restore: %+v, %v", got, err)
	}
	again, err := rp.PINLogin(t.Context(), flow.NewBrowser(rp), cf, pinCode)
	if err != nil {
		t.Fatalf("a login after the restore: %v", err)
	}
	tok, err := rp.Redeem(t.Context(), again)
	if err != nil || tok.FiscalNumber != cf {
		t.Fatalf("redeeming after the restore: %+v, %v", tok, err)
	}
	if _, fn, err := rp.UserInfo(t.Context(), tok.Access); err != nil || fn != cf {
		t.Fatalf("userinfo after the restore: %q, %v", fn, err)
	}
	if _, fn, err := rp.UserInfo(t.Context(), tokens.Access); err != nil || fn != cf {
		t.Fatalf("the access token issued before the cut was revoked or lost: %q, %v", fn, err)
	}
	// The logout refused during the cut ended nothing: the session still
	// answers an authorization at once.
	sso, err := loggedIn.HTTP.Get(authorizeURL(base, c.ID, redirect))
	if err != nil {
		t.Fatal(err)
	}
	sso.Body.Close()
	if loc, _ := sso.Location(); sso.StatusCode != http.StatusSeeOther || loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("the SSO session after the refused logout: %d %v, want a code at once", sso.StatusCode, loc)
	}
}

// checkOutageAnswer checks one endpoint's answer during the cut.
func checkOutageAnswer(t *testing.T, resp *http.Response, body string, want outageAnswer, redirect string) {
	t.Helper()
	if resp.StatusCode != want.status {
		t.Fatalf("status %d, want %d:\n%.500s", resp.StatusCode, want.status, body)
	}
	ct := resp.Header.Get("Content-Type")
	switch want.form {
	case "redirect":
		loc, err := resp.Location()
		if err != nil || !strings.HasPrefix(loc.String(), redirect) {
			t.Fatalf("redirect to %v, want %s", loc, redirect)
		}
		q := loc.Query()
		if q.Get("error") != "temporarily_unavailable" || q.Get("state") == "" || q.Get("iss") == "" || q.Get("code") != "" {
			t.Fatalf("redirect %s: want error=temporarily_unavailable with state and iss, no code", loc)
		}
		return
	case "page":
		if !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, "Servizio momentaneamente non disponibile") || !strings.Contains(body, `class="skip"`) {
			t.Fatalf("%s, want the come-back page in the site's layout:\n%.800s", ct, body)
		}
	case "json":
		var e struct{ Error string }
		if !strings.HasPrefix(ct, "application/json") || json.Unmarshal([]byte(body), &e) != nil || e.Error != "temporarily_unavailable" && e.Error != "temporarily unavailable" {
			t.Fatalf("%s %q, want the JSON error temporarily_unavailable", ct, body)
		}
	case "readyz":
		if !strings.Contains(body, `"not ready"`) {
			t.Fatalf("readyz: %s", body)
		}
		return
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
}

// checkOutageLogs: while the database was away no request failed with 500,
// nothing was logged with a stack, and the request handlers logged the
// outage at Warn, not as an error.
func checkOutageLogs(t *testing.T, logs string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Level, Msg string
			RequestID  string `json:"request_id"`
			Status     int
		}
		raw := sc.Text()
		if err := json.Unmarshal([]byte(raw), &line); err != nil {
			continue
		}
		if line.Msg == "http" && line.Status >= 500 && line.Status != http.StatusServiceUnavailable {
			t.Errorf("a request answered %d during the outage: %s", line.Status, raw)
		}
		if strings.Contains(raw, "goroutine ") || strings.Contains(raw, ".go:") {
			t.Errorf("a stack in the log: %.300s", raw)
		}
		if line.Level == "ERROR" && line.RequestID != "" {
			t.Errorf("a request logged the outage as an error: %.300s", raw)
		}
	}
}

func get(u string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, u, nil)
	return r
}

func post(u string, form url.Values) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// asBrowser makes r a browser's: it accepts pages, in Italian, from the site itself.
func asBrowser(r *http.Request) *http.Request {
	r.Header.Set("Accept", "text/html,application/xhtml+xml")
	r.Header.Set("Accept-Language", "it")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	return r
}

// authorizeURL is a code request with PKCE and idp_hint=pin.
func authorizeURL(base, clientID, redirect string) string {
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect}, "scope": {"openid fiscal_number"},
		"state": {"state-outage-0123456789"}, "nonce": {"nonce-outage-0123456789"}, "idp_hint": {"pin"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
	return base + "/authorize?" + q.Encode()
}

// pinChallenge opens the PIN form of a new authorization in b and returns
// its challenge.
func pinChallenge(t *testing.T, b *flow.Browser, authorize string) string {
	t.Helper()
	resp, err := b.HTTP.Get(authorize)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	const field = `name="challenge" value="`
	i := strings.Index(string(body), field)
	if resp.StatusCode != http.StatusOK || i < 0 {
		t.Fatalf("the PIN form: %d\n%.500s", resp.StatusCode, body)
	}
	rest := string(body)[i+len(field):]
	return rest[:strings.IndexByte(rest, '"')]
}

// readyzOK reports whether base's /readyz answers 200.
func readyzOK(base string) bool {
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// seedOutageCitizen gives a citizen an active PIN, directly in the database.
func seedOutageCitizen(t *testing.T, dsn string) (cf, pinCode string) {
	t.Helper()
	store, err := sqlstore.Open(t.Context(), dsn, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	box, _ := seal.New(make([]byte, 32))
	cfg := pin.DefaultConfig()
	cfg.BaseURL, cfg.Params = "http://127.0.0.1", crashParams
	svc, err := pin.NewService(cfg, pin.Deps{Store: store, Box: box, Revoker: provider.Revoker{Store: store}})
	if err != nil {
		t.Fatal(err)
	}
	first := "BNCLRA90D55F999"
	ch, _ := codicefiscale.CheckChar(first)
	cf, pinCode = first+string(ch), "Pin00042"
	a := storage.PINAccount{FiscalNumber: cf, GivenName: "Laura", FamilyName: "Bianchi", Gender: "F",
		Birthdate: "1990-04-15", BirthPlace: "Roma", Residence: storage.Address{Street: "Via Roma", Number: "1", PostalCode: "00100", City: "Roma", Province: "RM"},
		Mobile: "+393330000000", Email: "laura@example.it", PreferredPhone: "+393330000000", CallbackSlot: "09-13"}
	if err := svc.Seed(t.Context(), a, pinCode); err != nil {
		t.Fatal(fmt.Errorf("seed: %w", err))
	}
	return cf, pinCode
}
