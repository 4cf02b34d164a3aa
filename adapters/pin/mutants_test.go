package pin_test

// Tests written against the mutants that survived `make mutation` (issue 15):
// each case names the bound or branch it pins. They use the real service on a
// real store with a settable clock, and the site over HTTP where the
// behaviour is HTTP.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/codicefiscale"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/sqlstore"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// validCF completes the first 15 characters of a codice fiscale with its check character.
func validCF(t testing.TB, first15 string) string {
	t.Helper()
	c, err := codicefiscale.CheckChar(first15)
	if err != nil {
		t.Fatal(err)
	}
	return first15 + string(c)
}

// attempt is one PIN check in a throttle scenario: after advancing the clock,
// the citizen (an index into the scenario's accounts) tries the right PIN or a
// wrong one from ip; want is "ok", "bad", or "wait <duration>" ("locked
// <duration>" for the lockout).
type attempt struct {
	advance time.Duration
	who     int
	right   bool
	ip      string
	want    string
}

func (a attempt) String() string {
	return fmt.Sprintf("+%v citizen %d right=%t ip=%q", a.advance, a.who, a.right, a.ip)
}

// TestThrottleDecisions replays sequences of PIN checks on a fixed clock: the
// per-account and per-IP delays start after their free failures (none free
// means the second attempt waits), the longer of the two waits applies, the
// lock comes with exactly MaxAccountFailures failures, an IP's counter is
// forgotten after ForgetIP, a success clears the account and gives the IP its
// attempt back, and a throttled attempt is not counted.
func TestThrottleDecisions(t *testing.T) {
	const right = "Abcd1234"
	base := pin.Throttle{FreeAccountFailures: 100, FreeIPFailures: 100, MaxDelay: time.Hour,
		MaxAccountFailures: 100, Lockout: time.Hour, ForgetIP: 24 * time.Hour}
	with := func(f func(*pin.Throttle)) pin.Throttle { th := base; f(&th); return th }
	// Delays double from 1s and stop doubling at 2^20 s (12 days) when MaxDelay allows more.
	var doubling []attempt
	for p := 0; p < 20; p++ {
		doubling = append(doubling, attempt{advance: time.Second << p, want: "bad"})
	}
	doubling = append(doubling,
		attempt{want: "wait " + (time.Second << 20).String()},
		attempt{advance: time.Second << 20, want: "bad"},
		attempt{want: "wait 720h0m0s"}) // 2^21 s is more than MaxDelay
	cases := []struct {
		name     string
		throttle pin.Throttle
		attempts []attempt
		locked   int // "locked" audit events wanted for citizen 0
	}{
		{name: "delays double up to 2^20 seconds", throttle: with(func(th *pin.Throttle) { th.FreeAccountFailures, th.MaxDelay = 0, 30*24*time.Hour }),
			attempts: doubling},
		{name: "per IP, across accounts", throttle: with(func(th *pin.Throttle) { th.FreeIPFailures = 2 }), attempts: []attempt{
			{who: 0, ip: "198.51.100.1", want: "bad"},
			{who: 1, ip: "198.51.100.1", want: "bad"},
			{who: 2, ip: "198.51.100.1", want: "wait 1s"}, // 2 failures: 1s
			{who: 2, ip: "198.51.100.2", want: "bad"},     // another address is not delayed
			{who: 2, ip: "", want: "bad"},                 // nor a check without one
			{advance: time.Second, who: 2, ip: "198.51.100.1", want: "bad"},
			{who: 3, ip: "198.51.100.1", want: "wait 2s"}, // 3 failures: 2s from the last
			{advance: time.Second, who: 3, ip: "198.51.100.1", want: "wait 1s"},
		}},
		{name: "no free IP failures", throttle: with(func(th *pin.Throttle) { th.FreeIPFailures = 0 }), attempts: []attempt{
			{who: 0, ip: "198.51.100.1", want: "bad"},
			{who: 1, ip: "198.51.100.1", want: "wait 2s"},
		}},
		{name: "no free account failures", throttle: with(func(th *pin.Throttle) { th.FreeAccountFailures = 0 }), attempts: []attempt{
			{who: 0, ip: "198.51.100.1", want: "bad"},
			{who: 0, ip: "198.51.100.2", want: "wait 2s"},
			{who: 1, ip: "198.51.100.1", want: "bad"},
		}},
		{name: "the IP's wait is longer", throttle: with(func(th *pin.Throttle) { th.FreeIPFailures, th.FreeAccountFailures = 0, 1 }), attempts: []attempt{
			{who: 0, ip: "198.51.100.1", want: "bad"},
			{who: 0, ip: "198.51.100.1", want: "wait 2s"}, // account 1s, IP 2s
		}},
		{name: "the account's wait is longer", throttle: with(func(th *pin.Throttle) { th.FreeIPFailures, th.FreeAccountFailures = 1, 0 }), attempts: []attempt{
			{who: 0, ip: "198.51.100.1", want: "bad"},
			{who: 0, ip: "198.51.100.1", want: "wait 2s"}, // account 2s, IP 1s
		}},
		{name: "an IP is forgotten after ForgetIP", throttle: with(func(th *pin.Throttle) { th.FreeIPFailures, th.ForgetIP = 1, time.Hour }), attempts: []attempt{
			{who: 0, ip: "198.51.100.1", want: "bad"},
			{who: 1, ip: "198.51.100.1", want: "wait 1s"},
			{advance: 59 * time.Minute, who: 1, ip: "198.51.100.1", want: "bad"},
			{who: 2, ip: "198.51.100.1", want: "wait 2s"},
			{advance: time.Hour, who: 2, ip: "198.51.100.1", want: "bad"}, // quiet for ForgetIP: counted afresh
			{who: 3, ip: "198.51.100.1", want: "wait 1s"},
		}},
		{name: "the lock after MaxAccountFailures", throttle: with(func(th *pin.Throttle) { th.MaxAccountFailures = 3 }), locked: 1, attempts: []attempt{
			{who: 0, want: "bad"},
			{who: 0, want: "bad"},
			{who: 0, want: "bad"},
			{who: 0, right: true, want: "locked 1h0m0s"},
			{advance: 30 * time.Minute, who: 0, right: true, want: "locked 30m0s"},
			{advance: 30 * time.Minute, who: 0, right: true, want: "ok"},
		}},
		{name: "a success clears the account and refunds the IP", throttle: with(func(th *pin.Throttle) { th.FreeAccountFailures, th.FreeIPFailures = 2, 2 }), attempts: []attempt{
			{who: 0, ip: "198.51.100.1", want: "bad"},
			{who: 0, ip: "198.51.100.1", right: true, want: "ok"},
			{who: 0, ip: "198.51.100.1", right: true, want: "ok"},
			{who: 0, ip: "198.51.100.1", right: true, want: "ok"},
			{who: 0, ip: "198.51.100.1", want: "bad"},
			{who: 0, ip: "198.51.100.1", want: "wait 1s"}, // the IP's 2 failures; the account has 1
			{who: 0, ip: "198.51.100.2", want: "bad"},
			{who: 0, ip: "198.51.100.2", want: "wait 1s"}, // the account's 2 failures
		}},
		{name: "a throttled attempt is not counted", throttle: with(func(th *pin.Throttle) { th.FreeAccountFailures = 1 }), attempts: []attempt{
			{who: 0, want: "bad"},
			{who: 0, want: "wait 1s"},
			{who: 0, want: "wait 1s"},
			{who: 0, right: true, want: "wait 1s"},
			{advance: time.Second, who: 0, right: true, want: "ok"},
		}},
	}
	for _, be := range storagetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					f := newFixture(t, be.Open(t), before2021, func(c *pin.Config) { c.Throttle = tc.throttle })
					ctx := context.Background()
					citizens := []string{cf, validCF(t, "BNCLRA90D55F205"), validCF(t, "VRDGPP75C15F205"), validCF(t, "FRRLCU85E10L219")}
					for _, c := range citizens {
						if err := f.svc.Seed(ctx, storage.PINAccount{FiscalNumber: c}, right); err != nil {
							t.Fatal(err)
						}
					}
					for i, a := range tc.attempts {
						f.clock.Advance(a.advance)
						secret := "Wrong999"
						if a.right {
							secret = right
						}
						_, err := f.svc.Login(ctx, citizens[a.who], secret, a.ip)
						var te *pin.ThrottledError
						got := "ok"
						switch {
						case errors.As(err, &te) && te.Locked:
							got = "locked " + te.Wait.String()
						case errors.As(err, &te):
							got = "wait " + te.Wait.String()
						case errors.Is(err, pin.ErrBadCredentials):
							got = "bad"
						case err != nil:
							t.Fatalf("attempt %d (%v): %v", i, a, err)
						}
						if got != a.want {
							t.Fatalf("attempt %d (%v): %s, want %s", i, a, got, a.want)
						}
					}
					n := 0
					for _, e := range f.events(cf) {
						if e == "locked" {
							n++
						}
					}
					if n != tc.locked {
						t.Fatalf("%d locked events, want %d: %v", n, tc.locked, f.events(cf))
					}
				})
			}
		})
	}
}

