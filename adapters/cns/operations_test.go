package cns_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ponte-id/ponte/adapters/cns"
	"github.com/ponte-id/ponte/adapters/cns/cnstest"
	"github.com/ponte-id/ponte/idp"
)

// run runs the method's background work (reloads every 10ms) until the test ends.
func run(t *testing.T, m idp.Authenticator) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.(idp.Runner).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// eventually polls cond for up to 5 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not after 5s: %s", what)
		}
	}
}

// rewrite replaces a file's content and moves its modification time on, as
// an operator's deployment would.
func rewrite(t *testing.T, path string, data []byte) {
	t.Helper()
	writeFile(t, path, data)
	next := time.Now().Add(time.Duration(len(data)) * time.Millisecond)
	if err := os.Chtimes(path, next, next); err != nil {
		t.Fatal(err)
	}
}

// TestReloadCAs: a new CA bundle is in force without a restart; a broken
// one is refused, the previous stays, and the status says so.
func TestReloadCAs(t *testing.T) {
	p := newPKI(t)
	other := newPKI(t) // a CNS CA added later
	card := other.card()
	cb := newCardBench(t, p, func(c *cns.Config) { c.ReloadInterval = 10 * time.Millisecond })
	if resp, _ := cb.get(t, &card); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a card of a CA not yet configured: %d", resp.StatusCode)
	}
	run(t, cb.method)
	rewrite(t, p.caFile, append(cnstest.PEM(p.root.Cert), cnstest.PEM(other.root.Cert)...))
	eventually(t, "the new CA in force", func() bool { resp, _ := cb.get(t, &card); return resp.StatusCode == http.StatusSeeOther })

	rewrite(t, p.caFile, []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"))
	eventually(t, "the broken bundle reported", func() bool { st, _ := cns.StatusOf(cb.method); return st.ReloadError != "" })
	st, _ := cns.StatusOf(cb.method)
	if !st.Degraded || st.Counters.ReloadFailures == 0 || st.Counters.Reloads == 0 || len(st.CAs) != 2 {
		t.Fatalf("status after a broken bundle: %+v", st)
	}
	if resp, _ := cb.get(t, &card); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the previous bundle is no longer in force: %d", resp.StatusCode)
	}
	if !strings.Contains(cb.logs.text(), "previous ones stay in force") {
		t.Fatalf("the log does not tell:\n%s", cb.logs.text())
	}
}

// TestReloadCRLs: a CRL dropped into crl_dir is in force at the next
// reload: the card it lists is refused from then on.
func TestReloadCRLs(t *testing.T) {
	p := newPKI(t)
	card := p.card(func(c *cnstest.Card) { c.OCSPServer, c.CRLDistributionPoints = nil, nil })
	dir := t.TempDir()
	crl := filepath.Join(dir, "issuing.crl")
	writeFile(t, crl, must(p.issuing.CRL(cnstest.CRLOptions{})))
	cb := newCardBench(t, p, func(c *cns.Config) { c.ReloadInterval, c.Revocation.CRLDir = 10*time.Millisecond, dir })
	if resp, _ := cb.get(t, &card); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("before the revocation: %d", resp.StatusCode)
	}
	run(t, cb.method)
	rewrite(t, crl, must(p.issuing.CRL(cnstest.CRLOptions{Revoked: []cnstest.Revoked{{Serial: card.Leaf.SerialNumber}}})))
	eventually(t, "the new CRL in force", func() bool { resp, _ := cb.get(t, &card); return resp.StatusCode == http.StatusForbidden })
	if got := cb.logs.reasons(); got[len(got)-1] != string(cns.ReasonRevoked) {
		t.Fatalf("reasons %v", got)
	}
	st, _ := cns.StatusOf(cb.method)
	if len(st.CRLFiles) != 1 || st.CRLFiles[0].Entries != 1 || st.CRLFiles[0].Stale {
		t.Fatalf("CRL files in the status: %+v", st.CRLFiles)
	}
}

// TestOCSPCache: a second login with the same card is answered from the
// cache, and the cache holds no more than cache_size answers. Requests carry
// a nonce.
func TestOCSPCache(t *testing.T) {
	p := newPKI(t)
	cb := newCardBench(t, p, func(c *cns.Config) { ocspOnly(c); c.Revocation.CacheSize = 1 })
	a, b := p.card(), p.card()
	for i, c := range []*tls.Certificate{&a, &a, &b, &a} {
		if resp, _ := cb.get(t, c); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login %d: %d", i, resp.StatusCode)
		}
	}
	// a (asked), a (cached), b (asked, a forgotten), a (asked again).
	if got := p.ocsp.Requests(); got != 3 {
		t.Fatalf("%d OCSP requests, want 3", got)
	}
	if got := p.ocsp.Nonces(); got != 3 {
		t.Fatalf("%d requests with a nonce, want 3", got)
	}
	st, _ := cns.StatusOf(cb.method)
	if st.Counters.OCSPCacheHits != 1 || st.Counters.OCSPRequests != 3 || st.Counters.Logins != 4 {
		t.Fatalf("counters %+v", st.Counters)
	}
}

