package cnstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"io"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"
)

// Faults make a Responder misbehave the ways real ones do.
type Faults struct {
	// Down answers HTTP 503.
	Down bool
	// TryLater answers the OCSP status tryLater.
	TryLater bool
	// Unknown answers "unknown" for every certificate.
	Unknown bool
	// Age makes thisUpdate that long ago (default a minute).
	Age time.Duration
	// Validity is nextUpdate - thisUpdate (default an hour); NoNextUpdate
	// leaves nextUpdate out.
	Validity     time.Duration
	NoNextUpdate bool
	// NoNonce does not echo the request's nonce (a pre-produced answer);
	// WrongNonce echoes another one (a replayed answer).
	NoNonce, WrongNonce bool
	// Forge signs with a key the CA never certified.
	Forge bool
	// Delay holds each answer that long.
	Delay time.Duration
}

// Responder is an OCSP responder (RFC 6960) for the certificates ca issues,
// answering POSTed requests. By default it signs as the CA itself; UseSigner
// makes it a delegated responder. Its methods are safe for concurrent use.
type Responder struct {
	ca       *CA
	mu       sync.Mutex
	signer   tls.Certificate
	delegate bool
	revoked  map[string]time.Time
	faults   Faults
	requests atomic.Int64
	nonces   atomic.Int64
}

// NewResponder returns a responder for ca that knows no revocation.
func NewResponder(ca *CA) *Responder {
	return &Responder{ca: ca, revoked: map[string]time.Time{},
		signer: tls.Certificate{Certificate: [][]byte{ca.Cert.Raw}, PrivateKey: ca.Key, Leaf: ca.Cert}}
}

// Revoke makes the responder answer that serial was revoked at at.
func (r *Responder) Revoke(serial *big.Int, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revoked[string(serial.Bytes())] = at
}

// Set replaces the faults.
func (r *Responder) Set(f Faults) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = f
}

// UseSigner makes the responder sign with c (a delegated responder
// certificate, sent along with each answer).
func (r *Responder) UseSigner(c tls.Certificate) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.signer, r.delegate = c, true
}

// Requests is how many requests reached the responder; Nonces how many of
// them carried a nonce.
func (r *Responder) Requests() int64 { return r.requests.Load() }

// Nonces is how many requests carried a nonce.
func (r *Responder) Nonces() int64 { return r.nonces.Load() }

// ServeHTTP answers an OCSP request.
func (r *Responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	r.mu.Lock()
	f, signer, delegate := r.faults, r.signer, r.delegate
	r.mu.Unlock()
	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-req.Context().Done():
			return
		}
	}
	if f.Down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 64<<10))
	if err != nil || req.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	if f.TryLater {
		_, _ = w.Write(ocsp.TryLaterErrorResponse)
		return
	}
	parsed, err := ocsp.ParseRequest(body)
	if err != nil {
		_, _ = w.Write(ocsp.MalformedRequestErrorResponse)
		return
	}
	nonce := requestNonce(body)
	if nonce != nil {
		r.nonces.Add(1)
	}
	if f.NoNonce {
		nonce = nil
	}
	if f.WrongNonce {
		nonce, _ = asn1.Marshal([]byte("not-the-nonce-sent"))
	}
	r.mu.Lock()
	at, revoked := r.revoked[string(parsed.SerialNumber.Bytes())]
	r.mu.Unlock()
	status := statusGood
	switch {
	case f.Unknown:
		status = statusUnknown
	case revoked:
		status = statusRevoked
	}
	key := signer.PrivateKey.(crypto.Signer)
	if f.Forge {
		if key, err = NewKey(ECDSA); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	now := time.Now()
	this := now.Add(-orDuration(f.Age, time.Minute))
	next := this.Add(orDuration(f.Validity, time.Hour))
	if f.NoNextUpdate {
		next = time.Time{}
	}
	der, err := r.respond(parsed, status, at, this, next, nonce, signer.Leaf, delegate, key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(der)
}

// requestNonce returns the nonce extension's value of a request, or nil.
func requestNonce(der []byte) []byte {
	var req struct {
		TBS struct {
			Version    int `asn1:"explicit,tag:0,default:0,optional"`
			Requests   asn1.RawValue
			Extensions []pkix.Extension `asn1:"explicit,tag:2,optional"`
		}
	}
	if _, err := asn1.Unmarshal(der, &req); err != nil {
		return nil
	}
	for _, e := range req.TBS.Extensions {
		if e.Id.Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}) {
			return e.Value
		}
	}
	return nil
}

