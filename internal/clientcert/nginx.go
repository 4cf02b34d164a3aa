package clientcert

import (
	"crypto/x509"
	"fmt"
	"strings"
)

// ParseNginx parses the value nginx gives as $ssl_client_escaped_cert: the
// client's certificate in PEM, URL-escaped. nginx sends the leaf only; any
// further CERTIFICATE blocks are taken as the rest of the chain, in order.
// It returns the chain leaf first; nil and no error for an empty value (no
// certificate was presented). The value is bounded by MaxHeaderBytes, the
// chain by MaxCertificates.
//
// The value is unescaped with url.PathUnescape, not QueryUnescape, which
// would turn the '+' of base64 into a space.
func ParseNginx(escaped string) ([]*x509.Certificate, error) {
	if len(escaped) > MaxHeaderBytes {
		return nil, fmt.Errorf("%s: %w", HeaderNginx, errTooLong)
	}
	if strings.Trim(escaped, " \t") == "" {
		return nil, nil
	}
	chain, err := parseEscapedPEM(escaped)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", HeaderNginx, err)
	}
	return chain, nil
}

// EscapeNginx escapes s as nginx escapes $ssl_client_escaped_cert: every
// byte but the unreserved ones of RFC 3986 §2.3 as %XX, '+' and '/'
// included. It is what a proxy in front of Ponte sends (the load test's
// card host, the tests); ParseNginx reads it back.
func EscapeNginx(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
