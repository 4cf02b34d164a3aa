package sqlstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"slices"
	"strconv"
	"time"

	"gorm.io/gorm"

	"github.com/ponte-id/ponte/storage"
)

type sessionRow struct {
	ID       string  `gorm:"column:id;primaryKey"`
	Subject  string  `gorm:"column:subject"`
	AuthTime dbTime  `gorm:"column:auth_time"`
	Method   string  `gorm:"column:method"`
	Level    string  `gorm:"column:level"`
	AMR      strList `gorm:"column:amr"`
	Data     []byte  `gorm:"column:method_data"`
	Key      string  `gorm:"column:method_key"`
	Created  dbTime  `gorm:"column:created_at"`
	Expires  dbTime  `gorm:"column:expires_at"`
}

func (sessionRow) TableName() string { return "sessions" }

// CreateSession stores ss (a zero CreatedAt is set to now); storage.ErrConflict
// if the ID exists.
func (s *Store) CreateSession(ctx context.Context, ss storage.Session) error {
	if ss.CreatedAt.IsZero() {
		ss.CreatedAt = s.now()
	}
	row := sessionRow{
		ID:       ss.ID,
		Subject:  ss.Subject,
		AuthTime: newTime(ss.AuthTime),
		Method:   ss.Method,
		Level:    ss.Level,
		AMR:      ss.AMR,
		Data:     ss.MethodData,
		Key:      ss.MethodKey,
		Created:  newTime(ss.CreatedAt),
		Expires:  newTime(ss.ExpiresAt),
	}
	return wrap("create session", s.writer(ctx).Create(&row).Error)
}

// GetSession returns the session, expired or not, or storage.ErrNotFound.
func (s *Store) GetSession(ctx context.Context, id string) (storage.Session, error) {
	var r sessionRow
	err := s.hotRow(ctx, s.hot.getSession, []any{id},
		&r.ID, &r.Subject, &r.AuthTime, &r.Method, &r.Level, &r.AMR, &r.Data, &r.Key, &r.Created, &r.Expires)
	if err != nil {
		return storage.Session{}, wrap("get session", err)
	}
	return storage.Session{
		ID:         r.ID,
		Subject:    r.Subject,
		AuthTime:   r.AuthTime.t,
		Method:     r.Method,
		Level:      r.Level,
		AMR:        r.AMR,
		MethodData: blob(r.Data),
		MethodKey:  r.Key,
		CreatedAt:  r.Created.t,
		ExpiresAt:  r.Expires.t,
	}, nil
}

// DeleteSession deletes the session, or returns storage.ErrNotFound.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	res := s.writer(ctx).Where("id = ?", id).Delete(&sessionRow{})
	if res.Error != nil {
		return wrap("delete session", res.Error)
	}
	if res.RowsAffected == 0 {
		return notFound("delete session")
	}
	return nil
}

// DeleteMethodSessions deletes the sessions with the given method key.
func (s *Store) DeleteMethodSessions(ctx context.Context, methodKey string) (int64, error) {
	if methodKey == "" {
		return 0, errors.New("sqlstore: delete method sessions: empty key")
	}
	res := s.writer(ctx).Where("method_key = ?", methodKey).Delete(&sessionRow{})
	return res.RowsAffected, wrap("delete method sessions", res.Error)
}

// DeleteSubjectSessions deletes every session of subject and returns how many;
// an empty subject is an error.
func (s *Store) DeleteSubjectSessions(ctx context.Context, subject string) (int64, error) {
	if subject == "" {
		return 0, errEmptySubject
	}
	res := s.writer(ctx).Where("subject = ?", subject).Delete(&sessionRow{})
	return res.RowsAffected, wrap("delete subject sessions", res.Error)
}

// DeleteExpiredSessions deletes the sessions whose ExpiresAt is strictly
// before the given time and returns how many.
func (s *Store) DeleteExpiredSessions(ctx context.Context, before time.Time) (int64, error) {
	res := s.writer(ctx).Where("expires_at < ?", newTime(before)).Delete(&sessionRow{})
	return res.RowsAffected, wrap("delete expired sessions", res.Error)
}

type challengeRow struct {
	ID       string `gorm:"column:id;primaryKey"`
	ClientID string `gorm:"column:client_id"`
	Browser  string `gorm:"column:browser"`
	ClientIP string `gorm:"column:client_ip"`
	Data     []byte `gorm:"column:data"`
	Returned []byte `gorm:"column:returned"`
	Created  dbTime `gorm:"column:created_at"`
	Expires  dbTime `gorm:"column:expires_at"`
}

func (challengeRow) TableName() string { return "challenges" }

// CreateChallenge stores c (a zero CreatedAt is set to now);
// storage.ErrConflict if the ID exists.
func (s *Store) CreateChallenge(ctx context.Context, c storage.Challenge) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	row := challengeRow{
		ID:       c.ID,
		ClientID: c.ClientID,
		Browser:  c.Browser,
		ClientIP: c.ClientIP,
		Data:     c.Data,
		Created:  newTime(c.CreatedAt),
		Expires:  newTime(c.ExpiresAt),
	}
	return wrap("create challenge", s.writer(ctx).Create(&row).Error)
}

