// Package clientcert carries the client certificate chain of a request from
// where Ponte reads it (its own TLS listener, or a header set by a proxy it
// trusts for that) to the login method that verifies it, in the request's
// context. It verifies nothing: the method does.
package clientcert

import (
	"context"
	"crypto/x509"
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
