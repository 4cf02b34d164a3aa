package sqlstore

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/ponte-id/ponte/storage"
)

type subjectRow struct {
	ID           string `gorm:"column:id;primaryKey"`
	FiscalNumber string `gorm:"column:fiscal_number"`
	GivenName    string `gorm:"column:given_name"`
	FamilyName   string `gorm:"column:family_name"`
	Birthdate    string `gorm:"column:birthdate"`
	Gender       string `gorm:"column:gender"`
	Email        string `gorm:"column:email"`
	PhoneNumber  string `gorm:"column:phone_number"`
	ClaimsRank   int    `gorm:"column:claims_rank"`
	Created      dbTime `gorm:"column:created_at"`
	Updated      dbTime `gorm:"column:updated_at"`
}

func (subjectRow) TableName() string { return "subjects" }

func (r subjectRow) subject() storage.Subject {
	return storage.Subject{
		ID:           r.ID,
		FiscalNumber: r.FiscalNumber,
		GivenName:    r.GivenName,
		FamilyName:   r.FamilyName,
		Birthdate:    r.Birthdate,
		Gender:       r.Gender,
		Email:        r.Email,
		PhoneNumber:  r.PhoneNumber,
		ClaimsRank:   r.ClaimsRank,
		CreatedAt:    r.Created.t,
		UpdatedAt:    r.Updated.t,
	}
}

var (
	errEmptyFiscalNumber = errors.New("sqlstore: link subject: empty fiscal number")
	errEmptySubjectID    = errors.New("sqlstore: link subject: empty ID for a new subject")
)

// LinkSubject returns the subject with in.FiscalNumber, refreshing its claims
// from in by the rule of ranks (storage.Subjects) and its UpdatedAt
// (in.UpdatedAt, or now if zero) when they change; if there is none it
// creates it with in.ID. Concurrent calls for one
// fiscal number converge on one subject: the insert is ON CONFLICT DO NOTHING
// and the loser re-reads the winner's row. A new subject whose ID is taken by
// another fiscal number is storage.ErrConflict.
func (s *Store) LinkSubject(ctx context.Context, in storage.Subject) (storage.Subject, error) {
	if in.FiscalNumber == "" {
		return storage.Subject{}, errEmptyFiscalNumber
	}
	now := in.UpdatedAt
	if now.IsZero() {
		now = s.now()
	}
	db := s.writer(ctx)

	var row subjectRow
	err := db.Where("fiscal_number = ?", in.FiscalNumber).Take(&row).Error
	switch {
	case err == nil:
		return s.refreshSubject(db, row, in, now)
	case !errors.Is(err, gorm.ErrRecordNotFound):
		return storage.Subject{}, wrap("link subject", err)
	case in.ID == "":
		return storage.Subject{}, errEmptySubjectID
	}

	created := in.CreatedAt
	if created.IsZero() {
		created = now
	}
	row = subjectRow{
		ID:           in.ID,
		FiscalNumber: in.FiscalNumber,
		GivenName:    in.GivenName,
		FamilyName:   in.FamilyName,
		Birthdate:    in.Birthdate,
		Gender:       in.Gender,
		Email:        in.Email,
		PhoneNumber:  in.PhoneNumber,
		ClaimsRank:   in.ClaimsRank,
		Created:      newTime(created),
		Updated:      newTime(now),
	}
	res := db.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "fiscal_number"}},
		DoNothing: true,
	}).Create(&row)
	if res.Error != nil {
		return storage.Subject{}, wrap("link subject", res.Error)
	}
	if res.RowsAffected == 1 {
		return s.GetSubject(ctx, in.ID)
	}
	// Another caller created this fiscal number between our read and insert.
	// (A fresh row: gorm would add the primary key of a non-zero destination
	// to the conditions.)
	var winner subjectRow
	if err := db.Where("fiscal_number = ?", in.FiscalNumber).Take(&winner).Error; err != nil {
		return storage.Subject{}, wrap("link subject", err)
	}
	return s.refreshSubject(db, winner, in, now)
}

// refreshSubject applies the claims of in to row by the rule of ranks
// (storage.Subjects): a lower rank changes nothing, an equal one refreshes
// the non-empty claims, a higher one replaces them all and records its rank.
// The update is conditional on the rank read, so that of two concurrent
// logins a lower one never overwrites the claims a higher one just recorded.
func (s *Store) refreshSubject(db *gorm.DB, row subjectRow, in storage.Subject, now time.Time) (storage.Subject, error) {
	if in.ClaimsRank < row.ClaimsRank {
		return row.subject(), nil // a lower rank: the claims stay those recorded
	}
	replace := in.ClaimsRank > row.ClaimsRank
	set := map[string]any{}
	for col, v := range map[string]struct {
		val string
		dst *string
	}{
		"given_name":   {in.GivenName, &row.GivenName},
		"family_name":  {in.FamilyName, &row.FamilyName},
		"birthdate":    {in.Birthdate, &row.Birthdate},
		"gender":       {in.Gender, &row.Gender},
		"email":        {in.Email, &row.Email},
		"phone_number": {in.PhoneNumber, &row.PhoneNumber},
	} {
		if (v.val != "" || replace) && v.val != *v.dst {
			set[col] = v.val
			*v.dst = v.val
		}
	}
	if replace {
		set["claims_rank"] = in.ClaimsRank
	}
	rank := row.ClaimsRank
	row.ClaimsRank = in.ClaimsRank
	if len(set) == 0 {
		return row.subject(), nil // nothing new: a login costs no write
	}
	set["updated_at"] = newTime(now)
	res := db.Model(&subjectRow{}).Where("id = ? AND claims_rank = ?", row.ID, rank).Updates(set)
	if res.Error != nil {
		return storage.Subject{}, wrap("link subject", res.Error)
	}
	if res.RowsAffected == 0 {
		// Another login changed the rank since the read: decide again on
		// what it recorded.
		var fresh subjectRow
		if err := db.Where("id = ?", row.ID).Take(&fresh).Error; err != nil {
			return storage.Subject{}, wrap("link subject", err)
		}
		if fresh.ClaimsRank == rank {
			return storage.Subject{}, notFound("link subject")
		}
		return s.refreshSubject(db, fresh, in, now)
	}
	row.Updated = newTime(now.UTC().Truncate(time.Microsecond))
	return row.subject(), nil
}

// GetSubject returns the subject with that ID, or storage.ErrNotFound.
func (s *Store) GetSubject(ctx context.Context, id string) (storage.Subject, error) {
	var r subjectRow
	err := s.hotRow(ctx, s.hot.getSubject, []any{id},
		&r.ID, &r.FiscalNumber, &r.GivenName, &r.FamilyName, &r.Birthdate, &r.Gender, &r.Email, &r.PhoneNumber, &r.ClaimsRank, &r.Created, &r.Updated)
	if err != nil {
		return storage.Subject{}, wrap("get subject", err)
	}
	return r.subject(), nil
}

// GetSubjectByFiscalNumber returns the subject with that fiscal number, or
// storage.ErrNotFound.
func (s *Store) GetSubjectByFiscalNumber(ctx context.Context, fiscalNumber string) (storage.Subject, error) {
	var row subjectRow
	if err := s.conn(ctx).Where("fiscal_number = ?", fiscalNumber).Take(&row).Error; err != nil {
		return storage.Subject{}, wrap("get subject by fiscal number", err)
	}
	return row.subject(), nil
}
