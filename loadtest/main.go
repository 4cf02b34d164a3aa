// Command loadtest offers logins to Ponte at a fixed rate (open loop: the
// arrivals do not wait for the answers) through a relying party and one
// browser per login — the PIN, SPID through a test identity provider of its
// own, a CNS card through the card host — checks that every ID token and
// userinfo belongs to the citizen who logged in, and reports what was held
// per method: completed logins per second, errors by kind, latency
// percentiles, exchanges recovered by a retry, mix-ups. Loopback only,
// bounded in time, rate and logins in flight. It is run by loadtest/run.sh,
// never by CI.
//
//	loadtest seed -n 500                      # PONTE_DB: citizens with PINs (benchmarks only)
//	loadtest pki -dir D -issuer URL           # CNS CA and CRL, the card host's TLS, the SPID SP's certificate
//	loadtest idp -listen 127.0.0.1:18604 -citizens 500 -metadata-out F -sp-metadata URL
//	loadtest lb -listen 127.0.0.1:18600 -backends 127.0.0.1:18601,127.0.0.1:18602 \
//	    -card-listen 127.0.0.1:18603 -card-cert D/card-host.pem -card-key D/card-host.key
//	loadtest run -issuer URL -client ID -secret S -rate 1000 -d 20s -methods pin,spid,cns -pki D
//	loadtest table loadtest/results.jsonl     # the runs as BENCHMARKS.md's table
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/codicefiscale"
	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/sqlstore"
)

const (
	maxRate     = 5000
	maxDuration = 5 * time.Minute
	maxInFlight = 4096
	maxCitizens = 26000
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadtest seed|pki|idp|lb|run|table [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "seed":
		err = seedCmd(ctx, os.Args[2:])
	case "run":
		err = runCmd(ctx, os.Args[2:])
	case "lb":
		err = lbCmd(ctx, os.Args[2:])
	case "pki":
		err = pkiCmd(os.Args[2:])
	case "idp":
		err = idpCmd(ctx, os.Args[2:])
	case "table":
		err = tableCmd(os.Args[2:], os.Stdin, os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// citizen i: a valid codice fiscale, its PIN and contacts.
func citizen(i int) (cf, pinValue, email, mobile string) {
	first := fmt.Sprintf("BNCLRA90D55%c%03d", 'A'+byte(i/1000), i%1000)
	ch, _ := codicefiscale.CheckChar(first)
	return first + string(ch), fmt.Sprintf("Pin%05d", i), fmt.Sprintf("c%d@example.it", i), fmt.Sprintf("+3933300%05d", i)
}

func seedCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	n := fs.Int("n", 500, "citizens")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *n > maxCitizens {
		return fmt.Errorf("-n between 1 and %d", maxCitizens)
	}
	store, err := sqlstore.Open(ctx, os.Getenv("PONTE_DB"), sqlstore.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	key := make([]byte, 32) // Seed stores only the PIN's hash: nothing is sealed
	_, _ = rand.Read(key)
	box, _ := seal.New(key)
	cfg := pin.DefaultConfig()
	cfg.BaseURL = "http://127.0.0.1"
	svc, err := pin.NewService(cfg, pin.Deps{Store: store, Box: box, Revoker: provider.Revoker{Store: store}})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, *n)
	sem := make(chan struct{}, 4)
	for i := range *n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cf, p, email, mobile := citizen(i)
			a := storage.PINAccount{FiscalNumber: cf, GivenName: "Laura", FamilyName: fmt.Sprintf("Bianchi%d", i), Gender: "F",
				Birthdate: "1990-04-15", BirthPlace: "Roma", Residence: storage.Address{Street: "Via Roma", Number: "1", PostalCode: "00100", City: "Roma", Province: "RM"},
				Mobile: mobile, Email: email, PreferredPhone: mobile, CallbackSlot: "09-13"}
			if err := svc.Seed(ctx, a, p); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
