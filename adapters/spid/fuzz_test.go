package spid

import (
	"bytes"
	"compress/flate"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/ponte-id/ponte/adapters/spid/testidp"
)

// fixture is an SP, a test identity provider that trusts it, and a request
// of the SP's waiting for the identity provider's response, all at one
// fixed instant: what the fuzz targets, the parser tests and the benchmark
// share. The instant is fixed (an hour after the testdata certificate's
// NotBefore) so that a corpus entry means the same on every run, and a
// good response never expires during a long fuzzing session.
type fixture struct {
	v    validator
	st   requestState
	idp  *identityProvider
	tidp *testidp.IdP
	at   time.Time
}

// fuzzFixture makes the fixture.
func fuzzFixture(tb testing.TB) fixture {
	tb.Helper()
	// A fixed key (testdata): generating one is slow under the fuzzer's
	// instrumentation. The SP signs nothing here: the identity provider's
	// key stands in for it.
	fixed, err := ParseKeypair(mustRead(tb, "testdata/idp.crt"), mustRead(tb, "testdata/idp.key"))
	if err != nil {
		tb.Fatal(err)
	}
	at := fixed.Cert.NotBefore.Add(time.Hour).UTC()
	clock := clockOf(func() time.Time { return at })
	tidp, err := testidp.New(testidp.Config{EntityID: "https://idp.example.it", BaseURL: "https://idp.example.it",
		Keypair: &testidp.Keypair{Key: fixed.Key, Cert: fixed.Cert}, Now: func() time.Time { return at }})
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
	idps, _, err := parseIDPMetadata(tidp.Metadata(), nil, clock)
	if err != nil {
		tb.Fatal(err)
	}
	v := validator{EntityID: "https://sp.example.it/metadata", ACS: "https://sp.example.it/acs", Skew: time.Minute, Clock: clock}
	st := requestState{ID: "_req", IDP: "https://idp.example.it", IssueInstant: at.Add(-time.Second), Level: 2}
	return fixture{v: v, st: st, idp: idps[0], tidp: tidp, at: at}
}

func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// fuzzUser is the citizen of the fuzz seeds.
var fuzzUser = testidp.User{FiscalNumber: "RSSMRA80A01H501U", GivenName: "Mario", FamilyName: "Rossi"}

// seeds are the responses both fuzz targets start from: a good one and one
// of each kind of anomaly.
func (fx fixture) seeds(tb testing.TB) [][]byte {
	tb.Helper()
	id := fx.st.ID
	var out [][]byte
	for _, r := range []testidp.Response{
		{RequestID: id, User: fuzzUser},
		{RequestID: id, User: fuzzUser, UnsignedResponse: true},
		{RequestID: id, User: fuzzUser, NoAssertion: true},
		{RequestID: id, Status: "urn:oasis:names:tc:SAML:2.0:status:Responder", StatusMessage: "ErrorCode nr22"},
		{RequestID: id, User: fuzzUser, Level: SpidL1},
		{RequestID: id, User: fuzzUser, Mutate: func(_, a *etree.Element) { a.RemoveChild(a.FindElement("./Subject")) }},
		{RequestID: id, User: fuzzUser, Mutate: func(_, a *etree.Element) { a.RemoveChild(a.FindElement("./Conditions")) }},
		{RequestID: id, User: fuzzUser, Mutate: func(_, a *etree.Element) {
			a.FindElement("./AttributeStatement/Attribute[@Name='name']/AttributeValue").SetText("")
		}},
		{RequestID: id, User: fuzzUser, Mutate: func(_, a *etree.Element) {
			st := a.FindElement("./AttributeStatement")
			st.AddChild(st.FindElement("./Attribute[@Name='fiscalNumber']").Copy())
		}},
	} {
		b, err := fx.tidp.Build(r)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return append(out,
		[]byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>`),
		[]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><samlp:Status/></samlp:Response>`))
}

// How to fuzz. Three things made `go test -fuzz FuzzResponse` crawl at a
// few execs a second, none of them key generation (the fixture's key is
// fixed, and each worker signs its seeds once):
//
//   - Minimization. Each input that finds new coverage is minimized before
//     fuzzing goes on, for up to -fuzzminimizetime (a minute by default), and
//     the minimizer's byte-subset pass is quadratic in the input's length: on
//     responses of several kilobytes it always runs out the clock, and the
//     fuzzer's exec count stands still meanwhile.
//   - The size of the test binary. Every exec snapshots the coverage counters
//     of every instrumented package; the end-to-end tests link all of Ponte
//     (provider, storage, pure-Go SQLite, pgx): 360,000 counters. Built with
//     -tags fuzzing, without them: 90,000, and execs are 4 to 16 times faster.
//   - The signatures. Every input that parses costs FuzzResponse a signature
//     check (exclusive c14n, SHA-256, RSA), and a mutation seldom survives it,
//     so the rules behind it are hardly reached: FuzzResponseChecks takes any
//     Signature element as good and fuzzes the parser and every rule.
//
// So:
//
//	go test -tags fuzzing -run '^$' -fuzz '^FuzzResponseChecks$' -fuzzminimizetime 1s ./adapters/spid
//	go test -tags fuzzing -run '^$' -fuzz '^FuzzResponse$' -fuzzminimizetime 1s ./adapters/spid
//
// (About 3,000 execs a second on two cores for the first; the second, about
// 1,500, still guards the signature layer: wrapping, KeyInfo, references.)

