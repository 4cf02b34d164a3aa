package datakey_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ponte-id/ponte/internal/datakey"
	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// key returns a master key of 32 bytes b.
func key(b byte) []byte { return bytes.Repeat([]byte{b}, seal.KeySize) }

func fresh(v bool) datakey.Fresh {
	return func(context.Context) (bool, error) { return v, nil }
}

// derived is what a box derives for a fixed label, to compare data keys.
func derived(b *seal.Box) []byte { return b.Derive("client-secret", 32) }

// dsn returns a fresh database of the backend, for several stores (nodes) to open.
func dsn(t *testing.T, backend string) string {
	if backend == "postgres" {
		return storagetest.PostgresDSN(t)
	}
	return filepath.Join(t.TempDir(), "ponte.db")
}

func forEachBackend(t *testing.T, fn func(t *testing.T, backend string)) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.Name)
		})
	}
}

func mustOpen(t *testing.T, s storage.MasterKeys, k []byte) datakey.Opened {
	t.Helper()
	o, err := datakey.Open(t.Context(), s, k, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return o
}

func TestFirstStart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		cases := []struct {
			name  string
			fresh datakey.Fresh
			// masterIsDataKey: an existing deployment keeps its master key as the data key.
			masterIsDataKey bool
		}{
			{"existing deployment", fresh(false), true},
			{"no fresh check", nil, true},
			{"new database", fresh(true), false},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := storagetest.OpenMigrated(t, dsn(t, backend))
				o, err := datakey.Open(t.Context(), s, key(1), tc.fresh)
				if err != nil {
					t.Fatal(err)
				}
				if !o.Created {
					t.Error("first Open did not report the wrapping created")
				}
				master, _ := seal.New(key(1))
				if got := bytes.Equal(derived(o.Box), derived(master)); got != tc.masterIsDataKey {
					t.Errorf("data key is the master key: %v, want %v", got, tc.masterIsDataKey)
				}
				fp, _ := datakey.Fingerprint(key(1))
				if o.Fingerprint != fp {
					t.Errorf("Fingerprint %s, want %s", o.Fingerprint, fp)
				}
				again := mustOpen(t, s, key(1))
				if again.Created || again.DataKeyID != o.DataKeyID || !bytes.Equal(derived(again.Box), derived(o.Box)) {
					t.Errorf("second Open = %+v, want the first data key %s, not created", again, o.DataKeyID)
				}
				sealed, err := o.Box.Seal([]byte("secret"), []byte("ad"))
				if err != nil {
					t.Fatal(err)
				}
				if got, err := again.Box.Open(sealed, []byte("ad")); err != nil || string(got) != "secret" {
					t.Errorf("reopened data key opens %q, %v", got, err)
				}
			})
		}
	})
}

// TestFirstStartRace starts nodes at once on a new database, each with its
// own store and (fresh) its own random data key: one wins, all use its key.
func TestFirstStartRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		const nodes = 6
		db := dsn(t, backend)
		stores := make([]storage.MasterKeys, nodes)
		for i := range stores {
			stores[i] = storagetest.OpenMigrated(t, db)
		}
		opened := make([]datakey.Opened, nodes)
		errs := make([]error, nodes)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range nodes {
			wg.Go(func() {
				<-start
				opened[i], errs[i] = datakey.Open(t.Context(), stores[i], key(7), fresh(true))
			})
		}
		close(start)
		wg.Wait()
		created := 0
		for i := range nodes {
			if errs[i] != nil {
				t.Fatalf("node %d: %v", i, errs[i])
			}
			if opened[i].Created {
				created++
			}
			if opened[i].DataKeyID != opened[0].DataKeyID || !bytes.Equal(derived(opened[i].Box), derived(opened[0].Box)) {
				t.Errorf("node %d has data key %s, node 0 %s", i, opened[i].DataKeyID, opened[0].DataKeyID)
			}
		}
		if created != 1 {
			t.Errorf("%d nodes stored the first wrapping, want 1", created)
		}
		wraps, err := stores[0].ListDataKeyWraps(t.Context())
		if err != nil || len(wraps) != 1 {
			t.Errorf("wrappings after the race: %d, %v; want 1", len(wraps), err)
		}
	})
}

