// Package testidp is a SPID identity provider for development, demos and
// tests: it runs in-process, signs with its own key, knows a list of
// citizens, and answers an AuthnRequest with a SPID level 2 response shaped
// as the SPID technical rules ask. `ponte demo` starts it under Ponte's own
// listener; the conformance tests use Response to craft every anomaly. It
// holds no real credentials: never enable it outside dev mode.
package testidp

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

const (
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsMetadata  = "urn:oasis:names:tc:SAML:2.0:metadata"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"

	formatEntity    = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
	formatTransient = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
	bindingPOST     = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
	bindingRedirect = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
	statusSuccess   = "urn:oasis:names:tc:SAML:2.0:status:Success"

	// SpidL2 is the level the test identity provider reaches by default.
	SpidL2 = "https://www.spid.gov.it/SpidL2"
)

// User is a citizen the test identity provider knows.
type User struct {
	FiscalNumber, GivenName, FamilyName string
	// Birthdate is YYYY-MM-DD; Gender M or F.
	Birthdate, Gender string
	Email, Mobile     string
}

// Config describes a test identity provider.
type Config struct {
	// EntityID is its entityID; BaseURL the public URL of its Handler
	// (/sso and /slo below it).
	EntityID, BaseURL string
	// Now is its clock (time.Now if nil).
	Now func() time.Time
	// Users are the citizens it knows.
	Users []User
	// Keypair signs its messages; nil makes a fresh one.
	Keypair *Keypair
}

// Keypair is a signing key and its certificate.
type Keypair struct {
	Key  *rsa.PrivateKey
	Cert *x509.Certificate
}

// NewKeypair makes an RSA 2048 key and a self-signed certificate.
func NewKeypair(cn string, now time.Time) (Keypair, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return Keypair{}, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn, Organization: []string{"Ponte test IdP"}, Country: []string{"IT"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(2, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature,
		SignatureAlgorithm: x509.SHA256WithRSA,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Keypair{}, err
	}
	cert, err := x509.ParseCertificate(der)
	return Keypair{Key: key, Cert: cert}, err
}

// sp is the service provider the test identity provider answers.
type sp struct {
	EntityID, ACS, SLO string
	Cert               *x509.Certificate
}

// IdP is a running test identity provider.
type IdP struct {
	cfg Config
	kp  Keypair

	mu      sync.Mutex
	sp      *sp
	users   []User
	pending map[string]pendingLogin
	// lastNameID is the transient NameID of the last assertion built.
	lastNameID string
}

// LastNameID is the transient NameID of the last assertion the IdP built.
func (p *IdP) LastNameID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastNameID
}

// Logout describes the identity provider's own LogoutRequest (IdP-initiated
// single logout) to the trusted service provider: by default issued now,
// without NotOnOrAfter; each field lets a test move one.
type Logout struct {
	// NameID is the transient NameID of the session that ended.
	NameID string
	// IssueInstant is when it was issued (now if zero).
	IssueInstant time.Time
	// NotOnOrAfter bounds its use (absent if zero).
	NotOnOrAfter time.Time
}

// LogoutRequest builds the IdP's own signed LogoutRequest (IdP-initiated
// single logout, HTTP-POST binding) for the session of nameID at the
// trusted service provider; it returns the XML and the SP's endpoint.
func (p *IdP) LogoutRequest(nameID string) ([]byte, string, error) {
	return p.BuildLogout(Logout{NameID: nameID})
}

// BuildLogout builds the LogoutRequest l, signed for the HTTP-POST binding
// (an enveloped signature after the Issuer); it returns the XML and the
// SP's endpoint.
func (p *IdP) BuildLogout(l Logout) ([]byte, string, error) {
	doc, req, slo, err := p.logoutRequest(l)
	if err != nil {
		return nil, "", err
	}
	if err := sign(req, p.kp); err != nil {
		return nil, "", err
	}
	b, err := doc.WriteToBytes()
	return b, slo, err
}

// LogoutRedirect is the LogoutRequest l for the HTTP-Redirect binding: the
// SP's endpoint with the deflated request, relay as RelayState and the
// signature in the query.
func (p *IdP) LogoutRedirect(l Logout, relay string) (string, error) {
	doc, _, slo, err := p.logoutRequest(l)
	if err != nil {
		return "", err
	}
	b, err := doc.WriteToBytes()
	if err != nil {
		return "", err
	}
	return redirectURL(slo, "SAMLRequest", b, relay, p.kp)
}

