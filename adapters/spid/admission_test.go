//go:build !fuzzing

package spid_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/adapters/spid"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage/sqlstore"
)

// TestACSAdmission: with the verification slot taken and the line filled by
// a parallel response, the next response gets 503 with Retry-After and a
// page (Italian or English) that posts the same response again; nothing of
// it was spent: posted again once the surge has passed, it logs the citizen
// in, and the response in line is served too.
func TestACSAdmission(t *testing.T) {
	backends(t, func(t *testing.T, store *sqlstore.Store) {
		s := newSiteWith(t, store, []string{"PONTE_SPID_ACS_CONCURRENCY=1", "PONTE_SPID_ACS_QUEUE=1", "PONTE_SPID_ACS_MAX_WAIT=7s"})
		r := s.rp()
		gate := spid.ACSGate(s.spid)
		type citizen struct {
			b        *oidctest.Browser
			verifier string
			action   string
			form     url.Values
		}
		cs := make([]citizen, 2)
		for i := range cs {
			c := citizen{b: oidctest.NewBrowser(t), verifier: oauth2.GenerateVerifier()}
			c.action, c.form = form(t, s.idpLogin(c.b, s.toIdP(c.b, r, c.verifier), mario.FiscalNumber))
			cs[i] = c
		}
		release, err := gate.Acquire(context.Background()) // a response being verified
		if err != nil {
			t.Fatal(err)
		}
		var (
			wg     sync.WaitGroup
			queued *http.Response
		)
		wg.Go(func() { queued, _ = post(t, cs[0].b, cs[0].action, cs[0].form) })
		for gate.Stats().Waiting != 1 {
			time.Sleep(time.Millisecond)
		}
		var busyPage string
		for _, lang := range []string{"it", "en"} {
			resp, body := post(t, cs[1].b, cs[1].action+"?lang="+lang, cs[1].form)
			want := map[string]string{"it": "Riprova", "en": "Try again"}[lang]
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "7" || !strings.Contains(body, want) {
				t.Fatalf("%s: a response beyond the line: %d Retry-After %q: %.600s", lang, resp.StatusCode, resp.Header.Get("Retry-After"), body)
			}
			_, v := form(t, body)
			if !strings.Contains(body, `<form method="post" action="`+cs[1].action+`">`) || v.Get("SAMLResponse") != cs[1].form.Get("SAMLResponse") || v.Get("RelayState") != cs[1].form.Get("RelayState") {
				t.Fatalf("%s: the busy page does not post the same response again to %s: %v", lang, cs[1].action, v)
			}
			if !strings.Contains(body, `<button type="submit" formaction="/login/spid/acs?lang=`) {
				t.Errorf("%s: the busy page's language switch does not post the response again: %.2000s", lang, body)
			}
			busyPage = body
		}
		release()
		wg.Wait()
		if queued == nil || queued.StatusCode >= 400 {
			t.Fatalf("the response in line: %v", queued)
		}
		// The citizen presses the button: the same response, posted from Ponte's page.
		_, v := form(t, busyPage)
		resp, body := cs[1].b.Post(cs[1].action, v)
		loc := oidctest.RPRedirect(resp)
		if loc == nil {
			t.Fatalf("the response posted again did not log in: %d %.500s", resp.StatusCode, body)
		}
		if claims := exchange(t, r, loc, cs[1].verifier); claims["sub"] == nil {
			t.Fatalf("claims %v", claims)
		}
		var busy float64
		s.spid.(idp.Metered).CollectMetrics(context.Background(), func(sm idp.Sample) {
			if sm.Name == "ponte_spid_refusals_total" && sm.Labels[0].Value == "busy" {
				busy = sm.Value
			}
		})
		if busy != 2 {
			t.Errorf("busy refusals counted: %v, want 2", busy)
		}
	})
}
