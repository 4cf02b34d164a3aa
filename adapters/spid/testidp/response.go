package testidp

import (
	"time"

	"github.com/beevik/etree"
)

// Response describes one SAML Response: by default a good SPID level 2
// answer to RequestID for the trusted service provider; each field (and
// Mutate) lets a test break one rule.
type Response struct {
	// RequestID is the AuthnRequest's ID (InResponseTo).
	RequestID string
	// User is the citizen; Attributes, if set, replace the user's.
	User       User
	Attributes map[string]string
	// Level is the AuthnContextClassRef (SpidL2 if empty).
	Level string
	// IssueInstant of the Response and Assertion (now if zero).
	IssueInstant time.Time
	// Status and StatusMessage, for a failure (ErrorCode nr19 ...).
	Status, SubStatus, StatusMessage string
	// NoAssertion leaves the Assertion out of a successful Response.
	NoAssertion bool
	// UnsignedResponse and UnsignedAssertion leave a signature out.
	UnsignedResponse, UnsignedAssertion bool
	// SignWith signs with another key (the zero value: the IdP's own).
	SignWith *Keypair
	// Mutate changes the Response and its Assertion before they are signed.
	Mutate func(resp, assertion *etree.Element)
	// AfterSigning changes the signed Response (signature wrapping).
	AfterSigning func(doc *etree.Document)
}

// Build makes the Response XML, signed as asked.
func (p *IdP) Build(r Response) ([]byte, error) {
	s, err := p.trusted()
	if err != nil {
		return nil, err
	}
	now := p.cfg.Now().UTC()
	issued := r.IssueInstant
	if issued.IsZero() {
		issued = now
	}
	level := r.Level
	if level == "" {
		level = SpidL2
	}
	kp := p.kp
	if r.SignWith != nil {
		kp = *r.SignWith
	}
	doc := etree.NewDocument()
	resp := doc.CreateElement("samlp:Response")
	resp.CreateAttr("xmlns:samlp", nsProtocol)
	resp.CreateAttr("xmlns:saml", nsAssertion)
	resp.CreateAttr("ID", newID())
	resp.CreateAttr("Version", "2.0")
	resp.CreateAttr("IssueInstant", samlTime(issued))
	resp.CreateAttr("Destination", s.ACS)
	resp.CreateAttr("InResponseTo", r.RequestID)
	issuer(resp, p.cfg.EntityID)
	st := resp.CreateElement("samlp:Status")
	code := st.CreateElement("samlp:StatusCode")
	if r.Status != "" {
		code.CreateAttr("Value", r.Status)
		if r.SubStatus != "" {
			code.CreateElement("samlp:StatusCode").CreateAttr("Value", r.SubStatus)
		}
		st.CreateElement("samlp:StatusMessage").SetText(r.StatusMessage)
		if r.Mutate != nil {
			r.Mutate(resp, nil)
		}
		if !r.UnsignedResponse {
			if err := sign(resp, kp); err != nil {
				return nil, err
			}
		}
		return doc.WriteToBytes()
	}
	code.CreateAttr("Value", statusSuccess)

	a := etree.NewElement("saml:Assertion")
	a.CreateAttr("xmlns:saml", nsAssertion)
	a.CreateAttr("ID", newID())
	a.CreateAttr("Version", "2.0")
	a.CreateAttr("IssueInstant", samlTime(issued))
	issuer(a, p.cfg.EntityID)
	subj := a.CreateElement("saml:Subject")
	nid := subj.CreateElement("saml:NameID")
	nid.CreateAttr("Format", formatTransient)
	nid.CreateAttr("NameQualifier", p.cfg.EntityID)
	nameID := newID()
	nid.SetText(nameID)
	p.mu.Lock()
	p.lastNameID = nameID
	p.mu.Unlock()
	sc := subj.CreateElement("saml:SubjectConfirmation")
	sc.CreateAttr("Method", "urn:oasis:names:tc:SAML:2.0:cm:bearer")
	scd := sc.CreateElement("saml:SubjectConfirmationData")
	scd.CreateAttr("InResponseTo", r.RequestID)
	scd.CreateAttr("NotOnOrAfter", samlTime(now.Add(5*time.Minute)))
	scd.CreateAttr("Recipient", s.ACS)
	c := a.CreateElement("saml:Conditions")
	c.CreateAttr("NotBefore", samlTime(issued))
	c.CreateAttr("NotOnOrAfter", samlTime(now.Add(5*time.Minute)))
	c.CreateElement("saml:AudienceRestriction").CreateElement("saml:Audience").SetText(s.EntityID)
	as := a.CreateElement("saml:AuthnStatement")
	as.CreateAttr("AuthnInstant", samlTime(now))
	as.CreateAttr("SessionIndex", newID())
	as.CreateElement("saml:AuthnContext").CreateElement("saml:AuthnContextClassRef").SetText(level)
	attrs := r.Attributes
	if attrs == nil {
		attrs = r.User.attributes()
	}
	stmt := a.CreateElement("saml:AttributeStatement")
	for _, name := range attributeOrder(attrs) {
		at := stmt.CreateElement("saml:Attribute")
		at.CreateAttr("Name", name)
		at.CreateAttr("NameFormat", "urn:oasis:names:tc:SAML:2.0:attrname-format:basic")
		v := at.CreateElement("saml:AttributeValue")
		v.CreateAttr("xmlns:xs", "http://www.w3.org/2001/XMLSchema")
		v.CreateAttr("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance")
		v.CreateAttr("xsi:type", "xs:string")
		v.SetText(attrs[name])
	}
	if r.Mutate != nil {
		r.Mutate(resp, a)
	}
	if !r.UnsignedAssertion {
		if err := sign(a, kp); err != nil {
			return nil, err
		}
	}
	if !r.NoAssertion {
		resp.AddChild(a)
	}
	if !r.UnsignedResponse {
		if err := sign(resp, kp); err != nil {
			return nil, err
		}
	}
	if r.AfterSigning != nil {
		r.AfterSigning(doc)
	}
	return doc.WriteToBytes()
}

func issuer(el *etree.Element, entityID string) {
	iss := el.CreateElement("saml:Issuer")
	iss.CreateAttr("Format", formatEntity)
	iss.SetText(entityID)
}

// attributes are the user's SPID attributes.
func (u User) attributes() map[string]string {
	m := map[string]string{"fiscalNumber": "TINIT-" + u.FiscalNumber, "name": u.GivenName, "familyName": u.FamilyName,
		"spidCode": "TEST" + u.FiscalNumber[:6]}
	if u.Birthdate != "" {
		m["dateOfBirth"] = u.Birthdate
	}
	if u.Gender != "" {
		m["gender"] = u.Gender
	}
	if u.Email != "" {
		m["email"] = u.Email
	}
	if u.Mobile != "" {
		m["mobilePhone"] = u.Mobile
	}
	return m
}

// attributeOrder is a stable order of the attributes.
func attributeOrder(m map[string]string) []string {
	order := []string{"spidCode", "fiscalNumber", "name", "familyName", "dateOfBirth", "gender", "email", "mobilePhone"}
	var out []string
	seen := map[string]bool{}
	for _, k := range order {
		if _, ok := m[k]; ok {
			out = append(out, k)
			seen[k] = true
		}
	}
	for k := range m {
		if !seen[k] {
			out = append(out, k)
		}
	}
	return out
}
