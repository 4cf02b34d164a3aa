package pin_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/internal/codicefiscale"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// codes returns n valid codici fiscali, all different.
func codes(t testing.TB, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		first := fmt.Sprintf("BNCLRA90D55F%03d", i)
		c, err := codicefiscale.CheckChar(first)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = first + string(c)
	}
	return out
}

// TestIPThrottleAcrossAccounts: failures from one address on many accounts
// (one each, so no account is delayed) delay that address after the free
// ones, and no other address.
func TestIPThrottleAcrossAccounts(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021)
	ctx := context.Background()
	free := pin.DefaultThrottle.FreeIPFailures
	cfs := codes(t, free+2)
	for i := range free {
		if _, err := f.svc.Login(ctx, cfs[i], "WRONG123", "198.51.100.7"); !errors.Is(err, pin.ErrBadCredentials) {
			t.Fatalf("failure %d from the address: %v", i+1, err)
		}
	}
	var throttled *pin.ThrottledError
	if _, err := f.svc.Login(ctx, cfs[free], "WRONG123", "198.51.100.7"); !errors.As(err, &throttled) || throttled.Locked {
		t.Fatalf("after %d failures from one address on as many accounts: %v, want a delay", free, err)
	}
	if _, err := f.svc.Login(ctx, cfs[free+1], "WRONG123", "203.0.113.9"); !errors.Is(err, pin.ErrBadCredentials) {
		t.Fatalf("another address is not delayed: %v", err)
	}
	// A quiet day and the address starts afresh.
	f.clock.Advance(pin.DefaultThrottle.ForgetIP + time.Minute)
	if _, err := f.svc.Login(ctx, cfs[free], "WRONG123", "198.51.100.7"); !errors.Is(err, pin.ErrBadCredentials) {
		t.Fatalf("after a quiet day: %v", err)
	}
}

// TestActivationIsThrottled: guessing a postal first half counts on the
// account like a wrong PIN.
func TestActivationIsThrottled(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021)
	ctx := context.Background()
	req := mario()
	req.FirstHalfVia = "post"
	if _, err := f.svc.RequestPIN(ctx, req, pin.ChannelOnline, "", ""); err != nil {
		t.Fatal(err)
	}
	first := f.secretBySubject("prima parte")
	for i := range pin.DefaultThrottle.FreeAccountFailures {
		if err := f.svc.Activate(ctx, cf, "WRONG"+string(rune('A'+i))+"23", "80380000000000000001", "2029-01", "192.0.2.1"); !errors.Is(err, pin.ErrBadCredentials) {
			t.Fatalf("wrong half %d: %v", i, err)
		}
	}
	var throttled *pin.ThrottledError
	if err := f.svc.Activate(ctx, cf, first, "80380000000000000001", "2029-01", "192.0.2.1"); !errors.As(err, &throttled) {
		t.Fatalf("after the free failures even the right half waits: %v", err)
	}
	f.clock.Advance(time.Minute)
	if err := f.svc.Activate(ctx, cf, first, "80380000000000000001", "2029-01", "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
}

// post sends a form like a same-origin page would, returning status, Retry-After and body.
func post(t *testing.T, u string, form url.Values) (int, string, string) {
	t.Helper()
	resp, err := http.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
}

// TestFormsLimitedPerAddress: the request, recovery and revocation forms
// answer 429 with Retry-After once one address has sent too many; each form
// counts on its own.
func TestFormsLimitedPerAddress(t *testing.T) {
	s := newSite(t, storagetest.SQLite(t), func(c *pin.Config) { c.Limits.PerIP = 3 })
	for _, path := range []string{"/login/pin/request", "/login/pin/recover", "/login/pin/revoke"} {
		for i := range 3 {
			if code, _, _ := post(t, s.env.Issuer+path, url.Values{"fiscal_number": {cf}}); code == http.StatusTooManyRequests {
				t.Fatalf("%s: post %d refused within the limit", path, i+1)
			}
		}
		code, retry, body := post(t, s.env.Issuer+path, url.Values{"fiscal_number": {cf}})
		if code != http.StatusTooManyRequests || retry != "3600" || !strings.Contains(body, "troppe richieste") {
			t.Fatalf("%s beyond the limit: %d Retry-After %q %.200s", path, code, retry, body)
		}
	}
}

