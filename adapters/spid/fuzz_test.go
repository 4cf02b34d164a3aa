package spid

import (
	"bytes"
	"compress/flate"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/ponte-id/ponte/adapters/spid/testidp"
)

// fuzzFixture is an SP and a test identity provider that trusts it.
func fuzzFixture(tb testing.TB) (validator, requestState, *identityProvider, *testidp.IdP) {
	tb.Helper()
	now := time.Now()
	// A fixed key (testdata): generating one is slow under the fuzzer's
	// instrumentation. The SP signs nothing here: the identity provider's
	// key stands in for it.
	fixed, err := ParseKeypair(mustRead(tb, "testdata/idp.crt"), mustRead(tb, "testdata/idp.key"))
	if err != nil {
		tb.Fatal(err)
	}
	tidp, err := testidp.New(testidp.Config{EntityID: "https://idp.example.it", BaseURL: "https://idp.example.it",
		Keypair: &testidp.Keypair{Key: fixed.Key, Cert: fixed.Cert}})
	if err != nil {
		tb.Fatal(err)
	}
	kp := Keypair{Key: tidp.Keypair().Key, Cert: tidp.Keypair().Cert}
	md, err := spMetadata{EntityID: "https://sp.example.it/metadata", ACS: "https://sp.example.it/acs", SLO: "https://sp.example.it/slo",
		Keypair: kp, ServiceName: "s", Org: DefaultConfig().Organization, Contact: DefaultConfig().Contact}.build()
	if err != nil {
		tb.Fatal(err)
	}
	if err := tidp.TrustSP(md); err != nil {
		tb.Fatal(err)
	}
	idps, _, err := parseIDPMetadata(tidp.Metadata(), nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	v := validator{EntityID: "https://sp.example.it/metadata", ACS: "https://sp.example.it/acs", Skew: time.Minute}
	st := requestState{ID: "_req", IDP: "https://idp.example.it", IssueInstant: now.Add(-time.Second), Level: 2}
	return v, st, idps[0], tidp
}

func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// FuzzResponse feeds the response parser and validator arbitrary bytes,
// seeded with a good response and broken ones: it must never panic, and
// what it accepts must name a citizen.
func FuzzResponse(f *testing.F) {
	v, st, p, tidp := fuzzFixture(f)
	user := testidp.User{FiscalNumber: "RSSMRA80A01H501U", GivenName: "Mario", FamilyName: "Rossi"}
	for _, r := range []testidp.Response{
		{RequestID: st.ID, User: user},
		{RequestID: st.ID, User: user, UnsignedResponse: true},
		{RequestID: st.ID, User: user, NoAssertion: true},
		{RequestID: st.ID, Status: "urn:oasis:names:tc:SAML:2.0:status:Responder", StatusMessage: "ErrorCode nr22"},
		{RequestID: st.ID, User: user, Mutate: func(_, a *etree.Element) { a.RemoveChild(a.FindElement("./Subject")) }},
		{RequestID: st.ID, User: user, Mutate: func(_, a *etree.Element) { a.RemoveChild(a.FindElement("./Conditions")) }},
	} {
		b, err := tidp.Build(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>`))
	f.Add([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><samlp:Status/></samlp:Response>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		root, err := parseXML(b)
		if err != nil {
			return
		}
		as, err := v.validate(root, st, p, time.Now())
		if err != nil {
			return
		}
		if _, err := identityOf(as, p); err != nil && !strings.Contains(err.Error(), "fiscalNumber") {
			t.Fatalf("an accepted assertion without a usable identity: %v", err)
		}
	})
}

// TestResponseParserSeeds runs the validator on the fuzz seeds' good
// response as a plain test: accepted, and Mario.
func TestResponseParserSeeds(t *testing.T) {
	v, st, p, tidp := fuzzFixture(t)
	b, err := tidp.Build(testidp.Response{RequestID: st.ID, User: testidp.User{FiscalNumber: "RSSMRA80A01H501U", GivenName: "Mario", FamilyName: "Rossi"}})
	if err != nil {
		t.Fatal(err)
	}
	root, err := parseXML(b)
	if err != nil {
		t.Fatal(err)
	}
	as, err := v.validate(root, st, p, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id, err := identityOf(as, p)
	if err != nil || id.FiscalNumber != "RSSMRA80A01H501U" || id.Level.String() == "" {
		t.Fatalf("%+v %v", id, err)
	}
}

// TestInflateLimit: a deflate bomb on the Redirect binding stops at the limit.
func TestInflateLimit(t *testing.T) {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	_, _ = w.Write(bytes.Repeat([]byte("A"), 50<<20))
	_ = w.Close()
	if buf.Len() > 200<<10 {
		t.Fatalf("the bomb is %d bytes compressed", buf.Len())
	}
	if _, err := inflate(buf.Bytes(), 256<<10); err == nil {
		t.Fatal("a 50 MiB payload inflated past a 256 KiB limit")
	}
	small, _ := flate.NewWriter(&buf, flate.BestCompression)
	buf.Reset()
	_, _ = small.Write([]byte("<x/>"))
	_ = small.Close()
	if out, err := inflate(buf.Bytes(), 256<<10); err != nil || string(out) != "<x/>" {
		t.Fatalf("%q %v", out, err)
	}
}

// TestRegistrySignature: metadata signed by the registry's certificate is
// read; altered after signing, or signed by another key, it is refused.
func TestRegistrySignature(t *testing.T) {
	now := time.Now()
	registryKP, err := NewSPKeypair(SPCertificate{EntityID: "https://registry.spid.gov.it", IPACode: "agid", Organization: "AgID"}, now)
	if err != nil {
		t.Fatal(err)
	}
	tidp, _ := testidp.New(testidp.Config{EntityID: "https://idp.example.it", BaseURL: "https://idp.example.it"})
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(tidp.Metadata()); err != nil {
		t.Fatal(err)
	}
	if err := signEnveloped(doc.Root(), registryKP, 0); err != nil {
		t.Fatal(err)
	}
	signed, _ := doc.WriteToBytes()
	clock := clockOf(time.Now)
	if idps, _, err := parseIDPMetadata(signed, registryKP.Cert, clock); err != nil || len(idps) != 1 {
		t.Fatalf("signed metadata: %v", err)
	}
	altered := bytes.Replace(signed, []byte("https://idp.example.it/sso"), []byte("https://evil.example.it/sso"), 1)
	if _, _, err := parseIDPMetadata(altered, registryKP.Cert, clock); err == nil {
		t.Fatal("altered metadata was read")
	}
	if _, _, err := parseIDPMetadata(tidp.Metadata(), registryKP.Cert, clock); err == nil {
		t.Fatal("unsigned metadata was read with a registry certificate configured")
	}
}
