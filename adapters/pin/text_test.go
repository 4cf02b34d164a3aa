package pin

import (
	"strings"
	"testing"
	"time"

	"github.com/ponte-id/ponte/storage"
)

// TestTextComplete: every wording exists in both languages, and every field
// error the request's validation can name has a sentence in both.
func TestTextComplete(t *testing.T) {
	for key := range text["it"] {
		if text["en"][key] == "" {
			t.Errorf("%q has no English text", key)
		}
	}
	for key := range text["en"] {
		if text["it"][key] == "" {
			t.Errorf("%q has no Italian text", key)
		}
	}
	var empty Request
	bad := Request{FiscalNumber: "RSSMRA80A01H501U", Gender: "F", Birthdate: "1981-01-01", Residence: emptyAddressWithStreet(),
		Mobile: "1", Phone: "2", PreferredPhone: "3", PEC: "x", FirstHalfVia: "pigeon"}
	abroad := Request{ResidenceAbroad: true, FirstHalfVia: "sms"}
	pec := Request{FirstHalfVia: "pec"}
	seen := map[string]bool{}
	for _, r := range []Request{empty, bad, abroad, pec} {
		for _, online := range []bool{true, false} {
			for _, fe := range fieldErrorsOf(r.normalize().validate(before2021(), online)) {
				key := "e_" + fe.Field + "_" + fe.Problem
				seen[key] = true
				for _, loc := range []string{"it", "en"} {
					if text[loc][key] == "" {
						t.Errorf("%s: no %s sentence for %s (%s)", key, loc, fe.Field, fe.Reason)
					}
				}
			}
		}
	}
	for key := range text["it"] {
		if strings.HasPrefix(key, "e_") && key != "e_other" && !seen[key] {
			t.Logf("%s not produced by these cases", key)
		}
	}
	if len(seen) < 15 {
		t.Fatalf("only %d field errors produced: %v", len(seen), seen)
	}
}

func emptyAddressWithStreet() storage.Address { return storage.Address{Street: "Via Roma"} }

func before2021() time.Time { return time.Date(2020, 5, 4, 10, 0, 0, 0, time.UTC) }
