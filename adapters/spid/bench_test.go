//go:build !fuzzing

package spid_test

import (
	"testing"
	"time"

	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// BenchmarkSPIDLogin is one whole SPID login after another, each in a new
// browser: the RP's authorization request (x/oauth2), Ponte's redirect to the
// in-process test identity provider with a signed AuthnRequest, its signed
// response posted to the ACS and checked by both layers, the resume, the
// code exchanged and the ID token verified (go-oidc). SQLite; it reports
// logins/s.
func BenchmarkSPIDLogin(b *testing.B) {
	s := newSite(b, storagetest.SQLite(b))
	r := s.rp()
	start := time.Now()
	n := 0
	for b.Loop() {
		claims := s.spidLogin(oidctest.NewBrowser(b), r)
		if claims["acr"] != "urn:inps:loa:dispositivo" {
			b.Fatalf("claims %v", claims)
		}
		n++
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "logins/s")
}