// TestFormsLimitedPerCitizen: beyond the per-citizen limit the forms answer
// as usual and send nothing more: no more recovery links or warnings to the
// citizen, whatever addresses the posts come from.
func TestFormsLimitedPerCitizen(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021, func(c *pin.Config) { c.Limits.PerCitizen = 2 })
	ctx := context.Background()
	if err := f.svc.Seed(ctx, marioAccount(), "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		ip := fmt.Sprintf("192.0.2.%d", i+1)
		if err := f.svc.StartRecovery(ctx, cf, pin.Contacts{Email: "mario.rossi@example.it", Mobile: "+393331234567"}, ip); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.RequestPIN(ctx, mario(), pin.ChannelOnline, "", ip); err != nil {
			t.Fatal(err)
		}
	}
	msgs, _ := f.store.ListMessages(ctx, 100)
	links, warnings := 0, 0
	for _, m := range msgs {
		switch {
		case strings.Contains(m.Subject, "ripristino"):
			links++
		case strings.Contains(m.Subject, "richiesta per il suo codice fiscale"):
			warnings++
		}
	}
	if links != 2 || warnings != 2 {
		t.Fatalf("%d recovery links and %d warnings after 4 posts each, want 2 and 2", links, warnings)
	}
}

// TestHashingLineFull: with one hashing slot and a line of one, a burst of
// logins on many accounts gets 503 with Retry-After for what cannot be
// checked, and only the checked guesses count as failures.
func TestHashingLineFull(t *testing.T) {
	s := newSite(t, storagetest.SQLite(t), func(c *pin.Config) {
		c.HashConcurrency, c.HashQueue, c.HashMaxWait = 1, 1, 5*time.Millisecond
		c.Throttle.FreeIPFailures = 1000
	})
	rp := s.env.NewRP(clients.Spec{})
	cfs := codes(t, 40)
	type answer struct {
		code  int
		retry string
	}
	// Each guess from its own browser, on its own challenge, prepared first
	// so that the posts arrive together.
	logins := make([]func() (int, string), len(cfs))
	for i, c := range cfs {
		logins[i] = prepareLogin(t, s, rp, c)
	}
	answers := make([]answer, len(cfs))
	var wg sync.WaitGroup
	for i, login := range logins {
		wg.Go(func() {
			code, retry := login()
			answers[i] = answer{code, retry}
		})
	}
	wg.Wait()
	busy, checked := 0, 0
	for i, a := range answers {
		n, _, _ := s.store.GetAttempts(context.Background(), "cf:"+cfs[i])
		switch a.code {
		case http.StatusServiceUnavailable:
			busy++
			if a.retry != "5" || n != 0 {
				t.Fatalf("a 503 answer: Retry-After %q, counted %d", a.retry, n)
			}
		case http.StatusOK:
			checked++
			if n != 1 {
				t.Fatalf("a checked guess counted %d", n)
			}
		default:
			t.Fatalf("unexpected status %d", a.code)
		}
	}
	if busy == 0 || checked == 0 {
		t.Fatalf("%d busy and %d checked of %d: want both", busy, checked, len(cfs))
	}
	// The metrics tell the same story: the results, and the gate's refusals.
	got := map[string]float64{}
	s.svc.Authenticator().(idp.Metered).CollectMetrics(context.Background(), func(sm idp.Sample) {
		key := sm.Name
		for _, l := range sm.Labels {
			key += " " + l.Value
		}
		got[key] = sm.Value
	})
	for key, want := range map[string]int{
		"ponte_logins_total busy": busy, "ponte_logins_total bad_credentials": checked,
		"ponte_admission_refused_total argon2id continuing": busy, "ponte_admission_capacity argon2id": 1,
		"ponte_admission_queue_capacity argon2id": 1, "ponte_admission_in_flight argon2id": 0,
		"ponte_pin_outbox_backlog": 0, "ponte_pin_outbox_parked": 0,
	} {
		if v, ok := got[key]; !ok || v != float64(want) {
			t.Errorf("%s = %v (reported %v), want %d", key, v, ok, want)
		}
	}
}

