package idp_test

import (
	"math/rand/v2"
	"testing"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/codicefiscale"
)

// TestFiscalNumberShape: the seam's shape of a codice fiscale, which it keeps
// to itself to import the standard library only, is codicefiscale.HasShape's:
// the same answer on real codes, omocodic ones and random mutations of them.
func TestFiscalNumberShape(t *testing.T) {
	seeds := []string{"RSSMRA80A01H501U", "BNCLRA90D55F205C", "RSSMRA80A01H50RE", "GDASDV00A01H501J", "rssmra80a01h501u", "", "RSSMRA80A01H501"}
	const alphabet = "ABCDEHLMPRSTUVXYZ0123456789LMNPQRSTUVaz -"
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(s string) {
		id := idp.Identity{FiscalNumber: s, Level: idp.LevelConsultazione, Method: idp.MethodPIN}
		if seam, shared := id.Validate() == nil, codicefiscale.HasShape(s); seam != shared {
			t.Fatalf("%q: the seam says %v, codicefiscale.HasShape %v", s, seam, shared)
		}
	}
	for _, s := range seeds {
		check(s)
		for range 20000 {
			b := []byte(s)
			if len(b) == 0 {
				break
			}
			for range 1 + rng.IntN(2) {
				b[rng.IntN(len(b))] = alphabet[rng.IntN(len(alphabet))]
			}
			check(string(b))
		}
	}
}