// logoutRequest builds the unsigned LogoutRequest l.
func (p *IdP) logoutRequest(l Logout) (*etree.Document, *etree.Element, string, error) {
	s, err := p.trusted()
	if err != nil {
		return nil, nil, "", err
	}
	issued := l.IssueInstant
	if issued.IsZero() {
		issued = p.cfg.Now()
	}
	doc := etree.NewDocument()
	req := doc.CreateElement("samlp:LogoutRequest")
	req.CreateAttr("xmlns:samlp", nsProtocol)
	req.CreateAttr("xmlns:saml", nsAssertion)
	req.CreateAttr("ID", newID())
	req.CreateAttr("Version", "2.0")
	req.CreateAttr("IssueInstant", samlTime(issued))
	if !l.NotOnOrAfter.IsZero() {
		req.CreateAttr("NotOnOrAfter", samlTime(l.NotOnOrAfter))
	}
	req.CreateAttr("Destination", s.SLO)
	issuer(req, p.cfg.EntityID)
	nid := req.CreateElement("saml:NameID")
	nid.CreateAttr("Format", formatTransient)
	nid.CreateAttr("NameQualifier", p.cfg.EntityID)
	nid.SetText(l.NameID)
	return doc, req, s.SLO, nil
}

// LogoutResponse builds a signed LogoutResponse (HTTP-POST binding, status
// Success) answering the request whose ID is inResponseTo, for the trusted
// service provider; it returns the XML and the SP's endpoint. Tests use it
// to answer a request the identity provider never received.
func (p *IdP) LogoutResponse(inResponseTo string) ([]byte, string, error) {
	s, err := p.trusted()
	if err != nil {
		return nil, "", err
	}
	doc := etree.NewDocument()
	resp := doc.CreateElement("samlp:LogoutResponse")
	resp.CreateAttr("xmlns:samlp", nsProtocol)
	resp.CreateAttr("xmlns:saml", nsAssertion)
	resp.CreateAttr("ID", newID())
	resp.CreateAttr("Version", "2.0")
	resp.CreateAttr("IssueInstant", samlTime(p.cfg.Now()))
	resp.CreateAttr("Destination", s.SLO)
	resp.CreateAttr("InResponseTo", inResponseTo)
	issuer(resp, p.cfg.EntityID)
	resp.CreateElement("samlp:Status").CreateElement("samlp:StatusCode").CreateAttr("Value", statusSuccess)
	if err := sign(resp, p.kp); err != nil {
		return nil, "", err
	}
	b, err := doc.WriteToBytes()
	return b, s.SLO, err
}

// pendingLogin is an AuthnRequest waiting for the citizen's choice.
type pendingLogin struct {
	RequestID, Relay, Level string
	At                      time.Time
}

// New makes a test identity provider with a fresh key.
func New(cfg Config) (*IdP, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var kp Keypair
	if cfg.Keypair != nil {
		kp = *cfg.Keypair
	} else {
		var err error
		if kp, err = NewKeypair("Ponte test IdP", cfg.Now()); err != nil {
			return nil, err
		}
	}
	return &IdP{cfg: cfg, kp: kp, users: cfg.Users, pending: map[string]pendingLogin{}}, nil
}

// EntityID is the identity provider's entityID.
func (p *IdP) EntityID() string { return p.cfg.EntityID }

// Keypair is its signing key and certificate.
func (p *IdP) Keypair() Keypair { return p.kp }

// SetUsers replaces the citizens it knows.
func (p *IdP) SetUsers(us []User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users = append([]User(nil), us...)
}

// Users are the citizens it knows.
func (p *IdP) Users() []User {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]User(nil), p.users...)
}

// Metadata is the identity provider's metadata: SSO and SLO for both
// bindings, its signing certificate, the transient NameIDFormat.
func (p *IdP) Metadata() []byte {
	doc := etree.NewDocument()
	ed := doc.CreateElement("md:EntityDescriptor")
	ed.CreateAttr("xmlns:md", nsMetadata)
	ed.CreateAttr("xmlns:ds", nsDSig)
	ed.CreateAttr("entityID", p.cfg.EntityID)
	ed.CreateAttr("ID", newID())
	d := ed.CreateElement("md:IDPSSODescriptor")
	d.CreateAttr("protocolSupportEnumeration", nsProtocol)
	d.CreateAttr("WantAuthnRequestsSigned", "true")
	kd := d.CreateElement("md:KeyDescriptor")
	kd.CreateAttr("use", "signing")
	kd.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").
		SetText(base64.StdEncoding.EncodeToString(p.kp.Cert.Raw))
	for _, b := range []string{bindingPOST, bindingRedirect} {
		s := d.CreateElement("md:SingleLogoutService")
		s.CreateAttr("Binding", b)
		s.CreateAttr("Location", p.cfg.BaseURL+"/slo")
	}
	d.CreateElement("md:NameIDFormat").SetText(formatTransient)
	for _, b := range []string{bindingPOST, bindingRedirect} {
		s := d.CreateElement("md:SingleSignOnService")
		s.CreateAttr("Binding", b)
		s.CreateAttr("Location", p.cfg.BaseURL+"/sso")
	}
	org := ed.CreateElement("md:Organization")
	for _, t := range []string{"md:OrganizationName", "md:OrganizationDisplayName"} {
		e := org.CreateElement(t)
		e.CreateAttr("xml:lang", "it")
		e.SetText("Gestore SPID di prova")
	}
	e := org.CreateElement("md:OrganizationURL")
	e.CreateAttr("xml:lang", "it")
	e.SetText(p.cfg.BaseURL)
	b, _ := doc.WriteToBytes()
	return b
}

