package cns

import (
	"bytes"
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ponte-id/ponte/adapters/cns/cnstest"
	"github.com/ponte-id/ponte/idp"
)

// BenchmarkVerify measures the card check alone, without TLS: chain to the
// CA bundle, key usages, policy, subject, and revocation by OCSP. cached:
// the answer from the cache. uncached-static: every check asks a responder
// on loopback that serves answers made beforehand (nonce off), so the CPU
// is Ponte's: the request, the HTTP exchange, parsing and the signature
// check. uncached-signing: a responder that signs each answer with the
// request's nonce, in this process (its signature counts too).
func BenchmarkVerify(b *testing.B) {
	for _, key := range []struct {
		name string
		key  cnstest.KeyType
	}{{"ECDSA", cnstest.ECDSA}, {"RSA-2048", cnstest.RSA}} {
		for _, mode := range []string{"cached", "uncached-static", "uncached-signing"} {
			b.Run(key.name+"/"+mode, func(b *testing.B) {
				v, chains := benchVerifier(b, key.key, mode)
				ctx := context.Background()
				if _, r := v.verify(ctx, chains[0]); r != nil {
					b.Fatal(r)
				}
				var ru0 syscall.Rusage
				_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
				b.ResetTimer()
				for i := range b.N {
					chain := chains[0]
					if mode != "cached" {
						chain = chains[(i+1)%2]
					}
					if _, r := v.verify(ctx, chain); r != nil {
						b.Fatal(r)
					}
				}
				b.StopTimer()
				var ru1 syscall.Rusage
				_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
				cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
			})
		}
	}
}

// benchVerifier builds a verifier for a root → issuing CA → two cards PKI
// whose responder works as mode says.
func benchVerifier(b *testing.B, key cnstest.KeyType, mode string) (*verifier, [][]*x509.Certificate) {
	root, _ := cnstest.NewRoot("Bench CNS root")
	issuing, _ := root.NewIntermediate("Bench CNS issuing CA", cnstest.CAOptions{})
	responder := cnstest.NewResponder(issuing)
	var mu sync.Mutex
	static := map[string][]byte{} // request → answer, for uncached-static
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mode != "uncached-static" {
			responder.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		answer, ok := static[string(body)]
		mu.Unlock()
		if !ok {
			rec := httptest.NewRecorder()
			responder.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)))
			answer = rec.Body.Bytes()
			mu.Lock()
			static[string(body)] = answer
			mu.Unlock()
		}
		_, _ = w.Write(answer)
	}))
	b.Cleanup(srv.Close)
	var chains [][]*x509.Certificate
	for range 2 {
		card, err := issuing.Issue(cnstest.Card{FiscalNumber: "RSSMRA80A01H501U", Key: key, OCSPServer: []string{srv.URL}})
		if err != nil {
			b.Fatal(err)
		}
		chain, _ := cnstest.Chain(card)
		chains = append(chains, chain)
	}
	caFile := filepath.Join(b.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, cnstest.PEM(root.Cert), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Enabled, cfg.CardURL, cfg.CAFile, cfg.Issuer = true, "https://carta.example.it", caFile, "https://login.example.it"
	cfg.Revocation.CRL = false
	cfg.Revocation.OCSPNonce = mode != "uncached-static"
	if mode != "cached" {
		cfg.Revocation.CacheSize = 1
	}
	a, err := New(cfg, Deps{})
	if err != nil {
		b.Fatal(err)
	}
	return a.(*authenticator).verifier, chains
}

var _ idp.Authenticator = (*authenticator)(nil)
