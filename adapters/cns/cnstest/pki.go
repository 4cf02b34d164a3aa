// Package cnstest makes a small CNS public-key infrastructure: certificate
// authorities, CNS-shaped card certificates (subject CN
// <codice fiscale>/<card id>.<hash>, key usage digitalSignature, extended key
// usage clientAuth, the CNS policy, OCSP responder and CRL distribution
// point), server certificates for a card listener, CRLs, and an OCSP
// responder with switches for every fault a real one has. The CNS tests use
// it, and so does `ponte demo`, which makes a card a browser can import.
// Nothing here is fit for production: keys are made on the spot and kept in
// memory.
package cnstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// PolicyCNS is the CNS certificate policy (the same as cns.PolicyCNS).
const PolicyCNS = "1.3.76.16.2.1"

// KeyType is the kind of key a certificate gets.
type KeyType int

// The key types: ECDSA P-256 (quick to make) and RSA 2048, as most smart
// cards hold.
const (
	ECDSA KeyType = iota
	RSA
)

// CA is a certificate authority: a root, or an intermediate below one.
type CA struct {
	// Cert is the CA's certificate: the trust anchor, for a root.
	Cert *x509.Certificate
	// Key signs what the CA issues.
	Key crypto.Signer
	// chain is the DER of this CA and the intermediates above it, the root
	// excluded: what a certificate it issues sends after itself.
	chain [][]byte
}

// CAOptions shape an intermediate CA: where its own status is published.
type CAOptions struct {
	OCSPServer            []string
	CRLDistributionPoints []string
	// NotBefore and NotAfter default to an hour ago and ten years on.
	NotBefore, NotAfter time.Time
}

// NewRoot returns a self-signed root named cn.
func NewRoot(cn string) (*CA, error) {
	key, err := NewKey(ECDSA)
	if err != nil {
		return nil, err
	}
	tmpl, err := caTemplate(cn, CAOptions{})
	if err != nil {
		return nil, err
	}
	cert, err := create(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// NewIntermediate returns a CA named cn issued by ca.
func (ca *CA) NewIntermediate(cn string, o CAOptions) (*CA, error) {
	key, err := NewKey(ECDSA)
	if err != nil {
		return nil, err
	}
	tmpl, err := caTemplate(cn, o)
	if err != nil {
		return nil, err
	}
	cert, err := create(tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, chain: append([][]byte{cert.Raw}, ca.chain...)}, nil
}

// Card describes a CNS card certificate. The zero value (but FiscalNumber)
// is a good card: valid for a year, digitalSignature, clientAuth, the CNS
// policy, an ECDSA key.
type Card struct {
	// FiscalNumber makes the CN <FiscalNumber>/<CardID>.<hash>.
	FiscalNumber string
	// CardID defaults to 16 random digits.
	CardID string
	// CN replaces the whole common name when set.
	CN string
	// SerialNumber is the subject's serialNumber (TINIT-<cf>, IT:<cf>).
	SerialNumber          string
	GivenName, FamilyName string
	Key                   KeyType
	// NotBefore and NotAfter default to an hour ago and a year on.
	NotBefore, NotAfter time.Time
	// KeyUsage defaults to digitalSignature; NoKeyUsage leaves the extension out.
	KeyUsage   x509.KeyUsage
	NoKeyUsage bool
	// ExtKeyUsage defaults to clientAuth; NoExtKeyUsage leaves the extension out.
	ExtKeyUsage   []x509.ExtKeyUsage
	NoExtKeyUsage bool
	// Policies default to PolicyCNS; NoPolicy leaves the extension out.
	Policies []string
	NoPolicy bool
	// Where the card's status is published.
	OCSPServer            []string
	CRLDistributionPoints []string
}

// Issue returns the card certificate c, its key, and the chain up to (not
// including) the root.
func (ca *CA) Issue(c Card) (tls.Certificate, error) {
	key, err := NewKey(c.Key)
	if err != nil {
		return tls.Certificate{}, err
	}
	sn, err := serial()
	if err != nil {
		return tls.Certificate{}, err
	}
	cn := c.CN
	if cn == "" {
		cn, err = cardCN(c.FiscalNumber, c.CardID)
		if err != nil {
			return tls.Certificate{}, err
		}
	}
	subject := pkix.Name{Country: []string{"IT"}, Organization: []string{"Ponte test CNS"}, CommonName: cn, SerialNumber: c.SerialNumber}
	if c.FamilyName != "" {
		subject.ExtraNames = append(subject.ExtraNames, pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{2, 5, 4, 4}, Value: c.FamilyName})
	}
	if c.GivenName != "" {
		subject.ExtraNames = append(subject.ExtraNames, pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{2, 5, 4, 42}, Value: c.GivenName})
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn, Subject: subject,
		NotBefore: orTime(c.NotBefore, now.Add(-time.Hour)), NotAfter: orTime(c.NotAfter, now.Add(365*24*time.Hour)),
		BasicConstraintsValid: true,
		OCSPServer:            c.OCSPServer, CRLDistributionPoints: c.CRLDistributionPoints,
	}
	if !c.NoKeyUsage {
		tmpl.KeyUsage = c.KeyUsage
		if tmpl.KeyUsage == 0 {
			tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		}
	}
	if !c.NoExtKeyUsage {
		tmpl.ExtKeyUsage = c.ExtKeyUsage
		if len(tmpl.ExtKeyUsage) == 0 {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
	}
	if !c.NoPolicy {
		policies := c.Policies
		if len(policies) == 0 {
			policies = []string{PolicyCNS}
		}
		for _, p := range policies {
			oid, err := x509.ParseOID(p)
			if err != nil {
				return tls.Certificate{}, err
			}
			tmpl.Policies = append(tmpl.Policies, oid)
		}
	}
	return ca.keyPair(tmpl, key)
}

// Server returns a server certificate for hosts (names or IP addresses;
// 127.0.0.1 and localhost if none), with the chain up to the root.
func (ca *CA) Server(hosts ...string) (tls.Certificate, error) {
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1", "localhost", "::1"}
	}
	key, err := NewKey(ECDSA)
	if err != nil {
		return tls.Certificate{}, err
	}
	sn, err := serial()
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn, Subject: pkix.Name{CommonName: hosts[0], Organization: []string{"Ponte test CNS"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.keyPair(tmpl, key)
}

// ResponderCert returns a certificate for a delegated OCSP responder issued
// by ca, with extended key usage id-kp-OCSPSigning unless withoutEKU.
func (ca *CA) ResponderCert(cn string, withoutEKU bool) (tls.Certificate, error) {
	key, err := NewKey(ECDSA)
	if err != nil {
		return tls.Certificate{}, err
	}
	sn, err := serial()
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn, Subject: pkix.Name{CommonName: cn, Organization: []string{"Ponte test CNS"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true,
	}
	if !withoutEKU {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}
	}
	return ca.keyPair(tmpl, key)
}

// Revoked is a revoked certificate of a CRL.
type Revoked struct {
	Serial *big.Int
	At     time.Time
}

// CRLOptions shape a CRL.
type CRLOptions struct {
	// ThisUpdate defaults to an hour ago; NextUpdate to a day after it.
	ThisUpdate, NextUpdate time.Time
	Revoked                []Revoked
	// Number defaults to the Unix time of ThisUpdate.
	Number *big.Int
	// DistributionPoint, when set, makes it a partitioned CRL: an
	// IssuingDistributionPoint naming that URI.
	DistributionPoint string
	// OnlyCA sets onlyContainsCACerts.
	OnlyCA bool
	// CriticalDelta adds a (critical) delta CRL indicator.
	CriticalDelta bool
}

// CRL returns a DER CRL signed by ca.
func (ca *CA) CRL(o CRLOptions) ([]byte, error) {
	this := orTime(o.ThisUpdate, time.Now().Add(-time.Hour))
	next := orTime(o.NextUpdate, this.Add(24*time.Hour))
	number := o.Number
	if number == nil {
		number = big.NewInt(this.UnixNano())
	}
	tmpl := &x509.RevocationList{Number: number, ThisUpdate: this, NextUpdate: next}
	for _, r := range o.Revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: r.Serial, RevocationTime: orTime(r.At, this)})
	}
	if o.DistributionPoint != "" || o.OnlyCA {
		v, err := idp(o.DistributionPoint, o.OnlyCA)
		if err != nil {
			return nil, err
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 28}, Critical: true, Value: v})
	}
	if o.CriticalDelta {
		v, _ := asn1.Marshal(big.NewInt(1))
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 27}, Critical: true, Value: v})
	}
	return x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
}