// TestPINLength: a PIN is checked up to 64 characters; a longer one is refused
// before the throttle counts it, whatever is on record.
func TestPINLength(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021, func(c *pin.Config) { c.Throttle.FreeAccountFailures = 0 })
	ctx := context.Background()
	for _, tc := range []struct {
		n    int
		want error
	}{
		{64, nil},
		{65, pin.ErrBadCredentials},
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			secret := strings.Repeat("a", tc.n)
			if err := f.svc.Seed(ctx, storage.PINAccount{FiscalNumber: cf}, secret); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.Login(ctx, cf, secret, "198.51.100.1"); err != tc.want {
				t.Fatalf("a %d-character PIN on record: %v, want %v", tc.n, err, tc.want)
			}
			// Nothing was counted: the right PIN is checked at once (no free failures).
			if tc.want != nil {
				if err := f.svc.Seed(ctx, storage.PINAccount{FiscalNumber: cf}, "Abcd1234"); err != nil {
					t.Fatal(err)
				}
				if _, err := f.svc.Login(ctx, cf, "Abcd1234", "198.51.100.1"); err != nil {
					t.Fatalf("after an over-long PIN: %v", err)
				}
			}
		})
	}
}

// phc is an argon2id hash of secret in the PHC string format, with the given
// parameters and lengths.
func phc(secret string, m, tm uint32, p uint8, saltLen, keyLen int) []byte {
	salt := bytes.Repeat([]byte{7}, saltLen)
	key := argon2.IDKey([]byte(secret), salt, tm, m, p, uint32(keyLen))
	b64 := base64.RawStdEncoding
	return fmt.Appendf(nil, "$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, m, tm, p, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// TestStoredHashBounds: a stored hash is used only within the bounds that keep
// a check cheap and meaningful (memory 8 KiB to 4 GiB, 1 to 100 passes, a
// lane at least, a salt of 8 bytes or more, a key of 16 to 64 bytes); the
// right PIN against a hash out of bounds is a failed login. A hash at each
// bound verifies.
func TestStoredHashBounds(t *testing.T) {
	const secret = "Abcd1234"
	ctx := context.Background()
	cases := []struct {
		name string
		hash []byte
		ok   bool
	}{
		{"the lowest memory", phc(secret, 8, 1, 1, 16, 32), true},
		{"memory below 8 KiB", phc(secret, 7, 1, 1, 16, 32), false},
		{"100 passes", phc(secret, 8, 100, 1, 16, 32), true},
		{"101 passes", phc(secret, 8, 101, 1, 16, 32), false},
		{"no pass", []byte(strings.Replace(string(phc(secret, 8, 1, 1, 16, 32)), "t=1,", "t=0,", 1)), false},
		{"no lane", []byte(strings.Replace(string(phc(secret, 8, 1, 1, 16, 32)), "p=1$", "p=0$", 1)), false},
		{"an 8-byte salt", phc(secret, 8, 1, 1, 8, 32), true},
		{"a 7-byte salt", phc(secret, 8, 1, 1, 7, 32), false},
		{"a 16-byte key", phc(secret, 8, 1, 1, 16, 16), true},
		{"a 15-byte key", phc(secret, 8, 1, 1, 16, 15), false},
		{"a 64-byte key", phc(secret, 8, 1, 1, 16, 64), true},
		{"a 65-byte key", phc(secret, 8, 1, 1, 16, 65), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, storagetest.SQLite(t), before2021)
			if err := f.svc.Seed(ctx, storage.PINAccount{FiscalNumber: cf}, "Other123"); err != nil {
				t.Fatal(err)
			}
			err := f.store.UpdatePINAccount(ctx, cf, func(a storage.PINAccount) (storage.PINAccount, error) {
				a.Hash = tc.hash
				return a, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.svc.Login(ctx, cf, secret, "")
			if tc.ok && err != nil || !tc.ok && !errors.Is(err, pin.ErrBadCredentials) {
				t.Fatalf("login against %s: %v", tc.hash, err)
			}
		})
	}
}

// TestRequestFieldBounds: names are required and at most 100 bytes; the
// gender is M or F and agrees with the codice fiscale. Each wrong field is
// named, and nothing else is.
func TestRequestFieldBounds(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	cases := []struct {
		name string
		edit func(*pin.Request)
		want string // the field named, "" for none
	}{
		{"given name of 100", func(r *pin.Request) { r.GivenName = long(100) }, ""},
		{"given name of 101", func(r *pin.Request) { r.GivenName = long(101) }, "given_name"},
		{"no given name", func(r *pin.Request) { r.GivenName = "" }, "given_name"},
		{"family name of 100", func(r *pin.Request) { r.FamilyName = long(100) }, ""},
		{"family name of 101", func(r *pin.Request) { r.FamilyName = long(101) }, "family_name"},
		{"no family name", func(r *pin.Request) { r.FamilyName = "" }, "family_name"},
		{"gender F for a man", func(r *pin.Request) { r.Gender = "F" }, "gender"},
		{"gender X", func(r *pin.Request) { r.Gender = "X" }, "gender"},
		{"no gender", func(r *pin.Request) { r.Gender = "" }, "gender"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, storagetest.SQLite(t), before2021)
			r := mario()
			tc.edit(&r)
			_, err := f.svc.RequestPIN(context.Background(), r, pin.ChannelOnline, "", "198.51.100.1")
			var named []string
			for _, e := range unjoin(err) {
				var fe *pin.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("not a field error: %v", e)
				}
				named = append(named, fe.Field)
			}
			if tc.want == "" && err != nil || tc.want != "" && (len(named) != 1 || named[0] != tc.want) {
				t.Fatalf("got %v (%v), want %q named", named, err, tc.want)
			}
		})
	}
}

