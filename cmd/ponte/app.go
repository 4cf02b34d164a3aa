package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/ponte-id/ponte/idp/admin"
	"github.com/ponte-id/ponte/idp/backchannel"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/keys"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/idp/staff"
	"github.com/ponte-id/ponte/internal/codicefiscale"
	"github.com/ponte-id/ponte/internal/config"
	"github.com/ponte-id/ponte/internal/datakey"
	"github.com/ponte-id/ponte/internal/logmask"
	"github.com/ponte-id/ponte/internal/ratelimit"
	"github.com/ponte-id/ponte/internal/requestid"
	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/storage/sqlstore"
)

// app is what every command builds from the configuration.
type app struct {
	cfg   config.Config
	log   *slog.Logger
	store *sqlstore.Store
	// master is the node's master key; box is over the data key it opened.
	master   []byte
	dataKey  datakey.Opened
	box      *seal.Box
	keys     *keys.Manager
	hasher   *clients.Hasher
	registry *clients.Registry
	staff    *staff.Service
	admin    *admin.Service
	// limiter is shared through Redis when configured; closed with the app.
	limiter ratelimit.Limiter
	// logouts delivers back-channel logouts (run by serve).
	logouts *backchannel.Sender
}

// loadConfig parses --config from args and loads the configuration.
func loadConfig(fs *flag.FlagSet, args []string) (config.Config, error) {
	path := fs.String("config", "", "YAML configuration file (PONTE_* variables override it)")
	if err := fs.Parse(args); err != nil {
		return config.Config{}, err
	}
	cfg, err := config.Load(*path, os.Environ())
	if err != nil {
		return config.Config{}, err
	}
	// Every top-level key is Ponte's own or a login method's section.
	keys := make([]string, len(plugs))
	for i, p := range plugs {
		keys[i] = p.Section
	}
	return cfg, cfg.CheckSections(keys...)
}

// newLogger builds the process logger from the configuration. Every record
// passes through logmask: no whole codice fiscale reaches the log, whoever logs it;
// a record logged with a request's context carries its request_id.
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if cfg.Log.Format == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(logmask.New(requestid.NewHandler(h)))
}

// loadApp loads the configuration from args (parsed by fs) and opens the
// application for a command that works on storage: close it when done.
func loadApp(ctx context.Context, fs *flag.FlagSet, args []string, logw io.Writer) (*app, error) {
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return nil, err
	}
	return openApp(ctx, cfg, logw)
}

