package pin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// TestLockLiftedByAnOperator: a locked PIN tells the citizen how long, and
// what to do meanwhile (ripristino, the contact center, other methods); an
// operator sees the lock and lifts it, audited; the PIN then works.
func TestLockLiftedByAnOperator(t *testing.T) {
	s := newSite(t, storagetest.SQLite(t), func(c *pin.Config) {
		c.Throttle.MaxAccountFailures, c.Throttle.FreeAccountFailures, c.Throttle.Lockout = 3, 10, time.Hour
	})
	ctx := context.Background()
	if err := s.svc.Seed(ctx, mario2Account(), "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	srv := operatorAPI(t, s.fixture)
	if code, _ := call(t, "GET", srv.URL+"/locks/"+cf, "token-7", nil); code != http.StatusOK {
		t.Fatalf("lock state: %d", code)
	}
	r := s.env.NewRP(clients.Spec{})
	b := oidctest.NewBrowser(t)
	challenge, _ := s.startLogin(b, r)
	try := func(secret string) string {
		_, body := b.Post(s.env.Issuer+"/login/pin/", url.Values{"challenge": {challenge}, "fiscal_number": {cf}, "pin": {secret}})
		return body
	}
	for range 3 {
		try("Wrong123")
	}
	body := try("Abcd1234")
	for _, want := range []string{"Il PIN è bloccato", "circa 60 minuti", "803 164", "ripristino"} {
		if !strings.Contains(body, want) {
			t.Fatalf("the locked page lacks %q: %.1500s", want, body)
		}
	}
	linkTo(t, body, "/login/pin/recover")
	linkTo(t, body, "/login")

	code, out := call(t, "GET", srv.URL+"/locks/"+strings.ToLower(cf), "token-7", nil)
	var state struct {
		Failures int       `json:"failures"`
		Locked   bool      `json:"locked"`
		Until    time.Time `json:"until"`
	}
	if err := json.Unmarshal(out, &state); code != http.StatusOK || err != nil || !state.Locked || state.Failures != 3 || state.Until.IsZero() {
		t.Fatalf("lock state: %d %s", code, out)
	}
	if code, _ := call(t, "POST", srv.URL+"/unlocks", "token-7", map[string]string{"fiscal_number": cf, "channel": "phone"}); code != http.StatusBadRequest {
		t.Fatalf("an unknown channel: %d", code)
	}
	if code, _ := call(t, "POST", srv.URL+"/unlocks", "token-7", map[string]string{"fiscal_number": "BNCLRA90D55F205C", "channel": "contact_center"}); code != http.StatusNotFound {
		t.Fatalf("no PIN: %d", code)
	}
	if code, _ := call(t, "POST", srv.URL+"/unlocks", "", map[string]string{"fiscal_number": cf, "channel": "contact_center"}); code != http.StatusUnauthorized {
		t.Fatalf("without an operator: %d", code)
	}
	code, out = call(t, "POST", srv.URL+"/unlocks", "token-7", map[string]string{"fiscal_number": cf, "channel": "contact_center"})
	if code != http.StatusOK || !strings.Contains(string(out), `"locked":true`) {
		t.Fatalf("unlock: %d %s", code, out)
	}
	events, _ := s.store.ListAudit(ctx, cf)
	last := events[len(events)-1]
	if last.Event != "unlocked" || last.Operator != "op-7" || last.Channel != "contact_center" || !strings.Contains(last.Detail, "3 consecutive failures") {
		t.Fatalf("audit: %+v", last)
	}
	if loc := oidctest.RPRedirect(postLogin(t, b, s, challenge, "Abcd1234")); loc == nil {
		t.Fatal("the PIN does not work after the lock was lifted")
	}
}

func postLogin(t *testing.T, b *oidctest.Browser, s *site, challenge, secret string) *http.Response {
	t.Helper()
	resp, _ := b.Post(s.env.Issuer+"/login/pin/", url.Values{"challenge": {challenge}, "fiscal_number": {cf}, "pin": {secret}})
	return resp
}