// unjoin lists the errors joined in err.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// sized is a PDF of exactly n bytes.
func sized(n int) []byte {
	doc := append([]byte{}, pdf...)
	return append(doc, bytes.Repeat([]byte{' '}, n-len(doc))...)
}

// TestUploadSize: each conversion document may be MaxUpload bytes and not one
// more, in the service and through the citizen's page (whose body may hold
// both documents at the limit), and what is stored is what was sent, byte for
// byte.
func TestUploadSize(t *testing.T) {
	const small, large = 1024, 1 << 20
	const secret = "Abcd1234"
	cases := []struct {
		name      string
		max       int64
		form, doc []byte
		ok        bool
	}{
		{"both at the limit", small, sized(small), sized(small), true},
		{"the form one byte over", small, sized(small + 1), png, false},
		{"the document one byte over", small, pdf, sized(small + 1), false},
		{"the form far over", small, sized(2*small + 10), png, false},
		{"both at a limit of 1 MiB", large, sized(large), sized(large), true},
	}
	t.Run("service", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t, storagetest.SQLite(t), before2021, func(c *pin.Config) { c.MaxUpload = tc.max })
				ctx := context.Background()
				if err := f.svc.Seed(ctx, storage.PINAccount{FiscalNumber: cf}, secret); err != nil {
					t.Fatal(err)
				}
				c, err := f.svc.SubmitConversion(ctx, cf, tc.form, tc.doc)
				if !tc.ok {
					if !errors.Is(err, pin.ErrUpload) {
						t.Fatalf("%v, want ErrUpload", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				form, doc, err := f.svc.ConversionDocuments(ctx, c.ID)
				if err != nil || !bytes.Equal(form, tc.form) || !bytes.Equal(doc, tc.doc) {
					t.Fatalf("stored %d and %d bytes (%v), sent %d and %d", len(form), len(doc), err, len(tc.form), len(tc.doc))
				}
			})
		}
	})
	t.Run("page", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := newSite(t, storagetest.SQLite(t), func(c *pin.Config) { c.MaxUpload = tc.max })
				ctx := context.Background()
				if err := s.svc.Seed(ctx, storage.PINAccount{FiscalNumber: cf}, secret); err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				mw := multipart.NewWriter(&buf)
				_ = mw.WriteField("fiscal_number", cf)
				_ = mw.WriteField("pin", secret)
				for _, part := range []struct {
					name string
					data []byte
				}{{"form", tc.form}, {"document", tc.doc}} {
					fw, _ := mw.CreateFormFile(part.name, part.name+".pdf")
					_, _ = fw.Write(part.data)
				}
				_ = mw.Close()
				resp, err := http.Post(s.env.Issuer+"/login/pin/convert", mw.FormDataContentType(), &buf)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				queue, err := s.svc.PendingConversions(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !tc.ok {
					if resp.StatusCode != http.StatusUnprocessableEntity || len(queue) != 0 {
						t.Fatalf("%d, %d queued; want 422 and nothing queued", resp.StatusCode, len(queue))
					}
					return
				}
				if resp.StatusCode != http.StatusOK || len(queue) != 1 {
					t.Fatalf("%d, %d queued; want 200 and one", resp.StatusCode, len(queue))
				}
				form, doc, err := s.svc.ConversionDocuments(ctx, queue[0].ID)
				if err != nil || !bytes.Equal(form, tc.form) || !bytes.Equal(doc, tc.doc) {
					t.Fatalf("stored %d and %d bytes (%v), sent %d and %d", len(form), len(doc), err, len(tc.form), len(tc.doc))
				}
			})
		}
	})
}