// TrustSP reads a service provider's metadata: its entityID, ACS (index 0),
// SLO and signing certificate. The test identity provider answers only it.
func (p *IdP) TrustSP(metadata []byte) error {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(metadata); err != nil {
		return err
	}
	ed := doc.Root()
	if ed == nil {
		return errors.New("testidp: no SP metadata")
	}
	s := &sp{EntityID: ed.SelectAttrValue("entityID", "")}
	for _, acs := range ed.FindElements("./SPSSODescriptor/AssertionConsumerService") {
		if acs.SelectAttrValue("index", "") == "0" {
			s.ACS = acs.SelectAttrValue("Location", "")
		}
	}
	if slo := ed.FindElement("./SPSSODescriptor/SingleLogoutService"); slo != nil {
		s.SLO = slo.SelectAttrValue("Location", "")
	}
	c := ed.FindElement("./SPSSODescriptor/KeyDescriptor/KeyInfo/X509Data/X509Certificate")
	if c == nil {
		return errors.New("testidp: no SP certificate")
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Text()), ""))
	if err != nil {
		return err
	}
	if s.Cert, err = x509.ParseCertificate(der); err != nil {
		return err
	}
	if s.EntityID == "" || s.ACS == "" {
		return errors.New("testidp: the SP metadata lacks entityID or ACS")
	}
	p.mu.Lock()
	p.sp = s
	p.mu.Unlock()
	return nil
}

func (p *IdP) trusted() (*sp, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sp == nil {
		return nil, errors.New("testidp: no service provider trusted yet")
	}
	return p.sp, nil
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "_" + hex.EncodeToString(b)
}

func samlTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// sign signs el with kp (RSA-SHA256, exclusive c14n) and puts the
// Signature right after el's Issuer.
func sign(el *etree.Element, kp Keypair) error {
	ctx, err := dsig.NewSigningContext(kp.Key, [][]byte{kp.Cert.Raw})
	if err != nil {
		return err
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		return err
	}
	sig, err := ctx.ConstructSignature(el, true)
	if err != nil {
		return err
	}
	at := 0
	for _, c := range el.ChildElements() {
		if c.Tag == "Issuer" {
			at = c.Index() + 1
		}
	}
	el.InsertChildAt(at, sig)
	return nil
}

// redirectURL encodes and signs a message for the HTTP-Redirect binding.
func redirectURL(endpoint, param string, msg []byte, relay string, kp Keypair) (string, error) {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	_, _ = w.Write(msg)
	_ = w.Close()
	q := param + "=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	if relay != "" {
		q += "&RelayState=" + url.QueryEscape(relay)
	}
	q += "&SigAlg=" + url.QueryEscape(dsig.RSASHA256SignatureMethod)
	sum := sha256.Sum256([]byte(q))
	s, err := rsa.SignPKCS1v15(rand.Reader, kp.Key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	sep := "?"
	if strings.Contains(endpoint, "?") {
		sep = "&"
	}
	return endpoint + sep + q + "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(s)), nil
}

// readRedirect reads a message of the HTTP-Redirect binding signed by cert.
func readRedirect(rawQuery, param string, cert *x509.Certificate) ([]byte, url.Values, error) {
	vals, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, nil, err
	}
	var signed []string
	for _, k := range []string{param, "RelayState", "SigAlg"} {
		for part := range strings.SplitSeq(rawQuery, "&") {
			if strings.HasPrefix(part, k+"=") {
				signed = append(signed, part)
			}
		}
	}
	sig, err := base64.StdEncoding.DecodeString(vals.Get("Signature"))
	if err != nil {
		return nil, nil, err
	}
	sum := sha256.Sum256([]byte(strings.Join(signed, "&")))
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil {
		return nil, nil, errors.New("testidp: the request's signature does not verify")
	}
	b, err := base64.StdEncoding.DecodeString(vals.Get(param))
	if err != nil {
		return nil, nil, err
	}
	msg, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(b)), 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("testidp: inflating: %w", err)
	}
	return msg, vals, nil
}

type x509Cert = x509.Certificate

var errBadRequest = errors.New("testidp: not a request of the trusted SP")
