package backchannel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/backchannel"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/sqlstore"
	"github.com/ponte-id/ponte/storage/storagetest"
)

const (
	citizenCF = "RSSMRA80A01H501U"
	otherCF   = "VRDGPP75C15F205S"
)

// logout is a logout token a relying party received and verified.
type logout struct {
	Client, Sub, SID, JTI string
}

// rpServer is the relying parties' back-channel endpoint, a real HTTP server
// on 127.0.0.1 (/bcl/<client_id>). It verifies every logout token as a
// relying party must (Back-Channel Logout 1.0 §2.6) with go-jose against
// Ponte's JWKS, and answers status (200 unless set).
type rpServer struct {
	t       *testing.T
	srv     *httptest.Server
	issuer  string
	jwksURL string
	now     func() time.Time

	mu     sync.Mutex
	got    []logout
	bad    []string
	status map[string]int
	calls  map[string]int
}

func newRPServer(t *testing.T, issuer, jwksURL string, now func() time.Time) *rpServer {
	rp := &rpServer{t: t, issuer: issuer, jwksURL: jwksURL, now: now, status: map[string]int{}, calls: map[string]int{}}
	rp.srv = httptest.NewServer(http.HandlerFunc(rp.serve))
	t.Cleanup(rp.srv.Close)
	return rp
}

func (rp *rpServer) uri(client string) string { return rp.srv.URL + "/bcl/" + client }

func (rp *rpServer) serve(w http.ResponseWriter, r *http.Request) {
	client := strings.TrimPrefix(r.URL.Path, "/bcl/")
	rp.mu.Lock()
	rp.calls[client]++
	status := rp.status[client]
	rp.mu.Unlock()
	if status != 0 && status != http.StatusOK {
		if status/100 == 3 {
			http.Redirect(w, r, rp.srv.URL+"/elsewhere", status)
			return
		}
		http.Error(w, "down for maintenance", status)
		return
	}
	l, err := rp.verify(r, client)
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if err != nil {
		rp.bad = append(rp.bad, client+": "+err.Error())
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	rp.got = append(rp.got, l)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// verify validates a logout token as §2.6 asks.
func (rp *rpServer) verify(r *http.Request, client string) (logout, error) {
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		return logout{}, fmt.Errorf("%s %s", r.Method, r.Header.Get("Content-Type"))
	}
	raw := r.PostFormValue("logout_token")
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		return logout{}, err
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != backchannel.TokenType {
		return logout{}, fmt.Errorf("typ %q", typ)
	}
	resp, err := http.Get(rp.jwksURL)
	if err != nil {
		return logout{}, err
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return logout{}, err
	}
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		return logout{}, fmt.Errorf("kid %q not in the JWKS", h.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		return logout{}, err
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		return logout{}, err
	}
	now := float64(rp.now().Unix())
	iat, _ := c["iat"].(float64)
	exp, _ := c["exp"].(float64)
	events, _ := c["events"].(map[string]any)
	ev, isObj := events[backchannel.EventLogout].(map[string]any)
	sub, _ := c["sub"].(string)
	sid, _ := c["sid"].(string)
	jti, _ := c["jti"].(string)
	switch {
	case c["iss"] != rp.issuer:
		return logout{}, fmt.Errorf("iss %v", c["iss"])
	case c["aud"] != client:
		return logout{}, fmt.Errorf("aud %v, want %s", c["aud"], client)
	case iat > now+5 || iat < now-60 || exp <= now || exp-iat > 300:
		return logout{}, fmt.Errorf("iat %v exp %v", iat, exp)
	case !isObj || len(ev) != 0 || len(events) != 1:
		return logout{}, fmt.Errorf("events %v", c["events"])
	case c["nonce"] != nil:
		return logout{}, fmt.Errorf("a nonce in a logout token")
	case sub == "" && sid == "", jti == "":
		return logout{}, fmt.Errorf("sub %q sid %q jti %q", sub, sid, jti)
	}
	return logout{Client: client, Sub: sub, SID: sid, JTI: jti}, nil
}

// take returns and forgets what the relying parties received.
func (rp *rpServer) take() ([]logout, []string) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	got, bad := rp.got, rp.bad
	rp.got, rp.bad = nil, nil
	sort.Slice(got, func(i, j int) bool { return got[i].Client+got[i].SID < got[j].Client+got[j].SID })
	return got, bad
}

