package cns

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	_ "crypto/sha1" // CertID hashes
	"crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"time"

	"golang.org/x/crypto/ocsp"
)

// maxOCSPResponse bounds a responder's answer.
const maxOCSPResponse = 1 << 20

// oidOCSPNonce is id-pkix-ocsp-nonce (RFC 8954).
var oidOCSPNonce = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}

// The hash algorithms a CertID may use.
var ocspHashes = []struct {
	oid  asn1.ObjectIdentifier
	hash crypto.Hash
}{
	{asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}, crypto.SHA1},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}, crypto.SHA256},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}, crypto.SHA384},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}, crypto.SHA512},
}

// The parts of RFC 6960 that golang.org/x/crypto/ocsp does not expose: a
// request with extensions (the nonce), and a response's CertID hashes and
// responseExtensions.
type (
	ocspCertID struct {
		HashAlgorithm pkix.AlgorithmIdentifier
		NameHash      []byte
		KeyHash       []byte
		SerialNumber  *big.Int
	}
	ocspRequestASN1 struct {
		TBS struct {
			Version    int `asn1:"explicit,tag:0,default:0,optional"`
			Requests   []struct{ Cert ocspCertID }
			Extensions []pkix.Extension `asn1:"explicit,tag:2,optional"`
		}
	}
	ocspResponseData struct {
		Raw         asn1.RawContent
		Version     int `asn1:"optional,default:0,explicit,tag:0"`
		ResponderID asn1.RawValue
		ProducedAt  time.Time `asn1:"generalized"`
		// Responses is the SEQUENCE OF SingleResponse, read one by one.
		Responses  asn1.RawValue
		Extensions []pkix.Extension `asn1:"explicit,tag:1,optional"`
	}
)

// ocspHash is the hash of a CertID's algorithm.
func ocspHash(oid asn1.ObjectIdentifier) (crypto.Hash, bool) {
	for _, h := range ocspHashes {
		if h.oid.Equal(oid) {
			return h.hash, true
		}
	}
	return 0, false
}

// ocspKey names a certificate in the OCSP cache: its issuer's key and its serial.
type ocspKey struct {
	issuer [32]byte
	serial string
}

// ocspAnswer is a checked OCSP answer.
type ocspAnswer struct {
	status     int // ocsp.Good, ocsp.Revoked or ocsp.Unknown
	revokedAt  time.Time
	thisUpdate time.Time
	// expires is when the cache forgets it.
	expires time.Time
}

// ocspRequest builds a request for cert (SHA-1 CertID, as RFC 5019 asks of
// clients) with a fresh nonce when withNonce.
func ocspRequest(cert, issuer *x509.Certificate, withNonce bool) (der, nonce []byte, err error) {
	id, err := certID(cert, issuer, crypto.SHA1, ocspHashes[0].oid)
	if err != nil {
		return nil, nil, err
	}
	var req ocspRequestASN1
	req.TBS.Requests = []struct{ Cert ocspCertID }{{id}}
	if withNonce {
		nonce = make([]byte, 16)
		_, _ = rand.Read(nonce)
		value, _ := asn1.Marshal(nonce)
		req.TBS.Extensions = []pkix.Extension{{Id: oidOCSPNonce, Value: value}}
	}
	der, err = asn1.Marshal(req)
	return der, nonce, err
}

// certID is the CertID of cert under hash h.
func certID(cert, issuer *x509.Certificate, h crypto.Hash, oid asn1.ObjectIdentifier) (ocspCertID, error) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return ocspCertID{}, fmt.Errorf("issuer key: %w", err)
	}
	name := h.New()
	name.Write(issuer.RawSubject)
	key := h.New()
	key.Write(spki.PublicKey.RightAlign())
	return ocspCertID{
		HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.NullRawValue},
		NameHash:      name.Sum(nil), KeyHash: key.Sum(nil), SerialNumber: cert.SerialNumber,
	}, nil
}

