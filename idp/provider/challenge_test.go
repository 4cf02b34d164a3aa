package provider_test

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/storage"
)

// caps sets the provider's caps of pending login challenges.
func caps(perBrowser, perIP int) func(*provider.Config) {
	return func(c *provider.Config) { c.MaxChallengesPerBrowser, c.MaxChallengesPerIP = perBrowser, perIP }
}

// startLogin sends browser b to an authorization URL of r (with PKCE and
// extra parameters) and returns the response it ends on.
func startLogin(b *browser, r *rp, opts ...oauth2.AuthCodeOption) (*http.Response, string) {
	opts = append(opts, oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oidcNonce())
	return b.Get(r.Conf.AuthCodeURL(randomString(), opts...))
}

// isChooser says whether a response is the login chooser of a new challenge.
func isChooser(resp *http.Response, body string) bool {
	return resp.StatusCode == http.StatusOK && resp.Request.URL.Path == "/login" && challengeRE.MatchString(body)
}

// wantTooMany fails unless resp is the 429 page with a Retry-After of at most ttl.
func wantTooMany(t *testing.T, resp *http.Response, ttl time.Duration) {
	t.Helper()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("got %d %s, want the 429 page", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > ttl+time.Second {
		t.Fatalf("Retry-After %q, want 1..%v seconds", resp.Header.Get("Retry-After"), ttl)
	}
}

// TestChallengeGrowth: an unauthenticated /authorize stores a login challenge
// for the challenge TTL. What it stores is bounded: only the parameters Ponte
// knows, each and all of them capped in size, and only so many challenges per
// browser and per client address at once (429 beyond, with Retry-After). The
// steps share one provider whose caps they fill up, each step counting on the
// slots the previous ones took.
func TestChallengeGrowth(t *testing.T) {
	const ttl = 30 * time.Minute
	backends(t, func(t *testing.T, store storage.Store) {
		const perBrowser, perIP = 2, 5
		e := newEnv(t, store, caps(perBrowser, perIP))
		r := e.NewRP(clients.Spec{})
		admit := func(b *browser, step string, opts ...oauth2.AuthCodeOption) string {
			t.Helper()
			resp, body := startLogin(b, r, opts...)
			m := challengeRE.FindStringSubmatch(body)
			if !isChooser(resp, body) || m == nil {
				t.Fatalf("%s: got %d %s, want the chooser", step, resp.StatusCode, resp.Request.URL.Path)
			}
			return html.UnescapeString(m[1])
		}

		// A 60 KB login_hint is refused at the client's redirect URI (it is
		// verified), and stores nothing: see the last step.
		resp, _ := startLogin(newBrowser(t), r, oauth2.SetAuthURLParam("login_hint", strings.Repeat("A", 60<<10)))
		if loc := rpRedirect(resp); loc == nil || loc.Query().Get("error") != "invalid_request" {
			t.Fatalf("60 KB login_hint: got %d %v, want invalid_request at the client", resp.StatusCode, loc)
		}

		// Unknown parameters, however large, are not stored. (Address slot 1.)
		id := admit(newBrowser(t), "unknown parameters", oauth2.SetAuthURLParam("padding", strings.Repeat("x", 30<<10)),
			oauth2.SetAuthURLParam("foo", "bar"), oauth2.SetAuthURLParam("ui_locales", "en"))
		ch, err := e.Store.GetChallenge(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		var data struct {
			Form map[string][]string `json:"form"`
		}
		if err := json.Unmarshal(ch.Data, &data); err != nil {
			t.Fatal(err)
		}
		for k := range data.Form {
			if !slices.Contains([]string{"response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
				"code_challenge", "code_challenge_method", "ui_locales"}, k) {
				t.Errorf("the challenge stored parameter %q", k)
			}
		}
		if data.Form["ui_locales"] == nil || len(ch.Data) > 2<<10 {
			t.Fatalf("challenge data (%d bytes): %s", len(ch.Data), ch.Data)
		}

		// One browser: perBrowser challenges, then 429. (Address slots 2, 3.)
		b := newBrowser(t)
		for i := range perBrowser {
			admit(b, "browser challenge "+strconv.Itoa(i+1))
		}
		resp, _ = startLogin(b, r)
		wantTooMany(t, resp, ttl)

		// Browsers without cookies from one address: up to perIP, then 429.
		// Had the refused 60 KB request stored a challenge, the last admit
		// would already be refused.
		for i := 3; i < perIP; i++ {
			admit(newBrowser(t), "address challenge "+strconv.Itoa(i+1))
		}
		resp, _ = startLogin(newBrowser(t), r)
		wantTooMany(t, resp, ttl)
	})
}

// TestChallengeCapParallel: parallel requests from one address are admitted
// exactly up to the cap: the count and the insert are one transaction, and
// storage makes concurrent counts for the same address wait for it, so the
// bound is the cap itself, with no overshoot, on both backends.
func TestChallengeCapParallel(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		const limit, parallel = 4, 12
		e := newEnv(t, store, caps(20, limit))
		r := e.NewRP(clients.Spec{})
		var (
			mu              sync.Mutex
			admitted, other int
			wg              sync.WaitGroup
		)
		start := make(chan struct{})
		for range parallel {
			u := r.Conf.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oidcNonce())
			wg.Go(func() {
				<-start
				resp, err := newBrowser(t).Client.Get(u) // not b.Get: no t.Fatal off the test goroutine
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					other++
				case resp.StatusCode == http.StatusOK && resp.Request.URL.Path == "/login":
					admitted++
				case resp.StatusCode != http.StatusTooManyRequests:
					other++
				}
				if err == nil {
					resp.Body.Close()
				}
			})
		}
		close(start)
		wg.Wait()
		if admitted != limit || other != 0 {
			t.Fatalf("%d parallel requests: %d admitted, %d neither admitted nor 429; want exactly %d admitted", parallel, admitted, other, limit)
		}
	})
}
