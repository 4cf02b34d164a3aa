package sqlstore

import (
	"context"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/ponte-id/ponte/storage"
)

type clientRow struct {
	ID                      string  `gorm:"column:id;primaryKey"`
	SecretHash              []byte  `gorm:"column:secret_hash"`
	PreviousSecretHash      []byte  `gorm:"column:previous_secret_hash"`
	PreviousSecretExpires   dbTime  `gorm:"column:previous_secret_expires_at"`
	Name                    string  `gorm:"column:name"`
	RedirectURIs            strList `gorm:"column:redirect_uris"`
	PostLogoutRedirectURIs  strList `gorm:"column:post_logout_redirect_uris"`
	BackchannelLogoutURI    string  `gorm:"column:backchannel_logout_uri"`
	BackchannelLogoutSID    bool    `gorm:"column:backchannel_logout_session_required"`
	GrantTypes              strList `gorm:"column:grant_types"`
	ResponseTypes           strList `gorm:"column:response_types"`
	Scopes                  strList `gorm:"column:scopes"`
	Public                  bool    `gorm:"column:public"`
	TokenEndpointAuthMethod string  `gorm:"column:token_endpoint_auth_method"`
	JWKS                    []byte  `gorm:"column:jwks"`
	JWKSURI                 string  `gorm:"column:jwks_uri"`
	IDTokenSigningAlg       string  `gorm:"column:id_token_signing_alg"`
	SectorIdentifier        string  `gorm:"column:sector_identifier"`
	PKCEExempt              bool    `gorm:"column:pkce_exempt"`
	AccessTokenTTL          int64   `gorm:"column:access_token_ttl_ns"`
	RefreshTokenTTL         int64   `gorm:"column:refresh_token_ttl_ns"`
	IDTokenTTL              int64   `gorm:"column:id_token_ttl_ns"`
	Created                 dbTime  `gorm:"column:created_at"`
	Updated                 dbTime  `gorm:"column:updated_at"`
}

func (clientRow) TableName() string { return "clients" }

func clientToRow(c storage.Client) clientRow {
	return clientRow{
		ID:                      c.ID,
		SecretHash:              c.SecretHash,
		PreviousSecretHash:      c.PreviousSecretHash,
		PreviousSecretExpires:   newTime(c.PreviousSecretExpiresAt),
		Name:                    c.Name,
		RedirectURIs:            c.RedirectURIs,
		PostLogoutRedirectURIs:  c.PostLogoutRedirectURIs,
		BackchannelLogoutURI:    c.BackchannelLogoutURI,
		BackchannelLogoutSID:    c.BackchannelLogoutSessionRequired,
		GrantTypes:              c.GrantTypes,
		ResponseTypes:           c.ResponseTypes,
		Scopes:                  c.Scopes,
		Public:                  c.Public,
		TokenEndpointAuthMethod: c.TokenEndpointAuthMethod,
		JWKS:                    c.JWKS,
		JWKSURI:                 c.JWKSURI,
		IDTokenSigningAlg:       c.IDTokenSigningAlg,
		SectorIdentifier:        c.SectorIdentifier,
		PKCEExempt:              c.PKCEExempt,
		AccessTokenTTL:          int64(c.AccessTokenTTL),
		RefreshTokenTTL:         int64(c.RefreshTokenTTL),
		IDTokenTTL:              int64(c.IDTokenTTL),
		Created:                 newTime(c.CreatedAt),
		Updated:                 newTime(c.UpdatedAt),
	}
}

func (r clientRow) client() storage.Client {
	return storage.Client{
		ID:                               r.ID,
		SecretHash:                       blob(r.SecretHash),
		PreviousSecretHash:               blob(r.PreviousSecretHash),
		PreviousSecretExpiresAt:          r.PreviousSecretExpires.t,
		Name:                             r.Name,
		RedirectURIs:                     r.RedirectURIs,
		PostLogoutRedirectURIs:           r.PostLogoutRedirectURIs,
		BackchannelLogoutURI:             r.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: r.BackchannelLogoutSID,
		GrantTypes:                       r.GrantTypes,
		ResponseTypes:                    r.ResponseTypes,
		Scopes:                           r.Scopes,
		Public:                           r.Public,
		TokenEndpointAuthMethod:          r.TokenEndpointAuthMethod,
		JWKS:                             blob(r.JWKS),
		JWKSURI:                          r.JWKSURI,
		IDTokenSigningAlg:                r.IDTokenSigningAlg,
		SectorIdentifier:                 r.SectorIdentifier,
		PKCEExempt:                       r.PKCEExempt,
		AccessTokenTTL:                   time.Duration(r.AccessTokenTTL),
		RefreshTokenTTL:                  time.Duration(r.RefreshTokenTTL),
		IDTokenTTL:                       time.Duration(r.IDTokenTTL),
		CreatedAt:                        r.Created.t,
		UpdatedAt:                        r.Updated.t,
	}
}

