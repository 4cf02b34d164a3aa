package clientcert

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// errTooLong and errTooMany are the bounds every parser enforces.
var (
	errTooLong = fmt.Errorf("longer than %d bytes", MaxHeaderBytes)
	errTooMany = fmt.Errorf("more than %d certificates", MaxCertificates)
)

// parseDER parses certificates in order. ders must hold at most
// MaxCertificates entries.
func parseDER(ders [][]byte) ([]*x509.Certificate, error) {
	chain := make([]*x509.Certificate, 0, len(ders))
	for i, der := range ders {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", i+1, err)
		}
		chain = append(chain, c)
	}
	return chain, nil
}

// parseEscapedPEM decodes a URL-escaped PEM sequence of certificates, the
// form nginx's $ssl_client_escaped_cert and Envoy's Cert and Chain share.
// It unescapes with url.PathUnescape: QueryUnescape would turn the '+' of
// base64 into a space.
func parseEscapedPEM(s string) ([]*x509.Certificate, error) {
	text, err := url.PathUnescape(s)
	if err != nil {
		return nil, fmt.Errorf("URL escaping: %w", err)
	}
	ders, err := pemCertificates(text)
	if err != nil {
		return nil, err
	}
	return parseDER(ders)
}

// pemCertificates returns the DER of each CERTIFICATE block of text, in
// order. Only whitespace may stand between and around the blocks.
func pemCertificates(text string) ([][]byte, error) {
	var ders [][]byte
	rest := []byte(text)
	for {
		trimmed := strings.TrimLeft(string(rest), " \t\r\n")
		if trimmed == "" {
			break
		}
		if !strings.HasPrefix(trimmed, "-----BEGIN ") {
			return nil, errors.New("text outside a PEM block")
		}
		if len(ders) == MaxCertificates {
			return nil, errTooMany
		}
		var block *pem.Block
		block, rest = pem.Decode([]byte(trimmed))
		switch {
		case block == nil:
			return nil, errors.New("malformed PEM block")
		case block.Type != "CERTIFICATE":
			return nil, fmt.Errorf("PEM block %q, want CERTIFICATE", block.Type)
		case len(block.Headers) > 0:
			return nil, errors.New("PEM block with headers")
		}
		ders = append(ders, block.Bytes)
	}
	if len(ders) == 0 {
		return nil, errors.New("no PEM block")
	}
	// pem.Decode skips a malformed block to reach the next one: refuse that.
	if strings.Count(text, "-----BEGIN ") != len(ders) {
		return nil, errors.New("malformed PEM block")
	}
	return ders, nil
}
