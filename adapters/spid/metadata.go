package spid

import (
	"encoding/base64"

	"github.com/beevik/etree"
)

// requestedAttributes are what Ponte asks of a SPID identity provider
// (AttributeConsumingService index 0): the codice fiscale links the citizen,
// the rest fills the claims.
var requestedAttributes = []string{"fiscalNumber", "name", "familyName", "dateOfBirth", "gender", "email", "mobilePhone", "spidCode"}

// spMetadata describes the SP for its metadata.
type spMetadata struct {
	EntityID    string
	ACS, SLO    string
	Keypair     Keypair
	ServiceName string
	Org         Organization
	Contact     Contact
}

// build makes the SP's metadata and signs it, as the SPID technical rules
// (Regole tecniche, "Metadata dei Service Provider") and notice 29 v3 ask:
// an EntityDescriptor with an ID whose first child is the Signature;
// AuthnRequestsSigned and WantAssertionsSigned; the signing certificate;
// SingleLogoutService (POST and Redirect); the transient NameIDFormat; one
// AssertionConsumerService, index 0, default, HTTP-POST; an
// AttributeConsumingService index 0; the Organization in Italian; a
// ContactPerson "other" with the SPID extensions of a public administration
// (IPACode, Public).
func (m spMetadata) build() ([]byte, error) {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	ed := doc.CreateElement("md:EntityDescriptor")
	ed.CreateAttr("xmlns:md", nsMetadata)
	ed.CreateAttr("xmlns:ds", nsDSig)
	ed.CreateAttr("xmlns:spid", nsSPID)
	ed.CreateAttr("entityID", m.EntityID)
	ed.CreateAttr("ID", newID())

	sp := ed.CreateElement("md:SPSSODescriptor")
	sp.CreateAttr("protocolSupportEnumeration", nsProtocol)
	sp.CreateAttr("AuthnRequestsSigned", "true")
	sp.CreateAttr("WantAssertionsSigned", "true")
	kd := sp.CreateElement("md:KeyDescriptor")
	kd.CreateAttr("use", "signing")
	kd.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").
		SetText(base64.StdEncoding.EncodeToString(m.Keypair.Cert.Raw))
	for _, b := range []string{bindingPOST, bindingRedirect} {
		slo := sp.CreateElement("md:SingleLogoutService")
		slo.CreateAttr("Binding", b)
		slo.CreateAttr("Location", m.SLO)
	}
	sp.CreateElement("md:NameIDFormat").SetText(formatTransient)
	acs := sp.CreateElement("md:AssertionConsumerService")
	acs.CreateAttr("index", "0")
	acs.CreateAttr("isDefault", "true")
	acs.CreateAttr("Binding", bindingPOST)
	acs.CreateAttr("Location", m.ACS)
	acsvc := sp.CreateElement("md:AttributeConsumingService")
	acsvc.CreateAttr("index", "0")
	name := acsvc.CreateElement("md:ServiceName")
	name.CreateAttr("xml:lang", "it")
	name.SetText(m.ServiceName)
	for _, a := range requestedAttributes {
		ra := acsvc.CreateElement("md:RequestedAttribute")
		ra.CreateAttr("Name", a)
	}

	org := ed.CreateElement("md:Organization")
	for _, f := range []struct{ tag, value string }{
		{"md:OrganizationName", m.Org.Name}, {"md:OrganizationDisplayName", m.Org.DisplayName}, {"md:OrganizationURL", m.Org.URL},
	} {
		el := org.CreateElement(f.tag)
		el.CreateAttr("xml:lang", "it")
		el.SetText(f.value)
	}
	cp := ed.CreateElement("md:ContactPerson")
	cp.CreateAttr("contactType", "other")
	ext := cp.CreateElement("md:Extensions")
	ext.CreateElement("spid:IPACode").SetText(m.Contact.IPACode)
	ext.CreateElement("spid:Public")
	cp.CreateElement("md:EmailAddress").SetText(m.Contact.Email)
	if m.Contact.Phone != "" {
		cp.CreateElement("md:TelephoneNumber").SetText(m.Contact.Phone)
	}

	if err := signEnveloped(ed, m.Keypair, 0); err != nil {
		return nil, err
	}
	return doc.WriteToBytes()
}