// forUpdate locks the selected rows until the transaction ends on PostgreSQL;
// on SQLite the IMMEDIATE transaction already holds the write lock.
func (s *Store) forUpdate(tx *gorm.DB) *gorm.DB {
	if s.dialect == DialectPostgres {
		return tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
	}
	return tx
}

// CreateClient stores c; a zero CreatedAt or UpdatedAt is set to now. It
// returns storage.ErrConflict if the ID is taken.
func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	now := s.now()
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = c.CreatedAt
	}
	row := clientToRow(c)
	defer s.clientsChanged(ctx)
	return wrap("create client", s.writer(ctx).Create(&row).Error)
}

// GetClient returns the client with that ID, or storage.ErrNotFound.
func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	var row clientRow
	if err := s.conn(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return storage.Client{}, wrap("get client", err)
	}
	return row.client(), nil
}

// ListClients returns every client, ordered by ID.
func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	var rows []clientRow
	if err := s.conn(ctx).Order("id").Find(&rows).Error; err != nil {
		return nil, wrap("list clients", err)
	}
	out := make([]storage.Client, len(rows))
	for i, r := range rows {
		out[i] = r.client()
	}
	return out, nil
}

// UpdateClient reads the client, applies fn and writes the result, atomically
// (in a transaction; the row is locked FOR UPDATE on PostgreSQL). The ID cannot
// change; if fn leaves UpdatedAt as it was, it is set to now. fn's error aborts
// the update and is returned as is; a missing client is storage.ErrNotFound.
func (s *Store) UpdateClient(ctx context.Context, id string, fn func(storage.Client) (storage.Client, error)) error {
	defer s.clientsChanged(ctx)
	return s.atomic(ctx, func(tx *gorm.DB) error {
		var row clientRow
		if err := s.forUpdate(tx).Where("id = ?", id).Take(&row).Error; err != nil {
			return wrap("update client", err)
		}
		old := row.client()
		c, err := fn(old)
		if err != nil {
			return err
		}
		c.ID = id
		if c.UpdatedAt.Equal(old.UpdatedAt) {
			c.UpdatedAt = s.now()
		}
		next := clientToRow(c)
		res := tx.Model(&clientRow{}).Where("id = ?", id).Select("*").Omit("id").Updates(&next)
		if res.Error != nil {
			return wrap("update client", res.Error)
		}
		if res.RowsAffected == 0 {
			return notFound("update client")
		}
		return nil
	})
}

// DeleteClient deletes the client, or returns storage.ErrNotFound.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	defer s.clientsChanged(ctx)
	res := s.writer(ctx).Where("id = ?", id).Delete(&clientRow{})
	if res.Error != nil {
		return wrap("delete client", res.Error)
	}
	if res.RowsAffected == 0 {
		return notFound("delete client")
	}
	return nil
}

// ClientsVersion reads the counter that triggers on the clients table move
// with every insert, update and delete (migration 0008): one row, one read.
// Outside a transaction the value read is kept for Options.ClientsVersionTTL,
// and dropped at once when a client changes through this store: a change made
// here is seen at once, one made through another store (a node, ponte client)
// within the TTL.
func (s *Store) ClientsVersion(ctx context.Context) (int64, error) {
	if s.txFrom(ctx) != nil || s.versions.ttl < 0 {
		return s.readClientsVersion(ctx)
	}
	v, ok, gen := s.versions.get()
	if ok {
		return v, nil
	}
	v, err := s.readClientsVersion(ctx)
	if err == nil {
		s.versions.put(v, gen)
	}
	return v, err
}

func (s *Store) readClientsVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.hotRow(ctx, s.hot.clientsVersion, nil, &v); err != nil {
		return 0, wrap("clients version", err)
	}
	return v, nil
}

// clientsChanged drops the version kept in memory after a change to the
// clients, and again when the transaction it was made in ends.
func (s *Store) clientsChanged(ctx context.Context) {
	if st := s.txFrom(ctx); st != nil {
		st.clients = true
	}
	s.versions.invalidate()
}

// versionCache is the clients' version as last read, and when.
type versionCache struct {
	ttl   time.Duration
	mu    sync.Mutex
	gen   uint64 // moves with every invalidation
	value int64
	at    time.Time // zero: nothing kept
}

// get returns the version kept, if fresh, or the generation a value read now
// must be put under.
func (c *versionCache) get() (int64, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < c.ttl {
		return c.value, true, c.gen
	}
	return 0, false, c.gen
}

// put keeps a version read from the database, unless a change was made
// through this store since the read began (gen moved).
func (c *versionCache) put(v int64, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.gen {
		c.value, c.at = v, time.Now()
	}
}

func (c *versionCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.at = time.Time{}
}
