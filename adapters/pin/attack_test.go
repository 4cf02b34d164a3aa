package pin_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// The attacks of issue 7, replayed over HTTP against a real listener by a
// stranger who knows only the victim's codice fiscale and name (the birth date
// and sex are inside the codice fiscale; the birth place is often public).

// attacker's own address and contacts.
var attackerData = url.Values{
	"abroad": {"yes"}, "street": {"Calle Falsa"}, "number": {"123"}, "city": {"Buenos Aires"}, "country": {"Argentina"},
	"mobile": {"+5491199999999"}, "email": {"attacker@evil.example"}, "preferred_phone": {"+5491199999999"},
	"callback_slot": {"09-13"}, "first_half_via": {"email"},
}

// victimPublic is what a stranger knows of mario.
func victimPublic() url.Values {
	return url.Values{"fiscal_number": {cf}, "given_name": {"Mario"}, "family_name": {"Rossi"}, "gender": {"M"},
		"birthdate": {"1980-01-01"}, "birth_place": {"Roma"}}
}

func merge(vs ...url.Values) url.Values {
	out := url.Values{}
	for _, v := range vs {
		for k, x := range v {
			out[k] = x
		}
	}
	return out
}

// victimFixture seeds mario with a PIN in the given state and returns the site.
func victimFixture(t *testing.T, store *storagetest.Backend, state storage.PINStatus) (*site, storage.PINAccount) {
	t.Helper()
	s := newSite(t, store.Open(t))
	ctx := context.Background()
	if err := s.svc.Seed(ctx, marioAccount(), "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	if state != storage.PINActive {
		if err := s.store.UpdatePINAccount(ctx, cf, func(a storage.PINAccount) (storage.PINAccount, error) {
			a.Status = state
			return a, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	a, err := s.store.GetPINAccount(ctx, cf)
	if err != nil {
		t.Fatal(err)
	}
	return s, a
}

// noMessageTo fails if the outbox holds anything for the attacker.
func (s *site) noMessageTo(t *testing.T, who ...string) {
	t.Helper()
	msgs, err := s.store.ListMessages(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		for _, w := range who {
			if strings.Contains(m.To, w) {
				t.Fatalf("a message (%q) went to the attacker's %q", m.Subject, m.To)
			}
		}
	}
}

// TestAttackRequestCannotHijackAPIN replays the whole chain of issue 7: the
// online revoca with the victim's public data, then the request with the
// attacker's residence and contacts, twice. Whatever state the victim's PIN
// is in, nothing reaches the attacker and nothing on record changes; the
// victim is warned at the contacts on record. Before the fix the revoca
// revoked the PIN, the first request put the attacker's residence on record
// and the second issued a PIN to the attacker.
func TestAttackRequestCannotHijackAPIN(t *testing.T) {
	for _, be := range storagetest.Backends() {
		for _, state := range []storage.PINStatus{storage.PINActive, storage.PINPending, storage.PINRevoked} {
			t.Run(be.Name+"/"+string(state), func(t *testing.T) {
				s, before := victimFixture(t, &be, state)
				b := oidctest.NewBrowser(t)
				if resp, _ := b.Post(s.env.Issuer+"/login/pin/revoke", victimPublic()); resp.StatusCode != http.StatusOK {
					t.Fatalf("revoke: %d", resp.StatusCode)
				}
				for i := range 2 {
					resp, body := b.Post(s.env.Issuer+"/login/pin/request", merge(victimPublic(), attackerData))
					if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Richiesta inserita") {
						t.Fatalf("post %d: %d %.300s", i, resp.StatusCode, body)
					}
				}
				after, err := s.store.GetPINAccount(context.Background(), cf)
				if err != nil {
					t.Fatal(err)
				}
				if after.Residence != before.Residence || after.Email != before.Email || after.Mobile != before.Mobile ||
					after.Status != before.Status || string(after.Hash) != string(before.Hash) {
					t.Fatalf("a pending request changed the record:\nbefore %+v\nafter  %+v", before, after)
				}
				s.noMessageTo(t, "attacker@evil.example", "Calle Falsa", "+5491199999999")
				msgs, _ := s.store.ListMessages(context.Background(), 20)
				warned := slices.ContainsFunc(msgs, func(m storage.Message) bool { return m.To == before.Email && len(m.Secret) == 0 })
				if !warned {
					t.Fatalf("the victim was not warned at the email on record: %+v", msgs)
				}
				if state == storage.PINActive {
					if _, err := s.svc.Login(context.Background(), cf, "Abcd1234", ""); err != nil {
						t.Fatalf("the victim's PIN stopped working: %v", err)
					}
				}
			})
		}
	}
}

// TestAttackRequestWhileAGenuineOneWaits: a citizen's own request waits for a
// callback; the attacker's request for the same codice fiscale waits beside
// it and cannot take its place. The operator confirms the genuine one by ID
// and the PIN goes to the genuine data; the attacker's is superseded.
func TestAttackRequestWhileAGenuineOneWaits(t *testing.T) {
	for _, be := range storagetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			s, _ := victimFixture(t, &be, storage.PINRevoked)
			ctx := context.Background()
			genuine := mario()
			genuine.Residence = storage.Address{Street: "Via Nuova", Number: "2", PostalCode: "00100", City: "Roma", Province: "RM"}
			if _, err := s.svc.RequestPIN(ctx, genuine, pin.ChannelOnline, "", "192.0.2.10"); err != nil {
				t.Fatal(err)
			}
			b := oidctest.NewBrowser(t)
			for range 2 {
				s.clock.Advance(time.Minute)
				if resp, _ := b.Post(s.env.Issuer+"/login/pin/request", merge(victimPublic(), attackerData)); resp.StatusCode != http.StatusOK {
					t.Fatalf("attacker's post: %d", resp.StatusCode)
				}
			}
			waiting, err := s.svc.WaitingRequests(ctx, 0)
			if err != nil || len(waiting) != 3 {
				t.Fatalf("want the genuine request and the attacker's two waiting, got %d %v", len(waiting), err)
			}
			if waiting[0].Proposed.Residence.Street != "Via Nuova" {
				t.Fatalf("the genuine request was overwritten: %+v", waiting[0].Proposed.Residence)
			}
			if err := s.svc.ConfirmCallback(ctx, waiting[0].ID, "op-5", true); err != nil {
				t.Fatal(err)
			}
			s.noMessageTo(t, "attacker@evil.example", "Calle Falsa", "+5491199999999")
			if post := s.secrets()["post"]; len(post) != 1 {
				t.Fatalf("the genuine PIN's postal half: %v", post)
			}
			if a, _ := s.store.GetPINAccount(ctx, cf); a.Residence.Street != "Via Nuova" {
				t.Fatalf("the confirmed data are not on record: %+v", a.Residence)
			}
			if err := s.svc.ConfirmCallback(ctx, waiting[1].ID, "op-5", true); err == nil {
				t.Fatal("the attacker's request could still be confirmed after the genuine one")
			}
		})
	}
}