// TestOperatorConversionParts: an operator downloads a conversion's form or
// document, and nothing else.
func TestOperatorConversionParts(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021)
	srv := operatorAPI(t, f)
	ctx := context.Background()
	if err := f.svc.Seed(ctx, storage.PINAccount{FiscalNumber: cf}, "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.SubmitConversion(ctx, cf, pdf, png)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		part string
		code int
		want []byte
	}{
		{"form", http.StatusOK, pdf},
		{"document", http.StatusOK, png},
		{"forms", http.StatusNotFound, nil},
		{"audit", http.StatusNotFound, nil},
	} {
		t.Run(tc.part, func(t *testing.T) {
			code, body := call(t, "GET", srv.URL+"/conversions/"+c.ID+"/"+tc.part, "token-7", nil)
			if code != tc.code || tc.want != nil && !bytes.Equal(body, tc.want) {
				t.Fatalf("%d %q, want %d", code, body, tc.code)
			}
		})
	}
}

// TestConfigBounds: Validate takes each bound and refuses one step beyond it,
// naming the field.
func TestConfigBounds(t *testing.T) {
	cases := []struct {
		name string
		edit func(*pin.Config)
		bad  string // the field named; "" for a valid configuration
	}{
		{"the defaults", func(*pin.Config) {}, ""},
		{"100 passes", func(c *pin.Config) { c.Params.Time = 100 }, ""},
		{"101 passes", func(c *pin.Config) { c.Params.Time = 101 }, "argon2.time"},
		{"no pass", func(c *pin.Config) { c.Params.Time = 0 }, "argon2.time"},
		{"8 MiB", func(c *pin.Config) { c.Params.MemoryKiB = 8 * 1024 }, ""},
		{"below 8 MiB", func(c *pin.Config) { c.Params.MemoryKiB = 8*1024 - 1 }, "argon2.memory_kib"},
		{"256 hashing slots", func(c *pin.Config) { c.HashConcurrency = 256 }, ""},
		{"257 hashing slots", func(c *pin.Config) { c.HashConcurrency = 257 }, "hash_concurrency"},
		{"one slot per core", func(c *pin.Config) { c.HashConcurrency = 0 }, ""},
		{"negative slots", func(c *pin.Config) { c.HashConcurrency = -1 }, "hash_concurrency"},
		{"recovery for 1h", func(c *pin.Config) { c.RecoveryTTL = time.Hour }, ""},
		{"recovery for longer", func(c *pin.Config) { c.RecoveryTTL = time.Hour + time.Nanosecond }, "recovery_ttl"},
		{"recovery for 1ns", func(c *pin.Config) { c.RecoveryTTL = time.Nanosecond }, ""},
		{"no recovery time", func(c *pin.Config) { c.RecoveryTTL = 0 }, "recovery_ttl"},
		{"tickets for 1ns", func(c *pin.Config) { c.TicketTTL = time.Nanosecond }, ""},
		{"no ticket time", func(c *pin.Config) { c.TicketTTL = 0 }, "ticket_ttl"},
		{"uploads of 50 MiB", func(c *pin.Config) { c.MaxUpload = 50 << 20 }, ""},
		{"uploads of more", func(c *pin.Config) { c.MaxUpload = 50<<20 + 1 }, "max_upload"},
		{"uploads of a byte", func(c *pin.Config) { c.MaxUpload = 1 }, ""},
		{"no uploads", func(c *pin.Config) { c.MaxUpload = 0 }, "max_upload"},
		{"100 failures", func(c *pin.Config) { c.Throttle.MaxAccountFailures = 100 }, ""},
		{"101 failures", func(c *pin.Config) { c.Throttle.MaxAccountFailures = 101 }, "max_failures"},
		{"1 failure", func(c *pin.Config) { c.Throttle.MaxAccountFailures = 1 }, ""},
		{"no failure", func(c *pin.Config) { c.Throttle.MaxAccountFailures = 0 }, "max_failures"},
		{"no free failures", func(c *pin.Config) { c.Throttle.FreeAccountFailures, c.Throttle.FreeIPFailures = 0, 0 }, ""},
		{"negative free failures", func(c *pin.Config) { c.Throttle.FreeIPFailures = -1 }, "free_ip_failures"},
		{"a lockout of 1ns", func(c *pin.Config) { c.Throttle.Lockout = time.Nanosecond }, ""},
		{"no lockout", func(c *pin.Config) { c.Throttle.Lockout = 0 }, "lockout"},
		{"one form per citizen", func(c *pin.Config) { c.Limits.PerCitizen = 1 }, ""},
		{"no form per citizen", func(c *pin.Config) { c.Limits.PerCitizen = 0 }, "limits.per_citizen"},
		{"no expiry", func(c *pin.Config) { c.Expiry = 0 }, ""},
		{"a negative expiry", func(c *pin.Config) { c.Expiry = -time.Nanosecond }, "expiry"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := pin.DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if tc.bad == "" && err != nil || tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)) {
				t.Fatalf("%v, want %q named", err, tc.bad)
			}
		})
	}
}

