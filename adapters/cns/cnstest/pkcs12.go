package cnstest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"unicode/utf16"
)

// PKCS12 encodes a card's key and chain as a PKCS #12 file (RFC 7292) that
// browsers and operating systems import as a personal certificate, as
// OpenSSL 3 writes one by default: the key shrouded with PBES2 (PBKDF2 with
// HMAC-SHA-256, AES-256-CBC), the certificates in the clear, the whole
// under an HMAC-SHA-256 integrity MAC. The password must not be empty.
func PKCS12(c tls.Certificate, password string) ([]byte, error) {
	if password == "" {
		return nil, errors.New("cnstest: a PKCS #12 file needs a password")
	}
	const iterations = 10000
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return nil, err
	}
	shrouded, err := pbes2Encrypt(keyDER, password, iterations)
	if err != nil {
		return nil, err
	}
	leaf := c.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, err
		}
	}
	localKeyID := sha256.Sum256(leaf.Raw)
	leafAttrs := []p12Attribute{{Id: oidLocalKeyID, Values: []asn1.RawValue{octets(localKeyID[:20])}}}

	var certBags []p12SafeBag
	for i, der := range c.Certificate {
		value, err := asn1.Marshal(p12CertBag{Id: oidX509Certificate, Data: der})
		if err != nil {
			return nil, err
		}
		bag := p12SafeBag{Id: oidCertBag, Value: explicit0(value)}
		if i == 0 {
			bag.Attributes = leafAttrs
		}
		certBags = append(certBags, bag)
	}
	keyBag := []p12SafeBag{{Id: oidPKCS8ShroudedKeyBag, Value: explicit0(shrouded), Attributes: leafAttrs}}

	var safes []p12ContentInfo
	for _, bags := range [][]p12SafeBag{certBags, keyBag} {
		der, err := asn1.Marshal(bags)
		if err != nil {
			return nil, err
		}
		info, err := dataContent(der)
		if err != nil {
			return nil, err
		}
		safes = append(safes, info)
	}
	authSafe, err := asn1.Marshal(safes)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	macKey := pkcs12KDF(salt, bmpString(password), iterations, 3, sha256.Size)
	mac := hmac.New(sha256.New, macKey)
	mac.Write(authSafe)
	content, err := dataContent(authSafe)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(p12PFX{
		Version: 3, AuthSafe: content,
		MacData: p12MacData{
			Mac:        p12DigestInfo{Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidSHA256, Parameters: asn1.NullRawValue}, Digest: mac.Sum(nil)},
			Salt:       salt,
			Iterations: iterations,
		},
	})
}

var (
	oidData                = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidCertBag             = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}
	oidPKCS8ShroudedKeyBag = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidX509Certificate     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}
	oidLocalKeyID          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 21}
	oidPBES2               = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2              = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACSHA256          = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidAES256CBC           = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidSHA256              = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
)

type (
	p12PFX struct {
		Version  int
		AuthSafe p12ContentInfo
		MacData  p12MacData
	}
	p12ContentInfo struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue // [0] EXPLICIT, made by explicit0
	}
	p12MacData struct {
		Mac        p12DigestInfo
		Salt       []byte
		Iterations int
	}
	p12DigestInfo struct {
		Algorithm pkix.AlgorithmIdentifier
		Digest    []byte
	}
	p12SafeBag struct {
		Id         asn1.ObjectIdentifier
		Value      asn1.RawValue  // [0] EXPLICIT, made by explicit0
		Attributes []p12Attribute `asn1:"set,optional"`
	}
	p12Attribute struct {
		Id     asn1.ObjectIdentifier
		Values []asn1.RawValue `asn1:"set"`
	}
	p12CertBag struct {
		Id   asn1.ObjectIdentifier
		Data []byte `asn1:"explicit,tag:0"`
	}
	encryptedPrivateKeyInfo struct {
		Algorithm pkix.AlgorithmIdentifier
		Data      []byte
	}
	pbes2Params struct {
		KDF    pkix.AlgorithmIdentifier
		Cipher pkix.AlgorithmIdentifier
	}
	pbkdf2Params struct {
		Salt       []byte
		Iterations int
		KeyLength  int `asn1:"optional"`
		PRF        pkix.AlgorithmIdentifier
	}
)