// TestAttackRevokeWithPublicData: an online revoca with the victim's public
// data revokes nothing: the PIN, the session and the tokens live on, and the
// replacement goes to the victim's own mobile and residence. Before the fix
// the victim's PIN, sessions and tokens were revoked on the spot.
func TestAttackRevokeWithPublicData(t *testing.T) {
	for _, be := range storagetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			s, before := victimFixture(t, &be, storage.PINActive)
			ctx := context.Background()
			subj, err := s.store.LinkSubject(ctx, storage.Subject{ID: "victim", FiscalNumber: cf})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			if err := s.store.CreateSession(ctx, storage.Session{ID: "victim-session", Subject: subj.ID, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			b := oidctest.NewBrowser(t)
			resp, _ := b.Post(s.env.Issuer+"/login/pin/revoke", victimPublic())
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("revoke: %d", resp.StatusCode)
			}
			if _, err := s.svc.Login(ctx, cf, "Abcd1234", ""); err != nil {
				t.Fatalf("the victim's PIN was revoked by a stranger: %v", err)
			}
			if _, err := s.store.GetSession(ctx, "victim-session"); err != nil {
				t.Fatalf("the victim's session was ended by a stranger: %v", err)
			}
			msgs, _ := s.store.ListMessages(ctx, 10)
			for _, m := range msgs {
				if m.To != before.Mobile && !strings.Contains(m.To, before.Residence.Street) {
					t.Fatalf("a replacement half went to %q, not to the record", m.To)
				}
			}
		})
	}
}

