package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ponte-id/ponte/storage"
)

// RunPINTests runs the conformance suite of the PIN aggregates: every method
// of storage.PINStore, their error paths, the races the contract rules out
// (lost failures, a message claimed twice, a code consumed twice) and the
// promise that an event and its messages commit or roll back together. open
// must return a fresh, empty, migrated store; it is called once per subtest.
func RunPINTests(t *testing.T, open func(t *testing.T) storage.PINStore) {
	for _, tc := range slices.Concat(pinTests, pinEdgeTests) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, open(t))
		})
	}
}

type pinTest struct {
	name string
	run  func(t *testing.T, s storage.PINStore)
}

func sampleAccount(cf string) storage.PINAccount {
	return storage.PINAccount{
		FiscalNumber: cf, GivenName: "Mario", FamilyName: "Rossi", Gender: "M", Birthdate: "1980-01-01",
		BirthPlace: "Roma", ResidenceAbroad: true,
		Residence: storage.Address{Street: "Calle Florida", Number: "100", City: "Buenos Aires", Country: "Argentina"},
		Mobile:    "+5491100000000", Phone: "+390600000000", Email: "mario@example.it", PEC: "mario@pec.example.it",
		PreferredPhone: "+5491100000000", CallbackSlot: "09-13",
		Hash: []byte("$argon2id$current"), PreviousHash: []byte("$argon2id$previous"), Status: storage.PINActive,
		Dispositivo: true, MustChange: true, FirstAccessDone: true, ChangedAt: base, ActivationHash: []byte("act"),
		ReplacementHash: []byte("repl"), ReplacementAt: base.Add(time.Minute),
		Channel: "online", Operator: "op-1", CreatedAt: base, UpdatedAt: base,
	}
}

func sampleMessage(id, channel string, at time.Time) storage.Message {
	return storage.Message{ID: id, Channel: channel, To: "mario@example.it", Subject: "PIN", Body: "{{secret}}",
		Secret: []byte("sealed"), FiscalNumber: "RSSMRA80A01H501U", NextAttemptAt: at, CreatedAt: at}
}

