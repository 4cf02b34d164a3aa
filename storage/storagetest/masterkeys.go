package storagetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/ponte-id/ponte/storage"
)

// RunMasterKeyTests runs the conformance suite of storage.MasterKeys: the
// wrappings listed oldest first, one per master key, all of one data key;
// the first-start race (of many first wrappings added at once, with one data
// key or several, exactly one wins); retiring every wrapping but one. open
// must return a fresh, empty, migrated store; it is called once per subtest.
func RunMasterKeyTests(t *testing.T, open func(t *testing.T) storage.MasterKeys) {
	for _, tc := range masterKeyTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, open(t))
		})
	}
}

func sampleWrap(fp, keyID string, created time.Time) storage.DataKeyWrap {
	return storage.DataKeyWrap{Fingerprint: fp, DataKeyID: keyID, Wrapped: []byte("wrapped:" + fp), CreatedAt: created}
}

var masterKeyTests = []struct {
	name string
	run  func(t *testing.T, s storage.MasterKeys)
}{
	{"AddList", func(t *testing.T, s storage.MasterKeys) {
		ctx := t.Context()
		got, err := s.ListDataKeyWraps(ctx)
		must(t, err)
		if len(got) != 0 {
			t.Fatalf("ListDataKeyWraps on an empty store = %+v", got)
		}
		w1 := sampleWrap("fp-old", "dk-1", base)
		w2 := sampleWrap("fp-new", "dk-1", base.Add(time.Minute))
		must(t, s.AddDataKeyWrap(ctx, w1))
		must(t, s.AddDataKeyWrap(ctx, w2))
		got, err = s.ListDataKeyWraps(ctx)
		must(t, err)
		same(t, "ListDataKeyWraps", got, []storage.DataKeyWrap{w1, w2})
	}},
	{"AddRefused", func(t *testing.T, s storage.MasterKeys) {
		ctx := t.Context()
		w := sampleWrap("fp-1", "dk-1", base)
		must(t, s.AddDataKeyWrap(ctx, w))
		cases := []struct {
			name string
			w    storage.DataKeyWrap
		}{
			{"same master key again", sampleWrap("fp-1", "dk-1", base.Add(time.Hour))},
			{"another data key", sampleWrap("fp-2", "dk-2", base.Add(time.Hour))},
			{"another data key under the same master key", sampleWrap("fp-1", "dk-2", base.Add(time.Hour))},
		}
		for _, tc := range cases {
			wantErr(t, tc.name, s.AddDataKeyWrap(ctx, tc.w), storage.ErrConflict)
		}
		got, err := s.ListDataKeyWraps(ctx)
		must(t, err)
		same(t, "ListDataKeyWraps after refused adds", got, []storage.DataKeyWrap{w})
	}},
	{"AddInvalid", func(t *testing.T, s storage.MasterKeys) {
		for _, w := range []storage.DataKeyWrap{
			{DataKeyID: "dk", Wrapped: []byte("x")},
			{Fingerprint: "fp", Wrapped: []byte("x")},
			{Fingerprint: "fp", DataKeyID: "dk"},
		} {
			if err := s.AddDataKeyWrap(t.Context(), w); err == nil {
				t.Errorf("AddDataKeyWrap(%+v) stored an incomplete wrapping", w)
			}
		}
	}},
	{"FirstStartRaceOneDataKey", func(t *testing.T, s storage.MasterKeys) {
		// Nodes with the same master key starting at once: one row.
		errs := race(8, func(int) error {
			return s.AddDataKeyWrap(t.Context(), sampleWrap("fp", "dk", base))
		})
		exactlyOne(t, "AddDataKeyWrap", errs, storage.ErrConflict)
		got, err := s.ListDataKeyWraps(t.Context())
		must(t, err)
		same(t, "ListDataKeyWraps", got, []storage.DataKeyWrap{sampleWrap("fp", "dk", base)})
	}},
	{"FirstStartRaceDataKeys", func(t *testing.T, s storage.MasterKeys) {
		// Nodes each proposing its own data key: one data key wins, and with it one wrapping.
		errs := race(8, func(i int) error {
			return s.AddDataKeyWrap(t.Context(), sampleWrap(fmt.Sprint("fp-", i), fmt.Sprint("dk-", i), base))
		})
		exactlyOne(t, "AddDataKeyWrap", errs, storage.ErrConflict)
		got, err := s.ListDataKeyWraps(t.Context())
		must(t, err)
		for i, err := range errs {
			if err == nil {
				same(t, "ListDataKeyWraps", got, []storage.DataKeyWrap{sampleWrap(fmt.Sprint("fp-", i), fmt.Sprint("dk-", i), base)})
			}
		}
	}},
	{"DeleteExcept", func(t *testing.T, s storage.MasterKeys) {
		ctx := t.Context()
		w1, w2, w3 := sampleWrap("fp-1", "dk", base), sampleWrap("fp-2", "dk", base.Add(time.Minute)), sampleWrap("fp-3", "dk", base.Add(2*time.Minute))
		for _, w := range []storage.DataKeyWrap{w1, w2, w3} {
			must(t, s.AddDataKeyWrap(ctx, w))
		}
		_, err := s.DeleteDataKeyWrapsExcept(ctx, "fp-none")
		wantErr(t, "DeleteDataKeyWrapsExcept of an unknown key", err, storage.ErrNotFound)
		got, err := s.ListDataKeyWraps(ctx)
		must(t, err)
		same(t, "ListDataKeyWraps after a refused delete", got, []storage.DataKeyWrap{w1, w2, w3})
		n, err := s.DeleteDataKeyWrapsExcept(ctx, "fp-2")
		must(t, err)
		if n != 2 {
			t.Errorf("DeleteDataKeyWrapsExcept deleted %d, want 2", n)
		}
		got, err = s.ListDataKeyWraps(ctx)
		must(t, err)
		same(t, "ListDataKeyWraps after delete", got, []storage.DataKeyWrap{w2})
		if n, err := s.DeleteDataKeyWrapsExcept(ctx, "fp-2"); err != nil || n != 0 {
			t.Errorf("DeleteDataKeyWrapsExcept again = %d, %v; want 0, nil", n, err)
		}
		// The data key stays: a retired master key's wrapping may come back.
		must(t, s.AddDataKeyWrap(ctx, w1))
		wantErr(t, "a wrapping of another data key after delete", s.AddDataKeyWrap(ctx, sampleWrap("fp-4", "dk-other", base)), storage.ErrConflict)
	}},
}
