package storagetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/ponte-id/ponte/storage"
)

func sampleKey(id string, created time.Time) storage.SigningKey {
	return storage.SigningKey{
		ID:        id,
		Algorithm: "ES256",
		State:     storage.KeyActive,
		Sealed:    []byte("sealed:" + id),
		NotBefore: created.Add(time.Hour),
		CreatedAt: created,
	}
}

var keyTests = []test{
	{"CreateList", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		got, err := s.ListKeys(ctx)
		must(t, err)
		if len(got) != 0 {
			t.Fatalf("ListKeys on empty store = %d keys", len(got))
		}
		k1 := sampleKey("k1", base)
		k2 := sampleKey("k2", base.Add(time.Minute))
		k2.Algorithm = "RS256"
		k2.State = storage.KeyRetired
		k2.NotBefore = time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC)
		k2.NotAfter = base.Add(48 * time.Hour)
		must(t, s.CreateKey(ctx, k2))
		must(t, s.CreateKey(ctx, k1))
		got, err = s.ListKeys(ctx)
		must(t, err)
		same(t, "ListKeys", got, []storage.SigningKey{k1, k2})
	}},
	{"CreateDuplicate", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		must(t, s.CreateKey(ctx, sampleKey("k1", base)))
		wantErr(t, "CreateKey twice", s.CreateKey(ctx, sampleKey("k1", base)), storage.ErrConflict)
	}},
	{"Update", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		k := sampleKey("k1", base)
		must(t, s.CreateKey(ctx, k))
		must(t, s.UpdateKey(ctx, "k1", func(got storage.SigningKey) (storage.SigningKey, error) {
			same(t, "fn argument", got, k)
			got.State = storage.KeyRetired
			got.NotAfter = base.Add(24 * time.Hour)
			return got, nil
		}))
		keys, err := s.ListKeys(ctx)
		must(t, err)
		k.State = storage.KeyRetired
		k.NotAfter = base.Add(24 * time.Hour)
		same(t, "ListKeys after UpdateKey", keys, []storage.SigningKey{k})
	}},
	{"UpdateFnError", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		k := sampleKey("k1", base)
		must(t, s.CreateKey(ctx, k))
		err := s.UpdateKey(ctx, "k1", func(got storage.SigningKey) (storage.SigningKey, error) {
			got.State = storage.KeyRetired
			return got, errAbort
		})
		wantErr(t, "UpdateKey", err, errAbort)
		keys, err := s.ListKeys(ctx)
		must(t, err)
		same(t, "ListKeys after aborted update", keys, []storage.SigningKey{k})
	}},
	{"UpdateMissing", func(t *testing.T, s storage.Store) {
		err := s.UpdateKey(t.Context(), "nope", func(k storage.SigningKey) (storage.SigningKey, error) {
			t.Error("fn called for a missing key")
			return k, nil
		})
		wantErr(t, "UpdateKey", err, storage.ErrNotFound)
	}},
	{"UpdateConcurrent", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		k := sampleKey("k1", base)
		k.Sealed = nil
		must(t, s.CreateKey(ctx, k))
		const n = 8
		errs := race(n, func(i int) error {
			return s.UpdateKey(ctx, "k1", func(k storage.SigningKey) (storage.SigningKey, error) {
				k.Sealed = append(k.Sealed, fmt.Sprint(i%10)...)
				return k, nil
			})
		})
		noErrors(t, "UpdateKey", errs)
		keys, err := s.ListKeys(ctx)
		must(t, err)
		if len(keys) != 1 || len(keys[0].Sealed) != n {
			t.Fatalf("after %d concurrent appends: %+v (lost updates)", n, keys)
		}
	}},
	{"Delete", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		must(t, s.CreateKey(ctx, sampleKey("k1", base)))
		k2 := sampleKey("k2", base.Add(time.Second))
		must(t, s.CreateKey(ctx, k2))
		must(t, s.DeleteKey(ctx, "k1"))
		keys, err := s.ListKeys(ctx)
		must(t, err)
		same(t, "ListKeys after DeleteKey", keys, []storage.SigningKey{k2})
		wantErr(t, "DeleteKey again", s.DeleteKey(ctx, "k1"), storage.ErrNotFound)
	}},
}