// TestRequestCutoffInRome: the 2021 switch starts at midnight in Rome
// (22:00 UTC in summer time), not in UTC nor in winter time.
func TestRequestCutoffInRome(t *testing.T) {
	for _, tc := range []struct {
		at   time.Time
		want error
	}{
		{time.Date(2021, time.September, 30, 21, 59, 59, 0, time.UTC), nil},
		{time.Date(2021, time.September, 30, 22, 0, 0, 0, time.UTC), pin.ErrPolicy},
		{time.Date(2021, time.September, 30, 22, 30, 0, 0, time.UTC), pin.ErrPolicy},
	} {
		t.Run(tc.at.Format(time.RFC3339), func(t *testing.T) {
			f := newFixture(t, storagetest.SQLite(t), tc.at)
			_, err := f.svc.RequestPIN(context.Background(), mario(), pin.ChannelOnline, "", "198.51.100.1")
			if !errors.Is(err, tc.want) || tc.want == nil && err != nil {
				t.Fatalf("a request at %v: %v, want %v", tc.at, err, tc.want)
			}
		})
	}
}

// TestDefaultLifetimes: with the default policy a PIN expires after 180 days
// (it then opens only the change form).
func TestDefaultLifetimes(t *testing.T) {
	for _, tc := range []struct {
		after time.Duration
		want  pin.ChangeReason
	}{
		{180*24*time.Hour - time.Second, pin.ChangeNone},
		{180 * 24 * time.Hour, pin.ChangeExpired},
	} {
		t.Run(tc.after.String(), func(t *testing.T) {
			f := newFixture(t, storagetest.SQLite(t), before2021)
			ctx := context.Background()
			if err := f.svc.Seed(ctx, storage.PINAccount{FiscalNumber: cf}, "Abcd1234"); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(tc.after)
			res, err := f.svc.Login(ctx, cf, "Abcd1234", "")
			if err != nil || res.Change != tc.want {
				t.Fatalf("after %v: %v %q, want %q", tc.after, err, res.Change, tc.want)
			}
		})
	}
}