func (rp *rpServer) setStatus(client string, status int) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.status[client] = status
}

func (rp *rpServer) callsTo(client string) int {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.calls[client]
}

// harness is a provider, relying parties registered with it, their
// back-channel endpoint and a sender.
type harness struct {
	t      *testing.T
	env    *oidctest.Env
	rp     *rpServer
	rps    map[string]*oidctest.RP
	sender *backchannel.Sender
	clock  *clock
}

// clock is the real time moved on by the test (the provider queues at the real time).
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// The relying parties: two take back-channel logouts (one signs RS256, one
// has pairwise subjects), one does not.
const (
	rpES256    = "rp-es256"
	rpPairwise = "rp-pairwise"
	rpNoURI    = "rp-no-uri"
)

func newHarness(t *testing.T, store storage.Store, master []byte) *harness {
	env := oidctest.Start(t, store, oidctest.Options{MasterKey: master,
		Methods: func(string) []idp.Authenticator { return []idp.Authenticator{oidctest.FormLogin{}} }})
	h := &harness{t: t, env: env, rps: map[string]*oidctest.RP{}, clock: &clock{}}
	h.rp = newRPServer(t, env.Issuer, env.Issuer+provider.PathJWKS, h.clock.Now)
	for _, spec := range []clients.Spec{
		{ID: rpES256, BackchannelLogoutURI: h.rp.uri(rpES256)},
		{ID: rpPairwise, BackchannelLogoutURI: h.rp.uri(rpPairwise), BackchannelLogoutSessionRequired: true,
			SigningAlg: "RS256", SectorIdentifier: "https://sector.example.it"},
		{ID: rpNoURI},
	} {
		h.rps[spec.ID] = env.NewRP(spec)
	}
	h.sender = h.newSender(store, env.Issuer)
	return h
}

func (h *harness) newSender(store storage.Store, issuer string) *backchannel.Sender {
	s, err := backchannel.New(backchannel.Options{Issuer: issuer, Store: store, Keys: h.env.Keys,
		MaxAttempts: 3, Backoff: time.Minute, Timeout: 2 * time.Second, Now: h.clock.Now})
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// session is what a relying party learned of a login: the sub and sid of its ID token.
type session struct{ sub, sid string }

// login runs the code flow of client in b (logging in as cf if the SSO
// session does not answer) and returns what the ID token says.
func (h *harness) login(b *oidctest.Browser, client, cf string, extra ...string) session {
	h.t.Helper()
	r := h.rps[client]
	verifier, nonce := oauth2.GenerateVerifier(), oidctest.RandomString()+oidctest.RandomString()
	resp, body := b.Get(r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)))
	loc := oidctest.RPRedirect(resp)
	if loc == nil {
		resp, _ = b.FormLoginAt(h.env.Issuer, resp, body, cf, idp.LevelConsultazione, extra...)
		loc = oidctest.RPRedirect(resp)
	}
	if loc == nil || loc.Query().Get("code") == "" {
		h.t.Fatalf("no code for %s: %d %s", client, resp.StatusCode, resp.Request.URL)
	}
	tok, err := r.Conf.Exchange(r.Ctx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		h.t.Fatal(err)
	}
	idt, err := r.Verifier.Verify(r.Ctx(), tok.Extra("id_token").(string))
	if err != nil {
		h.t.Fatal(err)
	}
	var c struct {
		SID string `json:"sid"`
	}
	_ = idt.Claims(&c)
	if c.SID == "" || idt.Nonce != nonce {
		h.t.Fatalf("ID token without sid or nonce: %+v", c)
	}
	return session{sub: idt.Subject, sid: c.SID}
}