// GetChallenge returns the challenge, expired or not, or storage.ErrNotFound.
func (s *Store) GetChallenge(ctx context.Context, id string) (storage.Challenge, error) {
	var r challengeRow
	if err := s.conn(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return storage.Challenge{}, wrap("get challenge", err)
	}
	return storage.Challenge{
		ID:        r.ID,
		ClientID:  r.ClientID,
		Browser:   r.Browser,
		ClientIP:  r.ClientIP,
		Data:      blob(r.Data),
		Returned:  blob(r.Returned),
		CreatedAt: r.Created.t,
		ExpiresAt: r.Expires.t,
	}, nil
}

// DeleteChallenge deletes the challenge, or returns storage.ErrNotFound.
func (s *Store) DeleteChallenge(ctx context.Context, id string) error {
	res := s.writer(ctx).Where("id = ?", id).Delete(&challengeRow{})
	if res.Error != nil {
		return wrap("delete challenge", res.Error)
	}
	if res.RowsAffected == 0 {
		return notFound("delete challenge")
	}
	return nil
}

// ReturnChallenge keeps identity on a live challenge (nil clears it), with one
// conditional UPDATE.
func (s *Store) ReturnChallenge(ctx context.Context, id string, identity []byte, now time.Time) error {
	res := s.writer(ctx).Model(&challengeRow{}).
		Where("id = ? AND (expires_at IS NULL OR expires_at > ?)", id, newTime(now)).
		Update("returned", identity)
	if res.Error != nil {
		return wrap("return challenge", res.Error)
	}
	if res.RowsAffected == 0 {
		return notFound("return challenge")
	}
	return nil
}

// DeleteExpiredChallenges deletes the challenges whose ExpiresAt is strictly
// before the given time and returns how many.
func (s *Store) DeleteExpiredChallenges(ctx context.Context, before time.Time) (int64, error) {
	res := s.writer(ctx).Where("expires_at < ?", newTime(before)).Delete(&challengeRow{})
	return res.RowsAffected, wrap("delete expired challenges", res.Error)
}

// CountChallenges counts the live challenges of browser and of clientIP in one
// SELECT. In a transaction it first takes a transaction-scoped lock per
// non-empty key, so that a concurrent count-then-create for the same browser
// or address waits for this one to commit: on PostgreSQL advisory locks, taken
// in a fixed order (no deadlock between two callers); on SQLite the
// transaction already holds the database write lock (BEGIN IMMEDIATE).
func (s *Store) CountChallenges(ctx context.Context, browser, clientIP string, now time.Time) (storage.ChallengeCount, error) {
	var out storage.ChallengeCount
	if browser == "" && clientIP == "" {
		return out, nil
	}
	db := s.conn(ctx)
	if s.txFrom(ctx) != nil && s.dialect == DialectPostgres {
		if err := s.lockChallengeKeys(db, browser, clientIP); err != nil {
			return out, wrap("count challenges", err)
		}
	}
	var byBrowser, byIP int64
	var browserNext, ipNext dbTime
	// An empty key stands for "none": it must match no row (rows made before
	// the keys existed have empty keys).
	row := db.Raw(`SELECT
    COUNT(CASE WHEN browser = ? AND browser <> '' THEN 1 END),
    COUNT(CASE WHEN client_ip = ? AND client_ip <> '' THEN 1 END),
    MIN(CASE WHEN browser = ? AND browser <> '' THEN expires_at END),
    MIN(CASE WHEN client_ip = ? AND client_ip <> '' THEN expires_at END)
FROM challenges
WHERE (browser = ? OR client_ip = ?) AND (expires_at IS NULL OR expires_at > ?)`,
		browser, clientIP, browser, clientIP, browser, clientIP, newTime(now)).Row()
	if err := row.Scan(&byBrowser, &byIP, &browserNext, &ipNext); err != nil {
		return out, wrap("count challenges", err)
	}
	out.Browser, out.ClientIP = int(byBrowser), int(byIP)
	out.BrowserNextExpiry, out.ClientIPNextExpiry = browserNext.t, ipNext.t
	return out, nil
}

// lockChallengeKeys takes a PostgreSQL transaction-scoped advisory lock for
// each non-empty key, in ascending lock-ID order so that two transactions
// never wait on each other in a cycle.
func (s *Store) lockChallengeKeys(tx *gorm.DB, keys ...string) error {
	var ids []int64
	for i, k := range keys {
		if k == "" {
			continue
		}
		sum := sha256.Sum256([]byte("ponte.challenges." + strconv.Itoa(i) + "." + k))
		ids = append(ids, int64(binary.BigEndian.Uint64(sum[:8])))
	}
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(?)`, id).Error; err != nil {
			return err
		}
	}
	return nil
}
