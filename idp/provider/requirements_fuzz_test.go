package provider

import (
	"testing"
)

// FuzzACRClaim: the claims parameter parser (outside input) never panics and
// only ever returns a level Ponte issues.
func FuzzACRClaim(f *testing.F) {
	for _, s := range []string{
		`{"id_token":{"acr":{"essential":true,"values":["urn:inps:loa:dispositivo"]}}}`,
		`{"userinfo":{"acr":{"value":"urn:inps:loa:consultazione"}}}`,
		`{"id_token":{"acr":null}}`, `{`, `[]`, `{"id_token":[]}`, `null`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		l, _, err := acrClaim(raw)
		if err == nil && l > 2 {
			t.Fatalf("level %d from %q", l, raw)
		}
	})
}
