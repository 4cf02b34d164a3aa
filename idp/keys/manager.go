// Package keys owns Ponte's token-signing keys: it creates them, seals them under
// the master key before they reach storage, publishes them as a JWKS, rotates them
// with an overlap window, and signs tokens for fosite (it implements fosite's
// jwt.Signer, choosing the key by the alg header and writing its kid).
//
// A key's life is read from its times alone: it is published from creation until
// NotAfter, and signs from NotBefore until a newer key of its algorithm does.
// Rotation therefore publishes the new key PublishDelay before it signs (so every
// node and relying party has seen it) and keeps the old one published for
// Retention after that (so every token it signed still verifies).
package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/storage"
)

// Supported signing algorithms.
const (
	ES256 = "ES256"
	RS256 = "RS256"
)

// rsaBits is the size of generated RSA keys.
const rsaBits = 2048

// ErrNoKey means no key of the requested algorithm can sign now.
var ErrNoKey = errors.New("keys: no signing key available")

// Options tune a Manager.
type Options struct {
	// DefaultAlg signs when a token names no algorithm (ES256 if empty).
	DefaultAlg string
	// PublishDelay is how long a rotated-in key is published before it signs.
	PublishDelay time.Duration
	// Retention is how long a replaced key stays published after it stops signing;
	// it must exceed the longest token lifetime.
	Retention time.Duration
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Logger gets rotation and reload events (discarded if nil).
	Logger *slog.Logger
}

// Manager holds the current keys in memory and keeps them in step with storage.
type Manager struct {
	store storage.Keys
	box   *seal.Box
	opts  Options

	mu   sync.RWMutex
	keys []key // newest NotBefore first
}

// key is a storage record with its private key opened.
type key struct {
	rec    storage.SigningKey
	signer crypto.Signer
}

// New returns a Manager; call Load (or EnsureKeys) before signing.
func New(store storage.Keys, box *seal.Box, opts Options) (*Manager, error) {
	if opts.DefaultAlg == "" {
		opts.DefaultAlg = ES256
	}
	if opts.DefaultAlg != ES256 && opts.DefaultAlg != RS256 {
		return nil, fmt.Errorf("keys: unsupported default algorithm %q", opts.DefaultAlg)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{store: store, box: box, opts: opts}, nil
}

// Load reads every key from storage and opens it.
func (m *Manager) Load(ctx context.Context) error {
	recs, err := m.store.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: list: %w", err)
	}
	loaded := make([]key, 0, len(recs))
	for _, rec := range recs {
		s, err := m.open(rec)
		if err != nil {
			return err
		}
		loaded = append(loaded, key{rec: rec, signer: s})
	}
	sort.Slice(loaded, func(i, j int) bool { return loaded[i].rec.NotBefore.After(loaded[j].rec.NotBefore) })
	m.mu.Lock()
	m.keys = loaded
	m.mu.Unlock()
	return nil
}

// EnsureKeys loads the keys and creates, for each algorithm that has none that
// can sign, a key that signs at once (a new installation has nothing to publish ahead).
func (m *Manager) EnsureKeys(ctx context.Context, algs ...string) error {
	if err := m.Load(ctx); err != nil {
		return err
	}
	created := false
	for _, alg := range algs {
		if _, err := m.current(alg); err == nil {
			continue
		}
		if _, err := m.create(ctx, alg, m.opts.Now()); err != nil {
			return err
		}
		created = true
	}
	if created {
		return m.Load(ctx)
	}
	return nil
}

// Rotate creates a new key of alg that signs after PublishDelay, retires the
// keys it replaces (published for Retention more), and deletes keys past NotAfter.
func (m *Manager) Rotate(ctx context.Context, alg string) (storage.SigningKey, error) {
	now := m.opts.Now()
	notBefore := now.Add(m.opts.PublishDelay)
	rec, err := m.create(ctx, alg, notBefore)
	if err != nil {
		return storage.SigningKey{}, err
	}
	recs, err := m.store.ListKeys(ctx)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: list: %w", err)
	}
	for _, old := range recs {
		switch {
		case old.ID == rec.ID:
		case !old.NotAfter.IsZero() && !now.Before(old.NotAfter):
			if err := m.store.DeleteKey(ctx, old.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return storage.SigningKey{}, fmt.Errorf("keys: delete expired %s: %w", old.ID, err)
			}
		case old.Algorithm == alg && old.State == storage.KeyActive:
			err := m.store.UpdateKey(ctx, old.ID, func(k storage.SigningKey) (storage.SigningKey, error) {
				k.State = storage.KeyRetired
				k.NotAfter = notBefore.Add(m.opts.Retention)
				return k, nil
			})
			if err != nil {
				return storage.SigningKey{}, fmt.Errorf("keys: retire %s: %w", old.ID, err)
			}
		}
	}
	m.opts.Logger.InfoContext(ctx, "signing key rotated", "kid", rec.ID, "alg", alg, "signs_from", notBefore)
	return rec, m.Load(ctx)
}