// deliver runs the sender's passes until the outbox has nothing due.
func (h *harness) deliver() {
	h.t.Helper()
	for range 5 {
		n, err := h.sender.DeliverDue(context.Background())
		if err != nil {
			h.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

func backends(t *testing.T, f func(t *testing.T, store storage.Store)) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			f(t, b.Open(t))
		})
	}
}

func want(pairs ...any) []logout {
	var out []logout
	for i := 0; i+1 < len(pairs); i += 2 {
		s := pairs[i+1].(session)
		out = append(out, logout{Client: pairs[i].(string), Sub: s.sub, SID: s.sid})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Client+out[i].SID < out[j].Client+out[j].SID })
	return out
}

func sameLogouts(t *testing.T, got, want []logout) {
	t.Helper()
	jtis := map[string]bool{}
	for i := range got {
		if jtis[got[i].JTI] {
			t.Errorf("jti %s twice", got[i].JTI)
		}
		jtis[got[i].JTI] = true
		got[i].JTI = ""
	}
	if !slices.Equal(got, want) {
		t.Fatalf("logouts received:\n got %+v\nwant %+v", got, want)
	}
}

// TestLogoutTriggers: every way a session ends sends a verified logout
// token to each relying party of that session that registered a URI (and
// only to them), with the sub and sid its ID token carried.
func TestLogoutTriggers(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			logoutTriggers(t, b.Open)
		})
	}
}

func logoutTriggers(t *testing.T, open func(testing.TB) *sqlstore.Store) {
	var (
		h     *harness
		store storage.Store
	)
	ctx := context.Background()
	cases := []struct {
		name string
		// end ends sessions; a is the citizen's browser with two
		// relying parties, b another browser of the same citizen.
		end func(t *testing.T, a, b *oidctest.Browser)
		// all says the citizen's other browser is logged out too.
		all bool
	}{
		{"RP-initiated logout", func(t *testing.T, a, _ *oidctest.Browser) {
			if resp, _ := a.Post(h.env.Issuer+provider.PathLogout, url.Values{"confirm": {"yes"}}); resp.StatusCode != http.StatusOK {
				t.Fatalf("logout: %d", resp.StatusCode)
			}
		}, false},
		{"the login method's upstream ends the session (Host.EndSessions)", func(t *testing.T, a, _ *oidctest.Browser) {
			if resp, body := a.Post(h.env.Issuer+"/login/test/upstream-logout", url.Values{"session_key": {"idp-session-a"}}); body != "ended 1" {
				t.Fatalf("upstream logout: %d %s", resp.StatusCode, body)
			}
		}, false},
		{"another citizen logs in at the same browser", func(t *testing.T, a, _ *oidctest.Browser) {
			r := h.rps[rpNoURI]
			resp, body := a.Get(r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
				oauth2.SetAuthURLParam("prompt", "login")))
			a.FormLoginAt(h.env.Issuer, resp, body, otherCF, idp.LevelConsultazione)
		}, false},
		{"PIN revocation (provider.Revoker)", func(t *testing.T, _, _ *oidctest.Browser) {
			if err := (provider.Revoker{Store: store}).RevokeCitizen(ctx, citizenCF); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"an administrator ends every session of the citizen", func(t *testing.T, _, _ *oidctest.Browser) {
			subj, _ := store.GetSubjectByFiscalNumber(ctx, citizenCF)
			if n, err := h.env.Provider.Sessions().EndSubjectSessions(ctx, subj.ID); err != nil || n != 2 {
				t.Fatalf("EndSubjectSessions: %d %v", n, err)
			}
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store = open(t)
			h = newHarness(t, store, nil)
			a, b := oidctest.NewBrowser(t), oidctest.NewBrowser(t)
			aES := h.login(a, rpES256, citizenCF, "session_key", "idp-session-a")
			aPW := h.login(a, rpPairwise, citizenCF)
			h.login(a, rpNoURI, citizenCF)
			bES := h.login(b, rpES256, citizenCF, "session_key", "idp-session-b")
			if aES.sid != aPW.sid || aES.sid == bES.sid || aES.sub == aPW.sub {
				t.Fatalf("sids and subs: %+v %+v %+v", aES, aPW, bES)
			}
			h.deliver()
			if got, bad := h.rp.take(); len(got)+len(bad) != 0 {
				t.Fatalf("logouts before any session ended: %v %v", got, bad)
			}
			tc.end(t, a, b)
			h.deliver()
			got, bad := h.rp.take()
			if len(bad) > 0 {
				t.Fatalf("the relying party refused tokens: %v", bad)
			}
			w := want(rpES256, aES, rpPairwise, aPW)
			if tc.all {
				w = want(rpES256, aES, rpPairwise, aPW, rpES256, bES)
			}
			sameLogouts(t, got, w)
			if !tc.all {
				// The other browser's session lives on, and its logout comes later.
				if resp, _ := b.Post(h.env.Issuer+provider.PathLogout, url.Values{"confirm": {"yes"}}); resp.StatusCode != http.StatusOK {
					t.Fatal(resp.StatusCode)
				}
				h.deliver()
				got, _ := h.rp.take()
				sameLogouts(t, got, want(rpES256, bES))
			}
			// Nothing is owed twice.
			h.deliver()
			if got, _ := h.rp.take(); len(got) != 0 {
				t.Fatalf("delivered again: %v", got)
			}
		})
	}
}

