package spid

import (
	"testing"

	"github.com/ponte-id/ponte/adapters/spid/testidp"
)

// BenchmarkVerifyResponse is the CPU cost of checking one good response:
// Ponte's own layer (parse, both signatures, every rule) and crewjam's.
func BenchmarkVerifyResponse(b *testing.B) {
	fx := fuzzFixture(b)
	v, st, p := fx.v, fx.st, fx.idp
	raw, err := fx.tidp.Build(testidp.Response{RequestID: st.ID, User: fuzzUser})
	if err != nil {
		b.Fatal(err)
	}
	a := &authenticator{entityID: v.EntityID, clock: v.Clock}
	a.kp = Keypair{Key: fx.tidp.Keypair().Key, Cert: fx.tidp.Keypair().Cert}
	b.Run("ponte", func(b *testing.B) {
		for b.Loop() {
			root, err := parseXML(raw)
			if err == nil {
				_, err = v.validate(root, st, p, fx.at)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("crewjam", func(b *testing.B) {
		for b.Loop() {
			if err := a.crewjamCheck(raw, st, p, v.ACS); err != nil {
				b.Fatal(err)
			}
		}
	})
}