// openApp opens storage and the key material: the data key the master key
// wraps (stored on the first start), and what is derived from it. SQLite is
// migrated on open; PostgreSQL, shared by several nodes, is migrated only by
// `ponte migrate`.
func openApp(ctx context.Context, cfg config.Config, logw io.Writer) (*app, error) {
	log := newLogger(cfg, logw)
	master, err := masterKey(cfg, log)
	if err != nil {
		return nil, err
	}
	store, err := sqlstore.Open(ctx, cfg.DB, sqlstore.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	if !cfg.DBIsPostgres() {
		if _, err := store.Migrate(ctx); err != nil {
			store.Close()
			return nil, err
		}
	} else if n, err := store.PendingMigrations(ctx); err != nil || n > 0 {
		store.Close()
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("the database has %d pending migrations: run 'ponte migrate' first", n)
	}
	dk, err := datakey.Open(ctx, store, master, freshDatabase(store))
	if err != nil {
		store.Close()
		return nil, masterKeyError(err, masterKeySource(cfg))
	}
	if dk.Created {
		log.Info("stored the data key wrapped under the master key", "master_key", dk.Fingerprint, "data_key", dk.DataKeyID)
	}
	box := dk.Box
	km, err := keys.New(store, box, keys.Options{
		DefaultAlg: cfg.Keys.Algorithm, PublishDelay: cfg.Keys.PublishDelay.D(),
		Retention: retention(cfg), Logger: log,
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	hasher, err := clients.NewHasher(box.Derive("client-secret", 32))
	if err != nil {
		store.Close()
		return nil, err
	}
	st, err := staff.New(store, staff.Options{TokenKey: box.Derive("api-token", 32), ValidFiscalNumber: codicefiscale.Valid})
	if err != nil {
		store.Close()
		return nil, err
	}
	limiter, err := newLimiter(cfg, log)
	if err != nil {
		store.Close()
		return nil, err
	}
	logouts, err := backchannel.New(backchannel.Options{Issuer: cfg.Issuer, Store: store, Keys: km, Logger: log})
	if err != nil {
		store.Close()
		return nil, err
	}
	registry := clients.NewRegistry(store, hasher, nil)
	return &app{cfg: cfg, log: log, store: store, master: master, dataKey: dk, box: box, keys: km, hasher: hasher,
		registry: registry, staff: st, admin: admin.New(store, registry, km, st,
			provider.SessionEnder{Store: store, Logger: log, Queued: logouts.Wake}, nil), limiter: limiter, logouts: logouts}, nil
}

// newLimiter is the rate limiter of the node: shared through Redis when
// redis.url is set (it connects at the first event), in this process otherwise.
func newLimiter(cfg config.Config, log *slog.Logger) (ratelimit.Limiter, error) {
	if cfg.Redis.URL == "" {
		return ratelimit.NewLocal(nil, 0), nil
	}
	return ratelimit.NewRedis(ratelimit.RedisOptions{URL: cfg.Redis.URL, Timeout: cfg.Redis.Timeout.D(), Logger: log})
}

// retention keeps a replaced key published for the longest-lived token it may
// have signed (an ID token; access tokens are opaque), with an hour to spare.
func retention(cfg config.Config) time.Duration {
	return cfg.Tokens.IDTokenTTL.D() + time.Hour
}

// Close closes the store and the limiter's connections.
func (a *app) Close() error {
	if c, ok := a.limiter.(io.Closer); ok {
		c.Close()
	}
	return a.store.Close()
}

// masterKey returns the master key from the configuration, or in dev mode from
// (or into) the local key file.
func masterKey(cfg config.Config, log *slog.Logger) ([]byte, error) {
	if cfg.MasterKey != "" {
		return seal.ParseMasterKey(cfg.MasterKey)
	}
	if !cfg.Dev {
		return nil, errors.New("no master key: set PONTE_MASTER_KEY (32 bytes, base64)")
	}
	key, created, err := seal.LoadOrCreateMasterKeyFile(cfg.MasterKeyFile)
	if err != nil {
		return nil, err
	}
	if created {
		log.Warn("dev mode: generated a master key into a local file; set PONTE_MASTER_KEY in production", "file", cfg.MasterKeyFile)
	}
	return key, nil
}

// freshDatabase reports whether the database holds nothing sealed or derived
// under a master key yet (no signing key, no client, no API token: a node
// that has served has a signing key), so that its data key may be random.
func freshDatabase(store *sqlstore.Store) datakey.Fresh {
	return func(ctx context.Context) (bool, error) {
		keys, err := store.ListKeys(ctx)
		if err != nil || len(keys) > 0 {
			return false, err
		}
		clients, err := store.ListClients(ctx)
		if err != nil || len(clients) > 0 {
			return false, err
		}
		tokens, err := store.ListAPITokens(ctx)
		return err == nil && len(tokens) == 0, err
	}
}

// exitKeyMismatch is the exit status of a command refused because its master
// key opens no data key in the database.
const exitKeyMismatch = 3

// exitError is an error with the exit status main gives it.
type exitError struct {
	err  error
	code int
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// ExitCode is the process's exit status.
func (e exitError) ExitCode() int { return e.code }

// masterKeySource names where the node's master key comes from.
func masterKeySource(cfg config.Config) string {
	if cfg.MasterKey == "" && cfg.Dev {
		return "the dev mode key file " + cfg.MasterKeyFile
	}
	return "PONTE_MASTER_KEY"
}

// masterKeyError explains a master key (from source) that opens nothing, with
// its exit status.
func masterKeyError(err error, source string) error {
	if errors.Is(err, datakey.ErrUnknownMasterKey) {
		return exitError{code: exitKeyMismatch, err: fmt.Errorf("refusing to run with this master key (%s): %w; "+
			"give the node the master key the database's data key is wrapped under (see `ponte keys rotate-master` in the README)", source, err)}
	}
	return err
}
