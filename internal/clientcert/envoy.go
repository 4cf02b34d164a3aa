package clientcert

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
)

// ParseXFCC parses Envoy's x-forwarded-client-cert, all its field lines
// joined with ", ". The value is a list of elements separated by commas, one
// per proxy that added one; an element is key=value pairs separated by
// semicolons, a value double-quoted (with backslash escapes) when it holds a
// comma, a semicolon or an equals sign. Of the keys, Cert is the client's
// certificate and Chain its whole chain, leaf included, each as URL-escaped
// PEM (unescaped with url.PathUnescape); the others (By, Hash, Subject, URI,
// DNS) are ignored.
//
// Only the last element is read: the one appended by the proxy next to
// Ponte, the proxy Ponte trusts. Earlier elements came from further hops and
// are only checked for syntax. That proxy must therefore set the header
// itself for every request (Envoy's forward_client_cert_details SANITIZE_SET,
// or APPEND_FORWARD) with set_current_client_cert_details cert (or chain)
// true; FORWARD_ONLY and ALWAYS_FORWARD_ONLY would pass on a client's own.
//
// It returns the chain leaf first, from Chain when there is one (Cert, if
// present too, must be its first certificate), else from Cert; nil and no
// error for an empty value. The value is bounded by MaxHeaderBytes, the
// chain by MaxCertificates.
func ParseXFCC(value string) ([]*x509.Certificate, error) {
	if len(value) > MaxHeaderBytes {
		return nil, fmt.Errorf("%s: %w", HeaderXFCC, errTooLong)
	}
	if strings.Trim(value, " \t") == "" {
		return nil, nil
	}
	last, n, err := lastXFCC(value)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", HeaderXFCC, err)
	}
	chain, err := last.chain()
	if err != nil {
		return nil, fmt.Errorf("%s: element %d (the last): %w", HeaderXFCC, n, err)
	}
	return chain, nil
}

// xfccElement is the part of one XFCC element that Ponte reads.
type xfccElement struct {
	cert, chainPEM    string
	hasCert, hasChain bool
}

// chain returns the element's chain, leaf first.
func (e xfccElement) chain() ([]*x509.Certificate, error) {
	var leaf []*x509.Certificate
	if e.hasCert {
		var err error
		if leaf, err = parseEscapedPEM(e.cert); err != nil {
			return nil, fmt.Errorf("key Cert: %w", err)
		}
		if len(leaf) != 1 {
			return nil, fmt.Errorf("key Cert holds %d certificates, want 1", len(leaf))
		}
	}
	if !e.hasChain {
		if !e.hasCert {
			return nil, errors.New("no Cert or Chain (Envoy's set_current_client_cert_details must ask for them)")
		}
		return leaf, nil
	}
	chain, err := parseEscapedPEM(e.chainPEM)
	if err != nil {
		return nil, fmt.Errorf("key Chain: %w", err)
	}
	if e.hasCert && !bytes.Equal(leaf[0].Raw, chain[0].Raw) {
		return nil, errors.New("key Cert is not the first certificate of key Chain")
	}
	return chain, nil
}

// lastXFCC tokenizes a whole XFCC value and returns its last element and
// how many elements it has.
func lastXFCC(s string) (xfccElement, int, error) {
	var (
		el xfccElement
		n  = 1
		i  int
	)
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		// A key, up to '='.
		start := i
		for i < len(s) && isTChar(s[i]) {
			i++
		}
		key := s[start:i]
		if key == "" || i == len(s) || s[i] != '=' {
			return xfccElement{}, 0, fmt.Errorf("offset %d: expected key=value", start)
		}
		i++
		// Its value, quoted or bare.
		var val string
		if i < len(s) && s[i] == '"' {
			var b strings.Builder
			closed := false
			for i++; i < len(s) && !closed; i++ {
				switch s[i] {
				case '\\':
					if i+1 == len(s) {
						return xfccElement{}, 0, fmt.Errorf("offset %d: escape at the end", i)
					}
					i++
					b.WriteByte(s[i])
				case '"':
					closed = true
				default:
					b.WriteByte(s[i])
				}
			}
			if !closed {
				return xfccElement{}, 0, fmt.Errorf("offset %d: quoted value without its closing quote", start)
			}
			val = b.String()
			for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
				i++
			}
		} else {
			vs := i
			for i < len(s) && s[i] != ';' && s[i] != ',' {
				if s[i] == '"' {
					return xfccElement{}, 0, fmt.Errorf("offset %d: quote inside a bare value", i)
				}
				i++
			}
			val = strings.TrimRight(s[vs:i], " \t")
		}
		switch {
		case strings.EqualFold(key, "Cert"):
			if el.hasCert {
				return xfccElement{}, 0, fmt.Errorf("offset %d: Cert twice in an element", start)
			}
			el.cert, el.hasCert = val, true
		case strings.EqualFold(key, "Chain"):
			if el.hasChain {
				return xfccElement{}, 0, fmt.Errorf("offset %d: Chain twice in an element", start)
			}
			el.chainPEM, el.hasChain = val, true
		}
		// What ends the pair: the value, the element, or another pair.
		switch {
		case i == len(s):
			return el, n, nil
		case s[i] == ',':
			el = xfccElement{}
			n++
		case s[i] != ';':
			return xfccElement{}, 0, fmt.Errorf("offset %d: %q after a quoted value", i, s[i])
		}
		i++
	}
}
