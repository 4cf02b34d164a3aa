package cns

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// crlList is one parsed CRL: what a revocation check needs of it, without
// the parsed entries (a CNS CRL can hold hundreds of thousands).
type crlList struct {
	// source is the file or URL it came from, for the log and the status.
	source                 string
	rawIssuer              []byte
	thisUpdate, nextUpdate time.Time
	// revoked holds the serial numbers (big-endian bytes) of the revoked
	// certificates.
	revoked map[string]struct{}
	// scope is what its IssuingDistributionPoint limits it to.
	scope crlScope
	// tbs, sig and alg are what its signature covers, checked against the
	// issuer of the certificate being checked (the issuer of a CRL file is
	// not known when it is loaded).
	tbs, sig []byte
	alg      x509.SignatureAlgorithm
	// verifiedBy remembers the issuers (SHA-256 of their certificate) the
	// signature was checked against, and the outcome.
	mu         sync.Mutex
	verifiedBy map[[32]byte]error
	// issuer is a CA whose signature on the CRL was checked.
	issuer *x509.Certificate
}

// crlScope is a CRL's IssuingDistributionPoint (RFC 5280 §5.2.5).
type crlScope struct {
	// points are the distribution point URIs it covers; empty: all.
	points                               []string
	onlyUser, onlyCA, onlyAttr, onlySome bool
	indirect                             bool
	hasIDP                               bool
}

var (
	oidIssuingDistributionPoint = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidAuthorityKeyID           = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidCRLNumber                = asn1.ObjectIdentifier{2, 5, 29, 20}
)

// parseCRL reads a CRL, DER or PEM ("X509 CRL"). A CRL with a critical
// extension Ponte does not understand (a delta CRL indicator, say) is
// refused, as RFC 5280 §5.2 requires.
func parseCRL(data []byte, source string) (*crlList, error) {
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "X509 CRL" {
			return nil, fmt.Errorf("%s: PEM block %q, want X509 CRL", source, block.Type)
		}
		data = block.Bytes
	}
	rl, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	l := &crlList{
		source: source, rawIssuer: rl.RawIssuer, thisUpdate: rl.ThisUpdate, nextUpdate: rl.NextUpdate,
		revoked: make(map[string]struct{}, len(rl.RevokedCertificateEntries)),
		tbs:     rl.RawTBSRevocationList, sig: rl.Signature, alg: rl.SignatureAlgorithm,
		verifiedBy: map[[32]byte]error{},
	}
	for _, e := range rl.RevokedCertificateEntries {
		if e.SerialNumber != nil {
			l.revoked[string(e.SerialNumber.Bytes())] = struct{}{}
		}
	}
	for _, ext := range rl.Extensions {
		switch {
		case ext.Id.Equal(oidIssuingDistributionPoint):
			if l.scope, err = parseIDP(ext.Value); err != nil {
				return nil, fmt.Errorf("%s: issuing distribution point: %w", source, err)
			}
		case ext.Id.Equal(oidAuthorityKeyID), ext.Id.Equal(oidCRLNumber):
		case ext.Critical:
			return nil, fmt.Errorf("%s: unsupported critical extension %v", source, ext.Id)
		}
	}
	return l, nil
}

// parseIDP reads an IssuingDistributionPoint extension.
func parseIDP(der []byte) (crlScope, error) {
	var idp struct {
		Point    asn1.RawValue  `asn1:"optional,tag:0"`
		OnlyUser bool           `asn1:"optional,tag:1"`
		OnlyCA   bool           `asn1:"optional,tag:2"`
		Reasons  asn1.BitString `asn1:"optional,tag:3"`
		Indirect bool           `asn1:"optional,tag:4"`
		OnlyAttr bool           `asn1:"optional,tag:5"`
	}
	if rest, err := asn1.Unmarshal(der, &idp); err != nil || len(rest) > 0 {
		return crlScope{}, errors.New("malformed")
	}
	s := crlScope{hasIDP: true, onlyUser: idp.OnlyUser, onlyCA: idp.OnlyCA, onlyAttr: idp.OnlyAttr,
		onlySome: idp.Reasons.BitLength > 0, indirect: idp.Indirect}
	if len(idp.Point.FullBytes) == 0 {
		return s, nil
	}
	// DistributionPointName: fullName [0] GeneralNames, or a name relative
	// to the issuer [1], which no CNS CA uses (it then covers nothing here).
	var name asn1.RawValue
	if rest, err := asn1.Unmarshal(idp.Point.Bytes, &name); err != nil || len(rest) > 0 {
		return crlScope{}, errors.New("malformed distribution point")
	}
	if name.Tag != 0 {
		s.points = []string{""}
		return s, nil
	}
	for rest := name.Bytes; len(rest) > 0; {
		var gn asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &gn); err != nil {
			return crlScope{}, errors.New("malformed distribution point name")
		}
		if gn.Class == asn1.ClassContextSpecific && gn.Tag == 6 { // uniformResourceIdentifier
			s.points = append(s.points, string(gn.Bytes))
		}
	}
	if len(s.points) == 0 {
		s.points = []string{""} // names no URI: it can cover no certificate by URI
	}
	return s, nil
}

// covers reports whether the CRL speaks for cert: a full CRL of its issuer,
// or a partition whose distribution point cert names (RFC 5280 §6.3.3).
func (l *crlList) covers(cert *x509.Certificate) bool {
	if !bytes.Equal(l.rawIssuer, cert.RawIssuer) {
		return false
	}
	s := l.scope
	switch {
	case !s.hasIDP:
		return true
	case s.indirect, s.onlyAttr, s.onlySome, s.onlyCA && !cert.IsCA, s.onlyUser && cert.IsCA:
		return false
	case len(s.points) == 0:
		return true
	}
	return slices.ContainsFunc(s.points, func(p string) bool { return slices.Contains(cert.CRLDistributionPoints, p) })
}

// signedBy checks, once per issuer, that issuer signed the CRL.
func (l *crlList) signedBy(issuer *x509.Certificate) error {
	key := sha256.Sum256(issuer.Raw)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err, ok := l.verifiedBy[key]; ok {
		return err
	}
	var err error
	switch {
	case !bytes.Equal(l.rawIssuer, issuer.RawSubject):
		err = errors.New("issued by another CA")
	case issuer.KeyUsage != 0 && issuer.KeyUsage&x509.KeyUsageCRLSign == 0:
		err = errors.New("the issuer may not sign CRLs (key usage)")
	default:
		err = issuer.CheckSignature(l.alg, l.tbs, l.sig)
	}
	if len(l.verifiedBy) < 16 {
		l.verifiedBy[key] = err
	}
	if err == nil {
		l.issuer = issuer
	}
	return err
}

// signer returns a CA whose signature on the CRL was checked, or nil.
func (l *crlList) signer() *x509.Certificate {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.issuer
}

// isRevoked reports whether the CRL lists cert.
func (l *crlList) isRevoked(cert *x509.Certificate) bool {
	_, ok := l.revoked[string(cert.SerialNumber.Bytes())]
	return ok
}