// TestStepUpKeepsRelyingParties: a new login of the same citizen in the same
// browser (a step-up) logs no relying party out; the later logout reaches
// those of the first login with the sid they were given.
func TestStepUpKeepsRelyingParties(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		h := newHarness(t, store, nil)
		a := oidctest.NewBrowser(t)
		first := h.login(a, rpES256, citizenCF)
		r := h.rps[rpPairwise]
		resp, body := a.Get(r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
			oauth2.SetAuthURLParam("prompt", "login")))
		a.FormLoginAt(h.env.Issuer, resp, body, citizenCF, idp.LevelDispositivo)
		h.deliver()
		if got, _ := h.rp.take(); len(got) != 0 {
			t.Fatalf("a step-up logged relying parties out: %v", got)
		}
		second := h.login(a, rpPairwise, citizenCF)
		if second.sid == first.sid {
			t.Fatal("the new login kept the old sid")
		}
		a.Post(h.env.Issuer+provider.PathLogout, url.Values{"confirm": {"yes"}})
		h.deliver()
		got, _ := h.rp.take()
		sameLogouts(t, got, want(rpES256, first, rpPairwise, second))
	})
}

// TestFailingRelyingParty: a relying party that fails is retried with
// backoff and parked after MaxAttempts; one that refuses (4xx) or redirects
// is parked at once, and the redirect is not followed; an operator requeues.
func TestFailingRelyingParty(t *testing.T) {
	for _, bk := range storagetest.Backends() {
		t.Run(bk.Name, func(t *testing.T) {
			t.Parallel()
			failingRelyingParty(t, bk.Open)
		})
	}
}

