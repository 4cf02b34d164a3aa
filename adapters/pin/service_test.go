package pin_test

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/sqlstore"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a PIN service on a real store with a settable clock.
type fixture struct {
	t     testing.TB
	svc   *pin.Service
	store *sqlstore.Store
	box   *seal.Box
	clock *clock
}

func newFixture(t testing.TB, store *sqlstore.Store, at time.Time, tweak ...func(*pin.Config)) *fixture {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	box, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: at}
	cfg := pin.DefaultConfig()
	cfg.Params = testParams
	cfg.BaseURL = "https://login.example.it"
	for _, f := range tweak {
		f(&cfg)
	}
	svc, err := pin.NewService(cfg, pin.Deps{Store: store, Box: box, Revoker: provider.Revoker{Store: store}, Citizens: provider.Revoker{Store: store}, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, svc: svc, store: store, box: box, clock: c}
}

// testParams keep hashing cheap in tests; benchmarks use pin.DefaultParams.
var testParams = pin.Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1}

var (
	before2021 = time.Date(2020, 5, 4, 10, 0, 0, 0, time.UTC)
	after2021  = time.Date(2024, 5, 4, 10, 0, 0, 0, time.UTC)
)

func mario() pin.Request {
	return pin.Request{
		FiscalNumber: "rssmra80a01h501u", GivenName: "Mario", FamilyName: "Rossi", Gender: "M",
		Birthdate: "1980-01-01", BirthPlace: "Roma",
		Residence: storage.Address{Street: "Via Roma", Number: "1", PostalCode: "00100", City: "Roma", Province: "rm"},
		Mobile:    "+39 333 1234567", Email: "Mario.Rossi@example.it", PEC: "mario@pec.example.it",
		PreferredPhone: "+393331234567", CallbackSlot: "09-13", FirstHalfVia: "sms",
	}
}

// secrets opens the sealed secrets of the queued messages, by channel.
func (f *fixture) secrets() map[string][]string {
	f.t.Helper()
	msgs, err := f.store.ListMessages(context.Background(), 100)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string][]string{}
	for _, m := range msgs {
		if len(m.Secret) == 0 {
			continue
		}
		s, err := f.box.Open(m.Secret, []byte("outbox:"+m.ID))
		if err != nil {
			f.t.Fatalf("open secret of %s: %v", m.ID, err)
		}
		if !strings.Contains(m.Body, "{{secret}}") || strings.Contains(m.Body, string(s)) {
			f.t.Fatalf("message body must carry the placeholder, not the secret: %q", m.Body)
		}
		out[m.Channel] = append(out[m.Channel], string(s))
	}
	return out
}

// secretBySubject opens the secret of the queued message whose subject contains sub.
func (f *fixture) secretBySubject(sub string) string {
	f.t.Helper()
	msgs, err := f.store.ListMessages(context.Background(), 100)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, m := range msgs {
		if strings.Contains(m.Subject, sub) {
			s, err := f.box.Open(m.Secret, []byte("outbox:"+m.ID))
			if err != nil {
				f.t.Fatal(err)
			}
			return string(s)
		}
	}
	f.t.Fatalf("no message about %q", sub)
	return ""
}

func (f *fixture) events(cf string) []string {
	f.t.Helper()
	evs, err := f.store.ListAudit(context.Background(), cf)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Event)
	}
	return out
}

const cf = "RSSMRA80A01H501U"

