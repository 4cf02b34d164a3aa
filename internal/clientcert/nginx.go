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