// pbes2Encrypt wraps a PKCS #8 key as an EncryptedPrivateKeyInfo under
// PBES2 (RFC 8018): PBKDF2-HMAC-SHA-256 and AES-256-CBC. The password is
// its UTF-8 bytes, as OpenSSL uses it for PBES2.
func pbes2Encrypt(keyDER []byte, password string, iterations int) ([]byte, error) {
	salt, iv := make([]byte, 16), make([]byte, aes.BlockSize)
	_, _ = rand.Read(salt)
	_, _ = rand.Read(iv)
	key, err := pbkdf2.Key(sha256.New, password, salt, iterations, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	pad := aes.BlockSize - len(keyDER)%aes.BlockSize
	plain := append(append([]byte{}, keyDER...), make([]byte, pad)...)
	for i := len(keyDER); i < len(plain); i++ {
		plain[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(plain, plain)
	kdf, err := asn1.Marshal(pbkdf2Params{Salt: salt, Iterations: iterations,
		PRF: pkix.AlgorithmIdentifier{Algorithm: oidHMACSHA256, Parameters: asn1.NullRawValue}})
	if err != nil {
		return nil, err
	}
	ivDER, err := asn1.Marshal(iv)
	if err != nil {
		return nil, err
	}
	params, err := asn1.Marshal(pbes2Params{
		KDF:    pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: asn1.RawValue{FullBytes: kdf}},
		Cipher: pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: ivDER}},
	})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(encryptedPrivateKeyInfo{
		Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: params}},
		Data:      plain,
	})
}

// pkcs12KDF is the key derivation of RFC 7292 appendix B.2 with SHA-256
// (u = 32, v = 64): id 3 makes the MAC key.
func pkcs12KDF(salt, password []byte, iterations int, id byte, size int) []byte {
	const v = 64 // SHA-256's block size
	fill := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		out := make([]byte, v*((len(b)+v-1)/v))
		for i := range out {
			out[i] = b[i%len(b)]
		}
		return out
	}
	d := make([]byte, v)
	for i := range d {
		d[i] = id
	}
	in := append(fill(salt), fill(password)...)
	var out []byte
	for len(out) < size {
		h := sha256.Sum256(append(append([]byte{}, d...), in...))
		a := h[:]
		for range iterations - 1 {
			h = sha256.Sum256(a)
			a = h[:]
		}
		out = append(out, a...)
		b := fill(a)
		// Each v-byte block of in becomes (block + b + 1) mod 2^(8v).
		for j := 0; j < len(in); j += v {
			carry := 1
			for k := v - 1; k >= 0; k-- {
				sum := int(in[j+k]) + int(b[k]) + carry
				in[j+k], carry = byte(sum), sum>>8
			}
		}
	}
	return out[:size]
}

// bmpString is a password as PKCS #12 hashes it: UTF-16 big-endian with a
// final zero character.
func bmpString(s string) []byte {
	var out []byte
	for _, r := range utf16.Encode([]rune(s)) {
		out = append(out, byte(r>>8), byte(r))
	}
	return append(out, 0, 0)
}

func dataContent(der []byte) (p12ContentInfo, error) {
	inner, err := asn1.Marshal(der)
	if err != nil {
		return p12ContentInfo{}, err
	}
	return p12ContentInfo{ContentType: oidData, Content: explicit0(inner)}, nil
}

// explicit0 wraps DER in [0] EXPLICIT. (encoding/asn1 writes a RawValue's
// FullBytes as they are, ignoring the field's tag: the wrapping is made here.)
func explicit0(der []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: der}
}

func octets(b []byte) asn1.RawValue {
	der, _ := asn1.Marshal(b)
	return asn1.RawValue{FullBytes: der}
}
