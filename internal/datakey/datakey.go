// Package datakey keeps Ponte's data key: the root of everything sealed at
// rest and of every key derived (a seal.Box over it), stored in the database
// wrapped under each master key in use (storage.MasterKeys). The master key
// only opens the data key, so it can change while everything sealed or
// derived stays as it is: AddMaster wraps the data key under a new master
// key, the nodes move to it one at a time (each opens whichever wrapping
// matches its key), and Retire removes the other wrappings.
//
// A master key is named by its fingerprint, an HKDF output of the key (never
// the key); the data key by its ID, likewise. On the first start of a
// database holding anything sealed or derived under the master key of the
// release before data keys, the data key is that master key, so nothing
// changes; a new database gets a random data key.
package datakey

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/storage"
)

// HKDF labels under a master key (fingerprint, wrapping key) and under the
// data key (its ID); none is used by anything else Ponte derives.
const (
	labelFingerprint = "ponte/master-key-fingerprint"
	labelWrap        = "ponte/data-key-wrap"
	labelDataKeyID   = "ponte/data-key-id"
	// idBytes is the length of a fingerprint or data key ID before hex.
	idBytes = 8
)

// Errors of Open, AddMaster and Retire; test for them with errors.Is.
var (
	// ErrUnknownMasterKey means no wrapping in the database matches the
	// master key: an old (retired) key, or a wrong one.
	ErrUnknownMasterKey = errors.New("datakey: the master key opens no data key in this database")
	// ErrSameKey means the new master key given to AddMaster is the current one.
	ErrSameKey = errors.New("datakey: the new master key is the current one")
	// ErrAlreadyWraps means the new master key given to AddMaster already wraps the data key.
	ErrAlreadyWraps = errors.New("datakey: the new master key already wraps the data key")
)

// Fresh reports whether the database holds nothing sealed or derived yet, so
// that a first start may pick a random data key instead of the master key.
type Fresh func(ctx context.Context) (bool, error)

// Opened is the data key a master key opened.
type Opened struct {
	// Box seals, opens and derives under the data key.
	Box *seal.Box
	// Fingerprint names the master key that opened it.
	Fingerprint string
	// DataKeyID names the data key.
	DataKeyID string
	// Created is true when this call stored the first wrapping.
	Created bool
	// key is the data key itself, for AddMaster to wrap.
	key []byte
}

// master is a master key with its fingerprint and wrapping box.
type master struct {
	fingerprint string
	wrap        *seal.Box
}

func newMaster(key []byte) (master, error) {
	b, err := seal.New(key)
	if err != nil {
		return master{}, err
	}
	wrap, err := seal.New(b.Derive(labelWrap, seal.KeySize))
	if err != nil {
		return master{}, err
	}
	return master{fingerprint: hex.EncodeToString(b.Derive(labelFingerprint, idBytes)), wrap: wrap}, nil
}

// aad binds a wrapping to the fingerprint of the master key it is stored under.
func (m master) aad() []byte { return []byte("data-key:" + m.fingerprint) }

// Fingerprint returns the public name of a master key, as the wrappings list it.
func Fingerprint(key []byte) (string, error) {
	m, err := newMaster(key)
	if err != nil {
		return "", err
	}
	return m.fingerprint, nil
}

// dataKeyID names a data key.
func dataKeyID(b *seal.Box) string { return hex.EncodeToString(b.Derive(labelDataKeyID, idBytes)) }

// Open returns the data key wrapped under key. When the database holds no
// wrapping yet (the first start), it stores one: of a random data key if
// fresh says the database holds nothing sealed or derived (fresh may be nil:
// not fresh), of key itself otherwise. Of nodes starting at once, one stores
// the wrapping and the others open it. ErrUnknownMasterKey if wrappings exist
// and none is under key.
func Open(ctx context.Context, store storage.MasterKeys, key []byte, fresh Fresh) (Opened, error) {
	m, err := newMaster(key)
	if err != nil {
		return Opened{}, err
	}
	// A second round only after losing the first-start race: the winner's
	// wrapping is then there.
	for range 2 {
		wraps, err := store.ListDataKeyWraps(ctx)
		if err != nil {
			return Opened{}, fmt.Errorf("datakey: %w", err)
		}
		if len(wraps) > 0 {
			return open(m, wraps)
		}
		opened, err := first(ctx, store, m, key, fresh)
		if !errors.Is(err, storage.ErrConflict) {
			return opened, err
		}
	}
	return Opened{}, errors.New("datakey: the first wrapping of the data key was stored and then vanished")
}

