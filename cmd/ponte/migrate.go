package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/ponte-id/ponte/storage/sqlstore"
)

func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(flag.NewFlagSet("migrate", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	store, err := sqlstore.Open(ctx, cfg.DB, sqlstore.Options{Logger: newLogger(cfg, stderr)})
	if err != nil {
		return err
	}
	defer store.Close()
	n, err := store.Migrate(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "applied %d migrations (%s)\n", n, store.Dialect())
	return nil
}