func failingRelyingParty(t *testing.T, open func(testing.TB) *sqlstore.Store) {
	ctx := context.Background()
	cases := []struct {
		name     string
		status   int
		attempts int // deliveries before the message is parked
	}{
		{"503, retried then parked", http.StatusServiceUnavailable, 3},
		{"429, retried then parked", http.StatusTooManyRequests, 3},
		{"400, parked at once", http.StatusBadRequest, 1},
		{"302, not followed, parked at once", http.StatusFound, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := open(t)
			h := newHarness(t, store, nil)
			h.rp.setStatus(rpES256, tc.status)
			calls := h.rp.callsTo(rpES256)
			elsewhere := h.rp.callsTo("../elsewhere")
			b := oidctest.NewBrowser(t)
			s := h.login(b, rpES256, citizenCF)
			b.Post(h.env.Issuer+provider.PathLogout, url.Values{"confirm": {"yes"}})
			for i := 1; i <= tc.attempts; i++ {
				h.deliver()
				if n := h.rp.callsTo(rpES256) - calls; n != i {
					t.Fatalf("after pass %d: %d deliveries", i, n)
				}
				// Not due again before the backoff.
				h.deliver()
				if n := h.rp.callsTo(rpES256) - calls; n != i {
					t.Fatalf("retried before the backoff: %d", n)
				}
				h.clock.Add(time.Duration(1<<i) * time.Minute)
			}
			parked, err := backchannel.Parked(ctx, store, 10)
			if err != nil || len(parked) != 1 || parked[0].ClientID != rpES256 || parked[0].Attempts != tc.attempts ||
				!strings.HasPrefix(parked[0].LastError, fmt.Sprintf("HTTP %d", tc.status)) {
				t.Fatalf("parked: %+v %v", parked, err)
			}
			if strings.Contains(parked[0].LastError, "eyJ") {
				t.Error("the token is in the recorded error")
			}
			h.clock.Add(24 * time.Hour)
			h.deliver()
			if n := h.rp.callsTo(rpES256) - calls; n != tc.attempts {
				t.Fatalf("a parked message was delivered again: %d", n)
			}
			if h.rp.callsTo("../elsewhere") != elsewhere {
				t.Fatal("a redirect was followed")
			}
			// The relying party is fixed; an operator requeues.
			h.rp.setStatus(rpES256, http.StatusOK)
			if _, err := backchannel.Requeue(ctx, store, parked[0].ID, h.clock.Now()); err != nil {
				t.Fatal(err)
			}
			h.deliver()
			got, bad := h.rp.take()
			if len(bad) > 0 {
				t.Fatal(bad)
			}
			sameLogouts(t, got, want(rpES256, s))
			if parked, _ := backchannel.Parked(ctx, store, 10); len(parked) != 0 {
				t.Fatalf("still parked: %+v", parked)
			}
		})
	}
}

// TestSlowRelyingParty: a relying party that does not answer in time is a
// failure, retried later; it does not hold up another relying party.
func TestSlowRelyingParty(t *testing.T) {
	store := storagetest.SQLite(t)
	h := newHarness(t, store, nil)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	ctx := context.Background()
	if err := store.UpdateClient(ctx, rpES256, func(c storage.Client) (storage.Client, error) {
		c.BackchannelLogoutURI = slow.URL + "/bcl"
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	b := oidctest.NewBrowser(t)
	h.login(b, rpES256, citizenCF)
	pw := h.login(b, rpPairwise, citizenCF)
	b.Post(h.env.Issuer+provider.PathLogout, url.Values{"confirm": {"yes"}})
	h.deliver()
	got, _ := h.rp.take()
	sameLogouts(t, got, want(rpPairwise, pw))
	pending, err := store.ListLogouts(ctx, false, 10)
	if err != nil || len(pending) != 1 || pending[0].Attempts != 1 || !strings.Contains(strings.ToLower(pending[0].LastError), "timeout") && !strings.Contains(pending[0].LastError, "deadline exceeded") {
		t.Fatalf("pending after a timeout: %+v %v", pending, err)
	}
}

// TestOutboxSurvivesRestart: logouts queued when a session ends are
// delivered by a sender started after the provider's store was closed and
// opened again (a crash or a restart between the logout and the delivery).
func TestOutboxSurvivesRestart(t *testing.T) {
	for _, b := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return t.TempDir() + "/ponte.db" }},
		{"postgres", func(t *testing.T) string { return storagetest.PostgresDSN(t) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.dsn(t)
			master := make([]byte, 32)
			for i := range master {
				master[i] = byte(i)
			}
			first := storagetest.OpenMigrated(t, dsn)
			h := newHarness(t, first, master)
			br := oidctest.NewBrowser(t)
			s := h.login(br, rpES256, citizenCF)
			br.Post(h.env.Issuer+provider.PathLogout, url.Values{"confirm": {"yes"}})
			h.env.Server.Close()
			if err := first.Close(); err != nil {
				t.Fatal(err)
			}

			second := storagetest.OpenMigrated(t, dsn)
			again := oidctest.Start(t, second, oidctest.Options{MasterKey: master})
			h.rp.jwksURL = again.Issuer + provider.PathJWKS // the same keys, served by the new process
			h.env = again
			h.sender = h.newSender(second, h.rp.issuer)
			h.deliver()
			got, bad := h.rp.take()
			if len(bad) > 0 {
				t.Fatal(bad)
			}
			sameLogouts(t, got, want(rpES256, s))
		})
	}
}