func TestRotation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		ctx := t.Context()
		s := storagetest.OpenMigrated(t, dsn(t, backend))
		old, next, stranger := key(1), key(2), key(3)
		first := mustOpen(t, s, old)
		fpNext, _ := datakey.Fingerprint(next)

		steps := []struct {
			name string
			do   func() error
			want error // nil for success
		}{
			{"new key equal to the old", func() error { _, err := datakey.AddMaster(ctx, s, old, old); return err }, datakey.ErrSameKey},
			{"current key unknown", func() error { _, err := datakey.AddMaster(ctx, s, stranger, next); return err }, datakey.ErrUnknownMasterKey},
			{"add the new key", func() error {
				w, err := datakey.AddMaster(ctx, s, old, next)
				if err == nil && (w.Fingerprint != fpNext || w.DataKeyID != first.DataKeyID) {
					return errors.New("the new wrapping names another key")
				}
				return err
			}, nil},
			{"add it again", func() error { _, err := datakey.AddMaster(ctx, s, old, next); return err }, datakey.ErrAlreadyWraps},
			{"old key opens during the rotation", func() error { return sameDataKey(ctx, s, old, first) }, nil},
			{"new key opens the same data key", func() error { return sameDataKey(ctx, s, next, first) }, nil},
			{"unknown key refused", func() error { return sameDataKey(ctx, s, stranger, first) }, datakey.ErrUnknownMasterKey},
			{"retire with an unknown key", func() error { _, err := datakey.Retire(ctx, s, stranger); return err }, datakey.ErrUnknownMasterKey},
			{"old key still opens after a refused retire", func() error { return sameDataKey(ctx, s, old, first) }, nil},
			{"retire with the new key", func() error {
				removed, err := datakey.Retire(ctx, s, next)
				if err == nil && (len(removed) != 1 || removed[0].Fingerprint != first.Fingerprint) {
					return errors.New("retire removed the wrong wrappings")
				}
				return err
			}, nil},
			{"old key refused after retire", func() error { return sameDataKey(ctx, s, old, first) }, datakey.ErrUnknownMasterKey},
			{"new key opens after retire", func() error { return sameDataKey(ctx, s, next, first) }, nil},
			{"retire again removes nothing", func() error {
				removed, err := datakey.Retire(ctx, s, next)
				if err == nil && len(removed) != 0 {
					return errors.New("second retire removed wrappings")
				}
				return err
			}, nil},
		}
		for _, st := range steps {
			err := st.do()
			if st.want == nil && err != nil || st.want != nil && !errors.Is(err, st.want) {
				t.Fatalf("%s: error %v, want %v", st.name, err, st.want)
			}
		}
	})
}

// sameDataKey opens with k and checks it gets want's data key.
func sameDataKey(ctx context.Context, s storage.MasterKeys, k []byte, want datakey.Opened) error {
	o, err := datakey.Open(ctx, s, k, nil)
	if err != nil {
		return err
	}
	if o.Created || o.DataKeyID != want.DataKeyID || !bytes.Equal(derived(o.Box), derived(want.Box)) {
		return errors.New("opened another data key")
	}
	return nil
}

func TestBadMasterKey(t *testing.T) {
	s := storagetest.SQLite(t)
	if _, err := datakey.Open(t.Context(), s, []byte("short"), nil); err == nil {
		t.Error("Open accepted a 5-byte master key")
	}
	if _, err := datakey.AddMaster(t.Context(), s, key(1), []byte("short")); err == nil {
		t.Error("AddMaster accepted a 5-byte new master key")
	}
	if wraps, _ := s.ListDataKeyWraps(t.Context()); len(wraps) != 0 {
		t.Errorf("refused calls stored %d wrappings", len(wraps))
	}
}

func TestFingerprint(t *testing.T) {
	a, _ := datakey.Fingerprint(key(1))
	b, _ := datakey.Fingerprint(key(2))
	a2, _ := datakey.Fingerprint(key(1))
	if a == b || a != a2 || len(a) != 16 {
		t.Errorf("fingerprints %q %q %q: want 16 hex digits, stable, distinct per key", a, b, a2)
	}
}
