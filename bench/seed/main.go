// Command seed gives one citizen a known PIN in a Ponte database, for the
// benchmarks on `ponte serve` (PostgreSQL), which, unlike `ponte demo`, has no
// demo citizens. It is a benchmark tool: never point it at a production
// database.
//
//	PONTE_DB=postgres://…/ponte_bench seed -cf RSSMRA80A01H501U -pin abcd2345
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/sqlstore"
)

func main() {
	cf := flag.String("cf", "RSSMRA80A01H501U", "codice fiscale")
	pinValue := flag.String("pin", "", "the PIN (8 characters)")
	flag.Parse()
	if err := seed(context.Background(), os.Getenv("PONTE_DB"), *cf, *pinValue); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func seed(ctx context.Context, dsn, cf, value string) error {
	if dsn == "" || value == "" {
		return fmt.Errorf("PONTE_DB and -pin are required")
	}
	store, err := sqlstore.Open(ctx, dsn, sqlstore.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	key := make([]byte, 32) // seals nothing here: Seed stores only the PIN's hash
	_, _ = rand.Read(key)
	box, err := seal.New(key)
	if err != nil {
		return err
	}
	cfg := pin.DefaultConfig()
	cfg.BaseURL = "http://127.0.0.1"
	s, err := pin.NewService(cfg, pin.Deps{Store: store, Box: box, Revoker: provider.Revoker{Store: store}})
	if err != nil {
		return err
	}
	return s.Seed(ctx, storage.PINAccount{FiscalNumber: cf, GivenName: "Mario", FamilyName: "Rossi"}, value)
}