// TestAttackParallelGuesses: 150 parallel wrong PINs for one account are
// reserved one by one before hashing: only the free attempts are checked,
// the rest are refused before any hash. Before the fix all 150 were hashed
// and counted (153), 53 of them after the lock at 100.
func TestAttackParallelGuesses(t *testing.T) {
	for _, be := range storagetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			s, _ := victimFixture(t, &be, storage.PINActive)
			r := s.env.NewRP(clients.Spec{})
			authURL := r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
			b := oidctest.NewBrowser(t)
			_, body := b.Get(authURL)
			challenge := field(t, challengeField, body)
			const n = 150
			bodies := make([]string, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					resp, err := b.Client.PostForm(s.env.Issuer+"/login/pin/", url.Values{"challenge": {challenge}, "fiscal_number": {cf}, "pin": {"WRONG" + string(rune('A'+i%26))}})
					if err != nil {
						t.Error(err)
						return
					}
					defer resp.Body.Close()
					page, _ := io.ReadAll(resp.Body)
					bodies[i] = string(page)
				})
			}
			wg.Wait()
			checked, refused := 0, 0
			free := pin.DefaultThrottle.FreeAccountFailures
			for _, body := range bodies {
				switch {
				case strings.Contains(body, "non corretti"):
					checked++
				case strings.Contains(body, "bloccato per troppi tentativi"):
					// A throttled attempt is never counted, so a burst
					// never raises the count to the lock.
					t.Errorf("an attempt read a lock after %d failures", free)
				case strings.Contains(body, "Troppi tentativi"):
					refused++
				}
			}
			if checked != free || refused != n-free {
				t.Fatalf("%d guesses checked and %d refused of %d, want %d checked", checked, refused, n, free)
			}
			if count, _, _ := s.store.GetAttempts(context.Background(), "cf:"+cf); count != free {
				t.Fatalf("the account counts %d failures, want %d", count, free)
			}
		})
	}
}

// TestAttackSquatKnownCitizen: a citizen who logs in with SPID or CNS has no
// PIN. A stranger's online request with the citizen's public data and the
// stranger's address and contacts issues nothing: the core knows the citizen,
// so the request waits for an operator's callback, and the citizen is warned
// at the email the core holds. Before the fix a PIN went to the stranger and
// logged in as the citizen's subject.
func TestAttackSquatKnownCitizen(t *testing.T) {
	for _, be := range storagetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			s := newSite(t, be.Open(t))
			ctx := context.Background()
			if _, err := s.store.LinkSubject(ctx, storage.Subject{ID: "spid-citizen", FiscalNumber: cf, GivenName: "Mario",
				FamilyName: "Rossi", Email: "mario.spid@example.it"}); err != nil {
				t.Fatal(err)
			}
			b := oidctest.NewBrowser(t)
			for range 2 {
				if resp, _ := b.Post(s.env.Issuer+"/login/pin/request", merge(victimPublic(), attackerData)); resp.StatusCode != http.StatusOK {
					t.Fatalf("request: %d", resp.StatusCode)
				}
			}
			if _, err := s.store.GetPINAccount(ctx, cf); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("a PIN account was created for a citizen the core knows: %v", err)
			}
			s.noMessageTo(t, "attacker@evil.example", "Calle Falsa", "+5491199999999")
			if secrets := s.secrets(); len(secrets) != 0 {
				t.Fatalf("a PIN half was queued: %v", secrets)
			}
			msgs, _ := s.store.ListMessages(ctx, 10)
			if !slices.ContainsFunc(msgs, func(m storage.Message) bool { return m.To == "mario.spid@example.it" }) {
				t.Fatalf("the citizen was not warned at the email the core holds: %+v", msgs)
			}
			waiting, err := s.svc.WaitingRequests(ctx, 0)
			if err != nil || len(waiting) != 2 {
				t.Fatalf("waiting requests: %d %v", len(waiting), err)
			}
			// A confirmed callback (the verified act) creates the account.
			if err := s.svc.ConfirmCallback(ctx, waiting[0].ID, "op-5", true); err != nil {
				t.Fatal(err)
			}
			if a, err := s.store.GetPINAccount(ctx, cf); err != nil || a.Status != storage.PINActive {
				t.Fatalf("after the confirmed callback: %+v %v", a.Status, err)
			}
		})
	}
}