// TestOutageVisible: a responder that is down is left alone for
// retry_after (logins meanwhile are refused at once, fail-closed, without
// waiting on it), and the status and metrics show the outage; when it
// answers again, they show it back.
func TestOutageVisible(t *testing.T) {
	p := newPKI(t)
	cb := newCardBench(t, p, func(c *cns.Config) { ocspOnly(c); c.Revocation.RetryAfter = time.Hour })
	p.ocsp.Set(cnstest.Faults{Down: true})
	card := p.card()
	for range 2 {
		if resp, _ := cb.get(t, &card); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("responder down: %d", resp.StatusCode)
		}
	}
	if got := p.ocsp.Requests(); got != 1 {
		t.Fatalf("%d requests to a responder that is down, want 1 (then left alone)", got)
	}
	st := operatorStatus(t, cb.method)
	if !st.Degraded || len(st.Sources) != 1 || !st.Sources[0].Failing || st.Sources[0].DownUntil.IsZero() || st.Sources[0].Kind != "ocsp" {
		t.Fatalf("status during the outage: %+v", st)
	}
	metrics := operatorGet(t, cb.method, "/metrics")
	for _, want := range []string{
		`ponte_cns_refusals_total{reason="ocsp_unavailable"} 2`,
		`ponte_cns_source_up{kind="ocsp",url="` + p.rev.url("/ocsp") + `"} 0`,
		`ponte_cns_ocsp_requests_total{result="error"} 1`,
		`ponte_logins_total{result="refused"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, metrics)
		}
	}
	// /readyz shows the outage in its detail (issue 11), without failing the node.
	h := cb.method.(idp.HealthReporter).Health(context.Background())
	if !h.Degraded || len(h.Problems) != 1 || !strings.Contains(h.Problems[0], "ocsp "+p.rev.url("/ocsp")+" failing") {
		t.Fatalf("health during the outage: %+v", h)
	}
}

// TestOutageRecovers: after retry_after, the responder is asked again and
// the status is clear once it answers.
func TestOutageRecovers(t *testing.T) {
	p := newPKI(t)
	cb := newCardBench(t, p, func(c *cns.Config) { ocspOnly(c); c.Revocation.RetryAfter = 50 * time.Millisecond })
	p.ocsp.Set(cnstest.Faults{Down: true})
	card := p.card()
	if resp, _ := cb.get(t, &card); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("responder down: %d", resp.StatusCode)
	}
	p.ocsp.Set(cnstest.Faults{})
	time.Sleep(60 * time.Millisecond)
	if resp, _ := cb.get(t, &card); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("responder back: %d", resp.StatusCode)
	}
	if st := operatorStatus(t, cb.method); st.Degraded || st.Sources[0].Failing || st.Sources[0].LastOK.IsZero() {
		t.Fatalf("status after the outage: %+v", st)
	}
	if h := cb.method.(idp.HealthReporter).Health(context.Background()); h.Degraded || len(h.Problems) != 0 {
		t.Fatalf("health after the outage: %+v", h)
	}
}

func operatorGet(t *testing.T, m idp.Authenticator, path string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.(idp.OperatorAPI).OperatorHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d", path, rec.Code)
	}
	return rec.Body.String()
}

func operatorStatus(t *testing.T, m idp.Authenticator) cns.Status {
	t.Helper()
	var st cns.Status
	if err := json.Unmarshal([]byte(operatorGet(t, m, "/status")), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestCRLDownloads: a distribution point's CRL is downloaded once and
// answers the logins after it; the background work downloads it again when
// crl_refresh has passed, ahead of the logins.
func TestCRLDownloads(t *testing.T) {
	p := newPKI(t)
	cb := newCardBench(t, p, func(c *cns.Config) {
		crlOnly(c)
		c.ReloadInterval, c.Revocation.CRLRefresh = 10*time.Millisecond, 100*time.Millisecond
	})
	card := p.card()
	for range 3 {
		if resp, _ := cb.get(t, &card); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%d", resp.StatusCode)
		}
	}
	// The issuing CA's CRL (for the card) and the root's (for the issuing CA).
	if got := p.rev.crlGets.Load(); got != 2 {
		t.Fatalf("%d CRL downloads for three logins, want 2", got)
	}
	run(t, cb.method)
	p.publishCRLs(cnstest.CRLOptions{Revoked: []cnstest.Revoked{{Serial: card.Leaf.SerialNumber}}})
	eventually(t, "the CRLs downloaded again", func() bool { return p.rev.crlGets.Load() >= 4 })
	gets := p.rev.crlGets.Load()
	if resp, _ := cb.get(t, &card); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("after the refresh: %d, want the card revoked", resp.StatusCode)
	}
	if p.rev.crlGets.Load() > gets+2 {
		t.Fatal("the login downloaded what the background work had")
	}
}