// ocspStatus asks url about cert, or answers from the cache. The refusal says
// why no answer could be had; an answer's status is for the caller to judge.
func (c *revocationChecker) ocspStatus(ctx context.Context, cert, issuer *x509.Certificate, url string) (ocspAnswer, *refusal) {
	now := c.now()
	key := ocspKey{issuer: sha256.Sum256(issuer.RawSubjectPublicKeyInfo), serial: string(cert.SerialNumber.Bytes())}
	if a, ok := c.ocspCache.get(key); ok && now.Before(a.expires) {
		c.metrics.ocspCacheHits.Add(1)
		return a, nil
	}
	if until, down := c.health.down(url, now); down {
		return ocspAnswer{}, refuse(ReasonOCSPUnavailable, "responder %s failed recently; asked again after %s", url, until.UTC().Format(time.RFC3339))
	}
	a, r := c.askOCSP(ctx, cert, issuer, url, now)
	c.metrics.ocspRequests.Add(1)
	if r != nil {
		c.metrics.ocspFailures.Add(1)
		retry := time.Duration(0)
		if r.Reason == ReasonOCSPUnavailable {
			retry = c.cfg.RetryAfter
		}
		c.health.fail(sourceOCSP, url, r, now, retry)
		return ocspAnswer{}, r
	}
	c.health.ok(sourceOCSP, url, now)
	c.ocspCache.put(key, a)
	return a, nil
}