// TestOnlineLifecycle: request → halves queued → first access → change → login
// at the consultazione level → expiry after 6 months.
func TestOnlineLifecycle(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), before2021)
			ctx := context.Background()
			if _, err := f.svc.RequestPIN(ctx, mario(), pin.ChannelOnline, "", ""); err != nil {
				t.Fatal(err)
			}
			s := f.secrets()
			if len(s["sms"]) != 1 || len(s["post"]) != 1 || len(s["sms"][0]) != 8 || len(s["post"][0]) != 8 {
				t.Fatalf("halves: %v", s)
			}
			initial := s["sms"][0] + s["post"][0]
			if _, err := f.svc.Login(ctx, cf, initial[:8], "192.0.2.1"); !errors.Is(err, pin.ErrBadCredentials) {
				t.Fatalf("half a PIN logged in: %v", err)
			}
			res, err := f.svc.Login(ctx, cf, initial, "192.0.2.1")
			if err != nil || res.Change != pin.ChangeFirstAccess {
				t.Fatalf("first access: %+v %v", res.Change, err)
			}
			for _, tc := range []struct {
				pin  string
				want error
			}{
				{"short", pin.ErrWeakPIN}, {"has space", pin.ErrWeakPIN}, {"Nine12345", pin.ErrWeakPIN}, {"àbcd1234", pin.ErrWeakPIN},
				{initial[:8], nil}, // a valid first-access change: the citizen's own PIN replaces the initial one
			} {
				acct, err := f.svc.ChangePIN(ctx, cf, tc.pin)
				if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
					t.Fatalf("ChangePIN(%q) = %v, want %v", tc.pin, err, tc.want)
				}
				if tc.want == nil && (acct.MustChange || !acct.FirstAccessDone || !acct.ChangedAt.Equal(f.clock.Now().UTC())) {
					t.Fatalf("after a valid change: must change %v, first access done %v, changed at %v", acct.MustChange, acct.FirstAccessDone, acct.ChangedAt)
				}
			}
			if res, err := f.svc.Login(ctx, cf, initial[:8], ""); err != nil || res.Change != pin.ChangeNone {
				t.Fatalf("the changed PIN: %+v %v", res.Change, err)
			}
			if _, err := f.svc.Login(ctx, cf, initial, ""); !errors.Is(err, pin.ErrBadCredentials) {
				t.Fatalf("the initial PIN after first access: %v", err)
			}
			if _, err := f.svc.ChangePIN(ctx, cf, initial[:8]); !errors.Is(err, pin.ErrReusedPIN) {
				t.Fatalf("reusing the current PIN: %v", err)
			}
			if _, err := f.svc.ChangePIN(ctx, cf, "Nuovo123"); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.ChangePIN(ctx, cf, initial[:8]); !errors.Is(err, pin.ErrReusedPIN) {
				t.Fatalf("reusing the previous PIN: %v", err)
			}
			res, err = f.svc.Login(ctx, cf, "Nuovo123", "192.0.2.1")
			if err != nil || res.Change != pin.ChangeNone || res.Identity().Level != idp.LevelConsultazione {
				t.Fatalf("login after change: %+v %v", res, err)
			}
			f.clock.Advance(6 * 30 * 24 * time.Hour)
			if res, err = f.svc.Login(ctx, cf, "Nuovo123", ""); err != nil || res.Change != pin.ChangeExpired {
				t.Fatalf("after 6 months: %+v %v", res.Change, err)
			}
			want := "requested issued first_access first_access expired"
			if got := strings.Join(f.events(cf), " "); !strings.HasPrefix(got, "requested issued first_access") || !strings.Contains(got, "expired") {
				t.Fatalf("audit %q, want like %q", got, want)
			}
		})
	}
}

func TestExpiryOff(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021, func(c *pin.Config) { c.Expiry = 0 })
	ctx := context.Background()
	if err := f.svc.Seed(ctx, storage.PINAccount{FiscalNumber: cf, GivenName: "Mario", FamilyName: "Rossi"}, "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(10 * 365 * 24 * time.Hour)
	if res, err := f.svc.Login(ctx, cf, "Abcd1234", ""); err != nil || res.Change != pin.ChangeNone {
		t.Fatalf("expiry off: %+v %v", res.Change, err)
	}
}

