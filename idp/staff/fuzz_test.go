package staff_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ponte-id/ponte/idp/staff"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// FuzzAuthenticate: whatever bearer value arrives, only the token issued
// authenticates; anything else is ErrUnauthenticated, never a panic or
// another error.
func FuzzAuthenticate(f *testing.F) {
	store := storagetest.SQLite(f)
	svc, _ := newService(f, store)
	rec, token, err := svc.CreateToken(f.Context(), staff.CLI, staff.TokenSpec{Name: "f", Roles: []string{"auditor"}, TTL: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", "pt_", token, token[:len(token)-1], "pt_" + rec.ID + "_", "pt_" + rec.ID, "pt_" + rec.ID + "_\x00", "Bearer " + token} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := svc.Authenticate(t.Context(), s)
		switch {
		case s == token:
			if err != nil || p.ID != "token:"+rec.ID {
				t.Fatalf("the issued token: %+v %v", p, err)
			}
		case !errors.Is(err, staff.ErrUnauthenticated):
			t.Fatalf("%q: %+v %v", s, p, err)
		}
	})
}