// messagesTo lists the queued messages to an address.
func messagesTo(t *testing.T, f *fixture, to string) []storage.Message {
	t.Helper()
	msgs, err := f.store.ListMessages(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []storage.Message
	for _, m := range msgs {
		if m.To == to {
			out = append(out, m)
		}
	}
	return out
}

// TestConversionReview: a submitted conversion is audited; its review is told
// by email to a citizen who has one on record, and reviewed all the same for
// one who has none.
func TestConversionReview(t *testing.T) {
	for _, tc := range []struct {
		name, email string
		approve     bool
	}{
		{"approved, email on record", "mario@example.it", true},
		{"rejected, email on record", "mario@example.it", false},
		{"approved, no email", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, storagetest.SQLite(t), before2021)
			ctx := context.Background()
			if err := f.svc.Seed(ctx, storage.PINAccount{FiscalNumber: cf, Email: tc.email, Mobile: "+393331234567"}, "Abcd1234"); err != nil {
				t.Fatal(err)
			}
			c, err := f.svc.SubmitConversion(ctx, cf, pdf, png)
			if err != nil {
				t.Fatal(err)
			}
			if ev := f.events(cf); !slices.Contains(ev, "conversion_requested") {
				t.Fatalf("the submission is not audited: %v", ev)
			}
			if err := f.svc.ReviewConversion(ctx, c.ID, "op-7", tc.approve, "the document is unreadable"); err != nil {
				t.Fatal(err)
			}
			want := 0
			if tc.email != "" {
				want = 1
			}
			if got := len(messagesTo(t, f, tc.email)); tc.email != "" && got != want {
				t.Fatalf("%d messages to %s, want %d", got, tc.email, want)
			}
			if msgs, _ := f.store.ListMessages(ctx, 100); len(msgs) != want {
				t.Fatalf("%d messages queued, want %d", len(msgs), want)
			}
		})
	}
}

// TestExistingPINWarned: an online request for a codice fiscale that already
// has a PIN issues nothing and warns the citizen at the contacts on record.
func TestExistingPINWarned(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021)
	ctx := context.Background()
	if _, err := f.svc.RequestPIN(ctx, mario(), pin.ChannelOnline, "", "198.51.100.1"); err != nil {
		t.Fatal(err)
	}
	a, err := f.store.GetPINAccount(ctx, cf)
	if err != nil {
		t.Fatal(err)
	}
	before := len(messagesTo(t, f, a.Email))
	if _, err := f.svc.RequestPIN(ctx, mario(), pin.ChannelOnline, "", "198.51.100.2"); err != nil {
		t.Fatal(err)
	}
	after := messagesTo(t, f, a.Email)
	if len(after) != before+1 || len(after[len(after)-1].Secret) != 0 {
		t.Fatalf("%d messages to %s before, %d after (the last with a secret: %t); want one warning more",
			before, a.Email, len(after), len(after) > 0 && len(after[len(after)-1].Secret) != 0)
	}
}

// TestMethodLabel: the chooser names the method in the page's language.
func TestMethodLabel(t *testing.T) {
	a := newFixture(t, storagetest.SQLite(t), before2021).svc.Authenticator()
	for loc, want := range map[string]string{"it": "PIN INPS", "en": "INPS PIN"} {
		if got := a.Label(loc); got != want {
			t.Errorf("label in %s: %q, want %q", loc, got, want)
		}
	}
}

// TestOperatorChannels: an operator revokes or unlocks a PIN only as a branch
// office (sede) or the contact center; an error answer names fields only when
// there are some.
func TestOperatorChannels(t *testing.T) {
	for _, path := range []string{"/revocations", "/unlocks"} {
		for _, tc := range []struct {
			channel string
			ok      bool
		}{
			{pin.ChannelBranch, true},
			{pin.ChannelContactCenter, true},
			{pin.ChannelOnline, false},
			{"delegate", false},
			{"", false},
		} {
			t.Run(strings.TrimPrefix(path, "/")+" "+tc.channel, func(t *testing.T) {
				f := newFixture(t, storagetest.SQLite(t), before2021)
				srv := operatorAPI(t, f)
				if err := f.svc.Seed(context.Background(), storage.PINAccount{FiscalNumber: cf}, "Abcd1234"); err != nil {
					t.Fatal(err)
				}
				code, body := call(t, "POST", srv.URL+path, "token-7", map[string]any{"fiscal_number": cf, "channel": tc.channel})
				if tc.ok {
					if code/100 != 2 {
						t.Fatalf("%d %s, want success", code, body)
					}
					return
				}
				var answer map[string]any
				_ = json.Unmarshal(body, &answer)
				_, fields := answer["fields"]
				if code != http.StatusBadRequest || answer["error"] == nil || fields {
					t.Fatalf("%d %s, want 400 with an error and no fields", code, body)
				}
			})
		}
	}
}