func TestRequestRules(t *testing.T) {
	abroad := mario()
	abroad.ResidenceAbroad, abroad.Residence.Country, abroad.Residence.PostalCode, abroad.Residence.Province = true, "Argentina", "", ""
	withID := abroad
	withID.HasItalianID = true
	cases := []struct {
		name    string
		at      time.Time
		req     func() pin.Request
		channel string
		want    error
		field   string
	}{
		{name: "before the switch anyone", at: before2021, req: mario, channel: pin.ChannelOnline},
		{name: "after the switch, resident in Italy", at: after2021, req: mario, channel: pin.ChannelOnline, want: pin.ErrPolicy},
		{name: "after the switch, abroad without Italian ID", at: after2021, req: func() pin.Request { return abroad }, channel: pin.ChannelOnline},
		{name: "after the switch, abroad with Italian ID", at: after2021, req: func() pin.Request { return withID }, channel: pin.ChannelContactCenter, want: pin.ErrPolicy},
		{name: "wrong check character", at: before2021, channel: pin.ChannelOnline, want: pin.ErrInvalidRequest, field: "fiscal_number",
			req: func() pin.Request { r := mario(); r.FiscalNumber = "RSSMRA80A01H501A"; return r }},
		{name: "sex against the code", at: before2021, channel: pin.ChannelOnline, want: pin.ErrInvalidRequest, field: "gender",
			req: func() pin.Request { r := mario(); r.Gender = "F"; return r }},
		{name: "birth date against the code", at: before2021, channel: pin.ChannelOnline, want: pin.ErrInvalidRequest, field: "birthdate",
			req: func() pin.Request { r := mario(); r.Birthdate = "1980-01-02"; return r }},
		{name: "no phone", at: before2021, channel: pin.ChannelOnline, want: pin.ErrInvalidRequest, field: "phone",
			req: func() pin.Request { r := mario(); r.Mobile, r.Phone, r.FirstHalfVia = "", "", "email"; return r }},
		{name: "no email", at: before2021, channel: pin.ChannelOnline, want: pin.ErrInvalidRequest, field: "email",
			req: func() pin.Request { r := mario(); r.Email = ""; return r }},
		{name: "online needs the callback slot", at: before2021, channel: pin.ChannelOnline, want: pin.ErrInvalidRequest, field: "preferred_phone",
			req: func() pin.Request { r := mario(); r.CallbackSlot = ""; return r }},
		{name: "contact center gives the first half", at: before2021, req: mario, channel: pin.ChannelContactCenter},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, storagetest.SQLite(t), tc.at)
			operator := ""
			if tc.channel == pin.ChannelContactCenter {
				operator = "op-17"
			}
			first, err := f.svc.RequestPIN(context.Background(), tc.req(), tc.channel, operator, "")
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if (tc.channel == pin.ChannelContactCenter) != (len(first) == 8) {
					t.Fatalf("first half %q on channel %s", first, tc.channel)
				}
				return
			}
			if !errors.Is(err, tc.want) || (tc.field != "" && !strings.Contains(err.Error(), tc.field+":")) {
				t.Fatalf("err = %v, want %v on %s", err, tc.want, tc.field)
			}
			if _, getErr := f.store.GetPINAccount(context.Background(), cf); !errors.Is(getErr, storage.ErrNotFound) {
				t.Fatal("a refused request left an account behind")
			}
		})
	}
}

// TestOnlineRequestForExistingPIN reveals nothing: same answer, a warning to the holder.
func TestOnlineRequestForExistingPIN(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021)
	ctx := context.Background()
	if err := f.svc.Seed(ctx, storage.PINAccount{FiscalNumber: cf, Email: "mario@example.it"}, "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RequestPIN(ctx, mario(), pin.ChannelOnline, "", ""); err != nil {
		t.Fatalf("want the same answer as for a new request, got %v", err)
	}
	if res, err := f.svc.Login(ctx, cf, "Abcd1234", ""); err != nil || res.Change != pin.ChangeNone {
		t.Fatalf("the existing PIN changed: %v", err)
	}
	msgs, _ := f.store.ListMessages(ctx, 10)
	if len(msgs) != 1 || msgs[0].To != "mario@example.it" {
		t.Fatalf("want one warning to the holder, got %+v", msgs)
	}
}

