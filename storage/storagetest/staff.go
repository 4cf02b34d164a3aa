package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ponte-id/ponte/storage"
)

// StaffStore is what the staff suite needs: the staff aggregate and the audit
// trail it searches.
type StaffStore interface {
	storage.Staff
	storage.Audit
}

// RunStaffTests runs the conformance suite of storage.Staff: roles granted
// once, revoked once, tokens stored and revoked once (also under concurrent
// revocations), and the audit search's every filter, its order, its
// continuation and its early stop. open must return a fresh, empty, migrated
// store; it is called once per subtest.
func RunStaffTests(t *testing.T, open func(t *testing.T) StaffStore) {
	for _, tc := range staffTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, open(t))
		})
	}
}

var staffTests = []struct {
	name string
	run  func(t *testing.T, s StaffStore)
}{
	{"Roles", func(t *testing.T, s StaffStore) {
		ctx := t.Context()
		g := storage.StaffGrant{FiscalNumber: "RSSMRA80A01H501U", Role: "admin", GrantedBy: "cli", GrantedAt: base}
		must(t, s.GrantRole(ctx, g))
		wantErr(t, "GrantRole twice", s.GrantRole(ctx, g), storage.ErrConflict)
		must(t, s.GrantRole(ctx, storage.StaffGrant{FiscalNumber: g.FiscalNumber, Role: "auditor", GrantedBy: "x", GrantedAt: base}))
		must(t, s.GrantRole(ctx, storage.StaffGrant{FiscalNumber: "BNCLGU70B02F205X", Role: "admin", GrantedAt: base}))
		got, err := s.StaffGrants(ctx, g.FiscalNumber)
		must(t, err)
		same(t, "StaffGrants", got, []storage.StaffGrant{g, {FiscalNumber: g.FiscalNumber, Role: "auditor", GrantedBy: "x", GrantedAt: base}})
		all, err := s.ListStaffGrants(ctx)
		must(t, err)
		if len(all) != 3 || all[0].FiscalNumber != "BNCLGU70B02F205X" {
			t.Fatalf("ListStaffGrants = %+v", all)
		}
		if n, err := s.CountRole(ctx, "admin"); err != nil || n != 2 {
			t.Fatalf("CountRole(admin) = %d, %v", n, err)
		}
		must(t, s.RevokeRole(ctx, g.FiscalNumber, "admin"))
		wantErr(t, "RevokeRole twice", s.RevokeRole(ctx, g.FiscalNumber, "admin"), storage.ErrNotFound)
		wantErr(t, "RevokeRole of nobody", s.RevokeRole(ctx, "NOBODY", "auditor"), storage.ErrNotFound)
		if n, _ := s.CountRole(ctx, "admin"); n != 1 {
			t.Fatalf("CountRole after revoke = %d", n)
		}
		if got, err := s.StaffGrants(ctx, "NOBODY"); err != nil || len(got) != 0 {
			t.Fatalf("StaffGrants of nobody = %v, %v", got, err)
		}
	}},
	{"Tokens", func(t *testing.T, s StaffStore) {
		ctx := t.Context()
		tok := storage.APIToken{ID: "t1", Name: "ci", Hash: []byte{0, 1, 2, 0xff}, Roles: []string{"admin", "auditor"},
			CreatedBy: "cli", CreatedAt: base, ExpiresAt: base.Add(24 * time.Hour)}
		must(t, s.CreateAPIToken(ctx, tok))
		wantErr(t, "CreateAPIToken twice", s.CreateAPIToken(ctx, tok), storage.ErrConflict)
		later := tok
		later.ID, later.CreatedAt = "t2", base.Add(time.Minute)
		must(t, s.CreateAPIToken(ctx, later))
		got, err := s.GetAPIToken(ctx, "t1")
		must(t, err)
		same(t, "GetAPIToken", got, tok)
		_, err = s.GetAPIToken(ctx, "nope")
		wantErr(t, "GetAPIToken unknown", err, storage.ErrNotFound)
		list, err := s.ListAPITokens(ctx)
		must(t, err)
		if len(list) != 2 || list[0].ID != "t2" {
			t.Fatalf("ListAPITokens not newest first: %+v", list)
		}
		must(t, s.RevokeAPIToken(ctx, "t1", base.Add(2*time.Hour)))
		wantErr(t, "RevokeAPIToken twice", s.RevokeAPIToken(ctx, "t1", base.Add(3*time.Hour)), storage.ErrNotFound)
		wantErr(t, "RevokeAPIToken unknown", s.RevokeAPIToken(ctx, "nope", base), storage.ErrNotFound)
		got, _ = s.GetAPIToken(ctx, "t1")
		if !got.RevokedAt.Equal(micro(base.Add(2 * time.Hour))) {
			t.Fatalf("RevokedAt = %v", got.RevokedAt)
		}
	}},
	{"TokenRevokedOnce", func(t *testing.T, s StaffStore) {
		ctx := t.Context()
		must(t, s.CreateAPIToken(ctx, storage.APIToken{ID: "t", Hash: []byte{1}, Roles: []string{"admin"}, CreatedAt: base, ExpiresAt: base.Add(time.Hour)}))
		var ok atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				err := s.RevokeAPIToken(ctx, "t", base)
				switch {
				case err == nil:
					ok.Add(1)
				case !errors.Is(err, storage.ErrNotFound):
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 {
			t.Fatalf("%d revocations succeeded, want 1", ok.Load())
		}
	}},
	{"SearchAudit", func(t *testing.T, s StaffStore) {
		ctx := t.Context()
		events := []storage.AuditEvent{
			{At: base, FiscalNumber: "CF1", Event: "issued", Channel: "sede", Operator: "op1"},
			{At: base.Add(time.Minute), Event: "client.created", Channel: "api", Operator: "token:a", Target: "client:rp1", Detail: "d"},
			{At: base.Add(time.Minute), Event: "client.updated", Channel: "api", Operator: "token:a", Target: "client:rp1"},
			{At: base.Add(2 * time.Minute), FiscalNumber: "CF1", Event: "staff.granted", Channel: "cli", Operator: "cli", Target: "staff:CF1"},
			{At: base.Add(3 * time.Minute), Event: "key.rotated", Channel: "api", Operator: "RSSMRA80A01H501U", Target: "key:k1"},
		}
		for _, e := range events {
			must(t, s.AppendAudit(ctx, e))
		}
		ids := func(q storage.AuditQuery) (out []string) {
			t.Helper()
			must(t, s.SearchAudit(ctx, q, func(e storage.AuditEvent) error {
				out = append(out, e.Event)
				return nil
			}))
			return out
		}
		cases := []struct {
			q    storage.AuditQuery
			want string
		}{
			{storage.AuditQuery{}, "[issued client.created client.updated staff.granted key.rotated]"},
			{storage.AuditQuery{From: base.Add(time.Minute)}, "[client.created client.updated staff.granted key.rotated]"},
			{storage.AuditQuery{To: base.Add(2 * time.Minute)}, "[issued client.created client.updated]"},
			{storage.AuditQuery{From: base.Add(time.Minute), To: base.Add(3 * time.Minute)}, "[client.created client.updated staff.granted]"},
			{storage.AuditQuery{Actor: "token:a"}, "[client.created client.updated]"},
			{storage.AuditQuery{Action: "key.rotated"}, "[key.rotated]"},
			{storage.AuditQuery{Subject: "CF1"}, "[issued staff.granted]"},
			{storage.AuditQuery{Subject: "client:rp1", Action: "client.updated"}, "[client.updated]"},
			{storage.AuditQuery{Limit: 2}, "[issued client.created]"},
			{storage.AuditQuery{Actor: "nobody"}, "[]"},
		}
		for _, c := range cases {
			if got := fmt.Sprint(ids(c.q)); got != c.want {
				t.Errorf("SearchAudit(%+v) = %s, want %s", c.q, got, c.want)
			}
		}
		// Continuation: after the second event (same instant as the third) comes the third.
		var all []storage.AuditEvent
		must(t, s.SearchAudit(ctx, storage.AuditQuery{}, func(e storage.AuditEvent) error { all = append(all, e); return nil }))
		if got := fmt.Sprint(ids(storage.AuditQuery{AfterID: all[1].ID, Limit: 2})); got != "[client.updated staff.granted]" {
			t.Errorf("continuation = %s", got)
		}
		same(t, "event read back", all[1], storage.AuditEvent{ID: all[1].ID, At: base.Add(time.Minute), Event: "client.created", Channel: "api", Operator: "token:a", Target: "client:rp1", Detail: "d"})
		// fn's error stops the search and comes back.
		stop := errors.New("stop")
		n := 0
		err := s.SearchAudit(ctx, storage.AuditQuery{}, func(storage.AuditEvent) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Fatalf("early stop: err %v after %d events", err, n)
		}
	}},
}