var loginStateTests = []test{
	{"LoginStatePutTake", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		now := time.Now()
		st := storage.LoginState{Key: "spid:ID_1", Challenge: "ch-1", Data: []byte(`{"idp":"x"}`), ExpiresAt: now.Add(time.Minute)}
		must(t, s.PutLoginState(ctx, st))
		wantErr(t, "PutLoginState twice", s.PutLoginState(ctx, st), storage.ErrConflict)
		got, err := s.TakeLoginState(ctx, "spid:ID_1", now)
		must(t, err)
		if got.Challenge != "ch-1" || string(got.Data) != `{"idp":"x"}` || !got.ExpiresAt.Equal(micro(st.ExpiresAt)) {
			t.Fatalf("TakeLoginState = %+v", got)
		}
		_, err = s.TakeLoginState(ctx, "spid:ID_1", now)
		wantErr(t, "TakeLoginState twice", err, storage.ErrNotFound)
		must(t, s.PutLoginState(ctx, storage.LoginState{Key: "old", ExpiresAt: now.Add(-time.Second)}))
		_, err = s.TakeLoginState(ctx, "old", now)
		wantErr(t, "TakeLoginState of an expired state", err, storage.ErrNotFound)
	}},
	{"LoginStateTakeConcurrent", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		now := time.Now()
		for round := range 3 {
			key := id("state", round)
			must(t, s.PutLoginState(ctx, storage.LoginState{Key: key, Challenge: "c", ExpiresAt: now.Add(time.Minute)}))
			errs := race(16, func(int) error { _, err := s.TakeLoginState(ctx, key, now); return err })
			exactlyOne(t, "concurrent TakeLoginState", errs, storage.ErrNotFound)
		}
	}},
}

var assertionTests = []test{
	{"UseOnce", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		exp := time.Now().Add(time.Hour)
		must(t, s.UseOnce(ctx, "jti-1", exp))
		wantErr(t, "UseOnce replay", s.UseOnce(ctx, "jti-1", exp), storage.ErrConflict)
		wantErr(t, "UseOnce replay, later exp", s.UseOnce(ctx, "jti-1", exp.Add(time.Hour)), storage.ErrConflict)
		must(t, s.UseOnce(ctx, "jti-2", exp))
	}},
	{"UseOnceExpiredIsReplaced", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		must(t, s.UseOnce(ctx, "jti-1", time.Now().Add(-time.Minute)))
		must(t, s.UseOnce(ctx, "jti-1", time.Now().Add(time.Hour)))
		wantErr(t, "UseOnce replay after replacement", s.UseOnce(ctx, "jti-1", time.Now().Add(time.Hour)), storage.ErrConflict)
	}},
	{"UseOnceConcurrent", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		exp := time.Now().Add(time.Hour)
		for round := range 3 {
			jti := id("jti", round)
			errs := race(16, func(int) error { return s.UseOnce(ctx, jti, exp) })
			exactlyOne(t, "concurrent UseOnce", errs, storage.ErrConflict)
		}
	}},
	{"DeleteExpiredUses", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		now := time.Now()
		for jti, exp := range map[string]time.Time{
			"old": now.Add(-time.Hour), "edge": now.Add(-time.Microsecond),
			"now": now, "live": now.Add(time.Hour),
		} {
			must(t, s.UseOnce(ctx, jti, exp))
		}
		n, err := s.DeleteExpiredUses(ctx, now)
		must(t, err)
		if n != 2 {
			t.Errorf("DeleteExpiredUses = %d, want 2", n)
		}
		wantErr(t, "UseOnce of a live jti after sweep", s.UseOnce(ctx, "live", now.Add(time.Hour)), storage.ErrConflict)
		must(t, s.UseOnce(ctx, "old", now.Add(time.Hour)))
	}},
}
