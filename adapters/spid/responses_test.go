//go:build !fuzzing

package spid_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/ponte-id/ponte/adapters/spid/testidp"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage/sqlstore"
)

// answer posts the test identity provider's response r to p's request to
// the ACS, cross-site, in p's browser, with the request's RelayState.
func (s *site) answer(t testing.TB, p *pending, r testidp.Response) (*http.Response, string) {
	t.Helper()
	if r.RequestID == "" {
		r.RequestID = p.id
	}
	raw, err := s.idp.Build(r)
	if err != nil {
		t.Fatal(err)
	}
	return s.postRaw(t, p, base64.StdEncoding.EncodeToString(raw), p.relay)
}

func (s *site) postRaw(t testing.TB, p *pending, samlResponse, relay string) (*http.Response, string) {
	t.Helper()
	return post(t, p.b, s.env.Issuer+"/login/spid/acs", url.Values{"SAMLResponse": {samlResponse}, "RelayState": {relay}})
}

// The mutations of the crafted responses.
func attrSet(path, name, value string) func(resp, a *etree.Element) {
	return func(resp, a *etree.Element) {
		if el := pick(resp, a, path); el != nil {
			el.CreateAttr(name, value)
		}
	}
}

func attrDel(path, name string) func(resp, a *etree.Element) {
	return func(resp, a *etree.Element) {
		if el := pick(resp, a, path); el != nil {
			el.RemoveAttr(name)
		}
	}
}

func drop(path string) func(resp, a *etree.Element) {
	return func(resp, a *etree.Element) {
		if el := pick(resp, a, path); el != nil {
			el.Parent().RemoveChild(el)
		}
	}
}

func setText(path, text string) func(resp, a *etree.Element) {
	return func(resp, a *etree.Element) {
		if el := pick(resp, a, path); el != nil {
			el.SetText(text)
		}
	}
}

// pick finds path: "R" is the Response, "A" the Assertion, "R/x" and "A/x"
// elements below them.
func pick(resp, a *etree.Element, path string) *etree.Element {
	root, rest, _ := strings.Cut(path, "/")
	el := resp
	if root == "A" {
		el = a
	}
	if rest == "" || el == nil {
		return el
	}
	return el.FindElement("./" + rest)
}