var pinTests = []pinTest{
	{"account create get conflict", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		a := sampleAccount("RSSMRA80A01H501U")
		must(t, s.CreatePINAccount(ctx, a))
		got, err := s.GetPINAccount(ctx, a.FiscalNumber)
		must(t, err)
		same(t, "account", got, a)
		wantErr(t, "duplicate", s.CreatePINAccount(ctx, a), storage.ErrConflict)
		_, err = s.GetPINAccount(ctx, "BNCLRA90D55F205C")
		wantErr(t, "missing", err, storage.ErrNotFound)
	}},
	{"account update and replace", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		a := sampleAccount("RSSMRA80A01H501U")
		must(t, s.CreatePINAccount(ctx, a))
		must(t, s.UpdatePINAccount(ctx, a.FiscalNumber, func(old storage.PINAccount) (storage.PINAccount, error) {
			old.FiscalNumber, old.Status, old.Hash = "CHANGED", storage.PINRevoked, nil
			return old, nil
		}))
		got, err := s.GetPINAccount(ctx, a.FiscalNumber)
		must(t, err)
		if got.Status != storage.PINRevoked || got.Hash != nil || got.UpdatedAt.Equal(micro(base)) {
			t.Fatalf("update not applied: %+v", got)
		}
		boom := errors.New("boom")
		wantErr(t, "fn error", s.UpdatePINAccount(ctx, a.FiscalNumber, func(old storage.PINAccount) (storage.PINAccount, error) {
			old.Status = storage.PINActive
			return old, boom
		}), boom)
		if got, _ := s.GetPINAccount(ctx, a.FiscalNumber); got.Status != storage.PINRevoked {
			t.Fatal("an aborted update was written")
		}
		wantErr(t, "missing", s.UpdatePINAccount(ctx, "BNCLRA90D55F205C", func(a storage.PINAccount) (storage.PINAccount, error) { return a, nil }), storage.ErrNotFound)
		b := sampleAccount(a.FiscalNumber)
		b.GivenName, b.Dispositivo = "Luigi", false
		must(t, s.ReplacePINAccount(ctx, b))
		got, _ = s.GetPINAccount(ctx, a.FiscalNumber)
		same(t, "replaced", got, b)
		c := sampleAccount("BNCLRA90D55F205C")
		must(t, s.ReplacePINAccount(ctx, c))
		got, _ = s.GetPINAccount(ctx, c.FiscalNumber)
		same(t, "replace creates", got, c)
	}},
	{"attempts reserve, refund, reset and race", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		n, last, err := s.GetAttempts(ctx, "cf:X")
		if err != nil || n != 0 || !last.IsZero() {
			t.Fatalf("unknown key: %d %v %v", n, last, err)
		}
		var prev time.Time
		for i := 1; i <= 3; i++ {
			at := base.Add(time.Duration(i) * time.Minute)
			a, err := s.ReserveAttempt(ctx, "cf:X", at, time.Time{})
			must(t, err)
			if a.Count != i || a.Key != "cf:X" || !a.Prev.Equal(prev) || !a.At.Equal(at) {
				t.Fatalf("reservation %d: %+v, want count %d prev %v", i, a, i, prev)
			}
			prev = micro(at)
		}
		n, last, err = s.GetAttempts(ctx, "cf:X")
		must(t, err)
		if n != 3 || !last.Equal(micro(base.Add(3*time.Minute))) {
			t.Fatalf("attempts: %d %v", n, last)
		}
		must(t, s.ResetAttempts(ctx, "cf:X"))
		must(t, s.ResetAttempts(ctx, "unknown"))
		if n, _, _ := s.GetAttempts(ctx, "cf:X"); n != 0 {
			t.Fatal("reset kept the count")
		}
		errs := race(20, func(int) error { _, err := s.ReserveAttempt(ctx, "ip:1", base, time.Time{}); return err })
		noErrors(t, "concurrent reservations", errs)
		if n, _, _ := s.GetAttempts(ctx, "ip:1"); n != 20 {
			t.Fatalf("concurrent reservations counted %d of 20", n)
		}
	}},
	{"attempts refund restores the last time only if unchanged", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		first, err := s.ReserveAttempt(ctx, "cf:X", base, time.Time{})
		must(t, err)
		second, err := s.ReserveAttempt(ctx, "cf:X", base.Add(time.Minute), time.Time{})
		must(t, err)
		must(t, s.RefundAttempt(ctx, second))
		n, last, _ := s.GetAttempts(ctx, "cf:X")
		if n != 1 || !last.Equal(micro(first.At)) {
			t.Fatalf("after refunding the last reservation: %d %v, want 1 %v", n, last, first.At)
		}
		third, err := s.ReserveAttempt(ctx, "cf:X", base.Add(2*time.Minute), time.Time{})
		must(t, err)
		fourth, err := s.ReserveAttempt(ctx, "cf:X", base.Add(3*time.Minute), time.Time{})
		must(t, err)
		must(t, s.RefundAttempt(ctx, third)) // another attempt came since: the time stays
		n, last, _ = s.GetAttempts(ctx, "cf:X")
		if n != 2 || !last.Equal(micro(fourth.At)) {
			t.Fatalf("after refunding an older reservation: %d %v, want 2 %v", n, last, fourth.At)
		}
		must(t, s.RefundAttempt(ctx, fourth))
		must(t, s.RefundAttempt(ctx, first))
		must(t, s.RefundAttempt(ctx, first)) // never below zero
		if n, _, _ := s.GetAttempts(ctx, "cf:X"); n != 0 {
			t.Fatalf("refunds went to %d", n)
		}
	}},
	{"attempts forget a quiet counter", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		for range 3 {
			_, err := s.ReserveAttempt(ctx, "ip:1", base, time.Time{})
			must(t, err)
		}
		a, err := s.ReserveAttempt(ctx, "ip:1", base.Add(time.Minute), base.Add(-time.Hour))
		must(t, err)
		if a.Count != 4 {
			t.Fatalf("a recent counter was forgotten: %+v", a)
		}
		a, err = s.ReserveAttempt(ctx, "ip:1", base.Add(3*time.Hour), base.Add(2*time.Hour))
		must(t, err)
		if a.Count != 1 || !a.Prev.IsZero() {
			t.Fatalf("a quiet counter was not forgotten: %+v", a)
		}
	}},
	{"count in window", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		for i := 1; i <= 3; i++ {
			n, err := s.CountInWindow(ctx, "rl:x", base.Add(time.Duration(i)*time.Minute), time.Hour)
			must(t, err)
			if n != i {
				t.Fatalf("event %d counted %d", i, n)
			}
		}
		// The window started at the first event (base+1m) and ends an hour later.
		n, err := s.CountInWindow(ctx, "rl:x", base.Add(60*time.Minute), time.Hour)
		must(t, err)
		if n != 4 {
			t.Fatalf("inside the window: %d", n)
		}
		n, err = s.CountInWindow(ctx, "rl:x", base.Add(61*time.Minute), time.Hour)
		must(t, err)
		if n != 1 {
			t.Fatalf("a new window must start at one: %d", n)
		}
		errs := race(20, func(int) error { _, err := s.CountInWindow(ctx, "rl:y", base, time.Hour); return err })
		noErrors(t, "concurrent events", errs)
		if n, _ := s.CountInWindow(ctx, "rl:y", base, time.Hour); n != 21 {
			t.Fatalf("concurrent events counted %d of 21", n)
		}
	}},
	{"PIN requests wait, are decided once, and are superseded", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		proposed := sampleAccount("RSSMRA80A01H501U")
		proposed.Hash, proposed.PreviousHash, proposed.ActivationHash = []byte("never"), []byte("stored"), []byte("here")
		mk := func(id string, at time.Time) storage.PINRequest {
			return storage.PINRequest{ID: id, FiscalNumber: proposed.FiscalNumber, Proposed: proposed, FirstHalfVia: "email",
				Channel: "online", Status: storage.PINRequestCallback, CreatedAt: at}
		}
		must(t, s.CreatePINRequest(ctx, mk("r2", base.Add(time.Minute))))
		must(t, s.CreatePINRequest(ctx, mk("r1", base)))
		must(t, s.CreatePINRequest(ctx, mk("r3", base.Add(2*time.Minute))))
		wantErr(t, "duplicate ID", s.CreatePINRequest(ctx, mk("r1", base)), storage.ErrConflict)
		got, err := s.GetPINRequest(ctx, "r1")
		must(t, err)
		if got.Proposed.Hash != nil || got.Proposed.PreviousHash != nil || got.Proposed.ActivationHash != nil {
			t.Fatalf("a request stores hashes: %+v", got.Proposed)
		}
		if got.Proposed.Residence != proposed.Residence || got.Proposed.Email != proposed.Email || got.FirstHalfVia != "email" ||
			!got.CreatedAt.Equal(micro(base)) || got.Status != storage.PINRequestCallback {
			t.Fatalf("request read back: %+v", got)
		}
		_, err = s.GetPINRequest(ctx, "nope")
		wantErr(t, "unknown request", err, storage.ErrNotFound)
		list, err := s.ListPINRequests(ctx, storage.PINRequestCallback, 0, 2)
		must(t, err)
		if len(list) != 2 || list[0].ID != "r1" || list[1].ID != "r2" {
			t.Fatalf("waiting requests, oldest first, limited: %+v", list)
		}
		list, err = s.ListPINRequests(ctx, storage.PINRequestCallback, 2, 2)
		must(t, err)
		if len(list) != 1 || list[0].ID != "r3" {
			t.Fatalf("the next page: %+v", list)
		}
		errs := race(8, func(int) error {
			_, err := s.DecidePINRequest(ctx, "r1", storage.PINRequestConfirmed, "op-1", base.Add(time.Hour))
			return err
		})
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, storage.ErrNotFound):
				t.Fatalf("concurrent decision: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d of 8 concurrent decisions won, want exactly 1", won)
		}
		got, _ = s.GetPINRequest(ctx, "r1")
		if got.Status != storage.PINRequestConfirmed || got.DecidedBy != "op-1" || !got.DecidedAt.Equal(micro(base.Add(time.Hour))) {
			t.Fatalf("decided request: %+v", got)
		}
		n, err := s.SupersedePINRequests(ctx, proposed.FiscalNumber, "op-1", base.Add(time.Hour))
		must(t, err)
		if n != 2 {
			t.Fatalf("superseded %d waiting requests, want 2", n)
		}
		if list, _ := s.ListPINRequests(ctx, storage.PINRequestCallback, 0, 10); len(list) != 0 {
			t.Fatalf("requests still waiting: %+v", list)
		}
		_, err = s.DecidePINRequest(ctx, "r2", storage.PINRequestRefused, "op-2", base)
		wantErr(t, "deciding a superseded request", err, storage.ErrNotFound)
	}},
	{"audit appends in order", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		for i, ev := range []string{"requested", "issued", "first_access"} {
			must(t, s.AppendAudit(ctx, storage.AuditEvent{At: base.Add(time.Duration(i) * time.Second), FiscalNumber: "CF1", Event: ev, Channel: "online", Operator: "op", Detail: "d"}))
		}
		must(t, s.AppendAudit(ctx, storage.AuditEvent{FiscalNumber: "CF2", Event: "requested"}))
		got, err := s.ListAudit(ctx, "CF1")
		must(t, err)
		var events []string
		for _, e := range got {
			events = append(events, e.Event)
			if e.ID == 0 || e.Channel != "online" || e.Operator != "op" {
				t.Fatalf("event not kept whole: %+v", e)
			}
		}
		if !slices.Equal(events, []string{"requested", "issued", "first_access"}) {
			t.Fatalf("audit order: %v", events)
		}
		other, _ := s.ListAudit(ctx, "CF2")
		if len(other) != 1 || other[0].At.IsZero() {
			t.Fatalf("a zero At must become now: %+v", other)
		}
	}},
	{"outbox claim send fail", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		must(t, s.Enqueue(ctx, sampleMessage("m1", "sms", base)))
		must(t, s.Enqueue(ctx, sampleMessage("m2", "sms", base.Add(time.Hour))))
		must(t, s.Enqueue(ctx, sampleMessage("m3", "email", base)))
		wantErr(t, "duplicate", s.Enqueue(ctx, sampleMessage("m1", "sms", base)), storage.ErrConflict)
		got, err := s.ClaimDue(ctx, "sms", base.Add(time.Minute), 10, time.Minute)
		must(t, err)
		if len(got) != 1 || got[0].ID != "m1" || string(got[0].Secret) != "sealed" {
			t.Fatalf("claim: %+v", got)
		}
		if again, _ := s.ClaimDue(ctx, "sms", base.Add(time.Minute), 10, time.Minute); len(again) != 0 {
			t.Fatal("a leased message was claimed again")
		}
		must(t, s.MarkFailed(ctx, "m1", base.Add(10*time.Minute), "gateway 503"))
		if got, _ := s.ClaimDue(ctx, "sms", base.Add(5*time.Minute), 10, time.Minute); len(got) != 0 {
			t.Fatal("claimed before its next attempt")
		}
		got, _ = s.ClaimDue(ctx, "sms", base.Add(10*time.Minute), 10, time.Minute)
		if len(got) != 1 || got[0].Attempts != 1 || got[0].LastError != "gateway 503" {
			t.Fatalf("after a failure: %+v", got)
		}
		must(t, s.MarkSent(ctx, "m1", base.Add(11*time.Minute)))
		wantErr(t, "unknown", s.MarkSent(ctx, "nope", base), storage.ErrNotFound)
		wantErr(t, "unknown", s.MarkFailed(ctx, "nope", base, "x"), storage.ErrNotFound)
		if got, _ := s.ClaimDue(ctx, "sms", base.Add(24*time.Hour), 10, time.Minute); len(got) != 1 || got[0].ID != "m2" {
			t.Fatalf("a sent message was claimed again: %+v", got)
		}
		list, err := s.ListMessages(ctx, 10)
		must(t, err)
		if len(list) != 3 || list[0].ID != "m2" {
			t.Fatalf("list newest first: %+v", list)
		}
		for _, m := range list {
			if m.ID == "m1" && (m.Secret != nil || m.SentAt.IsZero()) {
				t.Fatalf("a sent message keeps its secret: %+v", m)
			}
		}
	}},
	{"outbox parked and requeued", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		must(t, s.Enqueue(ctx, sampleMessage("due", "post", base)))
		must(t, s.Enqueue(ctx, sampleMessage("retrying", "post", base)))
		must(t, s.MarkFailed(ctx, "retrying", base.Add(time.Hour), "busy"))
		for _, id := range []string{"parked", "parked-sent"} {
			must(t, s.Enqueue(ctx, sampleMessage(id, "post", base)))
			must(t, s.MarkFailed(ctx, id, base.Add(storage.ParkFor), "address unknown"))
		}
		must(t, s.MarkSent(ctx, "parked-sent", base))
		parked, err := s.ListParked(ctx, base, 10)
		must(t, err)
		counts, err := s.CountOutbox(ctx, base)
		must(t, err)
		if want := (storage.OutboxCounts{Backlog: 2, Parked: 1}); counts != want {
			t.Fatalf("counts = %+v, want %+v (one due, one retrying, one parked, one sent)", counts, want)
		}
		if len(parked) != 1 || parked[0].ID != "parked" || parked[0].Attempts != 1 || parked[0].LastError != "address unknown" {
			t.Fatalf("parked = %+v, want only the unsent parked message", parked)
		}
		m, err := s.Requeue(ctx, "parked", base)
		must(t, err)
		if m.ID != "parked" || m.FiscalNumber == "" || m.Attempts != 0 {
			t.Fatalf("requeued = %+v", m)
		}
		if got, _ := s.ListParked(ctx, base, 10); len(got) != 0 {
			t.Fatalf("still parked after requeue: %+v", got)
		}
		got, err := s.ClaimDue(ctx, "post", base, 10, time.Minute)
		must(t, err)
		if len(got) != 2 || got[1].ID != "parked" || got[1].Attempts != 0 || got[1].LastError != "address unknown" {
			t.Fatalf("claimed after requeue = %+v, want due and parked (attempts 0, last error kept)", got)
		}
		for _, id := range []string{"parked-sent", "nope"} {
			_, err := s.Requeue(ctx, id, base)
			wantErr(t, id, err, storage.ErrNotFound)
		}
	}},
	{"outbox concurrent claimers", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		const n = 30
		for i := range n {
			must(t, s.Enqueue(ctx, sampleMessage(id("m", i), "email", base)))
		}
		claimed := make([][]storage.Message, 4)
		errs := race(4, func(i int) error {
			var err error
			claimed[i], err = s.ClaimDue(ctx, "email", base.Add(time.Minute), n, time.Minute)
			return err
		})
		noErrors(t, "claim", errs)
		seen := map[string]bool{}
		for _, c := range claimed {
			for _, m := range c {
				if seen[m.ID] {
					t.Fatalf("message %s claimed twice", m.ID)
				}
				seen[m.ID] = true
			}
		}
		if len(seen) != n {
			t.Fatalf("claimed %d of %d", len(seen), n)
		}
	}},
	{"one-time codes", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		c := storage.OneTimeCode{Hash: "h1", Purpose: "recovery", FiscalNumber: "CF", ExpiresAt: base.Add(15 * time.Minute), CreatedAt: base}
		must(t, s.CreateCode(ctx, c))
		wantErr(t, "duplicate", s.CreateCode(ctx, c), storage.ErrConflict)
		_, err := s.ConsumeCode(ctx, "h1", "change", base)
		wantErr(t, "wrong purpose", err, storage.ErrNotFound)
		must(t, s.CreateCode(ctx, storage.OneTimeCode{Hash: "h2", Purpose: "recovery", ExpiresAt: base.Add(time.Minute)}))
		_, err = s.ConsumeCode(ctx, "h2", "recovery", base.Add(time.Minute))
		wantErr(t, "expired", err, storage.ErrNotFound)
		must(t, s.CreateCode(ctx, storage.OneTimeCode{Hash: "h3", Purpose: "recovery", FiscalNumber: "CF", ExpiresAt: base.Add(time.Hour)}))
		errs := race(8, func(int) error { _, err := s.ConsumeCode(ctx, "h3", "recovery", base); return err })
		exactlyOne(t, "concurrent consume", errs, storage.ErrNotFound)
		_, err = s.ConsumeCode(ctx, "h3", "recovery", base)
		wantErr(t, "consumed", err, storage.ErrNotFound)
	}},
	{"conversions", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		for i := range 3 {
			must(t, s.CreateConversion(ctx, storage.Conversion{ID: id("c", i), FiscalNumber: "CF", Form: []byte("form"), FormType: "application/pdf",
				Document: []byte("doc"), DocumentType: "image/png", Status: storage.ConversionPending, CreatedAt: base.Add(time.Duration(i) * time.Minute)}))
		}
		wantErr(t, "duplicate", s.CreateConversion(ctx, storage.Conversion{ID: "c-000", Status: storage.ConversionPending}), storage.ErrConflict)
		got, err := s.GetConversion(ctx, "c-001")
		must(t, err)
		if string(got.Form) != "form" || string(got.Document) != "doc" {
			t.Fatalf("documents: %+v", got)
		}
		must(t, s.UpdateConversion(ctx, "c-000", func(c storage.Conversion) (storage.Conversion, error) {
			c.Status, c.ReviewedBy, c.ReviewedAt = storage.ConversionApproved, "op-2", base.Add(time.Hour)
			return c, nil
		}))
		list, err := s.ListConversions(ctx, storage.ConversionPending)
		must(t, err)
		if len(list) != 2 || list[0].ID != "c-001" || list[0].Form != nil || list[0].Document != nil {
			t.Fatalf("pending queue: %+v", list)
		}
		done, _ := s.ListConversions(ctx, storage.ConversionApproved)
		if len(done) != 1 || done[0].ReviewedBy != "op-2" {
			t.Fatalf("approved: %+v", done)
		}
		_, err = s.GetConversion(ctx, "nope")
		wantErr(t, "missing", err, storage.ErrNotFound)
		wantErr(t, "missing", s.UpdateConversion(ctx, "nope", func(c storage.Conversion) (storage.Conversion, error) { return c, nil }), storage.ErrNotFound)
	}},
	{"event and messages share a transaction", func(t *testing.T, s storage.PINStore) {
		ctx := context.Background()
		a := sampleAccount("RSSMRA80A01H501U")
		must(t, s.CreatePINAccount(ctx, a))
		for _, commit := range []bool{false, true} {
			tx, err := s.BeginTx(ctx)
			must(t, err)
			must(t, s.UpdatePINAccount(tx, a.FiscalNumber, func(old storage.PINAccount) (storage.PINAccount, error) {
				old.Dispositivo = false
				return old, nil
			}))
			must(t, s.Enqueue(tx, sampleMessage(fmt.Sprint("tx-", commit), "email", base)))
			must(t, s.AppendAudit(tx, storage.AuditEvent{FiscalNumber: a.FiscalNumber, Event: "converted"}))
			if commit {
				must(t, s.Commit(tx))
			} else {
				must(t, s.Rollback(tx))
			}
			got, _ := s.GetPINAccount(ctx, a.FiscalNumber)
			msgs, _ := s.ListMessages(ctx, 10)
			events, _ := s.ListAudit(ctx, a.FiscalNumber)
			if changed := !got.Dispositivo; changed != commit || (len(msgs) == 1) != commit || (len(events) == 1) != commit {
				t.Fatalf("commit=%v: account changed %v, %d messages, %d events", commit, changed, len(msgs), len(events))
			}
		}
	}},
}
