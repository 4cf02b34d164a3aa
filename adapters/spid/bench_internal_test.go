package spid

import (
	"testing"
	"time"

	"github.com/ponte-id/ponte/adapters/spid/testidp"
)

// BenchmarkVerifyResponse is the CPU cost of checking one good response:
// Ponte's own layer (parse, both signatures, every rule) and crewjam's.
func BenchmarkVerifyResponse(b *testing.B) {
	v, st, p, tidp := fuzzFixture(b)
	raw, err := tidp.Build(testidp.Response{RequestID: st.ID, User: testidp.User{FiscalNumber: "RSSMRA80A01H501U", GivenName: "Mario", FamilyName: "Rossi"}})
	if err != nil {
		b.Fatal(err)
	}
	a := &authenticator{entityID: v.EntityID, clock: clockOf(time.Now)}
	a.kp = Keypair{Key: tidp.Keypair().Key, Cert: tidp.Keypair().Cert}
	b.Run("ponte", func(b *testing.B) {
		for b.Loop() {
			root, err := parseXML(raw)
			if err == nil {
				_, err = v.validate(root, st, p, time.Now())
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