// TestRemovedURI: a client that no longer takes logouts (its URI removed,
// or the client deleted) gets none of those queued before.
func TestRemovedURI(t *testing.T) {
	store := storagetest.SQLite(t)
	h := newHarness(t, store, nil)
	ctx := context.Background()
	b := oidctest.NewBrowser(t)
	h.login(b, rpES256, citizenCF)
	h.login(b, rpPairwise, citizenCF)
	b.Post(h.env.Issuer+provider.PathLogout, url.Values{"confirm": {"yes"}})
	if err := store.UpdateClient(ctx, rpES256, func(c storage.Client) (storage.Client, error) {
		c.BackchannelLogoutURI = ""
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteClient(ctx, rpPairwise); err != nil {
		t.Fatal(err)
	}
	h.deliver()
	if h.rp.callsTo(rpES256)+h.rp.callsTo(rpPairwise) != 0 {
		t.Fatal("a logout went to a URI no longer registered")
	}
	if left, _ := store.ListLogouts(ctx, false, 10); len(left) != 0 {
		t.Fatalf("left in the outbox: %+v", left)
	}
}

// TestDiscovery: the provider says it sends back-channel logouts with sid.
func TestDiscovery(t *testing.T) {
	h := newHarness(t, storagetest.SQLite(t), nil)
	resp, err := http.Get(h.env.Issuer + provider.PathDiscovery)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&d)
	if d["backchannel_logout_supported"] != true || d["backchannel_logout_session_supported"] != true {
		t.Fatalf("discovery: %v %v", d["backchannel_logout_supported"], d["backchannel_logout_session_supported"])
	}
}

// TestParallelEnds: sessions ended by several callers at once (a double
// click, an administrator and a revocation together) owe one logout each,
// queued once.
func TestParallelEnds(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		h := newHarness(t, store, nil)
		ctx := context.Background()
		a, b := oidctest.NewBrowser(t), oidctest.NewBrowser(t)
		sa := h.login(a, rpES256, citizenCF)
		sb := h.login(b, rpES256, citizenCF)
		subj, _ := store.GetSubjectByFiscalNumber(ctx, citizenCF)
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			ended int
		)
		for i := range 8 {
			wg.Go(func() {
				switch i % 3 {
				case 0:
					n, err := h.env.Provider.Sessions().EndSubjectSessions(ctx, subj.ID)
					if err != nil {
						t.Error(err)
					}
					mu.Lock()
					ended += n
					mu.Unlock()
				case 1:
					if err := (provider.Revoker{Store: store}).RevokeCitizen(ctx, citizenCF); err != nil {
						t.Error(err)
					}
				default:
					resp, err := a.Client.PostForm(h.env.Issuer+provider.PathLogout, url.Values{"confirm": {"yes"}})
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode >= 500 {
						t.Errorf("logout: %d", resp.StatusCode)
					}
				}
			})
		}
		wg.Wait()
		if ended > 2 {
			t.Errorf("%d sessions ended, the citizen had 2", ended)
		}
		pending, err := store.ListLogouts(ctx, false, 100)
		if err != nil || len(pending) != 2 {
			t.Fatalf("%d logouts queued, want 2: %v", len(pending), err)
		}
		h.deliver()
		got, bad := h.rp.take()
		if len(bad) > 0 {
			t.Fatal(bad)
		}
		sameLogouts(t, got, want(rpES256, sa, rpES256, sb))
	})
}

