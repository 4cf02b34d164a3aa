package staff_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-id/ponte/idp/staff"
	"github.com/ponte-id/ponte/internal/codicefiscale"
	"github.com/ponte-id/ponte/internal/fields"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

const (
	cfA = "RSSMRA80A01H501U"
	cfB = "BNCLGU70B02F205F"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }
func newService(t testing.TB, s staff.Store) (*staff.Service, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	svc, err := staff.New(s, staff.Options{TokenKey: make([]byte, 32), ValidFiscalNumber: codicefiscale.Valid, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return svc, c
}

func TestTokens(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			store := b.Open(t)
			svc, clk := newService(t, store)
			ctx := t.Context()
			actor := staff.Actor{ID: cfA, Channel: "api"}
			rec, token, err := svc.CreateToken(ctx, actor, staff.TokenSpec{Name: "ci", Roles: []string{staff.RoleAuditor, staff.RoleOperatorSede}, TTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(rec.Hash), token) || len(rec.Hash) != 32 {
				t.Fatalf("stored hash %x", rec.Hash)
			}
			p, err := svc.Authenticate(ctx, token)
			if err != nil || p.ID != "token:"+rec.ID || !p.Has(staff.RoleAuditor) || p.Has(staff.RoleAdmin) || p.Channel != "api" {
				t.Fatalf("Authenticate = %+v, %v", p, err)
			}
			id, roles, ok, err := svc.OperatorToken(ctx, token)
			if err != nil || !ok || id != p.ID || len(roles) != 1 || roles[0] != staff.RoleOperatorSede {
				t.Fatalf("OperatorToken = %q %v %v %v", id, roles, ok, err)
			}
			other, _, err := svc.CreateToken(ctx, actor, staff.TokenSpec{Name: "other", Roles: []string{staff.RoleAdmin}, TTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			secret := token[len("pt_")+len(rec.ID)+1:]
			for name, bad := range map[string]string{
				"empty": "", "prefix only": "pt_", "no prefix": rec.ID + "_" + secret,
				"wrong secret":         token[:len(token)-1] + flip(token[len(token)-1:]),
				"another token's ID":   "pt_" + other.ID + "_" + secret,
				"unknown ID":           "pt_0000000000000000_" + secret,
				"no separator":         "pt_" + rec.ID + secret,
				"secret with a suffix": token + "x",
				"secret cut":           token[:len(token)-2],
			} {
				if _, err := svc.Authenticate(ctx, bad); !errors.Is(err, staff.ErrUnauthenticated) {
					t.Errorf("%s: %v", name, err)
				}
			}
			clk.add(time.Hour)
			if _, err := svc.Authenticate(ctx, token); !errors.Is(err, staff.ErrUnauthenticated) {
				t.Fatalf("expired token: %v", err)
			}
			clk.add(-time.Second)
			if _, err := svc.Authenticate(ctx, token); err != nil {
				t.Fatalf("a second before expiry: %v", err)
			}
			if err := svc.RevokeToken(ctx, actor, rec.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Authenticate(ctx, token); !errors.Is(err, staff.ErrUnauthenticated) {
				t.Fatalf("revoked token: %v", err)
			}
			if err := svc.RevokeToken(ctx, actor, rec.ID); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("revoked twice: %v", err)
			}
			var events []string
			_ = store.SearchAudit(ctx, storage.AuditQuery{Actor: cfA}, func(e storage.AuditEvent) error {
				events = append(events, e.Event+" "+e.Target+" "+e.Channel)
				return nil
			})
			want := "[token.created token:" + rec.ID + " api token.created token:" + other.ID + " api token.revoked token:" + rec.ID + " api]"
			if got := "[" + strings.Join(events, " ") + "]"; got != want {
				t.Fatalf("audit %s, want %s", got, want)
			}
		})
	}
}

func TestTokenSpec(t *testing.T) {
	svc, _ := newService(t, storagetest.SQLite(t))
	for _, c := range []struct {
		spec  staff.TokenSpec
		field string
	}{
		{staff.TokenSpec{Roles: []string{"admin"}, TTL: time.Hour}, "name"},
		{staff.TokenSpec{Name: strings.Repeat("x", staff.MaxTokenName+1), Roles: []string{"admin"}, TTL: time.Hour}, "name"},
		{staff.TokenSpec{Name: "x", TTL: time.Hour}, "roles"},
		{staff.TokenSpec{Name: "x", Roles: []string{"admin", "root"}, TTL: time.Hour}, "roles[1]"},
		{staff.TokenSpec{Name: "x", Roles: []string{"admin", "admin"}, TTL: time.Hour}, "roles[1]"},
		{staff.TokenSpec{Name: "x", Roles: []string{"admin"}, TTL: staff.MinTokenTTL - 1}, "ttl"},
		{staff.TokenSpec{Name: "x", Roles: []string{"admin"}, TTL: staff.MaxTokenTTL + 1}, "ttl"},
	} {
		_, _, err := svc.CreateToken(t.Context(), staff.CLI, c.spec)
		var fe *fields.Error
		if !errors.As(err, &fe) || fe.Fields[c.field] == "" {
			t.Errorf("%+v: %v, want a problem with %s", c.spec, err, c.field)
		}
	}
	for _, ttl := range []time.Duration{staff.MinTokenTTL, staff.MaxTokenTTL} {
		if _, _, err := svc.CreateToken(t.Context(), staff.CLI, staff.TokenSpec{Name: "x", Roles: []string{"admin"}, TTL: ttl}); err != nil {
			t.Errorf("ttl %s: %v", ttl, err)
		}
	}
}

// TestLastAdmin: two admins revoking each other at once leave one admin.
func TestLastAdmin(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			svc, _ := newService(t, b.Open(t))
			ctx := t.Context()
			for _, cf := range []string{cfA, cfB} {
				if _, err := svc.Grant(ctx, staff.CLI, cf, staff.RoleAdmin); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, pair := range [][2]string{{cfA, cfB}, {cfB, cfA}} {
				wg.Go(func() { errs[i] = svc.Revoke(ctx, staff.Actor{ID: pair[0], Channel: "api"}, pair[1], staff.RoleAdmin) })
			}
			wg.Wait()
			if n := countOK(errs); n != 1 {
				t.Fatalf("%d revocations succeeded (%v), want 1", n, errs)
			}
			grants, _ := svc.Grants(ctx)
			if len(grants) != 1 {
				t.Fatalf("admins left: %+v", grants)
			}
			if err := svc.Revoke(ctx, staff.CLI, grants[0].FiscalNumber, staff.RoleAdmin); !errors.Is(err, staff.ErrLastAdmin) {
				t.Fatalf("last admin: %v", err)
			}
		})
	}
}

func countOK(errs []error) int {
	n := 0
	for _, err := range errs {
		if err == nil {
			n++
		} else if !errors.Is(err, staff.ErrLastAdmin) {
			return -1
		}
	}
	return n
}

// flip returns another character than c.
func flip(c string) string {
	if c == "A" {
		return "B"
	}
	return "A"
}

// TestAuthenticateMalformedID: a token whose ID is not lower-case hex — 16
// bytes of invalid UTF-8, which PostgreSQL refuses with an error of its own —
// is a wrong token (ErrUnauthenticated, counted by the callers' limits), not
// a database failure (an uncounted 500).
func TestAuthenticateMalformedID(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			svc, _ := newService(t, b.Open(t))
			for _, id := range []string{strings.Repeat("\xff", 16), strings.Repeat("A", 16), "0123456789abcdeG", "0123456789abcde\x00"} {
				if _, err := svc.Authenticate(t.Context(), "pt_"+id+"_secret"); !errors.Is(err, staff.ErrUnauthenticated) {
					t.Errorf("ID %q: %v, want ErrUnauthenticated", id, err)
				}
			}
		})
	}
}
