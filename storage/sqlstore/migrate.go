package sqlstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"

	"gorm.io/gorm"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// migration is one versioned schema change, a file named NNNN_name.sql under
// migrations/<dialect>/.
type migration struct {
	version int
	name    string
	sql     string
}

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// loadMigrations returns the dialect's migrations in version order; versions
// must be unique and start at 1 without gaps.
func loadMigrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("sqlstore: migration file %s/%s: want NNNN_name.sql", dir, e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		b, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("sqlstore: read migration: %w", err)
		}
		ms = append(ms, migration{version: v, name: m[2], sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("sqlstore: %s migrations: version %04d where %04d was expected", dialect, m.version, i+1)
		}
	}
	return ms, nil
}

// schemaMigrationsDDL creates the table recording applied migrations.
var schemaMigrationsDDL = map[string]string{
	DialectSQLite: `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER
) STRICT`,
	DialectPostgres: `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER     NOT NULL PRIMARY KEY,
    name       TEXT        NOT NULL,
    applied_at TIMESTAMPTZ
)`,
}

// lockMigrations serializes migrators. On PostgreSQL it takes a
// transaction-scoped advisory lock keyed on the current schema, so two
// processes migrating one schema take turns and the second finds the work
// done. On SQLite the transaction is BEGIN IMMEDIATE and already holds the
// database write lock.
func (s *Store) lockMigrations(tx *gorm.DB) error {
	if s.dialect != DialectPostgres {
		return nil
	}
	return tx.Exec(`SELECT pg_advisory_xact_lock(hashtext('ponte.schema_migrations.' || current_schema()))`).Error
}

// applied returns the versions recorded in schema_migrations, or none if the
// table does not exist yet.
func (s *Store) applied(tx *gorm.DB) (map[int]bool, error) {
	var exists bool
	var err error
	if s.dialect == DialectPostgres {
		err = tx.Raw(`SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists).Error
	} else {
		err = tx.Raw(`SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&exists).Error
	}
	if err != nil {
		return nil, err
	}
	done := map[int]bool{}
	if !exists {
		return done, nil
	}
	var versions []int
	if err := tx.Raw(`SELECT version FROM schema_migrations`).Scan(&versions).Error; err != nil {
		return nil, err
	}
	for _, v := range versions {
		done[v] = true
	}
	return done, nil
}

// PendingMigrations reports how many of this binary's migrations the database
// has not applied yet.
func (s *Store) PendingMigrations(ctx context.Context) (int, error) {
	ms, err := loadMigrations(s.dialect)
	if err != nil {
		return 0, err
	}
	done, err := s.applied(s.db.WithContext(ctx))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: read schema_migrations: %w", err)
	}
	n := 0
	for _, m := range ms {
		if !done[m.version] {
			n++
		}
	}
	return n, nil
}

// Migrate applies the pending migrations in version order, each in its own
// transaction together with its schema_migrations row, and returns how many it
// applied. It is safe to run from several processes at once.
func (s *Store) Migrate(ctx context.Context) (int, error) {
	ms, err := loadMigrations(s.dialect)
	if err != nil {
		return 0, err
	}
	db := s.w.WithContext(ctx)
	err = db.Transaction(func(tx *gorm.DB) error {
		if err := s.lockMigrations(tx); err != nil {
			return err
		}
		return tx.Exec(schemaMigrationsDDL[s.dialect]).Error
	})
	if err != nil {
		return 0, fmt.Errorf("sqlstore: create schema_migrations: %w", err)
	}

	applied := 0
	for _, m := range ms {
		ran := false
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := s.lockMigrations(tx); err != nil {
				return err
			}
			done, err := s.applied(tx)
			if err != nil {
				return err
			}
			if done[m.version] {
				return nil
			}
			// Run the file through the driver directly: gorm would treat '?'
			// and '@' in it as placeholders. Both drivers accept several
			// statements in one Exec without arguments.
			if _, err := tx.Statement.ConnPool.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			if err := tx.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, newTime(s.now())).Error; err != nil {
				return err
			}
			ran = true
			return nil
		})
		if err != nil {
			return applied, fmt.Errorf("sqlstore: migration %04d_%s: %w", m.version, m.name, err)
		}
		if ran {
			applied++
			s.log.InfoContext(ctx, "applied migration", "dialect", s.dialect, "version", m.version, "name", m.name)
		}
	}
	return applied, nil
}