// TestTwoNodes: two senders (two nodes) on one outbox post every logout
// once.
func TestTwoNodes(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		h := newHarness(t, store, nil)
		ctx := context.Background()
		const n = 30
		now := time.Now()
		for i := range n {
			if err := store.EnqueueLogout(ctx, storage.LogoutMessage{ID: fmt.Sprintf("jti-%02d", i), ClientID: rpES256,
				Subject: "sub", SID: "sid", NextAttemptAt: now, CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
		}
		var nodes []*backchannel.Sender
		for range 2 {
			s, err := backchannel.New(backchannel.Options{Issuer: h.env.Issuer, Store: store, Keys: h.env.Keys, Batch: 3, Parallel: 2})
			if err != nil {
				t.Fatal(err)
			}
			nodes = append(nodes, s)
		}
		var claims [2]int
		var wg sync.WaitGroup
		for i, s := range nodes {
			wg.Go(func() {
				for {
					got, err := s.DeliverDue(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					if got == 0 {
						return
					}
					claims[i] += got
				}
			})
		}
		wg.Wait()
		t.Logf("node 1 delivered %d, node 2 %d", claims[0], claims[1])
		got, bad := h.rp.take()
		if len(bad) > 0 {
			t.Fatal(bad)
		}
		seen := map[string]bool{}
		for _, l := range got {
			if seen[l.JTI] {
				t.Fatalf("%s posted twice", l.JTI)
			}
			seen[l.JTI] = true
		}
		if len(seen) != n || h.rp.callsTo(rpES256) != n {
			t.Fatalf("%d logouts posted (%d calls), want %d", len(seen), h.rp.callsTo(rpES256), n)
		}
	})
}

// TestGrantRacingTheEnd: a relying party granted an authorization in a
// session while the session was being ended (its record written after the
// end read the session's relying parties) still gets its logout, from the
// janitor's sweep.
func TestGrantRacingTheEnd(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		h := newHarness(t, store, nil)
		ctx := context.Background()
		a := oidctest.NewBrowser(t)
		s := h.login(a, rpES256, citizenCF)
		// The end, as it ran: the session deleted, its records read and deleted...
		sessions, _ := store.ListSubjectSessions(ctx, mustSubject(t, store))
		if _, _, err := h.env.Provider.Sessions().EndIn(ctx, sessions); err != nil {
			t.Fatal(err)
		}
		h.deliver()
		sameLogouts(t, first(h.rp.take()), want(rpES256, s))
		// ...and the grant's record, committed just after.
		if err := store.AddSessionClient(ctx, storage.SessionClient{SessionID: sessions[0].ID, ClientID: rpPairwise,
			Subject: "pairwise-sub", SID: s.sid, CreatedAt: time.Now(), ExpiresAt: sessions[0].ExpiresAt}); err != nil {
			t.Fatal(err)
		}
		if err := h.env.Provider.Sessions().Sweep(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
		h.deliver()
		sameLogouts(t, first(h.rp.take()), []logout{{Client: rpPairwise, Sub: "pairwise-sub", SID: s.sid}})
	})
}

func mustSubject(t *testing.T, store storage.Store) string {
	t.Helper()
	subj, err := store.GetSubjectByFiscalNumber(context.Background(), citizenCF)
	if err != nil {
		t.Fatal(err)
	}
	return subj.ID
}

func first(got []logout, _ []string) []logout { return got }
