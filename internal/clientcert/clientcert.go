// Package clientcert carries the client certificate chain of a request from
// where Ponte reads it to the login method that verifies it, in the request's
// context. It owns every way a chain reaches Ponte: the TLS handshake of its
// own card listener (CardTLSConfig), or a header set by a TLS-terminating
// proxy that is trusted for it (RFC 9440 Client-Cert, nginx's escaped PEM,
// Envoy's x-forwarded-client-cert), read by Source only from configured proxy
// addresses and stripped from every request. It verifies nothing: the method
// does, every time, wherever the chain came from.
package clientcert

import (
	"context"
	"crypto/x509"
)

// The headers a proxy can carry a client certificate in. Source deletes all
// of them from every request, whichever it reads.
const (
	// HeaderClientCert is RFC 9440 §2.2: the end-entity certificate as a
	// structured-field Byte Sequence.
	HeaderClientCert = "Client-Cert"
	// HeaderClientCertChain is RFC 9440 §2.3: the rest of the chain as a
	// structured-field List of Byte Sequences.
	HeaderClientCertChain = "Client-Cert-Chain"
	// HeaderNginx is where nginx is configured to put $ssl_client_escaped_cert:
	//
	//	proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
	HeaderNginx = "X-SSL-Client-Cert"
	// HeaderXFCC is Envoy's x-forwarded-client-cert.
	HeaderXFCC = "X-Forwarded-Client-Cert"
)

// Bounds on what a header may carry, so that a proxy (or whoever poses as
// one) cannot make Ponte parse without end.
const (
	// MaxHeaderBytes is the largest header value read, all its lines together.
	MaxHeaderBytes = 64 << 10
	// MaxCertificates is the longest chain read, leaf included.
	MaxCertificates = 10
)

type key struct{}

// With returns ctx carrying chain (leaf first).
func With(ctx context.Context, chain []*x509.Certificate) context.Context {
	return context.WithValue(ctx, key{}, chain)
}

// From returns the chain carried by ctx, or nil.
func From(ctx context.Context) []*x509.Certificate {
	chain, _ := ctx.Value(key{}).([]*x509.Certificate)
	return chain
}