// first stores the first wrapping of the database: storage.ErrConflict if
// another node stored one meanwhile.
func first(ctx context.Context, store storage.MasterKeys, m master, key []byte, fresh Fresh) (Opened, error) {
	dataKey := key
	if fresh != nil {
		isFresh, err := fresh(ctx)
		if err != nil {
			return Opened{}, fmt.Errorf("datakey: %w", err)
		}
		if isFresh {
			dataKey = make([]byte, seal.KeySize)
			if _, err := rand.Read(dataKey); err != nil {
				return Opened{}, fmt.Errorf("datakey: generate: %w", err)
			}
		}
	}
	w, box, err := wrap(m, dataKey)
	if err != nil {
		return Opened{}, err
	}
	if err := store.AddDataKeyWrap(ctx, w); err != nil {
		return Opened{}, fmt.Errorf("datakey: store the first wrapping: %w", err)
	}
	return Opened{Box: box, Fingerprint: m.fingerprint, DataKeyID: w.DataKeyID, Created: true, key: dataKey}, nil
}

// wrap seals dataKey under m.
func wrap(m master, dataKey []byte) (storage.DataKeyWrap, *seal.Box, error) {
	box, err := seal.New(dataKey)
	if err != nil {
		return storage.DataKeyWrap{}, nil, err
	}
	sealed, err := m.wrap.Seal(dataKey, m.aad())
	if err != nil {
		return storage.DataKeyWrap{}, nil, fmt.Errorf("datakey: wrap: %w", err)
	}
	return storage.DataKeyWrap{Fingerprint: m.fingerprint, DataKeyID: dataKeyID(box), Wrapped: sealed}, box, nil
}

// open finds m's wrapping among wraps and opens it.
func open(m master, wraps []storage.DataKeyWrap) (Opened, error) {
	var known []string
	for _, w := range wraps {
		if w.Fingerprint != m.fingerprint {
			known = append(known, w.Fingerprint)
			continue
		}
		dataKey, err := m.wrap.Open(w.Wrapped, m.aad())
		if err != nil {
			return Opened{}, fmt.Errorf("datakey: open the wrapping under master key %s: %w", m.fingerprint, err)
		}
		box, err := seal.New(dataKey)
		if err != nil {
			return Opened{}, fmt.Errorf("datakey: the wrapping under master key %s: %w", m.fingerprint, err)
		}
		if id := dataKeyID(box); id != w.DataKeyID {
			return Opened{}, fmt.Errorf("datakey: the wrapping under master key %s holds data key %s, recorded as %s", m.fingerprint, id, w.DataKeyID)
		}
		return Opened{Box: box, Fingerprint: m.fingerprint, DataKeyID: w.DataKeyID, key: dataKey}, nil
	}
	return Opened{}, fmt.Errorf("%w: this master key is %s, the data key is wrapped under %s only (an old, retired master key or a wrong one)",
		ErrUnknownMasterKey, m.fingerprint, strings.Join(known, ", "))
}

// AddMaster wraps the data key that current opens under next as well, and
// returns the new wrapping. ErrSameKey if next is current; ErrAlreadyWraps if
// next wraps it already; ErrUnknownMasterKey if current opens nothing.
func AddMaster(ctx context.Context, store storage.MasterKeys, current, next []byte) (storage.DataKeyWrap, error) {
	if bytes.Equal(current, next) {
		return storage.DataKeyWrap{}, ErrSameKey
	}
	m, err := newMaster(next)
	if err != nil {
		return storage.DataKeyWrap{}, fmt.Errorf("datakey: new master key: %w", err)
	}
	opened, err := Open(ctx, store, current, nil)
	if err != nil {
		return storage.DataKeyWrap{}, err
	}
	w, _, err := wrap(m, opened.key)
	if err != nil {
		return storage.DataKeyWrap{}, err
	}
	if err := store.AddDataKeyWrap(ctx, w); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return storage.DataKeyWrap{}, fmt.Errorf("%w (master key %s)", ErrAlreadyWraps, m.fingerprint)
		}
		return storage.DataKeyWrap{}, fmt.Errorf("datakey: %w", err)
	}
	return w, nil
}

// Retire removes every wrapping but current's (once every node runs with
// current) and returns the removed ones. ErrUnknownMasterKey if current opens
// nothing: the wrappings stay.
func Retire(ctx context.Context, store storage.MasterKeys, current []byte) ([]storage.DataKeyWrap, error) {
	opened, err := Open(ctx, store, current, nil)
	if err != nil {
		return nil, err
	}
	wraps, err := store.ListDataKeyWraps(ctx)
	if err != nil {
		return nil, fmt.Errorf("datakey: %w", err)
	}
	if _, err := store.DeleteDataKeyWrapsExcept(ctx, opened.Fingerprint); err != nil {
		return nil, fmt.Errorf("datakey: %w", err)
	}
	var removed []storage.DataKeyWrap
	for _, w := range wraps {
		if w.Fingerprint != opened.Fingerprint {
			removed = append(removed, w)
		}
	}
	return removed, nil
}
