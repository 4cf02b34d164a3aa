package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/ponte-id/ponte/storage"
)

type tokenRow struct {
	Kind        string `gorm:"column:kind;primaryKey"`
	Signature   string `gorm:"column:signature;primaryKey"`
	RequestID   string `gorm:"column:request_id"`
	ClientID    string `gorm:"column:client_id"`
	Subject     string `gorm:"column:subject"`
	Active      bool   `gorm:"column:active"`
	RequestedAt dbTime `gorm:"column:requested_at"`
	ExpiresAt   dbTime `gorm:"column:expires_at"`
	Data        []byte `gorm:"column:data"`
}

func (tokenRow) TableName() string { return "tokens" }

func (r tokenRow) token() storage.Token {
	return storage.Token{
		Kind:        storage.TokenKind(r.Kind),
		Signature:   r.Signature,
		RequestID:   r.RequestID,
		ClientID:    r.ClientID,
		Subject:     r.Subject,
		Active:      r.Active,
		RequestedAt: r.RequestedAt.t,
		ExpiresAt:   r.ExpiresAt.t,
		Data:        blob(r.Data),
	}
}

// errEmptySubject guards the subject-wide deletes: tokens and sessions not
// yet bound to a citizen have an empty subject, and must not all go at once.
var errEmptySubject = errors.New("sqlstore: empty subject")

// CreateToken stores t; storage.ErrConflict if (kind, signature) exists. A
// zero ExpiresAt never expires.
func (s *Store) CreateToken(ctx context.Context, t storage.Token) error {
	_, err := s.hotExec(ctx, s.hot.createToken, string(t.Kind), t.Signature, t.RequestID, t.ClientID, t.Subject,
		t.Active, s.timeArg(t.RequestedAt), s.timeArg(t.ExpiresAt), t.Data)
	return wrap("create token", err)
}

// GetToken returns the token, active or not, or storage.ErrNotFound.
func (s *Store) GetToken(ctx context.Context, kind storage.TokenKind, signature string) (storage.Token, error) {
	var row tokenRow
	err := s.hotRow(ctx, s.hot.getToken, []any{string(kind), signature},
		&row.Kind, &row.Signature, &row.RequestID, &row.ClientID, &row.Subject, &row.Active, &row.RequestedAt, &row.ExpiresAt, &row.Data)
	if err != nil {
		return storage.Token{}, wrap("get token", err)
	}
	return row.token(), nil
}

// DeleteToken deletes the token, or returns storage.ErrNotFound.
func (s *Store) DeleteToken(ctx context.Context, kind storage.TokenKind, signature string) error {
	n, err := s.hotExec(ctx, s.hot.deleteToken, string(kind), signature)
	if err != nil {
		return wrap("delete token", err)
	}
	if n == 0 {
		return notFound("delete token")
	}
	return nil
}

// DeactivateToken marks an active token inactive with one conditional UPDATE;
// storage.ErrNotFound if no active token matched. Of concurrent calls for one
// token exactly one succeeds: that is what makes double redemption impossible.
func (s *Store) DeactivateToken(ctx context.Context, kind storage.TokenKind, signature string) error {
	n, err := s.hotExec(ctx, s.hot.deactivateToken, false, string(kind), signature, true)
	if err != nil {
		return wrap("deactivate token", err)
	}
	if n == 0 {
		return notFound("deactivate token")
	}
	return nil
}

// DeactivateRequest marks every token of that kind and request inactive. It
// is not an error if there are none.
func (s *Store) DeactivateRequest(ctx context.Context, kind storage.TokenKind, requestID string) error {
	err := s.writer(ctx).Model(&tokenRow{}).
		Where("kind = ? AND request_id = ? AND active = ?", string(kind), requestID, true).
		Update("active", false).Error
	return wrap("deactivate request", err)
}

// DeleteRequest deletes every token of that kind and request. It is not an
// error if there are none.
func (s *Store) DeleteRequest(ctx context.Context, kind storage.TokenKind, requestID string) error {
	err := s.writer(ctx).Where("kind = ? AND request_id = ?", string(kind), requestID).Delete(&tokenRow{}).Error
	return wrap("delete request", err)
}

// DeleteSubjectTokens deletes every token issued to subject and returns how
// many; an empty subject is an error.
func (s *Store) DeleteSubjectTokens(ctx context.Context, subject string) (int64, error) {
	if subject == "" {
		return 0, errEmptySubject
	}
	res := s.writer(ctx).Where("subject = ?", subject).Delete(&tokenRow{})
	return res.RowsAffected, wrap("delete subject tokens", res.Error)
}

// DeleteExpiredTokens deletes the tokens whose ExpiresAt is strictly before
// the given time and returns how many.
func (s *Store) DeleteExpiredTokens(ctx context.Context, before time.Time) (int64, error) {
	res := s.writer(ctx).Where("expires_at < ?", newTime(before)).Delete(&tokenRow{})
	return res.RowsAffected, wrap("delete expired tokens", res.Error)
}