// prepareLogin opens the PIN form of a fresh authorization in a new browser
// and returns the post of a wrong PIN for fiscal, giving status and Retry-After.
func prepareLogin(t *testing.T, s *site, rp *oidctest.RP, fiscal string) func() (int, string) {
	t.Helper()
	b := oidctest.NewBrowser(t)
	_, body := b.Get(rp.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	challenge := field(t, challengeField, body)
	return func() (int, string) {
		resp, err := b.Client.PostForm(s.env.Issuer+"/login/pin/", url.Values{"challenge": {challenge}, "fiscal_number": {fiscal}, "pin": {"WRONG123"}})
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
}

// TestParallelRequestsForANewCitizen: the same request posted eight times at
// once creates one account and sends one PIN; the others find it.
func TestParallelRequestsForANewCitizen(t *testing.T) {
	for _, be := range storagetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			f := newFixture(t, be.Open(t), before2021, func(c *pin.Config) { c.Limits.PerCitizen = 100 })
			errs := make([]error, 8)
			var wg sync.WaitGroup
			for i := range errs {
				wg.Go(func() { _, errs[i] = f.svc.RequestPIN(context.Background(), mario(), pin.ChannelOnline, "", "") })
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if s := f.secrets(); len(s["sms"]) != 1 || len(s["post"]) != 1 {
				t.Fatalf("want one PIN sent, got %v", s)
			}
		})
	}
}

// TestParallelCallbackDecisions: six operators confirm one waiting request at
// once through the API: one wins, the others get 404, one PIN is sent.
func TestParallelCallbackDecisions(t *testing.T) {
	for _, be := range storagetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			f := newFixture(t, be.Open(t), before2021)
			ctx := context.Background()
			old := marioAccount()
			old.Email = "old@example.it"
			if err := f.store.CreatePINAccount(ctx, old); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.RequestPIN(ctx, mario(), pin.ChannelOnline, "", ""); err != nil {
				t.Fatal(err)
			}
			waiting, _ := f.svc.WaitingRequests(ctx, 0)
			if len(waiting) != 1 {
				t.Fatalf("waiting: %d", len(waiting))
			}
			srv := operatorAPI(t, f)
			codes := make([]int, 6)
			var wg sync.WaitGroup
			for i := range codes {
				wg.Go(func() {
					codes[i], _ = call(t, "POST", srv.URL+"/callbacks", "token-7", map[string]any{"request_id": waiting[0].ID, "confirmed": true})
				})
			}
			wg.Wait()
			won := 0
			for _, c := range codes {
				switch c {
				case http.StatusNoContent:
					won++
				case http.StatusNotFound:
				default:
					t.Fatalf("status %d", c)
				}
			}
			if s := f.secrets(); won != 1 || len(s["sms"]) != 1 || len(s["post"]) != 1 {
				t.Fatalf("%d confirmations won; halves %v", won, s)
			}
			if a, _ := f.store.GetPINAccount(ctx, cf); a.Email != "mario.rossi@example.it" || a.Status != storage.PINActive {
				t.Fatalf("after the confirmed callback: %s %s", a.Email, a.Status)
			}
		})
	}
}

