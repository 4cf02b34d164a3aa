package sqlstore

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// dbTime is a time column: TIMESTAMPTZ on PostgreSQL, INTEGER unix
// microseconds on SQLite, NULL for the zero time. Values are UTC and truncated
// to the microsecond on the way in, so what is read back equals what was
// written at that precision, and range comparisons are exact on both dialects.
type dbTime struct{ t time.Time }

func newTime(t time.Time) dbTime { return dbTime{t: t} }

// GormDataType tells gorm's schema parser this struct is a plain column.
func (dbTime) GormDataType() string { return "time" }

// GormValue renders the time for the dialect in use.
func (d dbTime) GormValue(_ context.Context, db *gorm.DB) clause.Expr {
	if d.t.IsZero() {
		return clause.Expr{SQL: "NULL"}
	}
	if db.Dialector.Name() == DialectPostgres {
		return clause.Expr{SQL: "?", Vars: []any{d.t.UTC().Truncate(time.Microsecond)}}
	}
	return clause.Expr{SQL: "?", Vars: []any{d.t.UnixMicro()}}
}

// Scan implements sql.Scanner for both representations.
func (d *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		d.t = time.Time{}
	case int64:
		d.t = time.UnixMicro(v).UTC()
	case time.Time:
		d.t = v.UTC()
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into a time", src)
	}
	return nil
}

// strList is a []string stored as JSON text; nil is stored as "[]", and an
// empty list reads back as nil.
type strList []string

// GormDataType tells gorm's schema parser this slice is a plain column.
func (strList) GormDataType() string { return "string" }

// Value implements driver.Valuer.
func (l strList) Value() (driver.Value, error) {
	if len(l) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal([]string(l))
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// Scan implements sql.Scanner.
func (l *strList) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		*l = nil
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into a string list", src)
	}
	var out []string
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("sqlstore: decode string list: %w", err)
	}
	if len(out) == 0 {
		out = nil
	}
	*l = out
	return nil
}

// blob normalizes an empty byte slice read back from the database to nil
// (PostgreSQL returns []byte{} for an empty bytea, SQLite nil).
func blob(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