// idp encodes an IssuingDistributionPoint with one URI, or onlyContainsCACerts.
func idp(uri string, onlyCA bool) ([]byte, error) {
	var parts []byte
	if uri != "" {
		gn, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(uri)})
		if err != nil {
			return nil, err
		}
		full, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: gn})
		if err != nil {
			return nil, err
		}
		dp, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: full})
		if err != nil {
			return nil, err
		}
		parts = append(parts, dp...)
	}
	if onlyCA {
		b, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte{0xff}})
		if err != nil {
			return nil, err
		}
		parts = append(parts, b...)
	}
	return asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: parts})
}

// PEM encodes certificates as CERTIFICATE blocks, in order.
func PEM(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

// KeyPEM encodes a private key as a PKCS #8 PEM block.
func KeyPEM(key crypto.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Chain returns the parsed certificates of c, leaf first.
func Chain(c tls.Certificate) ([]*x509.Certificate, error) {
	out := make([]*x509.Certificate, 0, len(c.Certificate))
	for _, der := range c.Certificate {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		out = append(out, cert)
	}
	return out, nil
}

// NewKey makes a key of type t.
func NewKey(t KeyType) (crypto.Signer, error) {
	if t == RSA {
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// cardCN is the CNS common name: <cf>/<card id>.<hash>, the hash the base64
// SHA-1 of the card id, as the CNS guidelines shape it.
func cardCN(cf, id string) (string, error) {
	if cf == "" {
		return "", fmt.Errorf("cnstest: a card needs a FiscalNumber or a CN")
	}
	if id == "" {
		n, err := rand.Int(rand.Reader, big.NewInt(1e15))
		if err != nil {
			return "", err
		}
		id = fmt.Sprintf("80380%011d", n.Int64()%1e11)
	}
	sum := sha1.Sum([]byte(id))
	return cf + "/" + id + "." + base64.StdEncoding.EncodeToString(sum[:]), nil
}

func (ca *CA) keyPair(tmpl *x509.Certificate, key crypto.Signer) (tls.Certificate, error) {
	leaf, err := create(tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: append([][]byte{leaf.Raw}, ca.chain...), PrivateKey: key, Leaf: leaf}, nil
}

func caTemplate(cn string, o CAOptions) (*x509.Certificate, error) {
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: sn, Subject: pkix.Name{Country: []string{"IT"}, Organization: []string{"Ponte test CNS"}, CommonName: cn},
		NotBefore: orTime(o.NotBefore, now.Add(-time.Hour)), NotAfter: orTime(o.NotAfter, now.Add(10*365*24*time.Hour)),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true,
		OCSPServer: o.OCSPServer, CRLDistributionPoints: o.CRLDistributionPoints,
	}, nil
}

func create(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func orTime(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t
}
