package provider_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/admission"
	"github.com/ponte-id/ponte/storage"
)

// observer counts what the provider tells its metrics.
type observer struct {
	logins, codes, refreshes atomic.Int64
}

func (o *observer) LoginCompleted(m idp.Method) {
	if m == idp.MethodPIN { // the test method logs citizens in as the PIN would
		o.logins.Add(1)
	}
}

func (o *observer) TokensIssued(g string) {
	switch g {
	case "authorization_code":
		o.codes.Add(1)
	case "refresh_token":
		o.refreshes.Add(1)
	}
}

var _ provider.Observer = (*observer)(nil)

// TestTokenAdmission: with the token endpoint's slot taken, the
// redemptions of codes never get 503 (refusing one would lose a login whose
// citizen has already authenticated): they wait, however many, ahead of the
// other grants, and are served once the slot frees. A refresh beyond the
// line is refused at once with 503 temporarily_unavailable and Retry-After;
// nothing of it was spent.
func TestTokenAdmission(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		gate, err := admission.New(admission.Options{Concurrency: 1, Queue: 1, MaxWait: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		obs := &observer{}
		e := newEnv(t, store, func(c *provider.Config) { c.TokenGate, c.Observer = gate, obs })
		r := e.NewRP(clients.Spec{})
		type grant struct{ code, verifier string }
		grants := make([]grant, 3)
		b := newBrowser(t)
		for i := range grants {
			v := oauth2.GenerateVerifier()
			loc := login(b, e.Issuer, r.Conf.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(v)), citizenCF, idp.LevelConsultazione)
			grants[i] = grant{loc.Query().Get("code"), v}
		}
		refresh := func() error {
			_, err := r.Conf.TokenSource(r.Ctx(), &oauth2.Token{RefreshToken: "not-a-refresh-token"}).Token()
			return err
		}
		// A slow request holds the one slot.
		release, err := gate.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		redeemed := make([]error, len(grants))
		for i := range grants { // more than the line holds: they wait all the same
			wg.Go(func() {
				_, redeemed[i] = r.Conf.Exchange(r.Ctx(), grants[i].code, oauth2.VerifierOption(grants[i].verifier))
			})
		}
		waitFor := func(n int) {
			for deadline := time.Now().Add(10 * time.Second); gate.Stats().Waiting != n; {
				if time.Now().After(deadline) {
					t.Fatalf("waiting %d, want %d", gate.Stats().Waiting, n)
				}
				time.Sleep(time.Millisecond)
			}
		}
		waitFor(len(grants))
		var queuedRefresh error
		wg.Go(func() { queuedRefresh = refresh() }) // fills the line of the other grants
		waitFor(len(grants) + 1)

		start := time.Now()
		err = refresh()
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "temporarily_unavailable" || re.Response.StatusCode != 503 || re.Response.Header.Get("Retry-After") != "10" {
			t.Fatalf("a refresh beyond the line: %v, want 503 temporarily_unavailable with Retry-After 10", err)
		}
		if ct := re.Response.Header.Get("Content-Type"); ct != "application/json;charset=UTF-8" {
			t.Errorf("the refusal's Content-Type %q, want JSON", ct)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("the refusal took %v, want at once", d)
		}
		release()
		wg.Wait()
		for i, err := range redeemed {
			if err != nil {
				t.Errorf("redemption %d, in line: %v", i, err)
			}
		}
		if !errors.As(queuedRefresh, &re) || re.ErrorCode != "invalid_grant" {
			t.Errorf("the refresh in line: %v, want it served (invalid_grant: the token is made up)", queuedRefresh)
		}
		if obs.logins.Load() != 1 || obs.codes.Load() != 3 {
			t.Errorf("observed %d logins and %d code grants, want 1 (the SSO session served the others) and 3", obs.logins.Load(), obs.codes.Load())
		}
		if st := gate.Stats(); st.Refused != 1 || st.RefusedBy[admission.Continuing] != 1 || st.InFlight != 0 || st.Waiting != 0 {
			t.Errorf("gate %+v", st)
		}
	})
}
