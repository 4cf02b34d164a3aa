//go:build !fuzzing

package spid_test

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// TestMetadata checks the SP metadata field by field against the SPID
// technical rules ("Metadata dei Service Provider") and notice 29 v3.
func TestMetadata(t *testing.T) {
	s := newSite(t, storagetest.SQLite(t))
	resp, body := oidctest.NewBrowser(t).Get(s.env.Issuer + "/login/spid/metadata")
	if ct := resp.Header.Get("Content-Type"); ct != "application/samlmetadata+xml" {
		t.Errorf("Content-Type %q", ct)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromString(body); err != nil {
		t.Fatal(err)
	}
	ed := doc.Root()
	must := func(ok bool, what string) {
		t.Helper()
		if !ok {
			t.Errorf("metadata: %s", what)
		}
	}
	must(ed.Tag == "EntityDescriptor" && ed.NamespaceURI() == "urn:oasis:names:tc:SAML:2.0:metadata", "the root is an md:EntityDescriptor")
	must(ed.SelectAttrValue("entityID", "") == s.env.Issuer+"/login/spid/metadata", "entityID")
	must(ed.SelectAttrValue("ID", "") != "", "the EntityDescriptor has an ID")
	must(len(ed.ChildElements()) > 0 && ed.ChildElements()[0].Tag == "Signature", "the Signature is the first child")
	sp := ed.FindElement("./SPSSODescriptor")
	must(sp != nil, "an SPSSODescriptor")
	must(sp.SelectAttrValue("AuthnRequestsSigned", "") == "true", "AuthnRequestsSigned true")
	must(sp.SelectAttrValue("WantAssertionsSigned", "") == "true", "WantAssertionsSigned true")
	must(sp.SelectAttrValue("protocolSupportEnumeration", "") == "urn:oasis:names:tc:SAML:2.0:protocol", "protocolSupportEnumeration")
	kd := sp.FindElement("./KeyDescriptor[@use='signing']/KeyInfo/X509Data/X509Certificate")
	must(kd != nil, "a signing KeyDescriptor with a certificate")
	acs := sp.FindElements("./AssertionConsumerService")
	must(len(acs) == 1 && acs[0].SelectAttrValue("index", "") == "0" && acs[0].SelectAttrValue("isDefault", "") == "true" &&
		acs[0].SelectAttrValue("Binding", "") == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" &&
		acs[0].SelectAttrValue("Location", "") == s.env.Issuer+"/login/spid/acs", "one ACS, index 0, default, HTTP-POST, at /login/spid/acs")
	must(len(sp.FindElements("./SingleLogoutService")) == 2, "SingleLogoutService for POST and Redirect")
	must(sp.FindElement("./NameIDFormat") != nil && sp.FindElement("./NameIDFormat").Text() == "urn:oasis:names:tc:SAML:2.0:nameid-format:transient", "NameIDFormat transient")
	acsvc := sp.FindElement("./AttributeConsumingService[@index='0']")
	must(acsvc != nil && acsvc.FindElement("./ServiceName[@xml:lang='it']") != nil, "AttributeConsumingService 0 with an Italian ServiceName")
	must(acsvc != nil && acsvc.FindElement("./RequestedAttribute[@Name='fiscalNumber']") != nil, "fiscalNumber requested")
	for _, f := range []string{"OrganizationName", "OrganizationDisplayName", "OrganizationURL"} {
		must(ed.FindElement("./Organization/"+f+"[@xml:lang='it']") != nil, "Organization/"+f+" in Italian")
	}
	cp := ed.FindElement("./ContactPerson[@contactType='other']")
	must(cp != nil, "a ContactPerson other")
	must(cp != nil && cp.FindElement("./Extensions/IPACode") != nil && cp.FindElement("./Extensions/IPACode").Text() == "inps", "spid:IPACode")
	must(cp != nil && cp.FindElement("./Extensions/Public") != nil && cp.FindElement("./Extensions/Private") == nil, "spid:Public")
	must(cp != nil && cp.FindElement("./EmailAddress") != nil, "EmailAddress")
	// The signature verifies with the SP's own certificate.
	der, _ := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(kd.Text()), ""))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
	vc.IdAttribute = "ID"
	if _, err := vc.Validate(ed); err != nil {
		t.Errorf("the metadata's signature: %v", err)
	}
	sm := ed.FindElement("./Signature/SignedInfo/SignatureMethod")
	must(sm != nil && sm.SelectAttrValue("Algorithm", "") == dsig.RSASHA256SignatureMethod, "RSA-SHA256")
	// The certificate: SPID notice 29 v3 for a public administration.
	must(cert.PublicKey.(*rsa.PublicKey).N.BitLen() >= 2048, "RSA of 2048 bits or more")
	must(cert.KeyUsage&x509.KeyUsageDigitalSignature != 0 && cert.KeyUsage&x509.KeyUsageContentCommitment != 0, "keyUsage digitalSignature, nonRepudiation")
	var policies, orgID, uri bool
	for _, e := range cert.Extensions {
		if e.Id.String() == "2.5.29.32" && !e.Critical {
			policies = bytes.Contains(e.Value, []byte("cert_SP_Pub")) && bytes.Contains(e.Value, []byte("agIDcert"))
		}
	}
	for _, n := range cert.Subject.Names {
		switch n.Type.String() {
		case "2.5.4.97":
			orgID = n.Value == "PA:IT-inps"
		case "2.5.4.83":
			uri = n.Value == s.env.Issuer+"/login/spid/metadata"
		}
	}
	must(policies, "certificatePolicies agIDcert and cert_SP_Pub, not critical")
	must(orgID, "organizationIdentifier PA:IT-<IPA code>")
	must(uri, "uri = the entityID")
}

