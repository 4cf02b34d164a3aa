// Package seal encrypts data at rest and derives sub-keys from Ponte's master key.
//
// A Box seals with AES-256-GCM under a key derived from the 32-byte master key;
// every sealed value is one version byte, a 12-byte random nonce, then the
// ciphertext and its tag. Derive hands out further independent keys (for HMAC,
// client secret hashing, pairwise subjects, cookies) with HKDF-SHA256, so the
// master key itself is never used directly by any primitive.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// KeySize is the length in bytes of a master key.
const KeySize = 32

// version1 is the format byte of values sealed with AES-256-GCM and a
// 12-byte random nonce.
const version1 byte = 1

const (
	nonceSize = 12
	tagSize   = 16
	// overhead is what Seal adds to the plaintext.
	overhead = 1 + nonceSize + tagSize
	// maxDerive is the longest output HKDF-SHA256 can produce.
	maxDerive = 255 * sha256.Size
	// sealSalt separates the sealing key from every key Derive returns
	// (those use no salt), whatever label a caller picks.
	sealSalt = "ponte/seal"
	sealInfo = "aes-256-gcm v1"
)

// Errors returned by Open; test for them with errors.Is.
var (
	// ErrTooShort means the input cannot hold a version, a nonce and a tag.
	ErrTooShort = errors.New("seal: sealed value too short")
	// ErrUnknownVersion means the first byte names no format this Box knows.
	ErrUnknownVersion = errors.New("seal: unknown format version")
	// ErrAuth means the value was tampered with, or sealed under another key
	// or other associated data.
	ErrAuth = errors.New("seal: authentication failed (wrong key, wrong associated data, or tampered value)")
)

// Box seals and opens values under a master key and derives sub-keys from it.
// It is safe for concurrent use.
type Box struct {
	master []byte
	aead   cipher.AEAD
}

// New returns a Box for masterKey, which must be exactly KeySize bytes.
// The key is copied.
func New(masterKey []byte) (*Box, error) {
	if len(masterKey) != KeySize {
		return nil, fmt.Errorf("seal: master key must be %d bytes, got %d", KeySize, len(masterKey))
	}
	master := append([]byte(nil), masterKey...)
	key, err := hkdf.Key(sha256.New, master, []byte(sealSalt), sealInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("seal: derive sealing key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return &Box{master: master, aead: aead}, nil
}

// Seal encrypts and authenticates plaintext, binding it to associatedData,
// which Open must be given again (it is not stored). The result is
// version (1 byte) || nonce (12 random bytes) || ciphertext || tag (16 bytes).
func (b *Box) Seal(plaintext, associatedData []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, len(plaintext)+overhead)
	out[0] = version1
	nonce := out[1 : 1+nonceSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: random nonce: %w", err)
	}
	return b.aead.Seal(out, nonce, plaintext, associatedData), nil
}

// Open authenticates and decrypts a value made by Seal with the same
// associatedData. It fails with ErrTooShort, ErrUnknownVersion or ErrAuth
// and never panics, whatever the input.
func (b *Box) Open(sealed, associatedData []byte) ([]byte, error) {
	if len(sealed) < overhead {
		return nil, fmt.Errorf("%w: %d bytes, need at least %d", ErrTooShort, len(sealed), overhead)
	}
	if sealed[0] != version1 {
		return nil, fmt.Errorf("%w: %d", ErrUnknownVersion, sealed[0])
	}
	nonce, ciphertext := sealed[1:1+nonceSize], sealed[1+nonceSize:]
	plaintext, err := b.aead.Open(nil, nonce, ciphertext, associatedData)
	if err != nil {
		return nil, ErrAuth
	}
	return plaintext, nil
}

// Derive returns n bytes of key material for label, computed with
// HKDF-SHA256 from the master key with label as the info string. The same
// master key and label always give the same bytes; different labels give
// independent keys. Use one fixed label per purpose, e.g. "fosite-hmac",
// "client-secret", "pairwise-salt" or "cookie".
//
// n must be between 1 and 8160 (255 SHA-256 blocks); anything else is a
// programming error and panics.
func (b *Box) Derive(label string, n int) []byte {
	if n < 1 || n > maxDerive {
		panic(fmt.Sprintf("seal: Derive length %d out of range [1, %d]", n, maxDerive))
	}
	key, err := hkdf.Key(sha256.New, b.master, nil, label, n)
	if err != nil {
		// Unreachable with a valid length and a 32-byte secret.
		panic(fmt.Sprintf("seal: derive %q: %v", label, err))
	}
	return key
}
