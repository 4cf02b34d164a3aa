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

// TestTokenAdmission: with the token endpoint's slot taken and its line
// filled by parallel redemptions, the next one gets 503
// temporarily_unavailable with Retry-After, at once; nothing of it was
// spent: its code is redeemed once the surge has passed, and those in line
// are served.
func TestTokenAdmission(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		gate, err := admission.New(admission.Options{Concurrency: 1, Queue: 2, MaxWait: 10 * time.Second})
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
		// A slow request holds the one slot.
		release, err := gate.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		queued := make([]error, 2)
		for i := range queued {
			wg.Go(func() {
				_, queued[i] = r.Conf.Exchange(r.Ctx(), grants[i].code, oauth2.VerifierOption(grants[i].verifier))
			})
		}
		for gate.Stats().Waiting != 2 {
			time.Sleep(time.Millisecond)
		}
		start := time.Now()
		_, err = r.Conf.Exchange(r.Ctx(), grants[2].code, oauth2.VerifierOption(grants[2].verifier))
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "temporarily_unavailable" || re.Response.StatusCode != 503 || re.Response.Header.Get("Retry-After") != "10" {
			t.Fatalf("a redemption beyond the line: %v, want 503 temporarily_unavailable with Retry-After 10", err)
		}
		if ct := re.Response.Header.Get("Content-Type"); ct != "application/json;charset=UTF-8" {
			t.Errorf("the refusal's Content-Type %q, want JSON", ct)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("the refusal took %v, want at once", d)
		}
		release()
		wg.Wait()
		for i, err := range queued {
			if err != nil {
				t.Errorf("redemption %d, in line: %v", i, err)
			}
		}
		if _, err := r.Conf.Exchange(r.Ctx(), grants[2].code, oauth2.VerifierOption(grants[2].verifier)); err != nil {
			t.Fatalf("the refused redemption's code, afterwards: %v (a refusal must spend nothing)", err)
		}
		if obs.logins.Load() != 1 || obs.codes.Load() != 3 {
			t.Errorf("observed %d logins and %d code grants, want 1 (the SSO session served the others) and 3", obs.logins.Load(), obs.codes.Load())
		}
		if st := gate.Stats(); st.Refused != 1 || st.InFlight != 0 || st.Waiting != 0 {
			t.Errorf("gate %+v", st)
		}
	})
}
