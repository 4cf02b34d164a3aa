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

var assertionTests = []test{
	{"UseJTI", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		exp := time.Now().Add(time.Hour)
		must(t, s.UseJTI(ctx, "jti-1", exp))
		wantErr(t, "UseJTI replay", s.UseJTI(ctx, "jti-1", exp), storage.ErrConflict)
		wantErr(t, "UseJTI replay, later exp", s.UseJTI(ctx, "jti-1", exp.Add(time.Hour)), storage.ErrConflict)
		must(t, s.UseJTI(ctx, "jti-2", exp))
	}},
	{"UseJTIExpiredIsReplaced", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		must(t, s.UseJTI(ctx, "jti-1", time.Now().Add(-time.Minute)))
		must(t, s.UseJTI(ctx, "jti-1", time.Now().Add(time.Hour)))
		wantErr(t, "UseJTI replay after replacement", s.UseJTI(ctx, "jti-1", time.Now().Add(time.Hour)), storage.ErrConflict)
	}},
	{"UseJTIConcurrent", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		exp := time.Now().Add(time.Hour)
		for round := range 3 {
			jti := id("jti", round)
			errs := race(16, func(int) error { return s.UseJTI(ctx, jti, exp) })
			exactlyOne(t, "concurrent UseJTI", errs, storage.ErrConflict)
		}
	}},
	{"DeleteExpiredJTIs", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		now := time.Now()
		for jti, exp := range map[string]time.Time{
			"old": now.Add(-time.Hour), "edge": now.Add(-time.Microsecond),
			"now": now, "live": now.Add(time.Hour),
		} {
			must(t, s.UseJTI(ctx, jti, exp))
		}
		n, err := s.DeleteExpiredJTIs(ctx, now)
		must(t, err)
		if n != 2 {
			t.Errorf("DeleteExpiredJTIs = %d, want 2", n)
		}
		wantErr(t, "UseJTI of a live jti after sweep", s.UseJTI(ctx, "live", now.Add(time.Hour)), storage.ErrConflict)
		must(t, s.UseJTI(ctx, "old", now.Add(time.Hour)))
	}},
}