// FuzzResponse feeds the whole response check — parser, signatures, rules —
// arbitrary bytes, seeded with a good response and broken ones: it must never
// panic, and what it accepts must name a citizen.
func FuzzResponse(f *testing.F) {
	fx := fuzzFixture(f)
	for _, b := range fx.seeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		root, err := parseXML(b)
		if err != nil {
			return
		}
		as, err := fx.v.validate(root, fx.st, fx.idp, fx.at)
		if err != nil {
			return
		}
		if _, err := identityOf(as, fx.idp); err != nil && !strings.Contains(err.Error(), "fiscalNumber") {
			t.Fatalf("an accepted assertion without a usable identity: %v", err)
		}
	})
}

// anySignature takes an element's one Signature child, whatever it holds, as
// a good signature over the element: FuzzResponseChecks uses it to reach the
// checks that the identity provider's signature guards.
type anySignature struct{}

func (anySignature) covered(el *etree.Element) (*etree.Element, error) {
	switch len(children(el, nsDSig, "Signature")) {
	case 0:
		return nil, errUnsigned
	case 1:
		return el, nil
	}
	return nil, errors.New("several signatures")
}

// hollowSignatures empties every Signature element of a response (no
// SignedInfo, value or certificate): the structure a FuzzResponseChecks
// seed keeps, at a quarter of the size.
func hollowSignatures(tb testing.TB, b []byte) []byte {
	tb.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		return b
	}
	for _, sig := range doc.FindElements("//Signature") {
		sig.Child = nil
	}
	out, err := doc.WriteToBytes()
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// FuzzResponseChecks fuzzes the parser and every structural rule of a
// response without the signature step: a Signature element, whatever it
// holds, stands for a good signature (anySignature), so that mutations reach
// the Response, Subject, Conditions, AuthnStatement and attribute checks,
// which in FuzzResponse only inputs with intact signatures reach; its seeds
// are FuzzResponse's with the signatures hollowed out (a quarter the size).
// Whatever it refuses is an anomaly or the identity provider's status, never
// another error, and never a panic; what it accepts is a complete assertion,
// and names a citizen or is refused for the fiscalNumber alone.
func FuzzResponseChecks(f *testing.F) {
	fx := fuzzFixture(f)
	for _, b := range fx.seeds(f) {
		f.Add(hollowSignatures(f, b))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		root, err := parseXML(b)
		if err != nil {
			return
		}
		as, err := fx.v.check(root, fx.st, fx.idp, fx.at, anySignature{})
		var an *anomaly
		var se *statusError
		switch {
		case errors.As(err, &an), errors.As(err, &se):
			return
		case err != nil:
			t.Fatalf("refused with %T %v: neither an anomaly nor the identity provider's status", err, err)
		}
		switch {
		case as.ID == "" || as.NameID == "" || as.NameQualifier == "":
			t.Fatalf("accepted without IDs: %+v", as)
		case as.Level < fx.st.Level:
			t.Fatalf("accepted at SpidL%d, below the SpidL%d asked", as.Level, fx.st.Level)
		case !fx.at.Before(as.NotOnOrAfter.Add(fx.v.Skew)):
			t.Fatalf("accepted past its NotOnOrAfter %s", as.NotOnOrAfter)
		case len(as.Attributes) == 0:
			t.Fatal("accepted without attributes")
		}
		for name, v := range as.Attributes {
			if name == "" || strings.TrimSpace(v) == "" {
				t.Fatalf("accepted with an empty attribute %q=%q", name, v)
			}
		}
		if _, err := identityOf(as, fx.idp); err != nil && !strings.Contains(err.Error(), "fiscalNumber") {
			t.Fatalf("an accepted assertion without a usable identity: %v", err)
		}
	})
}

// TestResponseParserSeeds runs the validator on the fuzz seeds' good
// response as a plain test: accepted, and Mario; and the structure target's
// stand-in for the signatures accepts the same response with its signatures
// hollowed out, and nothing that lacks one.
func TestResponseParserSeeds(t *testing.T) {
	fx := fuzzFixture(t)
	seeds := fx.seeds(t)
	root, err := parseXML(seeds[0])
	if err != nil {
		t.Fatal(err)
	}
	as, err := fx.v.validate(root, fx.st, fx.idp, fx.at)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identityOf(as, fx.idp)
	if err != nil || id.FiscalNumber != "RSSMRA80A01H501U" || id.Level.String() == "" {
		t.Fatalf("%+v %v", id, err)
	}
	hollow, err := parseXML(hollowSignatures(t, seeds[0]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fx.v.validate(hollow, fx.st, fx.idp, fx.at); err == nil {
		t.Fatal("hollow signatures passed the real check")
	}
	if as, err := fx.v.check(hollow, fx.st, fx.idp, fx.at, anySignature{}); err != nil || as.Attributes["fiscalNumber"] != "TINIT-RSSMRA80A01H501U" {
		t.Fatalf("the structure checks refused the good response: %v", err)
	}
	unsigned, err := fx.tidp.Build(testidp.Response{RequestID: fx.st.ID, User: fuzzUser, UnsignedAssertion: true})
	if err != nil {
		t.Fatal(err)
	}
	root, _ = parseXML(hollowSignatures(t, unsigned))
	if _, err := fx.v.check(root, fx.st, fx.idp, fx.at, anySignature{}); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Fatalf("an assertion without a Signature element: %v", err)
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
