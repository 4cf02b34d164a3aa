package spid

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/jonboulle/clockwork"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// SAML and SPID names.
const (
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsMetadata  = "urn:oasis:names:tc:SAML:2.0:metadata"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"
	nsSPID      = "https://spid.gov.it/saml-extensions"

	formatEntity    = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
	formatTransient = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
	bindingPOST     = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
	bindingRedirect = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
	cmBearer        = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	statusSuccess   = "urn:oasis:names:tc:SAML:2.0:status:Success"

	// SpidL1..3 are the SPID levels (AuthnContextClassRef).
	SpidL1 = "https://www.spid.gov.it/SpidL1"
	SpidL2 = "https://www.spid.gov.it/SpidL2"
	SpidL3 = "https://www.spid.gov.it/SpidL3"
)

// spidLevel maps a SPID AuthnContextClassRef to its number; 0 if unknown.
func spidLevel(ref string) int {
	switch ref {
	case SpidL1:
		return 1
	case SpidL2:
		return 2
	case SpidL3:
		return 3
	}
	return 0
}

// newID makes a SAML ID: "_" and 32 hex digits (SPID: an ID must not start
// with a digit; xs:ID is an NCName).
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "_" + hex.EncodeToString(b)
}

// samlTime formats an instant as SPID wants it: UTC, no fraction.
func samlTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// checkXML refuses what a SAML message never needs and a hostile one uses:
// a DTD (and with it entity declarations and expansion), processing
// instructions other than the XML declaration, and input that is not
// well-formed. It reads tokens only: nothing is expanded.
func checkXML(b []byte) error { return checkXMLLimits(b, 64, 10000) }

// checkXMLLimits is checkXML with limits on depth and element count.
func checkXMLLimits(b []byte, maxDepth, maxElements int) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	depth, elements := 0, 0
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("not well-formed XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return errors.New("a DTD or other directive")
		case xml.ProcInst:
			if t.Target != "xml" {
				return fmt.Errorf("a processing instruction %q", t.Target)
			}
		case xml.StartElement:
			depth++
			elements++
			if depth > maxDepth || elements > maxElements {
				return errors.New("too deep or too many elements")
			}
		case xml.EndElement:
			depth--
		}
	}
	return nil
}

// parseXML checks and parses a SAML message.
func parseXML(b []byte) (*etree.Element, error) {
	if err := checkXML(b); err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	doc.ReadSettings.Permissive = false
	if err := doc.ReadFromBytes(b); err != nil {
		return nil, fmt.Errorf("not well-formed XML: %w", err)
	}
	if doc.Root() == nil {
		return nil, errors.New("no root element")
	}
	return doc.Root(), nil
}

// is reports whether el is ns:local.
func is(el *etree.Element, ns, local string) bool {
	return el != nil && el.Tag == local && el.NamespaceURI() == ns
}

// children returns the child elements of el named ns:local.
func children(el *etree.Element, ns, local string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if is(c, ns, local) {
			out = append(out, c)
		}
	}
	return out
}

// child returns the only child ns:local of el; nil if there is none, and an
// error if there are several (an ambiguous message).
func child(el *etree.Element, ns, local string) (*etree.Element, error) {
	cs := children(el, ns, local)
	switch len(cs) {
	case 0:
		return nil, nil
	case 1:
		return cs[0], nil
	}
	return nil, fmt.Errorf("%d %s elements in %s", len(cs), local, el.Tag)
}

// attr returns an attribute's value and whether it is there.
func attr(el *etree.Element, name string) (string, bool) {
	a := el.SelectAttr(name)
	if a == nil || a.Space != "" {
		return "", false
	}
	return a.Value, true
}

// clockOf makes a goxmldsig clock from an injected Now, for certificate
// validity (crewjam's and goxmldsig's package-level clocks stay untouched).
func clockOf(now func() time.Time) *dsig.Clock {
	return dsig.NewFakeClock(nowClock{Clock: clockwork.NewRealClock(), now: now})
}

