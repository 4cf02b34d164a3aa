package cns

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"strings"
	"testing"

	"github.com/ponte-id/ponte/internal/codicefiscale"
)

func subject(cn, serial string, extra ...pkix.AttributeTypeAndValue) pkix.Name {
	n := pkix.Name{CommonName: cn, SerialNumber: serial}
	// What x509.ParseCertificate fills: every attribute in Names.
	n.Names = append(n.Names, extra...)
	return n
}

// withCheck completes the first 15 characters of a codice fiscale with its
// check character.
func withCheck(first15 string) string {
	c, err := codicefiscale.CheckChar(first15)
	if err != nil {
		panic(err)
	}
	return first15 + string(c)
}

func TestParseSubject(t *testing.T) {
	const cf, other = "RSSMRA80A01H501U", "BNCLRA90D55F205C"
	// The last digit of RSSMRA80A01H501 turned into its omocodia letter, with
	// its own check character: a different, valid code.
	omocodic := withCheck("RSSMRA80A01H50M")
	sn := pkix.AttributeTypeAndValue{Type: oidSurname, Value: "ROSSI"}
	gn := pkix.AttributeTypeAndValue{Type: oidGivenName, Value: "MARIO"}
	for _, tc := range []struct {
		name     string
		subj     pkix.Name
		fallback bool
		want     holder
		wantErr  error
	}{
		{name: "TS-CNS", subj: subject(cf+"/8038000000000123.Gk6VbJ6bJhBoAh2iyT2wg49GeHI=", "", sn, gn),
			want: holder{FiscalNumber: cf, CardID: "8038000000000123", GivenName: "MARIO", FamilyName: "ROSSI"}},
		{name: "hash with slash and no padding", subj: subject(cf+"/1234.ab/c+d", ""), want: holder{FiscalNumber: cf, CardID: "1234"}},
		{name: "omocodic kept as written", subj: subject(omocodic+"/1.h", ""), want: holder{FiscalNumber: omocodic, CardID: "1"}},
		{name: "serialNumber agrees (TINIT-)", subj: subject(cf+"/1.h", "TINIT-"+cf), want: holder{FiscalNumber: cf, CardID: "1"}},
		{name: "serialNumber agrees (IT:)", subj: subject(cf+"/1.h", "IT:"+cf), want: holder{FiscalNumber: cf, CardID: "1"}},
		{name: "serialNumber of another kind ignored", subj: subject(cf+"/1.h", "12345678"), want: holder{FiscalNumber: cf, CardID: "1"}},
		{name: "fallback to serialNumber", subj: subject("MARIO ROSSI", "TINIT-"+cf), fallback: true, want: holder{FiscalNumber: cf}},

		{name: "serialNumber disagrees", subj: subject(cf+"/1.h", "TINIT-"+other), wantErr: errMismatch},
		{name: "serialNumber is a bad code", subj: subject(cf+"/1.h", "TINIT-RSSMRA80A01H501"), wantErr: errMismatch},
		{name: "no fallback", subj: subject("MARIO ROSSI", "TINIT-"+cf), wantErr: errCNForm},
		{name: "fallback to a bad code", subj: subject("MARIO ROSSI", "TINIT-RSSMRA80A01H501A"), fallback: true, wantErr: errFiscalNumber},
		{name: "fallback without serialNumber", subj: subject("MARIO ROSSI", ""), fallback: true, wantErr: errCNForm},
		{name: "CNS-shaped CN with a bad code never falls back", subj: subject("RSSMRA80A01H501A/1.h", "TINIT-"+cf), fallback: true, wantErr: errFiscalNumber},
		{name: "lower case never normalised", subj: subject(strings.ToLower(cf)+"/1.h", ""), wantErr: errFiscalNumber},
		{name: "lower-case serialNumber never normalised", subj: subject("MARIO ROSSI", "TINIT-"+strings.ToLower(cf)), fallback: true, wantErr: errFiscalNumber},
		{name: "a woman's day and 29 February", subj: subject(withCheck("BNCLRA90B69F205")+"/1.h", ""), want: holder{FiscalNumber: withCheck("BNCLRA90B69F205"), CardID: "1"}},
		{name: "no card id", subj: subject(cf+"/.h", ""), wantErr: errCNForm},
		{name: "no hash", subj: subject(cf+"/1.", ""), wantErr: errCNForm},
		{name: "no dot", subj: subject(cf+"/1", ""), wantErr: errCNForm},
		{name: "no slash", subj: subject(cf, ""), wantErr: errCNForm},
		{name: "space in the card id", subj: subject(cf+"/1 2.h", ""), wantErr: errCNForm},
		{name: "too much padding", subj: subject(cf+"/1.h===", ""), wantErr: errCNForm},
		{name: "only padding", subj: subject(cf+"/1.==", ""), wantErr: errCNForm},
		{name: "short code", subj: subject("RSSMRA80A01H501/1.h", ""), wantErr: errCNForm},
		{name: "empty", subj: subject("", ""), wantErr: errCNForm},
		{name: "too long", subj: subject(cf+"/1."+strings.Repeat("h", maxSubjectField), ""), wantErr: errCNForm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSubject(tc.subj, tc.fallback)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("holder %+v, want %+v", got, tc.want)
			}
		})
	}
}

// FuzzParseSubject: whatever the subject says, the parser never panics,
// and a holder it returns has a valid codice fiscale, as written in the CN
// or the serialNumber, and names of bounded length.
func FuzzParseSubject(f *testing.F) {
	f.Add("RSSMRA80A01H501U/8038000000000123.Gk6VbJ6bJhBoAh2iyT2wg49GeHI=", "", "ROSSI", true)
	f.Add("RSSMRA80A01H501U/1.h", "TINIT-RSSMRA80A01H501U", "", false)
	f.Add("MARIO ROSSI", "IT:BNCLRA90D55F205C", "BIANCHI", true)
	f.Add("RSSMRA80A01H50MU/1.h==", "TINIT-", "", false)
	f.Add("/.", "IT:", "\x00", true)
	f.Fuzz(func(t *testing.T, cn, serial, surname string, fallback bool) {
		h, err := parseSubject(subject(cn, serial, pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{2, 5, 4, 4}, Value: surname}), fallback)
		if err != nil {
			if h != (holder{}) {
				t.Fatalf("an error (%v) and a holder", err)
			}
			return
		}
		if !codicefiscale.Valid(h.FiscalNumber) {
			t.Fatalf("accepted %q", h.FiscalNumber)
		}
		if !strings.HasPrefix(cn, h.FiscalNumber+"/") && !strings.HasSuffix(serial, h.FiscalNumber) {
			t.Fatalf("%q is neither the CN's nor the serialNumber's", h.FiscalNumber)
		}
		if len(h.FamilyName) > maxSubjectField || len(h.CardID) > maxSubjectField {
			t.Fatal("unbounded field")
		}
	})
}