const (
	statusGood = iota
	statusRevoked
	statusUnknown
)

// The ASN.1 of a basic OCSP response (RFC 6960 §4.2.1), with the
// responseExtensions that x/crypto/ocsp cannot write.
type (
	certIDASN1 struct {
		HashAlgorithm pkix.AlgorithmIdentifier
		NameHash      []byte
		KeyHash       []byte
		SerialNumber  *big.Int
	}
	revokedInfo struct {
		RevocationTime time.Time `asn1:"generalized"`
	}
	singleResponse struct {
		CertID     certIDASN1
		Good       asn1.Flag   `asn1:"tag:0,optional"`
		Revoked    revokedInfo `asn1:"tag:1,optional"`
		Unknown    asn1.Flag   `asn1:"tag:2,optional"`
		ThisUpdate time.Time   `asn1:"generalized"`
		NextUpdate time.Time   `asn1:"generalized,explicit,tag:0,optional"`
	}
	responseData struct {
		ResponderID asn1.RawValue
		ProducedAt  time.Time `asn1:"generalized"`
		Responses   []singleResponse
		Extensions  []pkix.Extension `asn1:"explicit,tag:1,optional"`
	}
	basicResponse struct {
		TBSResponseData    asn1.RawValue
		SignatureAlgorithm pkix.AlgorithmIdentifier
		Signature          asn1.BitString
		Certificates       []asn1.RawValue `asn1:"explicit,tag:0,optional"`
	}
	responseBytes struct {
		ResponseType asn1.ObjectIdentifier
		Response     []byte
	}
	ocspResponse struct {
		Status   asn1.Enumerated
		Response responseBytes `asn1:"explicit,tag:0,optional"`
	}
)

// respond encodes and signs an answer about the certificate req names,
// echoing its CertID.
func (r *Responder) respond(req *ocsp.Request, status int, revokedAt, this, next time.Time, nonce []byte,
	signer *x509.Certificate, delegate bool, key crypto.Signer) ([]byte, error) {
	hashOID := map[crypto.Hash]asn1.ObjectIdentifier{
		crypto.SHA1: {1, 3, 14, 3, 2, 26}, crypto.SHA256: {2, 16, 840, 1, 101, 3, 4, 2, 1},
		crypto.SHA384: {2, 16, 840, 1, 101, 3, 4, 2, 2}, crypto.SHA512: {2, 16, 840, 1, 101, 3, 4, 2, 3},
	}[req.HashAlgorithm]
	single := singleResponse{
		CertID: certIDASN1{
			HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: hashOID, Parameters: asn1.NullRawValue},
			NameHash:      req.IssuerNameHash, KeyHash: req.IssuerKeyHash, SerialNumber: req.SerialNumber,
		},
		ThisUpdate: this.UTC(), NextUpdate: next.UTC(),
	}
	switch status {
	case statusGood:
		single.Good = true
	case statusUnknown:
		single.Unknown = true
	default:
		single.Revoked = revokedInfo{RevocationTime: revokedAt.UTC()}
	}
	data := responseData{
		ResponderID: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, IsCompound: true, Bytes: signer.RawSubject},
		ProducedAt:  time.Now().UTC().Truncate(time.Second), Responses: []singleResponse{single},
	}
	if nonce != nil {
		data.Extensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}, Value: nonce}}
	}
	tbs, err := asn1.Marshal(data)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(tbs)
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	basic := basicResponse{
		TBSResponseData:    asn1.RawValue{FullBytes: tbs},
		SignatureAlgorithm: sigAlgorithm(key),
		Signature:          asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
	}
	if delegate {
		basic.Certificates = []asn1.RawValue{{FullBytes: signer.Raw}}
	}
	basicDER, err := asn1.Marshal(basic)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(ocspResponse{Response: responseBytes{ResponseType: asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}, Response: basicDER}})
}

// sigAlgorithm is the SHA-256 signature algorithm of key.
func sigAlgorithm(key crypto.Signer) pkix.AlgorithmIdentifier {
	switch key.Public().(type) {
	case *rsa.PublicKey:
		return pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, Parameters: asn1.NullRawValue}
	case *ecdsa.PublicKey:
		return pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}}
	}
	return pkix.AlgorithmIdentifier{}
}

func orDuration(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