// List returns the stored keys, newest first, without private material.
func (m *Manager) List(ctx context.Context) ([]storage.SigningKey, error) {
	recs, err := m.store.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list: %w", err)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].NotBefore.After(recs[j].NotBefore) })
	for i := range recs {
		recs[i].Sealed = nil
	}
	return recs, nil
}

// Refresh reloads the keys every interval until ctx ends, so that a rotation
// made on another node (or by `ponte keys rotate`) is picked up.
func (m *Manager) Refresh(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Load(ctx); err != nil && ctx.Err() == nil {
				m.opts.Logger.Log(ctx, storage.Severity(err), "reloading signing keys failed", "err", err)
			}
		}
	}
}

// JWKS returns the public keys to publish: every key not past its NotAfter,
// including keys that will sign only after their publish delay.
func (m *Manager) JWKS() jose.JSONWebKeySet {
	now := m.opts.Now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(m.keys))}
	for _, k := range m.keys {
		if published(k.rec, now) {
			set.Keys = append(set.Keys, jose.JSONWebKey{
				Key: k.signer.Public(), KeyID: k.rec.ID, Algorithm: k.rec.Algorithm, Use: "sig",
			})
		}
	}
	return set
}

// Algorithms lists the algorithms that have a key able to sign now.
func (m *Manager) Algorithms() []string {
	var algs []string
	for _, alg := range []string{ES256, RS256} {
		if _, err := m.current(alg); err == nil {
			algs = append(algs, alg)
		}
	}
	return algs
}

// current returns the key that signs for alg now: the newest one whose
// NotBefore has passed and that is still published.
func (m *Manager) current(alg string) (key, error) {
	now := m.opts.Now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, k := range m.keys {
		if k.rec.Algorithm == alg && !now.Before(k.rec.NotBefore) && published(k.rec, now) {
			return k, nil
		}
	}
	return key{}, fmt.Errorf("%w for %s", ErrNoKey, alg)
}

// byID returns a published key by kid.
func (m *Manager) byID(kid string) (key, bool) {
	now := m.opts.Now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, k := range m.keys {
		if k.rec.ID == kid && published(k.rec, now) {
			return k, true
		}
	}
	return key{}, false
}

func published(rec storage.SigningKey, now time.Time) bool {
	return rec.NotAfter.IsZero() || now.Before(rec.NotAfter)
}

// create generates, seals and stores a key of alg.
func (m *Manager) create(ctx context.Context, alg string, notBefore time.Time) (storage.SigningKey, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	default:
		return storage.SigningKey{}, fmt.Errorf("keys: unsupported algorithm %q", alg)
	}
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: generate %s: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: marshal: %w", err)
	}
	kid, err := thumbprint(priv.Public())
	if err != nil {
		return storage.SigningKey{}, err
	}
	sealed, err := m.box.Seal(der, []byte("signing-key:"+kid))
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: seal: %w", err)
	}
	rec := storage.SigningKey{
		ID: kid, Algorithm: alg, State: storage.KeyActive, Sealed: sealed,
		NotBefore: notBefore.UTC(), CreatedAt: m.opts.Now().UTC(),
	}
	if err := m.store.CreateKey(ctx, rec); err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: store: %w", err)
	}
	return rec, nil
}

// open decrypts a stored key; the kid is bound as associated data, so a sealed
// key moved to another record does not open.
func (m *Manager) open(rec storage.SigningKey) (crypto.Signer, error) {
	der, err := m.box.Open(rec.Sealed, []byte("signing-key:"+rec.ID))
	if err != nil {
		return nil, fmt.Errorf("keys: open %s (wrong master key?): %w", rec.ID, err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("keys: parse %s: %w", rec.ID, err)
	}
	s, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: %s is not a signing key", rec.ID)
	}
	return s, nil
}

// thumbprint is the RFC 7638 JWK thumbprint of pub, used as kid.
func thumbprint(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("keys: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}
