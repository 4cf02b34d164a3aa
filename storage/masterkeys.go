package storage

import (
	"context"
	"time"
)

// DataKeyWrap is the data key (the root of everything Ponte seals and
// derives) sealed under one master key. Every wrapping a database holds wraps
// the same data key.
type DataKeyWrap struct {
	// Fingerprint names the master key that wraps the data key: a one-way
	// function of that key, never the key.
	Fingerprint string
	// DataKeyID names the data key wrapped: a one-way function of it.
	DataKeyID string
	// Wrapped is the data key sealed under the master key.
	Wrapped   []byte
	CreatedAt time.Time
}

// MasterKeys stores the data key wrapped under each master key in use.
type MasterKeys interface {
	// ListDataKeyWraps returns every wrapping, oldest first.
	ListDataKeyWraps(ctx context.Context) ([]DataKeyWrap, error)
	// AddDataKeyWrap stores w atomically; ErrConflict, storing nothing, if a
	// wrapping with that fingerprint exists or the database already holds
	// another data key (another DataKeyID). Of two first wrappings added at
	// once, one wins and the other gets ErrConflict.
	AddDataKeyWrap(ctx context.Context, w DataKeyWrap) error
	// DeleteDataKeyWrapsExcept deletes every wrapping but the one of
	// fingerprint keep and returns how many it deleted; ErrNotFound, deleting
	// nothing, if keep has no wrapping.
	DeleteDataKeyWrapsExcept(ctx context.Context, keep string) (int64, error)
}
