package flow

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
)

// NewCardBrowser returns a browser for rp that holds a CNS card: it presents
// card to whichever TLS server asks for a client certificate (the card
// host), and trusts roots for the servers' own certificates.
func NewCardBrowser(rp *RP, card tls.Certificate, roots *x509.CertPool) *Browser {
	t := transport()
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &card, nil }}
	return newBrowser(rp, t)
}

// CNSLogin logs in with the card of browser b (NewCardBrowser): /authorize
// with idp_hint=cns → Ponte's link to the card host → the card page, where
// the TLS handshake presents the card → back to the issuer → the relying
// party's redirect with the code.
func (rp *RP) CNSLogin(ctx context.Context, b *Browser) (Login, error) {
	u, l := rp.start("cns")
	resp, body, err := b.do(ctx, http.MethodGet, u, nil)
	if err != nil {
		return l, err
	}
	l, err = rp.code(l, resp, body)
	var se *StatusError
	if errors.As(err, &se) {
		se.Step = "CNS card"
	}
	return l, err
}
