package sqlstore

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/ponte-id/ponte/storage"
)

type clientRow struct {
	ID                      string  `gorm:"column:id;primaryKey"`
	SecretHash              []byte  `gorm:"column:secret_hash"`
	Name                    string  `gorm:"column:name"`
	RedirectURIs            strList `gorm:"column:redirect_uris"`
	PostLogoutRedirectURIs  strList `gorm:"column:post_logout_redirect_uris"`
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
		Name:                    c.Name,
		RedirectURIs:            c.RedirectURIs,
		PostLogoutRedirectURIs:  c.PostLogoutRedirectURIs,
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
		ID:                      r.ID,
		SecretHash:              blob(r.SecretHash),
		Name:                    r.Name,
		RedirectURIs:            r.RedirectURIs,
		PostLogoutRedirectURIs:  r.PostLogoutRedirectURIs,
		GrantTypes:              r.GrantTypes,
		ResponseTypes:           r.ResponseTypes,
		Scopes:                  r.Scopes,
		Public:                  r.Public,
		TokenEndpointAuthMethod: r.TokenEndpointAuthMethod,
		JWKS:                    blob(r.JWKS),
		JWKSURI:                 r.JWKSURI,
		IDTokenSigningAlg:       r.IDTokenSigningAlg,
		SectorIdentifier:        r.SectorIdentifier,
		PKCEExempt:              r.PKCEExempt,
		AccessTokenTTL:          time.Duration(r.AccessTokenTTL),
		RefreshTokenTTL:         time.Duration(r.RefreshTokenTTL),
		IDTokenTTL:              time.Duration(r.IDTokenTTL),
		CreatedAt:               r.Created.t,
		UpdatedAt:               r.Updated.t,
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
func (s *Store) ClientsVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.hotRow(ctx, s.hot.clientsVersion, nil, &v); err != nil {
		return 0, wrap("clients version", err)
	}
	return v, nil
}
