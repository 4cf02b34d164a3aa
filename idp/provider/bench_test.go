package provider_test

import (
	"testing"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// BenchmarkSSOCodeFlow measures one relying-party login for a browser that
// already has an SSO session: authorize → code → token (with ID token) →
// userinfo, over a real listener, on each storage backend.
func BenchmarkSSOCodeFlow(b *testing.B) {
	for _, be := range storagetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			e := newEnv(b, be.Open(b))
			r := e.NewRP(clients.Spec{})
			br := newBrowser(b)
			codeFlow(r, br, citizenCF, idp.LevelConsultazione)
			b.ResetTimer()
			for b.Loop() {
				verifier := oauth2.GenerateVerifier()
				resp, _ := br.Get(r.Conf.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(verifier)))
				loc := rpRedirect(resp)
				if loc == nil {
					b.Fatalf("no code: %d", resp.StatusCode)
				}
				tok, err := r.Conf.Exchange(r.Ctx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := r.Provider.UserInfo(r.Ctx(), oauth2.StaticTokenSource(tok)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "flows/s")
		})
	}
}
