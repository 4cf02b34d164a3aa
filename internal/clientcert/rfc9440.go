package clientcert

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ParseRFC9440 parses the header fields of RFC 9440. clientCert is the value
// of Client-Cert (§2.2): a structured-field Item (RFC 8941) whose value is a
// Byte Sequence holding the DER of the end-entity certificate, as in
// ":MIIB...:". chain is the value of Client-Cert-Chain (§2.3), all its field
// lines joined with ", ": a List of Byte Sequences, the rest of the chain in
// the order TLS sent it, the end-entity certificate not repeated. Parameters,
// which RFC 9440 does not define, are parsed and ignored (RFC 8941 §2.3.2).
//
// It returns the chain leaf first; nil and no error when both values are
// empty (no certificate was presented). Each value is bounded by
// MaxHeaderBytes, the chain by MaxCertificates.
func ParseRFC9440(clientCert, chain string) ([]*x509.Certificate, error) {
	if len(clientCert) > MaxHeaderBytes {
		return nil, fmt.Errorf("%s: %w", HeaderClientCert, errTooLong)
	}
	if len(chain) > MaxHeaderBytes {
		return nil, fmt.Errorf("%s: %w", HeaderClientCertChain, errTooLong)
	}
	if strings.Trim(clientCert, " \t") == "" {
		if strings.Trim(chain, " \t") != "" {
			// RFC 9440 §2.3: Client-Cert-Chain MUST NOT appear unless Client-Cert does.
			return nil, fmt.Errorf("%s without %s", HeaderClientCertChain, HeaderClientCert)
		}
		return nil, nil
	}
	leaf, err := (&sfParser{s: clientCert}).item()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", HeaderClientCert, err)
	}
	rest, err := (&sfParser{s: chain}).list(MaxCertificates - 1)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", HeaderClientCertChain, err)
	}
	return parseDER(append([][]byte{leaf}, rest...))
}

// sfParser reads the part of RFC 8941 (Structured Field Values) that RFC 9440
// uses: an Item or a List whose members are Byte Sequences, with Parameters
// of any bare item, which it skips.
type sfParser struct {
	s string
	i int
}

func (p *sfParser) errorf(format string, args ...any) error {
	return fmt.Errorf("structured field at offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *sfParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *sfParser) skip(chars string) {
	for p.i < len(p.s) && strings.IndexByte(chars, p.s[p.i]) >= 0 {
		p.i++
	}
}

// item parses a whole field value that is one Item holding a Byte Sequence
// (RFC 8941 §4.2, §4.2.3).
func (p *sfParser) item() ([]byte, error) {
	p.skip(" ")
	b, err := p.member()
	if err != nil {
		return nil, err
	}
	p.skip(" ")
	if p.i != len(p.s) {
		return nil, p.errorf("unexpected %q after the item", p.peek())
	}
	return b, nil
}

// list parses a whole field value that is a List of Byte Sequences (RFC 8941
// §4.2.1) of at most max members. An empty value is an empty List.
func (p *sfParser) list(max int) ([][]byte, error) {
	var out [][]byte
	p.skip(" ")
	for p.i < len(p.s) {
		if len(out) == max {
			return nil, errTooMany
		}
		b, err := p.member()
		if err != nil {
			return nil, err
		}
		out = append(out, b)
		p.skip(" \t")
		if p.i == len(p.s) {
			break
		}
		if p.peek() != ',' {
			return nil, p.errorf("expected ',' between list members, got %q", p.peek())
		}
		p.i++
		p.skip(" \t")
		if p.i == len(p.s) {
			return nil, p.errorf("trailing comma")
		}
	}
	return out, nil
}

// member parses a Byte Sequence and its Parameters.
func (p *sfParser) member() ([]byte, error) {
	if p.peek() != ':' {
		return nil, p.errorf("expected a Byte Sequence (':base64:')")
	}
	b, err := p.binary()
	if err != nil {
		return nil, err
	}
	return b, p.params()
}

// binary parses a Byte Sequence (RFC 8941 §4.2.7). It accepts base64 without
// its '=' padding and with non-zero pad bits, as §4.2.7 asks of parsers.
func (p *sfParser) binary() ([]byte, error) {
	p.i++ // ':'
	end := strings.IndexByte(p.s[p.i:], ':')
	if end < 0 {
		return nil, p.errorf("Byte Sequence without its closing ':'")
	}
	content := p.s[p.i : p.i+end]
	for j := 0; j < len(content); j++ {
		if c := content[j]; !isAlpha(c) && !isDigit(c) && c != '+' && c != '/' && c != '=' {
			p.i += j
			return nil, p.errorf("%q in a Byte Sequence", c)
		}
	}
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(content, "="))
	if err != nil {
		return nil, p.errorf("base64: %v", err)
	}
	p.i += end + 1
	return b, nil
}

