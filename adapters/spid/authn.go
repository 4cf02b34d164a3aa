package spid

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// authnRequest is one AuthnRequest about to leave for an identity provider.
type authnRequest struct {
	ID           string
	IssueInstant time.Time
	// Destination is the identity provider's SSO endpoint for Binding.
	Destination string
	Binding     string
	// Level is the SPID level asked (2).
	Level      int
	Comparison string
}

// xml builds the AuthnRequest as the SPID technical rules ask
// (Regole tecniche, "AuthnRequest"): an ID that does not start with a digit,
// Version 2.0, IssueInstant in UTC, Destination, ForceAuthn true (SPID level
// 2 and above), AssertionConsumerServiceIndex and AttributeConsumingServiceIndex
// (0, as in the metadata) rather than a URL and binding, an Issuer with Format
// entity and NameQualifier the SP's entityID, a NameIDPolicy transient
// without AllowCreate, and RequestedAuthnContext SpidL<Level> with the
// configured Comparison. With the POST binding the request carries an
// enveloped RSA-SHA256 signature after the Issuer; with the Redirect binding
// the signature is in the query (sign).
func (r authnRequest) xml(entityID string, kp Keypair) (*etree.Document, error) {
	doc := etree.NewDocument()
	req := doc.CreateElement("samlp:AuthnRequest")
	req.CreateAttr("xmlns:samlp", nsProtocol)
	req.CreateAttr("xmlns:saml", nsAssertion)
	req.CreateAttr("ID", r.ID)
	req.CreateAttr("Version", "2.0")
	req.CreateAttr("IssueInstant", samlTime(r.IssueInstant))
	req.CreateAttr("Destination", r.Destination)
	req.CreateAttr("ForceAuthn", "true")
	req.CreateAttr("AssertionConsumerServiceIndex", "0")
	req.CreateAttr("AttributeConsumingServiceIndex", "0")
	iss := req.CreateElement("saml:Issuer")
	iss.CreateAttr("Format", formatEntity)
	iss.CreateAttr("NameQualifier", entityID)
	iss.SetText(entityID)
	req.CreateElement("samlp:NameIDPolicy").CreateAttr("Format", formatTransient)
	rac := req.CreateElement("samlp:RequestedAuthnContext")
	rac.CreateAttr("Comparison", r.Comparison)
	rac.CreateElement("saml:AuthnContextClassRef").SetText(fmt.Sprintf("https://www.spid.gov.it/SpidL%d", r.Level))
	if r.Binding == bindingPOST {
		if err := signEnveloped(req, kp, childIndex(req, nsAssertion, "Issuer")); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

// redirectURL encodes a SAML message for the HTTP-Redirect binding
// (saml-bindings §3.4.4): DEFLATE, base64, and a signature over
// SAMLRequest (or SAMLResponse), RelayState and SigAlg with RSA-SHA256.
func redirectURL(endpoint, param string, msg []byte, relayState string, kp Keypair) (string, error) {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	if _, err := w.Write(msg); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	q := param + "=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	if relayState != "" {
		q += "&RelayState=" + url.QueryEscape(relayState)
	}
	q += "&SigAlg=" + url.QueryEscape(dsig.RSASHA256SignatureMethod)
	sum := sha256.Sum256([]byte(q))
	sig, err := rsa.SignPKCS1v15(rand.Reader, kp.Key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	q += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", err
	}
	if u.RawQuery != "" {
		q = u.RawQuery + "&" + q
	}
	u.RawQuery = q
	return u.String(), nil
}

// inflate reverses the Redirect binding's DEFLATE, refusing more than max
// bytes of output (a deflate bomb).
func inflate(b []byte, max int) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(b))
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("inflating: %w", err)
	}
	if len(out) > max {
		return nil, errors.New("the inflated message is too large")
	}
	return out, nil
}

// redirectMessage is a SAML message received with the HTTP-Redirect
// binding, decoded once: the XML read is the XML whose signature verify
// checks.
type redirectMessage struct {
	// XML is the inflated message.
	XML []byte
	// signed are the octets the signature covers: the message parameter,
	// RelayState and SigAlg, in that order, as received.
	signed string
	sig    []byte
}

// readRedirect decodes a message received with the HTTP-Redirect binding
// (saml-bindings §3.4.4): rawQuery as received, the message in the
// parameter named param, base64 of DEFLATE, at most max bytes either way.
// Every parameter appears once; SigAlg must be RSA-SHA256. Nothing is
// verified yet: the caller finds the signer's keys in the message, then
// calls verify.
func readRedirect(rawQuery, param string, max int) (redirectMessage, error) {
	var parts [3]string // param, RelayState, SigAlg: the signed octets in order
	order := map[string]int{param: 0, "RelayState": 1, "SigAlg": 2}
	vals := url.Values{}
	for part := range strings.SplitSeq(rawQuery, "&") {
		k, v, _ := strings.Cut(part, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return redirectMessage{}, err
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return redirectMessage{}, err
		}
		if vals.Has(key) {
			return redirectMessage{}, fmt.Errorf("parameter %s twice", key)
		}
		vals.Set(key, val)
		if i, ok := order[key]; ok {
			parts[i] = part
		}
	}
	if vals.Get("SigAlg") != dsig.RSASHA256SignatureMethod {
		return redirectMessage{}, errors.New("SigAlg is not RSA-SHA256")
	}
	sig, err := base64.StdEncoding.DecodeString(vals.Get("Signature"))
	if err != nil || len(sig) == 0 {
		return redirectMessage{}, errors.New("no signature")
	}
	raw, err := base64.StdEncoding.DecodeString(vals.Get(param))
	if err != nil || len(raw) == 0 {
		return redirectMessage{}, fmt.Errorf("%s is missing or not base64", param)
	}
	if len(raw) > max {
		return redirectMessage{}, errors.New("the message is too large")
	}
	msg, err := inflate(raw, max)
	if err != nil {
		return redirectMessage{}, err
	}
	var octets []string
	for _, p := range parts {
		if p != "" {
			octets = append(octets, p)
		}
	}
	return redirectMessage{XML: msg, signed: strings.Join(octets, "&"), sig: sig}, nil
}

// verify checks the message's signature (RSA-SHA256) with one of keys.
func (m redirectMessage) verify(keys []*rsa.PublicKey) error {
	sum := sha256.Sum256([]byte(m.signed))
	for _, k := range keys {
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], m.sig) == nil {
			return nil
		}
	}
	return errors.New("the signature does not verify")
}
