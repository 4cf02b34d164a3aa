package spid

import (
	"testing"

	"github.com/ponte-id/ponte/internal/codicefiscale"
)

// TestSentCodesAreValid: identityOf refuses a codice fiscale that fails the
// full check, so every code the tests and the conformance tool send must pass
// it: the test identity provider's users here (mario and fuzzUser,
// RSSMRA80A01H501U; BNCLRA90D55F205C), and TINIT-GDASDV00A01H501J, the
// fiscalNumber of every response spid-sp-test (v1.2.17, responses/settings.py)
// crafts; were that to change, TestSPIDSPTest would see it refused.
func TestSentCodesAreValid(t *testing.T) {
	for _, cf := range []string{fuzzUser.FiscalNumber, "RSSMRA80A01H501U", "BNCLRA90D55F205C", "GDASDV00A01H501J"} {
		if !codicefiscale.Valid(cf) {
			t.Errorf("%s fails the check identityOf applies", cf)
		}
	}
}
