package storagetest

import (
	"testing"
	"time"

	"github.com/ponte-id/ponte/storage"
)

func sampleSubject(id, fiscal string) storage.Subject {
	return storage.Subject{
		ID:           id,
		FiscalNumber: fiscal,
		GivenName:    "Mario",
		FamilyName:   "Rossi",
		Birthdate:    "1980-01-31",
		Gender:       "M",
		Email:        "mario.rossi@example.it",
		PhoneNumber:  "+393331234567",
		CreatedAt:    base,
		UpdatedAt:    base,
	}
}

var subjectTests = []test{
	{"LinkCreates", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		want := sampleSubject("sub-1", "RSSMRA80A31H501U")
		got, err := s.LinkSubject(ctx, want)
		must(t, err)
		same(t, "LinkSubject", got, want)
		byID, err := s.GetSubject(ctx, "sub-1")
		must(t, err)
		same(t, "GetSubject", byID, want)
		byCF, err := s.GetSubjectByFiscalNumber(ctx, "RSSMRA80A31H501U")
		must(t, err)
		same(t, "GetSubjectByFiscalNumber", byCF, want)
	}},
	{"LinkExisting", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		orig := sampleSubject("sub-1", "RSSMRA80A31H501U")
		_, err := s.LinkSubject(ctx, orig)
		must(t, err)
		later := base.Add(time.Hour)
		got, err := s.LinkSubject(ctx, storage.Subject{
			ID:           "sub-other",
			FiscalNumber: "RSSMRA80A31H501U",
			Email:        "new@example.it",
			UpdatedAt:    later,
		})
		must(t, err)
		want := orig
		want.Email = "new@example.it"
		want.UpdatedAt = later
		same(t, "LinkSubject of a known fiscal number", got, want)
		stored, err := s.GetSubject(ctx, "sub-1")
		must(t, err)
		same(t, "GetSubject after relink", stored, want)
		if _, err := s.GetSubject(ctx, "sub-other"); err == nil {
			t.Error("relink created a second subject")
		}
	}},
	{"LinkIDTaken", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		_, err := s.LinkSubject(ctx, sampleSubject("sub-1", "RSSMRA80A31H501U"))
		must(t, err)
		_, err = s.LinkSubject(ctx, sampleSubject("sub-1", "VRDGPP70B02F205X"))
		wantErr(t, "LinkSubject with a taken ID", err, storage.ErrConflict)
	}},
	{"LinkEmptyFiscalNumber", func(t *testing.T, s storage.Store) {
		if _, err := s.LinkSubject(t.Context(), sampleSubject("sub-1", "")); err == nil {
			t.Fatal("LinkSubject accepted an empty fiscal number")
		}
	}},
	{"GetMissing", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		_, err := s.GetSubject(ctx, "nope")
		wantErr(t, "GetSubject", err, storage.ErrNotFound)
		_, err = s.GetSubjectByFiscalNumber(ctx, "NOPE")
		wantErr(t, "GetSubjectByFiscalNumber", err, storage.ErrNotFound)
	}},
	{"LinkConcurrent", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		const n = 8
		got := make([]storage.Subject, n)
		errs := race(n, func(i int) error {
			var err error
			got[i], err = s.LinkSubject(ctx, sampleSubject(id("sub", i), "RSSMRA80A31H501U"))
			return err
		})
		noErrors(t, "LinkSubject", errs)
		stored, err := s.GetSubjectByFiscalNumber(ctx, "RSSMRA80A31H501U")
		must(t, err)
		for i, g := range got {
			if g.ID != stored.ID {
				t.Errorf("call %d linked to %q, stored subject is %q", i, g.ID, stored.ID)
			}
		}
	}},
}