// TestStepUpHintLanguage: the hint to convert a PIN speaks the page's
// language, Italian when it knows no other.
func TestStepUpHintLanguage(t *testing.T) {
	a, ok := newFixture(t, storagetest.SQLite(t), before2021).svc.Authenticator().(idp.StepUpHinter)
	if !ok {
		t.Fatal("the PIN gives no step-up hint")
	}
	it, _ := a.StepUpHint("it")
	en, _ := a.StepUpHint("en")
	fr, _ := a.StepUpHint("fr")
	if it.Text == "" || en.Text == it.Text || fr.Text != it.Text || en.LinkText == it.LinkText {
		t.Fatalf("it %+v, en %+v, fr %+v", it, en, fr)
	}
}

// TestRecoveryStartAudited: a recovery whose contacts match sends the link by
// email and is audited.
func TestRecoveryStartAudited(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021)
	ctx := context.Background()
	a := mario2Account()
	if err := f.svc.Seed(ctx, a, "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.StartRecovery(ctx, cf, pin.Contacts{Email: a.Email, Mobile: a.Mobile}, "198.51.100.1"); err != nil {
		t.Fatal(err)
	}
	if n := len(messagesTo(t, f, a.Email)); n != 1 || !slices.Contains(f.events(cf), "recovery_requested") {
		t.Fatalf("%d messages to %s, events %v; want the link and recovery_requested", n, a.Email, f.events(cf))
	}
}

// TestRecoveryLiftsTheLock: completing a recovery sends the provisional PIN,
// lifts the lock of the PIN it replaces and is audited.
func TestRecoveryLiftsTheLock(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021, func(c *pin.Config) { c.Throttle.MaxAccountFailures = 3 })
	ctx := context.Background()
	a := mario2Account()
	if err := f.svc.Seed(ctx, a, "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := f.svc.Login(ctx, cf, "Wrong999", ""); !errors.Is(err, pin.ErrBadCredentials) {
			t.Fatal(err)
		}
	}
	var te *pin.ThrottledError
	if _, err := f.svc.Login(ctx, cf, "Abcd1234", ""); !errors.As(err, &te) || !te.Locked {
		t.Fatalf("not locked: %v", err)
	}
	if err := f.svc.StartRecovery(ctx, cf, pin.Contacts{Email: a.Email, Mobile: a.Mobile}, ""); err != nil {
		t.Fatal(err)
	}
	link := f.secrets()["email"][0]
	if err := f.svc.CompleteRecovery(ctx, link[strings.Index(link, "code=")+5:]); err != nil {
		t.Fatal(err)
	}
	s := f.secrets()
	provisional := s["sms"][0] + firstOf(s["email"], func(v string) bool { return len(v) == 8 })
	if res, err := f.svc.Login(ctx, cf, provisional, ""); err != nil || res.Change != pin.ChangeFirstAccess {
		t.Fatalf("the provisional PIN: %v", err)
	}
	if !slices.Contains(f.events(cf), "recovered") {
		t.Fatalf("not audited: %v", f.events(cf))
	}
}

// TestReissueKeepsThePreviousPIN: a PIN issued again after a revocation
// keeps the revoked one as the previous PIN, which the citizen cannot choose
// again at first access.
func TestReissueKeepsThePreviousPIN(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021)
	ctx := context.Background()
	if err := f.svc.Seed(ctx, marioAccount(), "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RevokeByOperator(ctx, cf, pin.ChannelBranch, "op-7"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RequestPIN(ctx, mario(), pin.ChannelOnline, "", "198.51.100.1"); err != nil {
		t.Fatal(err)
	}
	halves := f.secrets()
	if len(halves["sms"]) != 1 || len(halves["post"]) != 1 {
		t.Fatalf("halves of the new PIN: %v", halves)
	}
	if res, err := f.svc.Login(ctx, cf, halves["sms"][0]+halves["post"][0], ""); err != nil || res.Change != pin.ChangeFirstAccess {
		t.Fatalf("the new PIN: %v %q", err, res.Change)
	}
	if _, err := f.svc.ChangePIN(ctx, cf, "Abcd1234"); !errors.Is(err, pin.ErrReusedPIN) {
		t.Fatalf("the revoked PIN chosen again: %v", err)
	}
}

// failingPINs is the real store whose CreatePINAccount fails.
type failingPINs struct{ *sqlstore.Store }

func (failingPINs) CreatePINAccount(context.Context, storage.PINAccount) error {
	return errors.New("the accounts table is unavailable")
}

