package main

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/loadtest/flow"
	"github.com/ponte-id/ponte/storage"
)

// freeAddr returns a loopback address nobody listens on (just now).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServeNodeGateFinishesLogins drives a real `ponte serve` whose node
// gate keeps two of its three slots for logins under way (start watermark
// 1). With one slot held by a slow request, a new login (/authorize, from a
// new browser) is told at once to come back (503, Retry-After, the busy
// page), while a login that had already reached the PIN form goes on: its
// PIN post, its code's redemption by a real OIDC client and userinfo all
// pass. Once the slot frees, new logins are let in again; /metrics counts
// the refusals by class.
func TestServeNodeGateFinishesLogins(t *testing.T) {
	const (
		redirect = "http://127.0.0.1:9/cb"
		pinCode  = "Abcd1234"
	)
	addr, adminAddr := freeAddr(t), freeAddr(t)
	var clientID, secret string
	n := startLiveNode(t, "http://"+addr, func(a *app) {
		c, s, err := a.registry.Create(t.Context(), clients.Spec{Name: "RP", RedirectURIs: []string{redirect}, Scopes: flow.Scopes})
		if err != nil {
			t.Fatal(err)
		}
		clientID, secret = c.ID, s
		methods, err := a.openMethods()
		if err != nil {
			t.Fatal(err)
		}
		pins, _ := pin.ServiceOf(methods[0])
		acct := storage.PINAccount{FiscalNumber: securityCF, GivenName: "Mario", FamilyName: "Rossi", Gender: "M",
			Birthdate: "1980-01-01", BirthPlace: "Roma", Residence: storage.Address{Street: "Via Roma", Number: "1", PostalCode: "00100", City: "Roma", Province: "RM"},
			Mobile: "+393330000001", Email: "mario@example.it", PreferredPhone: "+393330000001", CallbackSlot: "09-13"}
		if err := pins.Seed(t.Context(), acct, pinCode); err != nil {
			t.Fatal(err)
		}
		for k, v := range map[string]string{
			"PONTE_ADDR": addr, "PONTE_ADMIN_ADDR": adminAddr,
			"PONTE_NODE_CONCURRENCY": "3", "PONTE_NODE_START_CONCURRENCY": "1", "PONTE_NODE_QUEUE": "4", "PONTE_NODE_MAX_WAIT": "10s",
		} {
			t.Setenv(k, v)
		}
	})
	ctx := t.Context()
	rp, err := flow.NewRP(ctx, n.base, clientID, secret, redirect)
	if err != nil {
		t.Fatal(err)
	}
	// newLogin is the first request of a new login, from a new browser.
	newLogin := func() (status int, retryAfter, body string) {
		t.Helper()
		conf := oauth2.Config{ClientID: clientID, RedirectURL: redirect, Scopes: flow.Scopes, Endpoint: oauth2.Endpoint{AuthURL: n.base + "/authorize"}}
		u := conf.AuthCodeURL(rand.Text(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
			oauth2.SetAuthURLParam("nonce", rand.Text()), oauth2.SetAuthURLParam("idp_hint", "pin"))
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		req.Header.Set("Accept", "text/html")
		resp, err := flow.NewBrowser(rp).HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
	}
	if status, _, body := newLogin(); status != http.StatusOK || !strings.Contains(body, `name="challenge"`) {
		t.Fatalf("a new login on an idle node: %d %.300s", status, body)
	}

	// hold sends a token request whose body never comes: the request holds
	// a slot of the node (it continues a login) until the connection closes.
	var held net.Conn
	hold := func() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /token HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=", addr)
		held = c
		t.Cleanup(func() { c.Close() }) // before the node stops, on failure too
	}
	refusedNew := func() {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; {
			start := time.Now()
			status, retryAfter, body := newLogin()
			if status == http.StatusServiceUnavailable {
				if s, err := strconv.Atoi(retryAfter); err != nil || s < 1 {
					t.Errorf("the refusal's Retry-After %q", retryAfter)
				}
				if !strings.Contains(body, "Servizio momentaneamente occupato") || !strings.Contains(body, "<main ") {
					t.Errorf("the refusal is not the busy page: %.300s", body)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("the refusal took %v, want at once", d)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("new logins were never refused with a slot held: %d %.200s", status, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	var refusedWhileUnderWay int
	login, err := rp.PINLoginThen(ctx, flow.NewBrowser(rp), securityCF, pinCode, func() {
		hold() // the node is now at its start watermark
		refusedNew()
		refusedWhileUnderWay++
	})
	if err != nil {
		t.Fatalf("the PIN post of a login under way, with new logins refused: %v\n%s", err, n.logs)
	}
	tok, err := rp.Redeem(ctx, login)
	if err != nil {
		t.Fatalf("the redemption of its code: %v", err)
	}
	sub, cf, err := rp.UserInfo(ctx, tok.Access)
	if err != nil || cf != securityCF || tok.FiscalNumber != securityCF || sub != tok.Subject {
		t.Fatalf("userinfo: %q %q %v (ID token %q %q)", sub, cf, err, tok.Subject, tok.FiscalNumber)
	}
	refusedNew() // still at the watermark
	if refusedWhileUnderWay != 1 {
		t.Fatal("the login never reached its PIN form")
	}

	held.Close() // the slot frees
	for deadline := time.Now().Add(20 * time.Second); ; {
		if status, _, _ := newLogin(); status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("new logins still refused after the slot freed")
		}
		time.Sleep(20 * time.Millisecond)
	}

	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	refused := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "ponte_admission_refused_total{") || !strings.Contains(line, `gate="node"`) {
			continue
		}
		for _, class := range []string{"starting", "continuing"} {
			if strings.Contains(line, `class="`+class+`"`) {
				v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
				refused[class] = v
			}
		}
	}
	if refused["starting"] < 2 || refused["continuing"] != 0 {
		t.Errorf("/metrics: node refusals %v, want 2 or more starting and no continuing", refused)
	}
}

// TestSelfCallbackContinues: the account and console pages' callback
// finishes a login; their other pages start one.
func TestSelfCallbackContinues(t *testing.T) {
	step := selfCallback("/account")
	for _, tc := range []struct {
		target string
		want   bool
	}{
		{"/account/callback?code=c&state=s", true},
		{"/account/", false},
		{"/account/callbackx", false},
		{"/console/callback", false},
	} {
		if got := step(httptest.NewRequest(http.MethodGet, tc.target, nil)); got != tc.want {
			t.Errorf("%s continues: %v, want %v", tc.target, got, tc.want)
		}
	}
}
