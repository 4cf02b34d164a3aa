package storagetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ponte-id/ponte/storage"
)

// pinEdgeTests are the corners of the PIN contract where it is terse: defaults
// for zero fields, ties in ordering, lease expiry, limits, what a refused call
// leaves behind, and read-modify-write under concurrency. RunPINTests runs them
// after pinTests.
var pinEdgeTests = []pinTest{
	{"account zero fields", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		before := time.Now().Add(-time.Second)
		a := storage.PINAccount{FiscalNumber: "RSSMRA80A01H501U", Status: storage.PINPending, Hash: []byte{}}
		must(t, s.CreatePINAccount(ctx, a))
		got, err := s.GetPINAccount(ctx, a.FiscalNumber)
		must(t, err)
		if got.Hash != nil || got.PreviousHash != nil || got.ActivationHash != nil || !got.ChangedAt.IsZero() ||
			got.Residence != (storage.Address{}) {
			t.Fatalf("empty fields do not read back empty: %+v", got)
		}
		if got.CreatedAt.Before(before) || !got.UpdatedAt.Equal(got.CreatedAt) {
			t.Fatalf("zero CreatedAt and UpdatedAt must become now: %v %v", got.CreatedAt, got.UpdatedAt)
		}
	}},
	{"account replace clears every column", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		must(t, s.CreatePINAccount(ctx, sampleAccount("RSSMRA80A01H501U")))
		b := storage.PINAccount{FiscalNumber: "RSSMRA80A01H501U", Status: storage.PINRevoked, CreatedAt: base, UpdatedAt: base}
		must(t, s.ReplacePINAccount(ctx, b))
		got, err := s.GetPINAccount(ctx, b.FiscalNumber)
		must(t, err)
		same(t, "replaced by a bare account", got, b)
	}},
	{"account concurrent updates", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		a := sampleAccount("RSSMRA80A01H501U")
		a.Operator = ""
		must(t, s.CreatePINAccount(ctx, a))
		const n = 12
		errs := race(n, func(int) error {
			return s.UpdatePINAccount(ctx, a.FiscalNumber, func(old storage.PINAccount) (storage.PINAccount, error) {
				old.Operator += "x"
				return old, nil
			})
		})
		noErrors(t, "concurrent updates", errs)
		got, err := s.GetPINAccount(ctx, a.FiscalNumber)
		must(t, err)
		if got.Operator != strings.Repeat("x", n) {
			t.Fatalf("lost updates: %q after %d", got.Operator, n)
		}
	}},
	{"attempts restart after reset", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		for range 2 {
			_, err := s.ReserveAttempt(ctx, "cf:X", base, time.Time{})
			must(t, err)
		}
		must(t, s.ResetAttempts(ctx, "cf:X"))
		a, err := s.ReserveAttempt(ctx, "cf:X", base.Add(time.Hour), time.Time{})
		must(t, err)
		if a.Count != 1 || !a.Prev.IsZero() {
			t.Fatalf("first attempt after reset: %+v", a)
		}
		if n, _, _ := s.GetAttempts(ctx, "ip:other"); n != 0 {
			t.Fatalf("keys are not independent: %d", n)
		}
	}},
	{"audit ties and late events", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		// Appended in this order; listed by At, then by append order.
		for _, e := range []storage.AuditEvent{
			{At: base.Add(time.Minute), Event: "third"},
			{At: base, Event: "first"},
			{At: base, Event: "second"},
		} {
			e.FiscalNumber = "CF"
			must(t, s.AppendAudit(ctx, e))
		}
		got, err := s.ListAudit(ctx, "CF")
		must(t, err)
		if len(got) != 3 || got[0].Event != "first" || got[1].Event != "second" || got[2].Event != "third" {
			t.Fatalf("audit order: %+v", got)
		}
		if !(got[0].ID < got[1].ID) || !got[0].At.Equal(micro(base)) {
			t.Fatalf("ids or times: %+v", got)
		}
		if none, err := s.ListAudit(ctx, "NOBODY"); err != nil || len(none) != 0 {
			t.Fatalf("unknown citizen: %+v %v", none, err)
		}
	}},
	{"outbox zero next attempt is due at creation", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		m := sampleMessage("m1", "sms", base)
		m.NextAttemptAt = time.Time{}
		must(t, s.Enqueue(ctx, m))
		if got, _ := s.ClaimDue(ctx, "sms", base.Add(-time.Second), 10, time.Minute); len(got) != 0 {
			t.Fatalf("claimed before its creation: %+v", got)
		}
		got, err := s.ClaimDue(ctx, "sms", base, 10, time.Minute)
		must(t, err)
		if len(got) != 1 || !got[0].NextAttemptAt.Equal(micro(base)) {
			t.Fatalf("due at creation: %+v", got)
		}
		// Neither time given: due now.
		must(t, s.Enqueue(ctx, storage.Message{ID: "m2", Channel: "post", To: "Via Roma 1"}))
		got, err = s.ClaimDue(ctx, "post", time.Now().Add(time.Second), 10, time.Minute)
		must(t, err)
		if len(got) != 1 || got[0].CreatedAt.IsZero() || got[0].Secret != nil {
			t.Fatalf("due now: %+v", got)
		}
	}},
	{"outbox order limit and lease expiry", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		for i, off := range []int{4, 2, 0, 3, 1} {
			m := sampleMessage(id("m", i), "email", base.Add(time.Duration(off)*time.Minute))
			m.CreatedAt = base
			must(t, s.Enqueue(ctx, m))
		}
		must(t, s.Enqueue(ctx, sampleMessage("other", "pec", base)))
		now := base.Add(time.Hour)
		if got, err := s.ClaimDue(ctx, "email", now, 0, time.Minute); err != nil || len(got) != 0 {
			t.Fatalf("limit 0: %+v %v", got, err)
		}
		got, err := s.ClaimDue(ctx, "email", now, 2, time.Minute)
		must(t, err)
		if len(got) != 2 || got[0].ID != "m-002" || got[1].ID != "m-004" {
			t.Fatalf("the two most overdue first: %+v", got)
		}
		for _, m := range got {
			if !m.LeaseUntil.Equal(micro(now.Add(time.Minute))) {
				t.Fatalf("lease: %v", m.LeaseUntil)
			}
		}
		got, err = s.ClaimDue(ctx, "email", now.Add(30*time.Second), 10, time.Minute)
		must(t, err)
		if len(got) != 3 {
			t.Fatalf("the unleased rest: %+v", got)
		}
		// Once the first leases run out, their messages are due again.
		got, err = s.ClaimDue(ctx, "email", now.Add(time.Minute), 10, time.Minute)
		must(t, err)
		if len(got) != 2 || got[0].ID != "m-002" || got[1].ID != "m-004" {
			t.Fatalf("expired leases: %+v", got)
		}
	}},
	{"outbox drained by competing claimers", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		const n, workers = 60, 6
		for i := range n {
			must(t, s.Enqueue(ctx, sampleMessage(id("m", i), "sms", base.Add(time.Duration(i)*time.Millisecond))))
		}
		claims := make([][]string, workers)
		errs := race(workers, func(w int) error {
			for {
				got, err := s.ClaimDue(ctx, "sms", base.Add(time.Minute), 3, time.Hour)
				if err != nil || len(got) == 0 {
					return err
				}
				for _, m := range got {
					claims[w] = append(claims[w], m.ID)
				}
			}
		})
		noErrors(t, "claim", errs)
		seen := map[string]bool{}
		for _, ids := range claims {
			for _, id := range ids {
				if seen[id] {
					t.Fatalf("message %s claimed twice", id)
				}
				seen[id] = true
			}
		}
		if len(seen) != n {
			t.Fatalf("claimed %d of %d", len(seen), n)
		}
	}},
	{"outbox mark sent and failed", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		must(t, s.Enqueue(ctx, sampleMessage("m1", "sms", base)))
		must(t, s.Enqueue(ctx, sampleMessage("m2", "sms", base.Add(time.Second))))
		_, err := s.ClaimDue(ctx, "sms", base.Add(time.Minute), 10, time.Hour)
		must(t, err)

		// A failure drops the lease: due again at next, though the lease ran longer.
		long := strings.Repeat("è", 400) // 800 bytes
		must(t, s.MarkFailed(ctx, "m1", base.Add(2*time.Minute), long))
		must(t, s.MarkFailed(ctx, "m2", base.Add(2*time.Minute), "bad \xff byte"))
		got, err := s.ClaimDue(ctx, "sms", base.Add(2*time.Minute), 10, time.Minute)
		must(t, err)
		if len(got) != 2 {
			t.Fatalf("a failed message kept its lease: %+v", got)
		}
		for _, m := range got {
			if m.Attempts != 1 || !utf8.ValidString(m.LastError) || len(m.LastError) > 500 || m.LastError == "" {
				t.Fatalf("failure of %s: attempts %d, reason %d bytes %q", m.ID, m.Attempts, len(m.LastError), m.LastError)
			}
		}
		if m := got[0]; !strings.HasPrefix(long, m.LastError) {
			t.Fatalf("the reason is not a prefix: %q", m.LastError)
		}

		must(t, s.MarkSent(ctx, "m1", base.Add(3*time.Minute)))
		list, err := s.ListMessages(ctx, 10)
		must(t, err)
		for _, m := range list {
			if m.ID != "m1" {
				continue
			}
			if m.Secret != nil || !m.LeaseUntil.IsZero() || !m.SentAt.Equal(micro(base.Add(3*time.Minute))) || m.Attempts != 1 {
				t.Fatalf("sent: %+v", m)
			}
		}
		if got, _ := s.ClaimDue(ctx, "sms", base.Add(24*time.Hour), 10, time.Minute); len(got) != 1 || got[0].ID != "m2" {
			t.Fatalf("after sending m1: %+v", got)
		}
	}},
	{"outbox list fields and limit", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		var want []storage.Message
		for i := range 4 {
			m := sampleMessage(id("m", i), "email", base.Add(time.Duration(i)*time.Minute))
			m.Attempts = i
			must(t, s.Enqueue(ctx, m))
			want = append([]storage.Message{m}, want...)
		}
		got, err := s.ListMessages(ctx, 3)
		must(t, err)
		same(t, "newest three", got, want[:3])
		if empty, err := s.ListMessages(ctx, 0); err != nil || len(empty) != 0 {
			t.Fatalf("limit 0: %+v %v", empty, err)
		}
	}},
	{"code refused stays live", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		c := storage.OneTimeCode{Hash: "h1", Purpose: "recovery", FiscalNumber: "CF", ExpiresAt: base.Add(time.Hour), CreatedAt: base}
		must(t, s.CreateCode(ctx, c))
		_, err := s.ConsumeCode(ctx, "h1", "change", base)
		wantErr(t, "wrong purpose", err, storage.ErrNotFound)
		// Also inside a transaction that goes on to commit.
		tx, err := s.BeginTx(ctx)
		must(t, err)
		_, err = s.ConsumeCode(tx, "h1", "change", base)
		wantErr(t, "wrong purpose in a transaction", err, storage.ErrNotFound)
		must(t, s.Commit(tx))
		_, err = s.ConsumeCode(ctx, "unknown", "recovery", base)
		wantErr(t, "unknown", err, storage.ErrNotFound)
		got, err := s.ConsumeCode(ctx, "h1", "recovery", base.Add(time.Hour-time.Microsecond))
		must(t, err)
		same(t, "consumed", got, c)
	}},
	{"code zero expiry is never live", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		must(t, s.CreateCode(ctx, storage.OneTimeCode{Hash: "h1", Purpose: "recovery"}))
		_, err := s.ConsumeCode(ctx, "h1", "recovery", base)
		wantErr(t, "zero expiry", err, storage.ErrNotFound)
	}},
	{"code consumption rolls back", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		must(t, s.CreateCode(ctx, storage.OneTimeCode{Hash: "h1", Purpose: "recovery", ExpiresAt: base.Add(time.Hour)}))
		tx, err := s.BeginTx(ctx)
		must(t, err)
		_, err = s.ConsumeCode(tx, "h1", "recovery", base)
		must(t, err)
		_, err = s.ReserveAttempt(tx, "cf:X", base, time.Time{})
		must(t, err)
		must(t, s.Rollback(tx))
		if n, _, _ := s.GetAttempts(ctx, "cf:X"); n != 0 {
			t.Fatalf("a rolled-back failure counted: %d", n)
		}
		_, err = s.ConsumeCode(ctx, "h1", "recovery", base)
		must(t, err)
	}},
	{"conversion update rules", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		c := storage.Conversion{ID: "c1", FiscalNumber: "CF", Form: []byte("form"), FormType: "application/pdf",
			Document: []byte("doc"), DocumentType: "image/jpeg", Status: storage.ConversionPending, CreatedAt: base}
		must(t, s.CreateConversion(ctx, c))
		got, err := s.GetConversion(ctx, "c1")
		must(t, err)
		same(t, "round trip", got, c)
		boom := errors.New("boom")
		wantErr(t, "fn error", s.UpdateConversion(ctx, "c1", func(c storage.Conversion) (storage.Conversion, error) {
			c.Status = storage.ConversionRejected
			return c, boom
		}), boom)
		must(t, s.UpdateConversion(ctx, "c1", func(c storage.Conversion) (storage.Conversion, error) {
			c.ID, c.Status, c.Reason, c.ReviewedAt = "other", storage.ConversionRejected, "illegible", base.Add(time.Hour)
			return c, nil
		}))
		if _, err := s.GetConversion(ctx, "other"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("the ID changed: %v", err)
		}
		want := c
		want.Status, want.Reason, want.ReviewedAt = storage.ConversionRejected, "illegible", base.Add(time.Hour)
		got, err = s.GetConversion(ctx, "c1")
		must(t, err)
		same(t, "updated", got, want)
		if pending, err := s.ListConversions(ctx, storage.ConversionPending); err != nil || len(pending) != 0 {
			t.Fatalf("no pending left: %+v %v", pending, err)
		}

		const n = 8
		errs := race(n, func(int) error {
			return s.UpdateConversion(ctx, "c1", func(c storage.Conversion) (storage.Conversion, error) {
				c.Reason += "x"
				return c, nil
			})
		})
		noErrors(t, "concurrent updates", errs)
		if got, _ := s.GetConversion(ctx, "c1"); got.Reason != "illegible"+strings.Repeat("x", n) {
			t.Fatalf("lost updates: %q", got.Reason)
		}
	}},
}
