package spid

import (
	"crypto/x509"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// requestState is what Ponte keeps about an AuthnRequest until its
// response comes back (Host.SaveState under the request's ID, taken once).
type requestState struct {
	ID           string    `json:"id"`
	IDP          string    `json:"idp"`
	IssueInstant time.Time `json:"iat"`
	// Level is the SPID level asked; the response must reach it or more.
	Level      int    `json:"level"`
	RelayState string `json:"rs"`
}

// anomaly is a response Ponte refuses: which SPID rule it breaks and how.
type anomaly struct {
	Rule string
	Err  error
}

func (a *anomaly) Error() string { return a.Rule + ": " + a.Err.Error() }

func refuse(rule, format string, args ...any) error {
	return &anomaly{Rule: rule, Err: fmt.Errorf(format, args...)}
}

// statusError is a response whose StatusCode is not Success: the identity
// provider tells why (SPID: "ErrorCode nr19" .. "nr30" in StatusMessage).
type statusError struct {
	Code, Message string
}

func (e *statusError) Error() string { return fmt.Sprintf("status %s %q", e.Code, e.Message) }

// errorCode is the SPID anomaly number in a StatusMessage (19..25, 30), or 0.
func (e *statusError) errorCode() int {
	var n int
	if m := errorCodeRE.FindStringSubmatch(e.Message); m != nil {
		_, _ = fmt.Sscan(m[1], &n)
	}
	return n
}

var errorCodeRE = regexp.MustCompile(`ErrorCode nr\s*([0-9]{2})`)

// assertion is what a valid response proves.
type assertion struct {
	ID string
	// NotOnOrAfter bounds its use (the replay store keeps its ID until then).
	NotOnOrAfter time.Time
	// NameID, its NameQualifier and SessionIndex identify the session at
	// the identity provider, for single logout; never the citizen.
	NameID, NameQualifier, SessionIndex string
	Level                               int
	Attributes                          map[string]string
}

// validator checks responses for one SP.
type validator struct {
	EntityID string
	ACS      string
	Skew     time.Duration
	Clock    *dsig.Clock
}

// samlInstant is an xs:dateTime in UTC as SPID wants it.
var samlInstant = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z$`)

func parseInstant(rule, name, v string, present bool) (time.Time, error) {
	if !present {
		return time.Time{}, refuse(rule, "%s is missing", name)
	}
	if v == "" {
		return time.Time{}, refuse(rule, "%s is empty", name)
	}
	if !samlInstant.MatchString(v) {
		return time.Time{}, refuse(rule, "%s %q is not a UTC xs:dateTime", name, v)
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, refuse(rule, "%s %q: %v", name, v, err)
	}
	return t, nil
}

// signatures finds what the signature of an element covers: the element
// to read in its place. errUnsigned when it carries none.
type signatures interface {
	covered(el *etree.Element) (*etree.Element, error)
}

// idpSignatures are an identity provider's: verifySigned with its
// certificates. (The fuzz target over the structure checks stands in one
// that takes any Signature element as good, to reach the checks behind.)
type idpSignatures struct {
	certs []*x509.Certificate
	clock *dsig.Clock
}

func (s idpSignatures) covered(el *etree.Element) (*etree.Element, error) {
	return verifySigned(el, s.certs, s.clock)
}

// validate checks a Response (already parsed by parseXML) against the
// AuthnRequest st it answers, sent to idp, at now. It reads only what the
// identity provider's signatures cover. The rules are those of the SPID
// technical rules ("Response" and "Assertion") and of spid-sp-test's
// crafted responses.
func (v validator) validate(root *etree.Element, st requestState, idp *identityProvider, now time.Time) (*assertion, error) {
	return v.check(root, st, idp, now, idpSignatures{certs: idp.Certs, clock: v.Clock})
}

// check is validate with the signatures found by sigs.
func (v validator) check(root *etree.Element, st requestState, idp *identityProvider, now time.Time, sigs signatures) (*assertion, error) {
	if !is(root, nsProtocol, "Response") {
		return nil, refuse("Response", "the message is %s, not a samlp:Response", root.Tag)
	}
	// SPID: the Response may be signed; if it is, the signature must be
	// the identity provider's, and only what it covers is read.
	resp := root
	switch signed, err := sigs.covered(root); {
	case err == nil:
		resp = signed
	case errors.Is(err, errUnsigned):
	default:
		return nil, refuse("Response/Signature", "%v", err)
	}
	if err := v.checkResponse(resp, st, idp, now); err != nil {
		return nil, err
	}
	if len(children(resp, nsAssertion, "EncryptedAssertion")) > 0 {
		return nil, refuse("Assertion", "an EncryptedAssertion (SPID assertions are signed, not encrypted)")
	}
	as := children(resp, nsAssertion, "Assertion")
	if len(as) != 1 {
		return nil, refuse("Assertion", "%d assertions, want exactly 1", len(as))
	}
	// SPID: the Assertion must always be signed by the identity provider.
	signed, err := sigs.covered(as[0])
	if errors.Is(err, errUnsigned) {
		return nil, refuse("Assertion/Signature", "the assertion is not signed")
	}
	if err != nil {
		return nil, refuse("Assertion/Signature", "%v", err)
	}
	return v.checkAssertion(signed, st, idp, now)
}

// checkResponse checks the Response element: ID, Version, IssueInstant,
// InResponseTo, Destination, Issuer and Status.
func (v validator) checkResponse(resp *etree.Element, st requestState, idp *identityProvider, now time.Time) error {
	if id, ok := attr(resp, "ID"); !ok || strings.TrimSpace(id) == "" {
		return refuse("Response/@ID", "missing or empty")
	}
	if ver, _ := attr(resp, "Version"); ver != "2.0" {
		return refuse("Response/@Version", "%q is not 2.0", ver)
	}
	ii, present := attr(resp, "IssueInstant")
	t, err := parseInstant("Response/@IssueInstant", "IssueInstant", ii, present)
	if err != nil {
		return err
	}
	if err := v.checkIssued("Response/@IssueInstant", t, st, now); err != nil {
		return err
	}
	if irt, _ := attr(resp, "InResponseTo"); irt != st.ID {
		return refuse("Response/@InResponseTo", "%q is not the request's ID", irt)
	}
	if dest, _ := attr(resp, "Destination"); dest != v.ACS {
		return refuse("Response/@Destination", "%q is not the assertion consumer service %s", dest, v.ACS)
	}
	// SPID: the Response's Issuer is the identity provider's entityID; its
	// Format, if present, is entity.
	if err := checkIssuer("Response/Issuer", resp, idp, false); err != nil {
		return err
	}
	status, err := child(resp, nsProtocol, "Status")
	if err != nil || status == nil {
		return refuse("Response/Status", "missing or repeated")
	}
	code, err := child(status, nsProtocol, "StatusCode")
	if err != nil || code == nil {
		return refuse("Response/Status/StatusCode", "missing or repeated")
	}
	value, _ := attr(code, "Value")
	if value == "" {
		return refuse("Response/Status/StatusCode", "no Value")
	}
	if value != statusSuccess {
		msg := ""
		if m, _ := child(status, nsProtocol, "StatusMessage"); m != nil {
			msg = strings.TrimSpace(m.Text())
		}
		return &statusError{Code: value, Message: msg}
	}
	return nil
}

// checkIssued checks an IssueInstant: not before the request's (equal is
// fine: some identity providers copy it) and not after now.
func (v validator) checkIssued(rule string, t time.Time, st requestState, now time.Time) error {
	if t.Before(st.IssueInstant.Truncate(time.Second)) {
		return refuse(rule, "%s is before the request's %s", t.Format(time.RFC3339), st.IssueInstant.Format(time.RFC3339))
	}
	if t.After(now.Add(v.Skew)) {
		return refuse(rule, "%s is in the future", t.Format(time.RFC3339))
	}
	return nil
}

// checkIssuer checks an Issuer child of el: present, the identity
// provider's entityID, Format entity (required when formatRequired, else
// absent or entity).
func checkIssuer(rule string, el *etree.Element, idp *identityProvider, formatRequired bool) error {
	iss, err := child(el, nsAssertion, "Issuer")
	if err != nil || iss == nil {
		return refuse(rule, "missing or repeated")
	}
	if got := strings.TrimSpace(iss.Text()); got != idp.EntityID {
		return refuse(rule, "%q is not the identity provider %s", got, idp.EntityID)
	}
	format, ok := attr(iss, "Format")
	if (ok || formatRequired) && format != formatEntity {
		return refuse(rule+"/@Format", "%q is not %s", format, formatEntity)
	}
	return nil
}

// checkAssertion checks the signed Assertion: every element SPID requires,
// the subject confirmation, conditions, audience, level and attributes.
func (v validator) checkAssertion(a *etree.Element, st requestState, idp *identityProvider, now time.Time) (*assertion, error) {
	out := &assertion{Attributes: map[string]string{}}
	var ok bool
	if out.ID, ok = attr(a, "ID"); !ok || strings.TrimSpace(out.ID) == "" {
		return nil, refuse("Assertion/@ID", "missing or empty")
	}
	if ver, _ := attr(a, "Version"); ver != "2.0" {
		return nil, refuse("Assertion/@Version", "%q is not 2.0", ver)
	}
	ii, present := attr(a, "IssueInstant")
	t, err := parseInstant("Assertion/@IssueInstant", "IssueInstant", ii, present)
	if err != nil {
		return nil, err
	}
	if err := v.checkIssued("Assertion/@IssueInstant", t, st, now); err != nil {
		return nil, err
	}
	// SPID: the Assertion's Issuer must carry Format entity.
	if err := checkIssuer("Assertion/Issuer", a, idp, true); err != nil {
		return nil, err
	}
	if err := v.checkSubject(a, st, idp, now, out); err != nil {
		return nil, err
	}
	if err := v.checkConditions(a, now, out); err != nil {
		return nil, err
	}
	if err := checkAuthn(a, st, out); err != nil {
		return nil, err
	}
	if err := checkAttributes(a, out); err != nil {
		return nil, err
	}
	return out, nil
}

// checkSubject: a transient NameID with the identity provider as
// NameQualifier, and a bearer SubjectConfirmation whose data names this
// ACS, this request, and a NotOnOrAfter still to come.
func (v validator) checkSubject(a *etree.Element, st requestState, idp *identityProvider, now time.Time, out *assertion) error {
	subj, err := child(a, nsAssertion, "Subject")
	if err != nil || subj == nil {
		return refuse("Assertion/Subject", "missing or repeated")
	}
	nid, err := child(subj, nsAssertion, "NameID")
	if err != nil || nid == nil {
		return refuse("Assertion/Subject/NameID", "missing or repeated")
	}
	out.NameID = strings.TrimSpace(nid.Text())
	if out.NameID == "" {
		return refuse("Assertion/Subject/NameID", "empty")
	}
	if f, _ := attr(nid, "Format"); f != formatTransient {
		return refuse("Assertion/Subject/NameID/@Format", "%q is not %s", f, formatTransient)
	}
	if out.NameQualifier, _ = attr(nid, "NameQualifier"); strings.TrimSpace(out.NameQualifier) == "" {
		return refuse("Assertion/Subject/NameID/@NameQualifier", "missing or empty")
	}
	scs := children(subj, nsAssertion, "SubjectConfirmation")
	if len(scs) != 1 {
		return refuse("Assertion/Subject/SubjectConfirmation", "%d, want exactly 1", len(scs))
	}
	if m, _ := attr(scs[0], "Method"); m != cmBearer {
		return refuse("Assertion/Subject/SubjectConfirmation/@Method", "%q is not bearer", m)
	}
	scd, err := child(scs[0], nsAssertion, "SubjectConfirmationData")
	if err != nil || scd == nil {
		return refuse("Assertion/Subject/SubjectConfirmation/SubjectConfirmationData", "missing or repeated")
	}
	if r, _ := attr(scd, "Recipient"); r != v.ACS {
		return refuse("SubjectConfirmationData/@Recipient", "%q is not the assertion consumer service", r)
	}
	if irt, _ := attr(scd, "InResponseTo"); irt != st.ID {
		return refuse("SubjectConfirmationData/@InResponseTo", "%q is not the request's ID", irt)
	}
	noa, present := attr(scd, "NotOnOrAfter")
	until, err := parseInstant("SubjectConfirmationData/@NotOnOrAfter", "NotOnOrAfter", noa, present)
	if err != nil {
		return err
	}
	if !now.Before(until.Add(v.Skew)) {
		return refuse("SubjectConfirmationData/@NotOnOrAfter", "expired at %s", until.Format(time.RFC3339))
	}
	out.NotOnOrAfter = until
	return nil
}

// checkConditions: NotBefore and NotOnOrAfter present and around now, and
// an AudienceRestriction whose one Audience is the SP's entityID.
func (v validator) checkConditions(a *etree.Element, now time.Time, out *assertion) error {
	c, err := child(a, nsAssertion, "Conditions")
	if err != nil || c == nil {
		return refuse("Assertion/Conditions", "missing or repeated")
	}
	nb, present := attr(c, "NotBefore")
	notBefore, err := parseInstant("Conditions/@NotBefore", "NotBefore", nb, present)
	if err != nil {
		return err
	}
	if notBefore.After(now.Add(v.Skew)) {
		return refuse("Conditions/@NotBefore", "not valid before %s", notBefore.Format(time.RFC3339))
	}
	na, present := attr(c, "NotOnOrAfter")
	notAfter, err := parseInstant("Conditions/@NotOnOrAfter", "NotOnOrAfter", na, present)
	if err != nil {
		return err
	}
	if !now.Before(notAfter.Add(v.Skew)) {
		return refuse("Conditions/@NotOnOrAfter", "expired at %s", notAfter.Format(time.RFC3339))
	}
	if notAfter.After(out.NotOnOrAfter) {
		out.NotOnOrAfter = notAfter
	}
	ar, err := child(c, nsAssertion, "AudienceRestriction")
	if err != nil || ar == nil {
		return refuse("Conditions/AudienceRestriction", "missing or repeated")
	}
	aud, err := child(ar, nsAssertion, "Audience")
	if err != nil || aud == nil {
		return refuse("Conditions/AudienceRestriction/Audience", "missing or repeated")
	}
	if got := strings.TrimSpace(aud.Text()); got != v.EntityID {
		return refuse("Conditions/AudienceRestriction/Audience", "%q is not this SP %s", got, v.EntityID)
	}
	return nil
}

// checkAuthn: one AuthnStatement whose AuthnContextClassRef is a SPID
// level at least the one asked (a higher level is fine).
func checkAuthn(a *etree.Element, st requestState, out *assertion) error {
	as, err := child(a, nsAssertion, "AuthnStatement")
	if err != nil || as == nil {
		return refuse("Assertion/AuthnStatement", "missing or repeated")
	}
	out.SessionIndex, _ = attr(as, "SessionIndex")
	ctx, err := child(as, nsAssertion, "AuthnContext")
	if err != nil || ctx == nil {
		return refuse("AuthnStatement/AuthnContext", "missing or repeated")
	}
	ref, err := child(ctx, nsAssertion, "AuthnContextClassRef")
	if err != nil || ref == nil {
		return refuse("AuthnContext/AuthnContextClassRef", "missing or repeated")
	}
	got := strings.TrimSpace(ref.Text())
	out.Level = spidLevel(got)
	if out.Level == 0 {
		return refuse("AuthnContext/AuthnContextClassRef", "%q is not a SPID level", got)
	}
	if out.Level < st.Level {
		return refuse("AuthnContext/AuthnContextClassRef", "SpidL%d is below the SpidL%d asked", out.Level, st.Level)
	}
	return nil
}

// checkAttributes reads the AttributeStatement: every Attribute named and
// with one value that is not empty, none twice; the fiscalNumber must be
// there (TINIT-<codice fiscale>): it is what links the citizen.
func checkAttributes(a *etree.Element, out *assertion) error {
	stmts := children(a, nsAssertion, "AttributeStatement")
	if len(stmts) != 1 {
		return refuse("Assertion/AttributeStatement", "%d, want exactly 1", len(stmts))
	}
	attrs := children(stmts[0], nsAssertion, "Attribute")
	if len(attrs) == 0 {
		return refuse("AttributeStatement/Attribute", "no attribute")
	}
	for _, at := range attrs {
		name, _ := attr(at, "Name")
		if name == "" {
			return refuse("AttributeStatement/Attribute/@Name", "missing or empty")
		}
		vals := children(at, nsAssertion, "AttributeValue")
		if len(vals) != 1 {
			return refuse("AttributeStatement/Attribute", "%s has %d values, want 1", name, len(vals))
		}
		if _, dup := out.Attributes[name]; dup {
			return refuse("AttributeStatement/Attribute", "%s twice: an ambiguous identity", name)
		}
		// SPID: an identity provider sends only the attributes it has a
		// value for; an empty one (or blanks) is an anomaly, not "unknown".
		v := strings.TrimSpace(vals[0].Text())
		if v == "" {
			return refuse("AttributeStatement/Attribute/AttributeValue", "%s is empty", name)
		}
		out.Attributes[name] = v
	}
	return nil
}
