package spid

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"
)

// Keypair is the SP's signing key and certificate.
type Keypair struct {
	Key  *rsa.PrivateKey
	Cert *x509.Certificate
}

// LoadKeypair reads a PEM certificate and its RSA key (PKCS #1 or #8). SPID
// wants RSA of at least 2048 bits.
func LoadKeypair(certFile, keyFile string) (Keypair, error) {
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return Keypair{}, err
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return Keypair{}, err
	}
	return ParseKeypair(cb, kb)
}

// ParseKeypair parses a PEM certificate and its RSA key.
func ParseKeypair(certPEM, keyPEM []byte) (Keypair, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return Keypair{}, errors.New("spid: no PEM certificate")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return Keypair{}, fmt.Errorf("spid: certificate: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return Keypair{}, errors.New("spid: no PEM key")
	}
	var key any
	if key, err = x509.ParsePKCS8PrivateKey(kb.Bytes); err != nil {
		key, err = x509.ParsePKCS1PrivateKey(kb.Bytes)
	}
	if err != nil {
		return Keypair{}, fmt.Errorf("spid: key: %w", err)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return Keypair{}, errors.New("spid: the key is not RSA (SPID signs with RSA-SHA256)")
	}
	if rk.N.BitLen() < 2048 {
		return Keypair{}, fmt.Errorf("spid: an RSA key of %d bits; SPID wants at least 2048", rk.N.BitLen())
	}
	if !rk.PublicKey.Equal(cert.PublicKey) {
		return Keypair{}, errors.New("spid: the key does not match the certificate")
	}
	return Keypair{Key: rk, Cert: cert}, nil
}

// CertPEM and KeyPEM encode the pair.
func (k Keypair) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.Cert.Raw})
}

// KeyPEM encodes the key as PKCS #8.
func (k Keypair) KeyPEM() []byte {
	b, _ := x509.MarshalPKCS8PrivateKey(k.Key)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: b})
}

// OIDs of SPID notice 29 v3 (Avviso SPID n.29 v3, "certificati per la
// firma delle asserzioni e dei metadata").
var (
	oidURI                    = asn1.ObjectIdentifier{2, 5, 4, 83}
	oidOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}
	oidCertificatePolicies    = asn1.ObjectIdentifier{2, 5, 29, 32}
	oidBasicConstraints       = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidUserNotice             = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 2, 2}
	oidAgIDRoot               = asn1.ObjectIdentifier{1, 3, 76, 16}
	oidAgIDCert               = asn1.ObjectIdentifier{1, 3, 76, 16, 6}
	oidSPIDPublicSP           = asn1.ObjectIdentifier{1, 3, 76, 16, 4, 2, 1}
)

type userNotice struct {
	ExplicitText string `asn1:"utf8"`
}

type policyQualifier struct {
	ID     asn1.ObjectIdentifier
	Notice userNotice
}

type policyInformation struct {
	ID         asn1.ObjectIdentifier
	Qualifiers []policyQualifier
}

// SPCertificate describes the SP certificate of a public administration.
type SPCertificate struct {
	// EntityID goes in the subject's uri attribute.
	EntityID string
	// IPACode makes the organizationIdentifier PA:IT-<code>.
	IPACode string
	// Organization is the subject's O and CN.
	Organization string
	// Locality is the subject's L.
	Locality string
	// Days is the validity.
	Days int
}

// NewSPKeypair makes a self-signed SP certificate with what SPID notice 29
// v3 requires of a public-sector SP: subject O, CN, uri (the entityID),
// organizationIdentifier PA:IT-<IPA code>, C=IT, L; keyUsage digitalSignature
// and nonRepudiation, critical; basicConstraints CA false; certificatePolicies
// agIDroot, agIDcert and cert_SP_Pub with their user notices; SHA-256 and RSA
// 3072. The same as the kit's mk_sp.py makes; `ponte demo` and tests use it.
func NewSPKeypair(c SPCertificate, now time.Time) (Keypair, error) {
	key, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		return Keypair{}, err
	}
	if c.Days == 0 {
		c.Days = 730
	}
	if c.Locality == "" {
		c.Locality = "Roma"
	}
	policies, err := asn1.Marshal([]policyInformation{
		{oidAgIDRoot, []policyQualifier{{oidUserNotice, userNotice{"AgIDroot"}}}},
		{oidAgIDCert, []policyQualifier{{oidUserNotice, userNotice{"agIDcert"}}}},
		{oidSPIDPublicSP, []policyQualifier{{oidUserNotice, userNotice{"cert_SP_Pub"}}}},
	})
	if err != nil {
		return Keypair{}, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return Keypair{}, err
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		Key       asn1.BitString
	}
	if _, err := asn1.Unmarshal(pub, &spki); err != nil {
		return Keypair{}, err
	}
	ski := sha1.Sum(spki.Key.Bytes)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return Keypair{}, err
	}
	subject := pkix.Name{
		Organization: []string{c.Organization}, CommonName: c.Organization,
		Country: []string{"IT"}, Locality: []string{c.Locality},
		ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: oidURI, Value: c.EntityID},
			{Type: oidOrganizationIdentifier, Value: "PA:IT-" + c.IPACode},
		},
	}
	tmpl := &x509.Certificate{
		SerialNumber:       serial,
		Subject:            subject,
		NotBefore:          now.Add(-time.Minute),
		NotAfter:           now.AddDate(0, 0, c.Days),
		KeyUsage:           x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		SubjectKeyId:       ski[:],
		AuthorityKeyId:     ski[:],
		SignatureAlgorithm: x509.SHA256WithRSA,
		// basicConstraints CA false, not critical (Go would mark it critical).
		ExtraExtensions: []pkix.Extension{{Id: oidBasicConstraints, Value: []byte{0x30, 0x00}}, {Id: oidCertificatePolicies, Value: policies}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Keypair{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Keypair{}, err
	}
	return Keypair{Key: key, Cert: cert}, nil
}