func TestBranchOfficeAndActivation(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), after2021)
	ctx := context.Background()
	pin16, err := f.svc.IssueAtBranch(ctx, mario(), "op-3", "CI AB1234567")
	if err != nil || len(pin16) != 16 {
		t.Fatalf("MV35: %q %v", pin16, err)
	}
	if msgs, _ := f.store.ListMessages(ctx, 10); len(msgs) != 0 {
		t.Fatal("a branch PIN is handed over in an envelope, nothing is sent")
	}
	res, err := f.svc.Login(ctx, cf, pin16, "")
	if err != nil || res.Change != pin.ChangeFirstAccess {
		t.Fatal(err)
	}
	acct, err := f.svc.ChangePIN(ctx, cf, "Sede2024")
	if err != nil || !acct.Dispositivo {
		t.Fatalf("branch PIN must be dispositivo at once: %+v %v", acct.Dispositivo, err)
	}
	res, _ = f.svc.Login(ctx, cf, "Sede2024", "")
	if res.Identity().Level != idp.LevelDispositivo {
		t.Fatal("dispositivo PIN did not reach the dispositivo level")
	}

	// A first half by post waits for activation with the health card.
	g := newFixture(t, storagetest.SQLite(t), before2021)
	req := mario()
	req.FirstHalfVia = "post"
	if _, err := g.svc.RequestPIN(ctx, req, pin.ChannelOnline, "", ""); err != nil {
		t.Fatal(err)
	}
	if post := g.secrets()["post"]; len(post) != 2 {
		t.Fatalf("both halves go by post: %v", post)
	}
	first, second := g.secretBySubject("prima parte"), g.secretBySubject("seconda parte")
	if _, err := g.svc.Login(ctx, cf, first+second, ""); !errors.Is(err, pin.ErrNotActivated) {
		t.Fatalf("login before activation: %v", err)
	}
	if err := g.svc.Activate(ctx, cf, first, "80380000000000000001", "2019-01", ""); !errors.Is(err, pin.ErrBadCredentials) {
		t.Fatalf("expired health card accepted: %v", err)
	}
	if err := g.svc.Activate(ctx, cf, "WRONG123", "80380000000000000001", "2029-01", ""); !errors.Is(err, pin.ErrBadCredentials) {
		t.Fatalf("wrong half accepted: %v", err)
	}
	if err := g.svc.Activate(ctx, cf, first, "80380000000000000001", "2029-01", ""); err != nil {
		t.Fatal(err)
	}
	if res, err := g.svc.Login(ctx, cf, first+second, ""); err != nil || res.Change != pin.ChangeFirstAccess {
		t.Fatalf("login after activation: %v", err)
	}
}