// TestAttackRevocaCannotCancelTheReplacement: the citizen's revoca sends a
// replacement; a stranger's revoca from other addresses sends nothing more
// and leaves the citizen's replacement working. Once the replacement has
// expired unused, it opens nothing and a new revoca may send another.
func TestAttackRevocaCannotCancelTheReplacement(t *testing.T) {
	for _, be := range storagetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			f := newFixture(t, be.Open(t), before2021, func(c *pin.Config) { c.Limits.PerCitizen = 10 })
			ctx := context.Background()
			if err := f.svc.Seed(ctx, marioAccount(), "Abcd1234"); err != nil {
				t.Fatal(err)
			}
			if err := f.svc.RevokeOnline(ctx, mario(), "192.0.2.1"); err != nil {
				t.Fatal(err)
			}
			replacement := f.secrets()["sms"][0] + f.secrets()["post"][0]
			for i := range 3 {
				f.clock.Advance(time.Hour)
				if err := f.svc.RevokeOnline(ctx, mario(), fmt.Sprintf("203.0.113.%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			if post := f.secrets()["post"]; len(post) != 1 {
				t.Fatalf("%d letters for one citizen's revoca and a stranger's, want 1", len(post))
			}
			if res, err := f.svc.Login(ctx, cf, replacement, ""); err != nil || res.Change != pin.ChangeFirstAccess {
				t.Fatalf("the citizen's replacement after a stranger's revoca: %v", err)
			}

			// An unused replacement expires.
			g := newFixture(t, be.Open(t), before2021)
			if err := g.svc.Seed(ctx, marioAccount(), "Abcd1234"); err != nil {
				t.Fatal(err)
			}
			if err := g.svc.RevokeOnline(ctx, mario(), ""); err != nil {
				t.Fatal(err)
			}
			old := g.secrets()["sms"][0] + g.secrets()["post"][0]
			g.clock.Advance(pin.DefaultConfig().ReplacementTTL + time.Hour)
			if _, err := g.svc.Login(ctx, cf, old, ""); !errors.Is(err, pin.ErrBadCredentials) {
				t.Fatalf("an expired replacement: %v", err)
			}
			if err := g.svc.RevokeOnline(ctx, mario(), ""); err != nil {
				t.Fatal(err)
			}
			if post := g.secrets()["post"]; len(post) != 2 {
				t.Fatalf("after the first replacement expired: %d letters, want 2", len(post))
			}
		})
	}
}

// TestAttackPINOverwritesSPIDClaims: a citizen known through SPID has the
// names and contacts their identity provider asserted; a PIN whose record
// holds other data (a stranger's contacts registered on it, or a stale
// record) logs in. The relying party gets the SPID claims, and the subject
// keeps them, whatever the PIN's level. Before the fix the PIN account's data
// overwrote them, and every relying party, the dispositivo ones included,
// got the stranger's email and phone as the citizen's.
func TestAttackPINOverwritesSPIDClaims(t *testing.T) {
	spidRank := idp.Identity{Level: idp.LevelDispositivo, Method: idp.MethodSPID}.ClaimsRank()
	spid := storage.Subject{ID: "spid-citizen", FiscalNumber: cf, GivenName: "Mario", FamilyName: "Rossi", Birthdate: "1980-01-01",
		Gender: "M", Email: "mario.spid@example.it", PhoneNumber: "+393330000001", ClaimsRank: spidRank}
	for _, be := range storagetest.Backends() {
		for _, dispositivo := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/dispositivo=%v", be.Name, dispositivo), func(t *testing.T) {
				s, _ := victimFixture(t, &be, storage.PINActive)
				ctx := context.Background()
				if err := s.store.UpdatePINAccount(ctx, cf, func(a storage.PINAccount) (storage.PINAccount, error) {
					a.GivenName, a.Email, a.Mobile, a.Dispositivo = "Mallory", "attacker@evil.example", "+5491199999999", dispositivo
					return a, nil
				}); err != nil {
					t.Fatal(err)
				}
				if _, err := s.store.LinkSubject(ctx, spid); err != nil {
					t.Fatal(err)
				}
				r := s.env.NewRP(clients.Spec{Scopes: []string{"openid", "profile", "email", "phone"}})
				r.Conf.Scopes = []string{"openid", "profile", "email", "phone"}
				verifier := oauth2.GenerateVerifier()
				resp, _ := s.pinLogin(oidctest.NewBrowser(t), r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(verifier)), cf, "Abcd1234")
				_, claims := s.exchange(r, oidctest.RPRedirect(resp), verifier)
				if claims["auth_method"] != "pin" || claims["given_name"] != "Mario" || claims["email"] != spid.Email || claims["phone_number"] != spid.PhoneNumber {
					t.Fatalf("the PIN login's claims are not those SPID asserted: %v", claims)
				}
				got, err := s.store.GetSubjectByFiscalNumber(ctx, cf)
				if err != nil {
					t.Fatal(err)
				}
				if got.GivenName != "Mario" || got.Email != spid.Email || got.PhoneNumber != spid.PhoneNumber || got.ClaimsRank != spidRank {
					t.Fatalf("the PIN login overwrote the SPID claims: %+v", got)
				}
			})
		}
	}
}