// TestRequestFailsClosed: a request whose account cannot be stored issues
// nothing: no message is queued and the caller gets the error.
func TestRequestFailsClosed(t *testing.T) {
	store := storagetest.SQLite(t)
	f := newFixture(t, store, before2021)
	cfg := pin.DefaultConfig()
	cfg.Params, cfg.BaseURL = testParams, "https://login.example.it"
	svc, err := pin.NewService(cfg, pin.Deps{Store: failingPINs{store}, Box: f.box, Revoker: provider.Revoker{Store: store}, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RequestPIN(context.Background(), mario(), pin.ChannelOnline, "", "198.51.100.1"); err == nil {
		t.Fatal("a request whose account was not stored succeeded")
	}
	if msgs, _ := store.ListMessages(context.Background(), 100); len(msgs) != 0 {
		t.Fatalf("%d messages queued for an account that does not exist", len(msgs))
	}
}

// TestIdentityPhone: a PIN login proves the mobile on record as the phone
// number, or the landline when there is no mobile.
func TestIdentityPhone(t *testing.T) {
	for _, tc := range []struct {
		name, mobile, phone, want string
	}{
		{"mobile and landline", "+393331234567", "+390612345678", "+393331234567"},
		{"landline only", "", "+390612345678", "+390612345678"},
		{"mobile only", "+393331234567", "", "+393331234567"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, storagetest.SQLite(t), before2021)
			ctx := context.Background()
			if err := f.svc.Seed(ctx, storage.PINAccount{FiscalNumber: cf, Mobile: tc.mobile, Phone: tc.phone}, "Abcd1234"); err != nil {
				t.Fatal(err)
			}
			res, err := f.svc.Login(ctx, cf, "Abcd1234", "")
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Identity().PhoneNumber; got != tc.want {
				t.Fatalf("phone %q, want %q", got, tc.want)
			}
		})
	}
}

// TestChangeFormReason: the change form a login leads to says why: the PIN
// has expired, or this is its first access.
func TestChangeFormReason(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(f *fixture)
		expired bool
	}{
		{"expired", func(f *fixture) { f.clock.Advance(181 * 24 * time.Hour) }, true},
		{"first access", func(f *fixture) {
			err := f.store.UpdatePINAccount(context.Background(), cf, func(a storage.PINAccount) (storage.PINAccount, error) {
				a.MustChange = true
				return a, nil
			})
			if err != nil {
				f.t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t, storagetest.SQLite(t))
			if err := s.svc.Seed(context.Background(), storage.PINAccount{FiscalNumber: cf}, "Abcd1234"); err != nil {
				t.Fatal(err)
			}
			tc.prepare(s.fixture)
			r := s.env.NewRP(clients.Spec{})
			resp, body := s.pinLogin(oidctest.NewBrowser(t), r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), cf, "Abcd1234")
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="new_pin"`) {
				t.Fatalf("want the change form, got %d %.300s", resp.StatusCode, body)
			}
			if got := strings.Contains(body, "scadut"); got != tc.expired {
				t.Fatalf("the form says the PIN expired: %t, want %t", got, tc.expired)
			}
		})
	}
}

// TestMask: a codice fiscale in a log keeps its first three and last
// characters; anything else is hidden whole.
func TestMask(t *testing.T) {
	for in, want := range map[string]string{cf: "RSS************U", "RSSMRA80A01H501": "****", "": "****", "RSSMRA80A01H501UX": "****"} {
		if got := pin.Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSeedChannel: a seeded account records its channel, "seed" unless given.
func TestSeedChannel(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021)
	ctx := context.Background()
	for _, tc := range []struct{ given, want string }{{"", "seed"}, {pin.ChannelBranch, pin.ChannelBranch}} {
		if err := f.svc.Seed(ctx, storage.PINAccount{FiscalNumber: cf, Channel: tc.given}, "Abcd1234"); err != nil {
			t.Fatal(err)
		}
		if a, err := f.store.GetPINAccount(ctx, cf); err != nil || a.Channel != tc.want {
			t.Fatalf("seeded with %q: channel %q (%v), want %q", tc.given, a.Channel, err, tc.want)
		}
	}
}

// TestAuditLogsNoError: an audited event logs no error.
func TestAuditLogsNoError(t *testing.T) {
	store := storagetest.SQLite(t)
	f := newFixture(t, store, before2021)
	var logged bytes.Buffer
	cfg := pin.DefaultConfig()
	cfg.Params, cfg.BaseURL = testParams, "https://login.example.it"
	svc, err := pin.NewService(cfg, pin.Deps{Store: store, Box: f.box, Revoker: provider.Revoker{Store: store}, Now: f.clock.Now,
		Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := svc.Seed(ctx, storage.PINAccount{FiscalNumber: cf}, "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(181 * 24 * time.Hour)
	if res, err := svc.Login(ctx, cf, "Abcd1234", ""); err != nil || res.Change != pin.ChangeExpired {
		t.Fatalf("%v %q", err, res.Change)
	}
	if !slices.Contains(f.events(cf), "expired") || logged.Len() > 0 {
		t.Fatalf("events %v, logged %q", f.events(cf), logged.String())
	}
}
