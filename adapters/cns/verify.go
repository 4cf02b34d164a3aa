package cns

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Reason names why a card was refused: in the log, in the counters, and in
// the choice of the page the citizen sees.
type Reason string

// The reasons a card is refused.
const (
	// ReasonNoCertificate: no certificate reached the method (no card, the
	// choice cancelled, or a proxy header that was untrusted or did not parse:
	// clientcert logs those).
	ReasonNoCertificate Reason = "no_certificate"
	ReasonExpired       Reason = "expired"
	ReasonNotYetValid   Reason = "not_yet_valid"
	// ReasonUnknownIssuer: the chain does not lead to a configured CNS CA.
	ReasonUnknownIssuer Reason = "unknown_issuer"
	// ReasonBadChain: the chain leads there but is invalid (a CA constraint,
	// a signature, a name constraint, an intermediate's validity).
	ReasonBadChain Reason = "bad_chain"
	// ReasonKeyUsage: the leaf lacks key usage digitalSignature.
	ReasonKeyUsage Reason = "key_usage"
	// ReasonExtKeyUsage: the leaf (or a CA above it) does not allow clientAuth.
	ReasonExtKeyUsage Reason = "ext_key_usage"
	// ReasonPolicy: the leaf does not carry the CNS certificate policy.
	ReasonPolicy Reason = "missing_policy"
	// ReasonMalformedSubject: the CN is not <cf>/<card id>.<hash> (and no
	// serialNumber fallback applies).
	ReasonMalformedSubject Reason = "malformed_subject"
	// ReasonFiscalNumber: the codice fiscale fails its check.
	ReasonFiscalNumber Reason = "bad_fiscal_number"
	// ReasonSubjectMismatch: CN and serialNumber disagree.
	ReasonSubjectMismatch Reason = "subject_mismatch"
	// ReasonRevoked: a CRL or an OCSP responder says the card (or a CA
	// above it) is revoked.
	ReasonRevoked Reason = "revoked"
	// ReasonOCSPUnknown: the responder does not know the certificate.
	ReasonOCSPUnknown Reason = "ocsp_unknown"
	// ReasonOCSPUnavailable: the responder did not answer (or answered an
	// error such as tryLater).
	ReasonOCSPUnavailable Reason = "ocsp_unavailable"
	// ReasonOCSPBadResponse: the answer failed a check (signature, responder
	// authorisation, nonce, certificate ID).
	ReasonOCSPBadResponse Reason = "ocsp_bad_response"
	// ReasonOCSPStale: the answer is too old, or from the future.
	ReasonOCSPStale Reason = "ocsp_stale"
	// ReasonCRLUnavailable: no usable CRL could be had.
	ReasonCRLUnavailable Reason = "crl_unavailable"
	// ReasonCRLStale: the only CRLs at hand are past their nextUpdate.
	ReasonCRLStale Reason = "crl_stale"
	// ReasonNoRevocationSource: the card names no responder and no
	// distribution point, and no CRL file covers it.
	ReasonNoRevocationSource Reason = "revocation_unavailable"
	// ReasonUnboundReturn: the card was read for a login that the browser
	// coming back did not start, or that has expired (a forwarded card link).
	ReasonUnboundReturn Reason = "unbound_return"
	// ReasonResumedSession: the card page came over a resumed TLS session,
	// whose certificate was presented in an earlier handshake (perhaps by
	// someone else at the same browser), not in this one. The card listener
	// never resumes (clientcert.CardTLSConfig): this is a listener, or a
	// proxy, configured otherwise.
	ReasonResumedSession Reason = "resumed_session"
)

// unavailable reports whether r says a revocation status could not be had,
// rather than that the card is bad: the reasons FailOpen forgives, and that
// answer 503.
func (r Reason) unavailable() bool {
	switch r {
	case ReasonOCSPUnavailable, ReasonOCSPBadResponse, ReasonOCSPStale, ReasonCRLUnavailable, ReasonCRLStale, ReasonNoRevocationSource:
		return true
	}
	return false
}