// askOCSP sends one request and checks the answer (RFC 6960): the responder's
// signature, by the CA or by a responder it delegated to (id-kp-OCSPSigning),
// the CertID, the nonce when one is echoed, and freshness.
func (c *revocationChecker) askOCSP(ctx context.Context, cert, issuer *x509.Certificate, url string, now time.Time) (ocspAnswer, *refusal) {
	der, nonce, err := ocspRequest(cert, issuer, bool(c.cfg.OCSPNonce))
	if err != nil {
		return ocspAnswer{}, refuse(ReasonOCSPBadResponse, "building the request: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(der))
	if err != nil {
		return ocspAnswer{}, refuse(ReasonOCSPUnavailable, "responder %s: %v", url, err)
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	req.Header.Set("Accept", "application/ocsp-response")
	resp, err := c.client.Do(req)
	if err != nil {
		return ocspAnswer{}, refuse(ReasonOCSPUnavailable, "responder %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ocspAnswer{}, refuse(ReasonOCSPUnavailable, "responder %s: HTTP %d", url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxOCSPResponse+1))
	if err != nil {
		return ocspAnswer{}, refuse(ReasonOCSPUnavailable, "responder %s: %v", url, err)
	}
	if len(body) > maxOCSPResponse {
		return ocspAnswer{}, refuse(ReasonOCSPBadResponse, "responder %s: answer larger than %d bytes", url, maxOCSPResponse)
	}
	parsed, err := ocsp.ParseResponseForCert(body, cert, nil)
	var status ocsp.ResponseError
	switch {
	case errors.As(err, &status):
		return ocspAnswer{}, refuse(ReasonOCSPUnavailable, "responder %s: %v", url, err)
	case err != nil:
		return ocspAnswer{}, refuse(ReasonOCSPBadResponse, "responder %s: %v", url, err)
	}
	if err := checkOCSPSigner(parsed, issuer, now); err != nil {
		return ocspAnswer{}, refuse(ReasonOCSPBadResponse, "responder %s: %v", url, err)
	}
	if err := checkOCSPData(parsed.TBSResponseData, cert, issuer, nonce); err != nil {
		return ocspAnswer{}, refuse(ReasonOCSPBadResponse, "responder %s: %v", url, err)
	}
	skew, maxAge := c.cfg.ClockSkew, c.cfg.MaxAge
	switch {
	case parsed.ThisUpdate.After(now.Add(skew)):
		return ocspAnswer{}, refuse(ReasonOCSPStale, "responder %s: thisUpdate %s is in the future", url, parsed.ThisUpdate.UTC().Format(time.RFC3339))
	case !parsed.NextUpdate.IsZero() && parsed.NextUpdate.Before(now.Add(-skew)):
		return ocspAnswer{}, refuse(ReasonOCSPStale, "responder %s: nextUpdate %s has passed", url, parsed.NextUpdate.UTC().Format(time.RFC3339))
	case parsed.NextUpdate.IsZero() && parsed.ThisUpdate.Add(maxAge).Before(now):
		return ocspAnswer{}, refuse(ReasonOCSPStale, "responder %s: an answer of %s without nextUpdate is older than %v", url, parsed.ThisUpdate.UTC().Format(time.RFC3339), maxAge)
	}
	a := ocspAnswer{status: parsed.Status, revokedAt: parsed.RevokedAt, thisUpdate: parsed.ThisUpdate, expires: now.Add(maxAge)}
	if parsed.Status == ocsp.Good {
		if !parsed.NextUpdate.IsZero() && parsed.NextUpdate.Before(a.expires) {
			a.expires = parsed.NextUpdate
		}
		if parsed.NextUpdate.IsZero() {
			a.expires = parsed.ThisUpdate.Add(maxAge)
		}
	}
	if parsed.Status == ocsp.Unknown {
		a.expires = now // never cached: the responder may learn of it
	}
	return a, nil
}

// checkOCSPSigner checks who signed the answer: the card's CA itself, or a
// responder certificate the CA issued for the purpose (RFC 6960 §4.2.2.2):
// signed by the CA, with extended key usage id-kp-OCSPSigning, valid now.
func checkOCSPSigner(r *ocsp.Response, issuer *x509.Certificate, now time.Time) error {
	signer := issuer
	if rc := r.Certificate; rc != nil && !rc.Equal(issuer) {
		if err := rc.CheckSignatureFrom(issuer); err != nil {
			return fmt.Errorf("the responder certificate %q was not issued by the card's CA: %w", rc.Subject.CommonName, err)
		}
		if !slices.Contains(rc.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
			return fmt.Errorf("the responder certificate %q lacks extended key usage id-kp-OCSPSigning", rc.Subject.CommonName)
		}
		if now.Before(rc.NotBefore) || now.After(rc.NotAfter) {
			return fmt.Errorf("the responder certificate %q is not valid now", rc.Subject.CommonName)
		}
		signer = rc
	}
	if err := r.CheckSignatureFrom(signer); err != nil {
		return fmt.Errorf("bad signature: %w", err)
	}
	return nil
}

// checkOCSPData checks what x/crypto/ocsp leaves out: that the answer for
// cert's serial names cert's issuer (name and key hashes), and that a nonce,
// when the responder echoes one, is the one sent.
func checkOCSPData(tbs []byte, cert, issuer *x509.Certificate, nonce []byte) error {
	var data ocspResponseData
	if _, err := asn1.Unmarshal(tbs, &data); err != nil {
		return fmt.Errorf("response data: %w", err)
	}
	matched := false
	for rest := data.Responses.Bytes; len(rest) > 0; {
		// The fields after the CertID are read by x/crypto/ocsp.
		var single struct{ CertID ocspCertID }
		var err error
		if rest, err = asn1.Unmarshal(rest, &single); err != nil {
			return fmt.Errorf("single response: %w", err)
		}
		id := single.CertID
		if id.SerialNumber == nil || id.SerialNumber.Cmp(cert.SerialNumber) != 0 {
			continue
		}
		matched = true
		h, ok := ocspHash(id.HashAlgorithm.Algorithm)
		if !ok {
			return errors.New("unsupported CertID hash")
		}
		want, err := certID(cert, issuer, h, id.HashAlgorithm.Algorithm)
		if err != nil {
			return err
		}
		if !bytes.Equal(want.NameHash, id.NameHash) || !bytes.Equal(want.KeyHash, id.KeyHash) {
			return errors.New("the answer is about a certificate of another issuer")
		}
	}
	if !matched {
		return errors.New("no answer for the certificate")
	}
	for _, ext := range data.Extensions {
		if !ext.Id.Equal(oidOCSPNonce) || nonce == nil {
			continue
		}
		wrapped, _ := asn1.Marshal(nonce)
		if !bytes.Equal(ext.Value, wrapped) && !bytes.Equal(ext.Value, nonce) {
			return errors.New("the nonce is not the one sent (a replayed answer)")
		}
	}
	return nil
}
