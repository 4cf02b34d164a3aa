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
	{"LinkRanks", testLinkRanks},
	{"LinkRanksConcurrent", testLinkRanksConcurrent},
}

// The ranks of the claims in the rank tests, as the core ranks logins
// (idp.Identity.ClaimsRank): an ordinary PIN, a dispositivo PIN, SPID or CNS.
const (
	rankPIN         = 2
	rankDispositivo = 4
	rankSPID        = 5
)

// rankTests replay a login of one rank after another's: the claims a lower
// rank sends never overwrite a higher rank's, an equal rank refreshes what it
// sends, and a higher rank replaces every claim (none of the lower rank's
// survive under its rank).
var rankTests = []struct {
	name        string
	first, then storage.Subject
	want        storage.Subject
	changed     bool
}{
	{
		name:  "PINAfterSPID",
		first: storage.Subject{GivenName: "Mario", FamilyName: "Rossi", Birthdate: "1980-01-31", Gender: "M", Email: "mario@spid.example", ClaimsRank: rankSPID},
		then:  storage.Subject{GivenName: "Mallory", FamilyName: "Evil", Birthdate: "1999-09-09", Gender: "F", Email: "attacker@evil.example", PhoneNumber: "+5491199999999", ClaimsRank: rankPIN},
		want:  storage.Subject{GivenName: "Mario", FamilyName: "Rossi", Birthdate: "1980-01-31", Gender: "M", Email: "mario@spid.example", ClaimsRank: rankSPID},
	},
	{
		name:  "DispositivoPINAfterSPID",
		first: storage.Subject{GivenName: "Mario", FamilyName: "Rossi", Email: "mario@spid.example", ClaimsRank: rankSPID},
		then:  storage.Subject{GivenName: "Mario", FamilyName: "Rossi", Email: "other@example.it", PhoneNumber: "+393330000000", ClaimsRank: rankDispositivo},
		want:  storage.Subject{GivenName: "Mario", FamilyName: "Rossi", Email: "mario@spid.example", ClaimsRank: rankSPID},
	},
	{
		name:  "PINAfterDispositivoPIN",
		first: storage.Subject{GivenName: "Mario", FamilyName: "Rossi", PhoneNumber: "+393331234567", ClaimsRank: rankDispositivo},
		then:  storage.Subject{GivenName: "Mario", FamilyName: "Rossi", PhoneNumber: "+5491199999999", ClaimsRank: rankPIN},
		want:  storage.Subject{GivenName: "Mario", FamilyName: "Rossi", PhoneNumber: "+393331234567", ClaimsRank: rankDispositivo},
	},
	{
		name:    "SPIDAfterSPIDRefreshes",
		first:   storage.Subject{GivenName: "Mario", FamilyName: "Rossi", Email: "old@spid.example", PhoneNumber: "+393331234567", ClaimsRank: rankSPID},
		then:    storage.Subject{GivenName: "Mario", FamilyName: "Rossi", Email: "new@spid.example", ClaimsRank: rankSPID},
		want:    storage.Subject{GivenName: "Mario", FamilyName: "Rossi", Email: "new@spid.example", PhoneNumber: "+393331234567", ClaimsRank: rankSPID},
		changed: true,
	},
	{
		name:    "SPIDAfterPINReplaces",
		first:   storage.Subject{GivenName: "Mallory", FamilyName: "Evil", Email: "attacker@evil.example", PhoneNumber: "+5491199999999", ClaimsRank: rankPIN},
		then:    storage.Subject{GivenName: "Mario", FamilyName: "Rossi", Birthdate: "1980-01-31", ClaimsRank: rankSPID},
		want:    storage.Subject{GivenName: "Mario", FamilyName: "Rossi", Birthdate: "1980-01-31", ClaimsRank: rankSPID},
		changed: true,
	},
	{
		name:    "FirstRankedLoginOfAnOldSubject",
		first:   storage.Subject{GivenName: "Mario", FamilyName: "Rossi", Email: "mario@example.it"},
		then:    storage.Subject{GivenName: "Mario", FamilyName: "Rossi", ClaimsRank: rankPIN},
		want:    storage.Subject{GivenName: "Mario", FamilyName: "Rossi", ClaimsRank: rankPIN},
		changed: true,
	},
}

// testLinkRanks runs rankTests, each on its own citizen.
func testLinkRanks(t *testing.T, s storage.Store) {
	for i, tc := range rankTests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			cf := fiscalNumbers[i]
			first := tc.first
			first.ID, first.FiscalNumber, first.CreatedAt, first.UpdatedAt = id("rank", i), cf, base, base
			_, err := s.LinkSubject(ctx, first)
			must(t, err)
			then := tc.then
			then.ID, then.FiscalNumber, then.UpdatedAt = id("other", i), cf, base.Add(time.Hour)
			got, err := s.LinkSubject(ctx, then)
			must(t, err)
			want := tc.want
			want.ID, want.FiscalNumber, want.CreatedAt, want.UpdatedAt = first.ID, cf, base, base
			if tc.changed {
				want.UpdatedAt = then.UpdatedAt
			}
			same(t, "LinkSubject", got, want)
			stored, err := s.GetSubjectByFiscalNumber(ctx, cf)
			must(t, err)
			same(t, "stored subject", stored, want)
		})
	}
}

// testLinkRanksConcurrent races logins of an ordinary PIN with one SPID
// login: whatever the order, the SPID claims are the ones left.
func testLinkRanksConcurrent(t *testing.T, s storage.Store) {
	ctx := t.Context()
	cf := "RSSMRA80A31H501U"
	_, err := s.LinkSubject(ctx, storage.Subject{ID: "sub-1", FiscalNumber: cf, GivenName: "Mario", CreatedAt: base, UpdatedAt: base})
	must(t, err)
	spid := storage.Subject{ID: "sub-x", FiscalNumber: cf, GivenName: "Mario", FamilyName: "Rossi", Email: "mario@spid.example", ClaimsRank: rankSPID}
	const n = 8
	errs := race(n, func(i int) error {
		in := storage.Subject{ID: "sub-x", FiscalNumber: cf, GivenName: "Mallory", FamilyName: "Evil",
			Email: id("attacker", i) + "@evil.example", ClaimsRank: rankPIN}
		if i == n/2 {
			in = spid
		}
		_, err := s.LinkSubject(ctx, in)
		return err
	})
	noErrors(t, "LinkSubject", errs)
	got, err := s.GetSubject(ctx, "sub-1")
	must(t, err)
	if got.GivenName != "Mario" || got.FamilyName != "Rossi" || got.Email != "mario@spid.example" || got.ClaimsRank != rankSPID {
		t.Fatalf("after the race the claims are %+v, want the SPID login's", got)
	}
}

// fiscalNumbers are distinct codici fiscali, one per rank test.
var fiscalNumbers = []string{
	"RSSMRA80A31H501U", "VRDGPP70B02F205X", "BNCLRA85C41F205Z", "FRRLCU75D12L219W", "GLLMRC90E15H501Q", "CSTNNA82F50G273Y",
}