// refusal is a card refused, with its reason and the detail for the log.
type refusal struct {
	Reason Reason
	Err    error
}

func (r *refusal) Error() string { return fmt.Sprintf("%s: %v", r.Reason, r.Err) }
func (r *refusal) Unwrap() error { return r.Err }

func refuse(reason Reason, format string, a ...any) *refusal {
	return &refusal{Reason: reason, Err: fmt.Errorf(format, a...)}
}

// verdict is a card accepted: who it names, and what the checks noted.
type verdict struct {
	holder holder
	// chain is the verified chain, leaf first, the trust anchor last.
	chain []*x509.Certificate
	// forgiven is the revocation failure FailOpen let through, if any.
	forgiven *refusal
}

// verifier judges a presented chain.
type verifier struct {
	cfg     Config
	trust   *trustStore
	revoker *revocationChecker
	now     func() time.Time
	// policy is cfg.PolicyOID parsed.
	policy x509.OID
}

// verify judges chain (leaf first, as presented) at v.now(): chain to a
// configured CA, validity, key usage, extended key usage, policy, subject,
// and revocation of the leaf and of every CA below the anchor that names a
// source. The cheap checks come first; revocation, which may wait on the
// network, last.
func (v *verifier) verify(ctx context.Context, chain []*x509.Certificate) (verdict, *refusal) {
	if len(chain) == 0 || chain[0] == nil {
		return verdict{}, refuse(ReasonNoCertificate, "no client certificate")
	}
	now := v.now()
	leaf := chain[0]
	switch {
	case now.Before(leaf.NotBefore):
		return verdict{}, refuse(ReasonNotYetValid, "valid from %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	case now.After(leaf.NotAfter):
		return verdict{}, refuse(ReasonExpired, "expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	ts := v.trust.current()
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		if c != nil {
			inter.AddCert(c)
		}
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots: ts.roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return verdict{}, chainRefusal(err)
	}
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return verdict{}, refuse(ReasonKeyUsage, "key usage %#x lacks digitalSignature", leaf.KeyUsage)
	}
	// x509 takes a leaf without extended key usage as good for anything: a
	// CNS certificate must say clientAuth.
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return verdict{}, refuse(ReasonExtKeyUsage, "extended key usage does not list clientAuth")
	}
	// Checked here, on the leaf: x509's CertificatePolicies option does not
	// require a policy when the CAs assert none.
	if !slices.ContainsFunc(leaf.Policies, func(o x509.OID) bool { return o.Equal(v.policy) }) {
		return verdict{}, refuse(ReasonPolicy, "the leaf lacks certificate policy %s", v.cfg.PolicyOID)
	}
	h, err := parseSubject(leaf.Subject, bool(v.cfg.SerialNumberFallback))
	if err != nil {
		reason := ReasonMalformedSubject
		switch {
		case errors.Is(err, errFiscalNumber):
			reason = ReasonFiscalNumber
		case errors.Is(err, errMismatch):
			reason = ReasonSubjectMismatch
		}
		return verdict{}, &refusal{Reason: reason, Err: err}
	}
	verified := chains[0]
	out := verdict{holder: h, chain: verified}
	// Every certificate but the anchor, leaf first.
	for i := 0; i+1 < len(verified); i++ {
		forgiven, r := v.revoker.check(ctx, verified[i], verified[i+1], i == 0)
		if r != nil {
			return verdict{}, r
		}
		if forgiven != nil && out.forgiven == nil {
			out.forgiven = forgiven
		}
	}
	return out, nil
}

// chainRefusal names the reason of a chain that x509 refused.
func chainRefusal(err error) *refusal {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		return &refusal{Reason: ReasonUnknownIssuer, Err: err}
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return &refusal{Reason: ReasonExpired, Err: err}
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		return &refusal{Reason: ReasonExtKeyUsage, Err: err}
	}
	return &refusal{Reason: ReasonBadChain, Err: err}
}