// params parses and discards Parameters (RFC 8941 §4.2.3.2).
func (p *sfParser) params() error {
	for p.peek() == ';' {
		p.i++
		p.skip(" ")
		if c := p.peek(); !isLCAlpha(c) && c != '*' {
			return p.errorf("parameter key must start with a lowercase letter or '*'")
		}
		for c := p.peek(); isLCAlpha(c) || isDigit(c) || strings.IndexByte("_-.*", c) >= 0; c = p.peek() {
			p.i++
		}
		if p.peek() == '=' {
			p.i++
			if err := p.bareItem(); err != nil {
				return err
			}
		}
	}
	return nil
}

// bareItem parses and discards a Bare Item (RFC 8941 §4.2.3.1): a parameter's value.
func (p *sfParser) bareItem() error {
	switch c := p.peek(); {
	case c == '-' || isDigit(c):
		return p.number()
	case c == '"':
		return p.sfString()
	case c == '*' || isAlpha(c):
		for p.i++; p.i < len(p.s) && (isTChar(p.s[p.i]) || p.s[p.i] == ':' || p.s[p.i] == '/'); p.i++ {
		}
		return nil
	case c == ':':
		_, err := p.binary()
		return err
	case c == '?':
		p.i++
		if c := p.peek(); c != '0' && c != '1' {
			return p.errorf("boolean must be ?0 or ?1")
		}
		p.i++
		return nil
	default:
		return p.errorf("%q cannot start a parameter value", c)
	}
}

// number parses an Integer or a Decimal (RFC 8941 §4.2.4).
func (p *sfParser) number() error {
	if p.peek() == '-' {
		p.i++
	}
	start, dot := p.i, -1
	for ; p.i < len(p.s); p.i++ {
		c := p.s[p.i]
		if c == '.' && dot < 0 {
			dot = p.i
			continue
		}
		if !isDigit(c) {
			break
		}
	}
	n := p.i - start
	switch {
	case n == 0 || dot == start:
		return p.errorf("number without digits")
	case dot < 0 && n > 15:
		return p.errorf("integer of more than 15 digits")
	case dot >= 0 && (dot-start > 12 || p.i-dot-1 < 1 || p.i-dot-1 > 3):
		return p.errorf("malformed decimal")
	}
	return nil
}

// sfString parses a String (RFC 8941 §4.2.5).
func (p *sfParser) sfString() error {
	for p.i++; p.i < len(p.s); p.i++ {
		switch c := p.s[p.i]; {
		case c == '\\':
			p.i++
			if c := p.peek(); c != '"' && c != '\\' {
				return p.errorf("bad escape in a string")
			}
		case c == '"':
			p.i++
			return nil
		case c < 0x20 || c > 0x7e:
			return p.errorf("%q in a string", c)
		}
	}
	return errors.New("structured field: string without its closing quote")
}

func isAlpha(c byte) bool   { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isLCAlpha(c byte) bool { return 'a' <= c && c <= 'z' }
func isDigit(c byte) bool   { return '0' <= c && c <= '9' }

// isTChar is RFC 9110's tchar.
func isTChar(c byte) bool {
	return isAlpha(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