var idRE = regexp.MustCompile(` ID="([^"]+)"`)

// pending is one AuthnRequest on its way to the test identity provider.
type pending struct {
	b        *oidctest.Browser
	rp       *oidctest.RP
	verifier string
	redirect *url.URL // the 302 to the identity provider
	xml      string   // the AuthnRequest
	id       string
	relay    string
}

// startLogin starts an authorization in a new browser and stops at the
// AuthnRequest on its way to the identity provider.
func (s *site) startLogin(t testing.TB) *pending {
	t.Helper()
	p := &pending{b: oidctest.NewBrowser(t), rp: s.rp(), verifier: oauth2.GenerateVerifier()}
	u := p.rp.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(p.verifier),
		oauth2.SetAuthURLParam("idp_hint", "spid:"+s.idp.EntityID()))
	p.b.Client.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), s.idpSrv.URL) {
			p.redirect = req.URL
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, body := p.b.Get(u)
	p.b.Client.CheckRedirect = oidctest.NewBrowser(t).Client.CheckRedirect
	if resp.StatusCode != http.StatusFound || p.redirect == nil {
		t.Fatalf("no redirect to the identity provider: %d %.300s", resp.StatusCode, body)
	}
	raw, err := base64.StdEncoding.DecodeString(p.redirect.Query().Get("SAMLRequest"))
	if err != nil {
		t.Fatal(err)
	}
	x, err := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	p.xml = string(x)
	p.id = idRE.FindStringSubmatch(p.xml)[1]
	p.relay = p.redirect.Query().Get("RelayState")
	return p
}

// TestAuthnRequest checks the AuthnRequest field by field against the SPID
// technical rules ("AuthnRequest") and its Redirect-binding signature.
func TestAuthnRequest(t *testing.T) {
	s := newSite(t, storagetest.SQLite(t))
	p := s.startLogin(t)
	doc := etree.NewDocument()
	if err := doc.ReadFromString(p.xml); err != nil {
		t.Fatal(err)
	}
	req := doc.Root()
	must := func(ok bool, what string) {
		t.Helper()
		if !ok {
			t.Errorf("AuthnRequest: %s\n%s", what, p.xml)
		}
	}
	a := func(name string) string { return req.SelectAttrValue(name, "\x00absent") }
	must(req.Tag == "AuthnRequest" && req.NamespaceURI() == "urn:oasis:names:tc:SAML:2.0:protocol", "samlp:AuthnRequest")
	must(p.id != "" && !strings.ContainsAny(p.id[:1], "0123456789"), "an ID not starting with a digit")
	must(a("Version") == "2.0", "Version 2.0")
	ii, err := time.Parse("2006-01-02T15:04:05Z", a("IssueInstant"))
	must(err == nil && time.Since(ii) < time.Minute, "IssueInstant in UTC, now")
	must(a("Destination") == s.idpSrv.URL+"/sso", "Destination is the identity provider's SSO endpoint")
	must(a("ForceAuthn") == "true", "ForceAuthn true (SPID level 2)")
	must(a("AssertionConsumerServiceIndex") == "0" && a("AttributeConsumingServiceIndex") == "0", "ACS and AttributeConsumingService indexes")
	must(a("AssertionConsumerServiceURL") == "\x00absent" && a("ProtocolBinding") == "\x00absent", "no ACS URL or ProtocolBinding beside the index")
	iss := req.FindElement("./Issuer")
	must(iss != nil && iss.Text() == s.env.Issuer+"/login/spid/metadata" &&
		iss.SelectAttrValue("Format", "") == "urn:oasis:names:tc:SAML:2.0:nameid-format:entity" &&
		iss.SelectAttrValue("NameQualifier", "") == s.env.Issuer+"/login/spid/metadata", "Issuer with Format entity and NameQualifier")
	pol := req.FindElement("./NameIDPolicy")
	must(pol != nil && pol.SelectAttrValue("Format", "") == "urn:oasis:names:tc:SAML:2.0:nameid-format:transient", "NameIDPolicy transient")
	must(pol != nil && pol.SelectAttr("AllowCreate") == nil, "no AllowCreate")
	rac := req.FindElement("./RequestedAuthnContext")
	must(rac != nil && rac.SelectAttrValue("Comparison", "") == "minimum", "Comparison minimum")
	must(rac != nil && rac.FindElement("./AuthnContextClassRef") != nil && rac.FindElement("./AuthnContextClassRef").Text() == "https://www.spid.gov.it/SpidL2", "SpidL2")
	must(p.relay != "" && !strings.Contains(p.relay, "http") && !strings.Contains(p.relay, "challenge"), "an opaque RelayState")
	// The query's signature (saml-bindings §3.4.4.1), RSA-SHA256, by the SP's key.
	q := p.redirect.RawQuery
	i := strings.Index(q, "&Signature=")
	must(p.redirect.Query().Get("SigAlg") == dsig.RSASHA256SignatureMethod, "SigAlg RSA-SHA256")
	sig, _ := base64.StdEncoding.DecodeString(p.redirect.Query().Get("Signature"))
	sum := sha256.Sum256([]byte(q[:i]))
	cert := spCert(t, s)
	if err := rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("the AuthnRequest's signature: %v", err)
	}
}

// spCert is the SP's certificate, from its metadata.
func spCert(t testing.TB, s *site) *x509.Certificate {
	t.Helper()
	_, body := oidctest.NewBrowser(t).Get(s.env.Issuer + "/login/spid/metadata")
	doc := etree.NewDocument()
	_ = doc.ReadFromString(body)
	c := doc.FindElement("//KeyDescriptor/KeyInfo/X509Data/X509Certificate")
	der, _ := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Text()), ""))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
