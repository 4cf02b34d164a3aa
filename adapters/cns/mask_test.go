package cns_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ponte-id/ponte/adapters/cns"
	"github.com/ponte-id/ponte/adapters/cns/cnstest"
)

// TestLogsMaskTheFiscalNumber: what the CNS logs of a card (accepted,
// refused, forgiven by fail_open, read for a login another browser started)
// never holds its holder's whole codice fiscale, in any case or shape, even
// with a logger that masks nothing itself (STYLE rule 7): the adapter masks
// it, RSS************U as the PIN does, and a CN's card id stays.
func TestLogsMaskTheFiscalNumber(t *testing.T) {
	const badCheck = "RSSMRA80A01H501A"
	for _, tc := range []struct {
		name string
		card func(*cnstest.Card)
		cfg  func(*cns.Config)
		// setup runs with the card's serial before the visit.
		setup func(p *pki, c *tls.Certificate)
		// unbound reads the card for a login this browser did not start.
		unbound bool
		want    string
	}{
		{name: "accepted", want: "fiscal_number=RSS************U"},
		{name: "read for another browser's login", unbound: true, want: "fiscal_number=RSS************U"},
		{name: "revoked by OCSP", setup: func(p *pki, c *tls.Certificate) { p.ocsp.Revoke(c.Leaf.SerialNumber, time.Now().Add(-time.Minute)) },
			want: "RSS************U/"},
		{name: "revoked by CRL", cfg: crlOnly, setup: func(p *pki, c *tls.Certificate) {
			p.publishCRLs(cnstest.CRLOptions{Revoked: []cnstest.Revoked{{Serial: c.Leaf.SerialNumber}}})
		}, want: "RSS************U/"},
		{name: "OCSP unknown", setup: func(p *pki, _ *tls.Certificate) { p.ocsp.Set(cnstest.Faults{Unknown: true}) }, want: "RSS************U/"},
		{name: "no revocation source", card: func(c *cnstest.Card) { c.OCSPServer, c.CRLDistributionPoints = nil, nil }, want: "RSS************U/"},
		{name: "fail open", cfg: func(c *cns.Config) { ocspOnly(c); c.Revocation.FailOpen = true },
			setup: func(p *pki, _ *tls.Certificate) { p.ocsp.Set(cnstest.Faults{Down: true}) }, want: "fiscal_number=RSS************U"},
		{name: "wrong check character", card: func(c *cnstest.Card) { c.FiscalNumber = badCheck }, want: "subject=RSS************A/"},
		{name: "lower-case code in the CN", card: func(c *cnstest.Card) { c.CN = strings.ToLower(citizenCF) + "/1234567890.abc=" },
			want: "subject=rss************u/1234567890.abc="},
		{name: "a CN of another shape", card: func(c *cnstest.Card) { c.CN = "ROSSI MARIO " + citizenCF }, want: "subject=ROSSI MARIO RSS************U"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPKI(t)
			card := p.card(cardMods(tc.card)...)
			if tc.setup != nil {
				tc.setup(p, &card)
			}
			cb := newCardBench(t, p, tc.cfg)
			if tc.unbound {
				cb.completeElsewhere(t, &card)
			} else {
				cb.get(t, &card)
			}
			logged := cb.logs.text()
			for _, whole := range []string{citizenCF, strings.ToLower(citizenCF), badCheck} {
				if strings.Contains(logged, whole) {
					t.Fatalf("the log holds the codice fiscale %s:\n%s", whole, logged)
				}
			}
			if !strings.Contains(logged, tc.want) {
				t.Fatalf("the log does not say %q:\n%s", tc.want, logged)
			}
		})
	}
}

// completeElsewhere reads card for a login whose challenge ("stolen") this
// browser did not make, and follows the link back to the issuer's page.
func (cb *cardBench) completeElsewhere(t *testing.T, card *tls.Certificate) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cb.pool, Certificates: []tls.Certificate{*card}}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer c.CloseIdleConnections()
	resp, err := c.Get(cb.url + "/login/cns" + cns.PathCard + "?challenge=stolen")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	done, ok := strings.CutPrefix(resp.Header.Get("Location"), "http://issuer.test")
	if resp.StatusCode != http.StatusSeeOther || !ok {
		t.Fatalf("the card page: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = c.Get(cb.url + done)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("the completion in another browser: %d %.300s", resp.StatusCode, body)
	}
}
