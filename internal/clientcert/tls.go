package clientcert

import (
	"crypto/tls"
	"fmt"
)

// cardCipherSuites are the TLS 1.2 suites the card listener offers: ECDHE
// with an AEAD, for RSA and ECDSA server keys. (TLS 1.3 suites are not
// configurable, and all are sound.)
var cardCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// CardTLSConfig returns the TLS configuration of the card listener: the
// server certificate and key read from certFile and keyFile (PEM), TLS 1.2
// at least and maxVersion at most (0 means TLS 1.3; many smart cards cannot
// make the RSA-PSS signature TLS 1.3 asks of a client, so a deployment can
// hold the card listener at tls.VersionTLS12).
//
// It asks for a client certificate without requiring or verifying one
// (tls.RequestClientCert): the handshake succeeds with no card or with a
// card from any issuer, so a person without a card gets the login method's
// page rather than a TLS failure, and the method verifies the chain it reads
// with From. The handshake still checks that the client holds the
// certificate's private key. Only this listener asks: the ordinary listener
// never prompts for a certificate.
//
// It never resumes a TLS session: no session tickets are issued (TLS 1.2 and
// 1.3), and Go's server keeps no session cache of its own. A resumed
// connection carries the certificates of the handshake it resumes, without
// asking for the card again, so on a shared browser the next person would be
// logged in as the card's holder without the card. Every connection is a full
// handshake in which the client proves it holds the card's key.
func CardTLSConfig(certFile, keyFile string, maxVersion uint16) (*tls.Config, error) {
	if err := checkMaxVersion(maxVersion); err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("clientcert: card listener certificate: %w", err)
	}
	if maxVersion == 0 {
		maxVersion = tls.VersionTLS13
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequestClientCert,
		MinVersion:   tls.VersionTLS12,
		MaxVersion:   maxVersion,
		CipherSuites: cardCipherSuites,
		// No resumption: a resumed session's PeerCertificates are those of
		// an earlier handshake, the card not asked for again.
		SessionTicketsDisabled: true,
	}, nil
}

// ParseTLSVersion reads a configured maximum TLS version for CardTLSConfig:
// "1.2", "1.3", or "" for the default (TLS 1.3).
func ParseTLSVersion(s string) (uint16, error) {
	switch s {
	case "":
		return 0, nil
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("clientcert: TLS version %q: want 1.2 or 1.3", s)
}

func checkMaxVersion(v uint16) error {
	switch v {
	case 0, tls.VersionTLS12, tls.VersionTLS13:
		return nil
	}
	return fmt.Errorf("clientcert: maximum TLS version %#04x: want TLS 1.2 or 1.3", v)
}