// TestIPv6NetworkCountsAsOne: the addresses of one IPv6 /64 (one subscriber)
// share the per-address throttle and form limits: a client cannot escape them
// by changing the host part of its address.
func TestIPv6NetworkCountsAsOne(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021, func(c *pin.Config) { c.Limits.PerIP = 3 })
	ctx := context.Background()
	free := pin.DefaultThrottle.FreeIPFailures
	cfs := codes(t, free+2)
	for i := range free {
		if _, err := f.svc.Login(ctx, cfs[i], "WRONG123", fmt.Sprintf("2001:db8:1:2::%x", i+1)); !errors.Is(err, pin.ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	var throttled *pin.ThrottledError
	if _, err := f.svc.Login(ctx, cfs[free], "WRONG123", "2001:db8:1:2:ffff::1"); !errors.As(err, &throttled) {
		t.Fatalf("another address of the same /64: %v, want a delay", err)
	}
	if _, err := f.svc.Login(ctx, cfs[free+1], "WRONG123", "2001:db8:1:3::1"); !errors.Is(err, pin.ErrBadCredentials) {
		t.Fatalf("another /64 is another client: %v", err)
	}
	var limited *pin.RateLimitedError
	for i := range 4 {
		err := f.svc.StartRecovery(ctx, cf, pin.Contacts{}, fmt.Sprintf("2001:db8:9:9::%x", i+1))
		if got := errors.As(err, &limited); got != (i == 3) {
			t.Fatalf("recovery %d from the same /64: %v", i+1, err)
		}
	}
}

// TestRequestFieldsBounded: the request form refuses values no real one
// reaches (a 1.5 MB birth place, a made-up callback slot) with a sentence
// per field, and stores nothing; a body above a form's size is refused
// outright on every page but the conversion upload.
func TestRequestFieldsBounded(t *testing.T) {
	s := newSite(t, storagetest.SQLite(t))
	form := url.Values{
		"fiscal_number": {cf}, "given_name": {"Mario"}, "family_name": {"Rossi"}, "gender": {"M"},
		"birthdate": {"1980-01-01"}, "birth_place": {strings.Repeat("Roma", 30)}, "street": {"Via Roma"}, "number": {"1"},
		"postal_code": {"00100"}, "city": {"Roma"}, "province": {"RM"}, "mobile": {"+393331234567"},
		"email": {"mario@example.it"}, "preferred_phone": {"+393331234567"}, "callback_slot": {"whenever"},
		"first_half_via": {"sms"},
	}
	code, _, body := post(t, s.env.Issuer+"/login/pin/request", form)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, `href="#f-birth_place"`) || !strings.Contains(body, `href="#f-callback_slot"`) {
		t.Fatalf("oversized and made-up fields: %d %.3000s", code, body)
	}
	if _, err := s.store.GetPINAccount(context.Background(), cf); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("a refused request stored an account")
	}
	form.Set("birth_place", strings.Repeat("x", 100<<10))
	if code, _, _ := post(t, s.env.Issuer+"/login/pin/request", form); code != http.StatusRequestEntityTooLarge && code != http.StatusBadRequest {
		t.Fatalf("a 100 KiB form body: %d, want it refused before reading", code)
	}
}

// TestRequestAnswersInTheSameTime: a request for a codice fiscale with an
// account (warned, parked) and one without (a PIN hashed and issued) both
// answer no sooner than the floor, so the answer's timing does not tell them
// apart. (A lower bound only: the floor is a sleep.)
func TestRequestAnswersInTheSameTime(t *testing.T) {
	s := newSite(t, storagetest.SQLite(t))
	if err := s.svc.Seed(context.Background(), marioAccount(), "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	form := func(fiscal string) url.Values {
		return url.Values{
			"fiscal_number": {fiscal}, "given_name": {"Mario"}, "family_name": {"Rossi"}, "gender": {"M"},
			"birthdate": {"1980-01-01"}, "birth_place": {"Roma"}, "street": {"Via Roma"}, "number": {"1"},
			"postal_code": {"00100"}, "city": {"Roma"}, "province": {"RM"}, "mobile": {"+393331234567"},
			"email": {"mario.rossi@example.it"}, "preferred_phone": {"+393331234567"}, "callback_slot": {"09-13"},
			"first_half_via": {"sms"},
		}
	}
	other := form("RSSMRA80A01H501U")
	other.Set("email", "someone@example.it") // differs from the record: parked
	laura := form("BNCLRA90D55F205C")
	laura.Set("gender", "F")
	laura.Set("birthdate", "1990-04-15")
	for name, f := range map[string]url.Values{"an account, parked": other, "no account, issued": laura} {
		start := time.Now()
		code, _, _ := post(t, s.env.Issuer+"/login/pin/request", f)
		if took := time.Since(start); code != http.StatusOK || took < 700*time.Millisecond {
			t.Errorf("%s: %d after %v, want 200 after the floor", name, code, took)
		}
	}
}