func attrs(m map[string]string) map[string]string {
	out := map[string]string{"fiscalNumber": "TINIT-" + mario.FiscalNumber, "name": "Mario", "familyName": "Rossi"}
	for k, v := range m {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// crafted is one response of the matrix: every SPID rule broken one at a
// time, and the good ones.
type crafted struct {
	name   string
	r      testidp.Response
	accept bool
}

func matrix(requestInstant time.Time) []crafted {
	future := time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05Z")
	past := time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04:05Z")
	req := requestInstant.UTC().Format("2006-01-02T15:04:05Z")
	m := func(f ...func(resp, a *etree.Element)) func(resp, a *etree.Element) {
		return func(resp, a *etree.Element) {
			for _, g := range f {
				g(resp, a)
			}
		}
	}
	return []crafted{
		// Good: accepted.
		{"good", testidp.Response{User: mario}, true},
		{"SpidL3 (higher than asked)", testidp.Response{User: mario, Level: "https://www.spid.gov.it/SpidL3"}, true},
		{"Response unsigned, Assertion signed", testidp.Response{User: mario, UnsignedResponse: true}, true},
		{"Response Issuer without Format", testidp.Response{User: mario, Mutate: attrDel("R/Issuer", "Format")}, true},
		{"IssueInstant with milliseconds", testidp.Response{User: mario, Mutate: attrSet("R", "IssueInstant", requestInstant.Add(1500*time.Millisecond).UTC().Format("2006-01-02T15:04:05.000Z"))}, true},
		{"IssueInstant equal to the request's", testidp.Response{User: mario, Mutate: m(attrSet("R", "IssueInstant", req), attrSet("A", "IssueInstant", req))}, true},

		// Signatures.
		{"Assertion unsigned (Response signed)", testidp.Response{User: mario, UnsignedAssertion: true}, false},
		{"nothing signed", testidp.Response{User: mario, UnsignedAssertion: true, UnsignedResponse: true}, false},
		{"signed with another key", testidp.Response{User: mario, SignWith: otherKey()}, false},
		{"Assertion altered after signing", testidp.Response{User: mario, UnsignedResponse: true, AfterSigning: func(d *etree.Document) {
			d.FindElement("//Attribute[@Name='fiscalNumber']/AttributeValue").SetText("TINIT-BNCLRA90D55F205C")
		}}, false},
		{"signature wrapping: forged assertion before the signed one", testidp.Response{User: mario, UnsignedResponse: true, AfterSigning: wrapForged(true)}, false},
		{"signature wrapping: signed assertion hidden inside the forged one", testidp.Response{User: mario, UnsignedResponse: true, AfterSigning: hideSigned}, false},

		// The Response.
		{"Response ID empty", testidp.Response{User: mario, UnsignedResponse: true, Mutate: attrSet("R", "ID", "")}, false},
		{"Response Version 1.0", testidp.Response{User: mario, Mutate: attrSet("R", "Version", "1.0")}, false},
		{"Response IssueInstant missing", testidp.Response{User: mario, Mutate: attrDel("R", "IssueInstant")}, false},
		{"Response IssueInstant not a UTC dateTime", testidp.Response{User: mario, Mutate: attrSet("R", "IssueInstant", "2018-09-04")}, false},
		{"Response IssueInstant before the request's", testidp.Response{User: mario, Mutate: attrSet("R", "IssueInstant", past)}, false},
		{"Response IssueInstant in the future", testidp.Response{User: mario, Mutate: attrSet("R", "IssueInstant", future)}, false},
		{"Response InResponseTo another request", testidp.Response{User: mario, Mutate: attrSet("R", "InResponseTo", "_other")}, false},
		{"Response Destination missing", testidp.Response{User: mario, Mutate: attrDel("R", "Destination")}, false},
		{"Response Destination another URL", testidp.Response{User: mario, Mutate: attrSet("R", "Destination", "https://evil.example/acs")}, false},
		{"Status missing", testidp.Response{User: mario, Mutate: drop("R/Status")}, false},
		{"StatusCode missing", testidp.Response{User: mario, Mutate: drop("R/Status/StatusCode")}, false},
		{"Response Issuer missing", testidp.Response{User: mario, Mutate: drop("R/Issuer")}, false},
		{"Response Issuer another entity", testidp.Response{User: mario, Mutate: setText("R/Issuer", "https://evil.example")}, false},
		{"Response Issuer Format wrong", testidp.Response{User: mario, Mutate: attrSet("R/Issuer", "Format", "urn:oasis:names:tc:SAML:2.0:nameid-format:transient")}, false},
		{"Assertion missing", testidp.Response{User: mario, NoAssertion: true}, false},
		{"two assertions", testidp.Response{User: mario, UnsignedResponse: true, AfterSigning: wrapForged(false)}, false},

		// The Assertion.
		{"Assertion ID empty", testidp.Response{User: mario, Mutate: attrSet("A", "ID", "")}, false},
		{"Assertion Version 1.0", testidp.Response{User: mario, Mutate: attrSet("A", "Version", "1.0")}, false},
		{"Assertion IssueInstant before the request's", testidp.Response{User: mario, Mutate: attrSet("A", "IssueInstant", past)}, false},
		{"Assertion IssueInstant in the future", testidp.Response{User: mario, Mutate: attrSet("A", "IssueInstant", future)}, false},
		{"Assertion Issuer missing", testidp.Response{User: mario, Mutate: drop("A/Issuer")}, false},
		{"Assertion Issuer without Format", testidp.Response{User: mario, Mutate: attrDel("A/Issuer", "Format")}, false},
		{"Assertion Issuer another entity", testidp.Response{User: mario, Mutate: setText("A/Issuer", "https://evil.example")}, false},
		{"Subject missing (signed)", testidp.Response{User: mario, Mutate: drop("A/Subject")}, false},
		{"NameID missing", testidp.Response{User: mario, Mutate: drop("A/Subject/NameID")}, false},
		{"NameID empty", testidp.Response{User: mario, Mutate: setText("A/Subject/NameID", " ")}, false},
		{"NameID Format persistent", testidp.Response{User: mario, Mutate: attrSet("A/Subject/NameID", "Format", "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent")}, false},
		{"NameID NameQualifier missing", testidp.Response{User: mario, Mutate: attrDel("A/Subject/NameID", "NameQualifier")}, false},
		{"SubjectConfirmation missing", testidp.Response{User: mario, Mutate: drop("A/Subject/SubjectConfirmation")}, false},
		{"SubjectConfirmation Method not bearer", testidp.Response{User: mario, Mutate: attrSet("A/Subject/SubjectConfirmation", "Method", "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key")}, false},
		{"SubjectConfirmationData missing (signed)", testidp.Response{User: mario, Mutate: drop("A/Subject/SubjectConfirmation/SubjectConfirmationData")}, false},
		{"Recipient another URL", testidp.Response{User: mario, Mutate: attrSet("A/Subject/SubjectConfirmation/SubjectConfirmationData", "Recipient", "https://evil.example/acs")}, false},
		{"SubjectConfirmationData InResponseTo another request", testidp.Response{User: mario, Mutate: attrSet("A/Subject/SubjectConfirmation/SubjectConfirmationData", "InResponseTo", "_other")}, false},
		{"SubjectConfirmationData NotOnOrAfter past", testidp.Response{User: mario, Mutate: attrSet("A/Subject/SubjectConfirmation/SubjectConfirmationData", "NotOnOrAfter", past)}, false},
		{"SubjectConfirmationData NotOnOrAfter missing", testidp.Response{User: mario, Mutate: attrDel("A/Subject/SubjectConfirmation/SubjectConfirmationData", "NotOnOrAfter")}, false},
		{"Conditions missing (signed)", testidp.Response{User: mario, Mutate: drop("A/Conditions")}, false},
		{"Conditions NotBefore in the future", testidp.Response{User: mario, Mutate: attrSet("A/Conditions", "NotBefore", future)}, false},
		{"Conditions NotOnOrAfter past", testidp.Response{User: mario, Mutate: attrSet("A/Conditions", "NotOnOrAfter", past)}, false},
		{"AudienceRestriction missing", testidp.Response{User: mario, Mutate: drop("A/Conditions/AudienceRestriction")}, false},
		{"Audience another SP", testidp.Response{User: mario, Mutate: setText("A/Conditions/AudienceRestriction/Audience", "https://evil.example")}, false},
		{"AuthnStatement missing", testidp.Response{User: mario, Mutate: drop("A/AuthnStatement")}, false},
		{"AuthnContextClassRef missing", testidp.Response{User: mario, Mutate: drop("A/AuthnStatement/AuthnContext/AuthnContextClassRef")}, false},
		{"SpidL1 (below the level asked)", testidp.Response{User: mario, Level: "https://www.spid.gov.it/SpidL1"}, false},
		{"unknown level", testidp.Response{User: mario, Level: "urn:oasis:names:tc:SAML:2.0:ac:classes:SpidL2"}, false},

		// Attributes.
		{"AttributeStatement empty", testidp.Response{User: mario, Mutate: func(_, a *etree.Element) { a.FindElement("./AttributeStatement").Child = nil }}, false},
		{"an attribute without value", testidp.Response{User: mario, Mutate: drop("A/AttributeStatement/Attribute[@Name='name']/AttributeValue")}, false},
		{"an attribute with an empty value", testidp.Response{User: mario, Mutate: setText("A/AttributeStatement/Attribute[@Name='name']/AttributeValue", "")}, false},
		{"an attribute with blanks for a value", testidp.Response{User: mario, Mutate: setText("A/AttributeStatement/Attribute[@Name='familyName']/AttributeValue", " \n\t ")}, false},
		{"an optional attribute empty", testidp.Response{User: mario, Mutate: setText("A/AttributeStatement/Attribute[@Name='spidCode']/AttributeValue", "")}, false},
		{"fiscalNumber empty", testidp.Response{User: mario, Mutate: setText("A/AttributeStatement/Attribute[@Name='fiscalNumber']/AttributeValue", "")}, false},
		{"fiscalNumber missing", testidp.Response{User: mario, Attributes: attrs(map[string]string{"fiscalNumber": ""})}, false},
		{"fiscalNumber without TINIT-", testidp.Response{User: mario, Attributes: attrs(map[string]string{"fiscalNumber": mario.FiscalNumber})}, false},
		{"fiscalNumber with a wrong check character", testidp.Response{User: mario, Attributes: attrs(map[string]string{"fiscalNumber": "TINIT-RSSMRA80A01H501A"})}, false},
		{"fiscalNumber on 32 January (right check character)", testidp.Response{User: mario, Attributes: attrs(map[string]string{"fiscalNumber": "TINIT-RSSMRA80A32H501C"})}, false},
		{"fiscalNumber in lower case", testidp.Response{User: mario, Attributes: attrs(map[string]string{"fiscalNumber": "TINIT-rssmra80a01h501u"})}, false},
		{"fiscalNumber twice (ambiguous)", testidp.Response{User: mario, Mutate: func(_, a *etree.Element) {
			st := a.FindElement("./AttributeStatement")
			dup := st.FindElement("./Attribute[@Name='fiscalNumber']").Copy()
			dup.FindElement("./AttributeValue").SetText("TINIT-BNCLRA90D55F205C")
			st.AddChild(dup)
		}}, false},
	}
}

// TestCraftedResponses sends the matrix of crafted responses to the ACS,
// each for its own login in its own browser: the good ones log the browser
// in (a redirect to the RP with a code), every other one gets the 403
// courtesy page and logs nobody in.
func TestCraftedResponses(t *testing.T) {
	backends(t, func(t *testing.T, store *sqlstore.Store) {
		s := newSite(t, store)
		for _, c := range matrix(time.Now()) {
			t.Run(c.name, func(t *testing.T) {
				p := s.startLogin(t)
				r := matrixCase(requestInstant(t, p), c.name)
				resp, body := s.answer(t, p, r)
				loc := oidctest.RPRedirect(resp)
				switch {
				case c.accept && loc == nil:
					t.Fatalf("refused: %d %.300s", resp.StatusCode, body)
				case c.accept:
					claims := exchange(t, p.rp, loc, p.verifier)
					if claims["acr"] != "urn:inps:loa:dispositivo" {
						t.Fatalf("acr %v", claims["acr"])
					}
				case resp.StatusCode != http.StatusForbidden || loc != nil:
					t.Fatalf("accepted or not refused with 403: %d %v %.300s", resp.StatusCode, loc, body)
				case !strings.Contains(body, "SPID"):
					t.Fatalf("not the courtesy page: %.300s", body)
				}
			})
		}
	})
}

// matrixCase returns the case of the matrix for a request made at instant.
func matrixCase(instant time.Time, name string) testidp.Response {
	for _, c := range matrix(instant) {
		if c.name == name {
			return c.r
		}
	}
	panic(name)
}

func requestInstant(t testing.TB, p *pending) time.Time {
	t.Helper()
	doc := etree.NewDocument()
	_ = doc.ReadFromString(p.xml)
	ii, err := time.Parse(time.RFC3339, doc.Root().SelectAttrValue("IssueInstant", ""))
	if err != nil {
		t.Fatal(err)
	}
	return ii
}

// wrapForged adds an unsigned copy of the signed assertion that names
// another citizen, before it (the classic XSW) or after it.
func wrapForged(before bool) func(d *etree.Document) {
	return func(d *etree.Document) {
		resp := d.Root()
		signed := resp.FindElement("./Assertion")
		forged := signed.Copy()
		forged.RemoveChild(forged.FindElement("./Signature"))
		forged.FindElement(".//Attribute[@Name='fiscalNumber']/AttributeValue").SetText("TINIT-BNCLRA90D55F205C")
		if before {
			resp.InsertChildAt(signed.Index(), forged)
		} else {
			resp.AddChild(forged)
		}
	}
}

// hideSigned replaces the signed assertion by a forged one that carries the
// signed original inside (XSW: the signature still verifies on its element).
func hideSigned(d *etree.Document) {
	resp := d.Root()
	signed := resp.FindElement("./Assertion")
	forged := signed.Copy()
	forged.RemoveChild(forged.FindElement("./Signature"))
	forged.CreateAttr("ID", "_forged")
	forged.FindElement(".//Attribute[@Name='fiscalNumber']/AttributeValue").SetText("TINIT-BNCLRA90D55F205C")
	resp.RemoveChild(signed)
	forged.FindElement("./Subject").AddChild(signed)
	resp.AddChild(forged)
}

var otherKP *testidp.Keypair

func otherKey() *testidp.Keypair {
	if otherKP == nil {
		kp, err := testidp.NewKeypair("evil", time.Now())
		if err != nil {
			panic(err)
		}
		otherKP = &kp
	}
	return otherKP
}