type nowClock struct {
	clockwork.Clock
	now func() time.Time
}

func (c nowClock) Now() time.Time { return c.now() }

// verifySigned checks that el carries exactly one enveloped Signature as a
// direct child, whose one Reference points at el's own ID, made by one of
// certs with RSA-SHA256 (or stronger), and returns what the signature covers,
// parsed from the verified bytes: the only element a caller may read (no
// signature wrapping). errUnsigned means el has no Signature.
func verifySigned(el *etree.Element, certs []*x509.Certificate, clock *dsig.Clock) (*etree.Element, error) {
	sigs := children(el, nsDSig, "Signature")
	if len(sigs) == 0 {
		return nil, errUnsigned
	}
	if len(sigs) > 1 {
		return nil, errors.New("several signatures")
	}
	id, _ := attr(el, "ID")
	if id == "" {
		return nil, errors.New("a signed element without ID")
	}
	refs := sigs[0].FindElements("./SignedInfo/Reference")
	if len(refs) != 1 || refs[0].SelectAttrValue("URI", "") != "#"+id {
		return nil, errors.New("the signature does not reference the element's ID")
	}
	if m := sigs[0].FindElement("./SignedInfo/SignatureMethod"); m == nil || !strongAlgorithms[m.SelectAttrValue("Algorithm", "")] {
		return nil, errors.New("the signature algorithm is not RSA-SHA256 or stronger")
	}
	ctx, err := etreeutils.NSBuildParentContext(el)
	if err != nil {
		return nil, err
	}
	if ctx, err = ctx.SubContext(el); err != nil {
		return nil, err
	}
	detached, err := etreeutils.NSDetatch(ctx, el)
	if err != nil {
		return nil, err
	}
	dropEmptyKeyInfo(detached)
	var last error
	for _, cert := range certs {
		vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
		vc.IdAttribute = "ID"
		vc.Clock = clock
		signed, err := vc.Validate(detached)
		if err == nil {
			return signed, nil
		}
		last = err
	}
	if last == nil {
		last = errors.New("no certificate to check it with")
	}
	return nil, fmt.Errorf("signature: %w", last)
}

var errUnsigned = errors.New("not signed")

// dropEmptyKeyInfo removes, from the one Signature child of el, every
// KeyInfo that holds no certificate: xmlsec1, which signs spid-sp-test's
// responses and many identity providers', leaves an empty X509Certificate,
// which names no key; the caller then tries each trusted certificate.
// KeyInfo is outside SignedInfo: nothing the signature covers changes. el
// must be a detached copy, never the element a caller goes on reading.
func dropEmptyKeyInfo(el *etree.Element) {
	ds := children(el, nsDSig, "Signature")
	if len(ds) != 1 {
		return
	}
	for _, ki := range children(ds[0], nsDSig, "KeyInfo") {
		if c := ki.FindElement("./X509Data/X509Certificate"); c == nil || strings.TrimSpace(c.Text()) == "" {
			ds[0].RemoveChild(ki)
		}
	}
}

var strongAlgorithms = map[string]bool{
	dsig.RSASHA256SignatureMethod: true, dsig.RSASHA384SignatureMethod: true, dsig.RSASHA512SignatureMethod: true,
}

// signEnveloped signs el (which must carry its ID and declare the
// namespaces it uses) with kp, RSA-SHA256 and exclusive c14n, and puts the
// Signature at index at among el's children (SAML: right after the Issuer;
// SPID metadata: first).
func signEnveloped(el *etree.Element, kp Keypair, at int) error {
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
	el.InsertChildAt(at, sig)
	return nil
}

// childIndex is the token index just after el's first child element
// ns:local, or 0.
func childIndex(el *etree.Element, ns, local string) int {
	if c, _ := child(el, ns, local); c != nil {
		return c.Index() + 1
	}
	return 0
}