func TestThrottle(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021, func(c *pin.Config) {
		c.Throttle.MaxAccountFailures, c.Throttle.FreeAccountFailures, c.Throttle.Lockout = 8, 3, time.Hour
	})
	ctx := context.Background()
	if err := f.svc.Seed(ctx, storage.PINAccount{FiscalNumber: cf}, "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	var throttled *pin.ThrottledError
	for i := range 3 {
		if _, err := f.svc.Login(ctx, cf, "wrong", "198.51.100.7"); !errors.Is(err, pin.ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	if _, err := f.svc.Login(ctx, cf, "Abcd1234", "198.51.100.7"); !errors.As(err, &throttled) || throttled.Locked {
		t.Fatalf("after 3 failures: want a progressive delay before any check, got %v", err)
	}
	for i := 3; i < 8; i++ {
		f.clock.Advance(20 * time.Minute) // wait out the delay
		if _, err := f.svc.Login(ctx, cf, "wrong", "198.51.100.7"); !errors.Is(err, pin.ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	f.clock.Advance(20 * time.Minute)
	if _, err := f.svc.Login(ctx, cf, "Abcd1234", ""); !errors.As(err, &throttled) || !throttled.Locked {
		t.Fatalf("after 8 failures even the right PIN must be locked out: %v", err)
	}
	if l, _ := f.store.ListAudit(ctx, cf); len(l) == 0 || l[len(l)-1].Event != "locked" {
		t.Fatalf("lockout not audited: %+v", l)
	}
	f.clock.Advance(time.Hour)
	if _, err := f.svc.Login(ctx, cf, "Abcd1234", ""); err != nil {
		t.Fatalf("the lockout must end by itself: %v", err)
	}
	// An unknown codice fiscale is throttled the same way: no enumeration.
	other := "BNCLRA90D55F205C"
	for range 4 {
		_, err := f.svc.Login(ctx, other, "wrong", "203.0.113.9")
		if err != nil && !errors.Is(err, pin.ErrBadCredentials) && !errors.As(err, &throttled) {
			t.Fatal(err)
		}
	}
	if _, err := f.svc.Login(ctx, other, "wrong", "203.0.113.9"); !errors.As(err, &throttled) {
		t.Fatalf("unknown account not throttled: %v", err)
	}
}

func TestRecovery(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021, func(c *pin.Config) { c.Limits.PerCitizen = 10 })
	ctx := context.Background()
	acct := storage.PINAccount{FiscalNumber: cf, Mobile: "+393331234567", Email: "mario@example.it", PEC: "mario@pec.example.it"}
	if err := f.svc.Seed(ctx, acct, "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	// One contact is not enough; neither is an unknown codice fiscale.
	for _, c := range []pin.Contacts{{Email: "mario@example.it"}, {Email: "mario@example.it", Mobile: "+390000000000"}} {
		if err := f.svc.StartRecovery(ctx, cf, c, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.svc.StartRecovery(ctx, "BNCLRA90D55F205C", pin.Contacts{Email: "x@example.it", Mobile: "+391"}, ""); err != nil {
		t.Fatal(err)
	}
	if len(f.secrets()["email"]) != 0 {
		t.Fatal("a recovery link went out without two matching contacts")
	}
	if err := f.svc.StartRecovery(ctx, cf, pin.Contacts{Email: "MARIO@example.it ", PEC: "mario@pec.example.it"}, ""); err != nil {
		t.Fatal(err)
	}
	links := f.secrets()["email"]
	if len(links) != 1 || !strings.HasPrefix(links[0], "https://login.example.it/login/pin"+pin.RecoverConfirmPath+"?code=") {
		t.Fatalf("recovery link: %v", links)
	}
	code := links[0][strings.Index(links[0], "code=")+5:]
	if err := f.svc.CompleteRecovery(ctx, code); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.CompleteRecovery(ctx, code); !errors.Is(err, pin.ErrExpiredCode) {
		t.Fatalf("a recovery link worked twice: %v", err)
	}
	s := f.secrets()
	if len(s["sms"]) != 1 || len(s["email"]) != 2 {
		t.Fatalf("provisional PIN halves: %v", s)
	}
	provisional := s["sms"][0] + firstOf(s["email"], func(v string) bool { return len(v) == 8 })
	if res, err := f.svc.Login(ctx, cf, provisional, ""); err != nil || res.Change != pin.ChangeFirstAccess {
		t.Fatalf("provisional PIN: %v", err)
	}
	if _, err := f.svc.Login(ctx, cf, "Abcd1234", ""); !errors.Is(err, pin.ErrBadCredentials) {
		t.Fatal("the old PIN still works after recovery")
	}

	// A link expires in minutes.
	if err := f.svc.StartRecovery(ctx, cf, pin.Contacts{Email: "mario@example.it", Mobile: "+393331234567"}, ""); err != nil {
		t.Fatal(err)
	}
	var fresh []string
	for _, l := range f.secrets()["email"] {
		if i := strings.Index(l, "code="); i > 0 && l[i+5:] != code {
			fresh = append(fresh, l[i+5:])
		}
	}
	if len(fresh) != 1 {
		t.Fatalf("want exactly one new link, got %d", len(fresh))
	}
	f.clock.Advance(16 * time.Minute)
	if err := f.svc.CompleteRecovery(ctx, fresh[0]); !errors.Is(err, pin.ErrExpiredCode) {
		t.Fatalf("a link 16 minutes old: %v", err)
	}
}

func firstOf(vs []string, ok func(string) bool) string {
	for _, v := range vs {
		if ok(v) {
			return v
		}
	}
	return ""
}

func TestRecoveryNeedsFirstAccess(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021)
	ctx := context.Background()
	if _, err := f.svc.RequestPIN(ctx, mario(), pin.ChannelOnline, "", ""); err != nil {
		t.Fatal(err)
	}
	before := len(f.secrets()["email"])
	if err := f.svc.StartRecovery(ctx, cf, pin.Contacts{Email: "mario.rossi@example.it", Mobile: "+393331234567"}, ""); err != nil {
		t.Fatal(err)
	}
	if len(f.secrets()["email"]) != before {
		t.Fatal("recovery before first access")
	}
}

// TestRevocation: an online revoca with every field right starts a
// replacement sent to what is on record; the current PIN, the sessions and the
// tokens live on until the replacement is first used, which revokes them all.
// Wrong data start nothing. An operator's revocation is immediate.
func TestRevocation(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			store := b.Open(t)
			f := newFixture(t, store, before2021, func(c *pin.Config) { c.Limits.PerCitizen = 10 })
			ctx := context.Background()
			if err := f.svc.Seed(ctx, marioAccount(), "Abcd1234"); err != nil {
				t.Fatal(err)
			}
			subj, err := store.LinkSubject(ctx, storage.Subject{ID: "subj-1", FiscalNumber: cf})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			if err := store.CreateSession(ctx, storage.Session{ID: "s1", Subject: subj.ID, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if err := store.CreateToken(ctx, storage.Token{Kind: storage.KindRefreshToken, Signature: "r1", RequestID: "q1", ClientID: "c", Subject: subj.ID, Active: true, RequestedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			for field, edit := range map[string]func(*pin.Request){
				"given name":  func(r *pin.Request) { r.GivenName = "Luigi" },
				"family name": func(r *pin.Request) { r.FamilyName = "Bianchi" },
				"birth place": func(r *pin.Request) { r.BirthPlace = "Milano" },
			} {
				wrong := mario()
				edit(&wrong)
				if err := f.svc.RevokeOnline(ctx, wrong, ""); err != nil {
					t.Fatal(err)
				}
				if msgs, _ := store.ListMessages(ctx, 10); len(msgs) != 0 {
					t.Fatalf("a wrong %s started a replacement: %d messages", field, len(msgs))
				}
			}
			if err := f.svc.RevokeOnline(ctx, mario(), ""); err != nil {
				t.Fatal(err)
			}
			s := f.secrets()
			if len(s["sms"]) != 1 || len(s["post"]) != 1 {
				t.Fatalf("the replacement goes half by SMS, half by post: %v", s)
			}
			msgs, _ := store.ListMessages(ctx, 10)
			for _, m := range msgs {
				if want := map[string]string{"sms": "+393331234567", "post": "Mario Rossi, Via Roma 1, 00100 Roma (RM)"}[m.Channel]; m.To != want {
					t.Fatalf("a %s half went to %q, want the record's %q", m.Channel, m.To, want)
				}
			}
			if res, err := f.svc.Login(ctx, cf, "Abcd1234", ""); err != nil || res.Change != pin.ChangeNone {
				t.Fatalf("the current PIN must work until the replacement is used: %v", err)
			}
			if _, err := store.GetSession(ctx, "s1"); err != nil {
				t.Fatalf("a pending revoca ended a session: %v", err)
			}
			replacement := s["sms"][0] + s["post"][0]
			res, err := f.svc.Login(ctx, cf, replacement, "")
			if err != nil || res.Change != pin.ChangeFirstAccess {
				t.Fatalf("the replacement: %+v %v, want first access", res.Change, err)
			}
			if _, err := f.svc.Login(ctx, cf, "Abcd1234", ""); !errors.Is(err, pin.ErrBadCredentials) {
				t.Fatalf("the old PIN after the replacement was used: %v", err)
			}
			if _, err := store.GetSession(ctx, "s1"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatal("using the replacement left a session")
			}
			if _, err := store.GetToken(ctx, storage.KindRefreshToken, "r1"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatal("using the replacement left a token")
			}
			if ev := f.events(cf); !slices.Contains(ev, "revocation_requested") || ev[len(ev)-1] != "revoked" {
				t.Fatalf("audit: %v", ev)
			}
			if _, err := f.svc.Login(ctx, cf, replacement, ""); err != nil {
				t.Fatalf("the replacement is now the PIN: %v", err)
			}

			// An operator revokes at once; a new PIN then goes through the request path.
			if err := f.svc.RevokeByOperator(ctx, cf, pin.ChannelContactCenter, "op-2"); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.Login(ctx, cf, replacement, ""); !errors.Is(err, pin.ErrRevoked) {
				t.Fatalf("after an operator revocation: %v", err)
			}
			if _, err := f.svc.RequestPIN(ctx, mario(), pin.ChannelOnline, "", ""); err != nil {
				t.Fatal(err)
			}
			if a, _ := store.GetPINAccount(ctx, cf); a.Status != storage.PINActive || !a.MustChange {
				t.Fatalf("new PIN after revocation: %+v", a.Status)
			}
		})
	}
}

var (
	pdf = []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
	png = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00")
)

func TestConversion(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021, func(c *pin.Config) { c.MaxUpload = 1024 })
	ctx := context.Background()
	if err := f.svc.Seed(ctx, storage.PINAccount{FiscalNumber: cf, Email: "mario@example.it"}, "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	for name, docs := range map[string][2][]byte{
		"executable": {[]byte("MZ\x90\x00binary"), png},
		"too large":  {append(append([]byte{}, pdf...), make([]byte, 2048)...), png},
		"empty":      {pdf, nil},
	} {
		if _, err := f.svc.SubmitConversion(ctx, cf, docs[0], docs[1]); !errors.Is(err, pin.ErrUpload) {
			t.Errorf("%s: %v, want ErrUpload", name, err)
		}
	}
	c, err := f.svc.SubmitConversion(ctx, cf, pdf, png)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := f.store.GetConversion(ctx, c.ID)
	if strings.Contains(string(stored.Form), "%PDF") {
		t.Fatal("conversion documents are stored in clear")
	}
	form, doc, err := f.svc.ConversionDocuments(ctx, c.ID)
	if err != nil || string(form) != string(pdf) || string(doc) != string(png) {
		t.Fatalf("documents do not round-trip: %v", err)
	}
	queue, _ := f.svc.PendingConversions(ctx)
	if len(queue) != 1 || queue[0].ID != c.ID {
		t.Fatalf("review queue: %+v", queue)
	}
	if err := f.svc.ReviewConversion(ctx, c.ID, "op-9", false, ""); err == nil {
		t.Fatal("a rejection without a reason")
	}
	if err := f.svc.ReviewConversion(ctx, c.ID, "op-9", true, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.ReviewConversion(ctx, c.ID, "op-9", true, ""); err == nil {
		t.Fatal("reviewed twice")
	}
	res, err := f.svc.Login(ctx, cf, "Abcd1234", "")
	if err != nil || res.Identity().Level != idp.LevelDispositivo {
		t.Fatalf("after approval the same PIN is dispositivo: %v", err)
	}
	if ev := f.events(cf); ev[len(ev)-1] != "converted" {
		t.Fatalf("audit: %v", ev)
	}
}

// mario2Account is a citizen past first access with mobile and email on record.
func mario2Account() storage.PINAccount {
	return storage.PINAccount{FiscalNumber: cf, GivenName: "Mario", FamilyName: "Rossi", Gender: "M", Birthdate: "1980-01-01",
		Mobile: "+393331234567", Email: "mario@example.it"}
}

// marioAccount is the record that mario() would create.
func marioAccount() storage.PINAccount {
	return storage.PINAccount{FiscalNumber: cf, GivenName: "Mario", FamilyName: "Rossi", Gender: "M", Birthdate: "1980-01-01",
		BirthPlace: "Roma", Residence: storage.Address{Street: "Via Roma", Number: "1", PostalCode: "00100", City: "Roma", Province: "RM"},
		Mobile: "+393331234567", Email: "mario.rossi@example.it", PEC: "mario@pec.example.it",
		PreferredPhone: "+393331234567", CallbackSlot: "09-13"}
}

// TestCallbackWhenDataDiffer: a request whose residence or contacts differ
// from the record waits, by ID, for an operator's callback; the record stays
// as it is and nothing is issued until the operator confirms; a refusal
// changes nothing; a request is decided once.
func TestCallbackWhenDataDiffer(t *testing.T) {
	for _, confirmed := range []bool{true, false} {
		f := newFixture(t, storagetest.SQLite(t), before2021)
		ctx := context.Background()
		old := marioAccount()
		old.Residence = storage.Address{Street: "Via Vecchia", Number: "9", PostalCode: "00100", City: "Roma", Province: "RM"}
		old.Status = storage.PINRevoked
		if err := f.store.CreatePINAccount(ctx, old); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.RequestPIN(ctx, mario(), pin.ChannelOnline, "", ""); err != nil {
			t.Fatal(err)
		}
		if a, _ := f.store.GetPINAccount(ctx, cf); a.Status != storage.PINRevoked || a.Residence != old.Residence || a.Hash != nil {
			t.Fatalf("a pending request changed the record: %s %+v", a.Status, a.Residence)
		}
		if s := f.secrets(); len(s) != 0 {
			t.Fatalf("nothing secret may be sent before the callback: %v", s)
		}
		waiting, err := f.svc.WaitingRequests(ctx, 0)
		if err != nil || len(waiting) != 1 || waiting[0].Proposed.Residence.Street != "Via Roma" {
			t.Fatalf("waiting requests: %+v %v", waiting, err)
		}
		id := waiting[0].ID
		if err := f.svc.ConfirmCallback(ctx, id, "", confirmed); err == nil {
			t.Fatal("a callback without operator")
		}
		if err := f.svc.ConfirmCallback(ctx, id, "op-5", confirmed); err != nil {
			t.Fatal(err)
		}
		a, _ := f.store.GetPINAccount(ctx, cf)
		s := f.secrets()
		if confirmed && (a.Status != storage.PINActive || len(s["sms"]) != 1 || len(s["post"]) != 1 || a.Residence.Street != "Via Roma") {
			t.Fatalf("confirmed: %s %v %+v", a.Status, s, a.Residence)
		}
		if !confirmed && (a.Status != storage.PINRevoked || len(s) != 0 || a.Residence != old.Residence) {
			t.Fatalf("refused: %s %v", a.Status, s)
		}
		for _, again := range []bool{true, false} {
			if err := f.svc.ConfirmCallback(ctx, id, "op-6", again); !errors.Is(err, pin.ErrNotWaiting) {
				t.Fatalf("a second outcome (%v) for a decided request: %v", again, err)
			}
		}
	}
	// The same residence and contacts need no callback: a revoked PIN is
	// replaced, sent to what is on record.
	f := newFixture(t, storagetest.SQLite(t), before2021)
	ctx := context.Background()
	same := marioAccount()
	same.Residence.Street, same.Residence.City, same.Status = "via  roma", "ROMA", storage.PINRevoked
	if err := f.store.CreatePINAccount(ctx, same); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RequestPIN(ctx, mario(), pin.ChannelOnline, "", ""); err != nil {
		t.Fatal(err)
	}
	if a, _ := f.store.GetPINAccount(ctx, cf); a.Status != storage.PINActive || a.Residence.Street != "via  roma" {
		t.Fatalf("same data: %s %q", a.Status, a.Residence.Street)
	}
}
