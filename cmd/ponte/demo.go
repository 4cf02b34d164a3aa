package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/demo"
	"github.com/ponte-id/ponte/storage"
)

// demoCitizens are seeded by `ponte demo`: one ordinary and one dispositivo PIN.
var demoCitizens = []storage.PINAccount{
	{FiscalNumber: "RSSMRA80A01H501U", GivenName: "Mario", FamilyName: "Rossi", Gender: "M", Birthdate: "1980-01-01",
		BirthPlace: "Roma", Residence: storage.Address{Street: "Via Ciro il Grande", Number: "21", PostalCode: "00144", City: "Roma", Province: "RM"},
		Mobile: "+393330000001", Email: "mario.rossi@example.it", PEC: "mario.rossi@pec.example.it"},
	{FiscalNumber: "BNCLRA90D55F205C", GivenName: "Laura", FamilyName: "Bianchi", Gender: "F", Birthdate: "1990-04-15",
		BirthPlace: "Milano", Residence: storage.Address{Street: "Via della Frezza", Number: "17", PostalCode: "00186", City: "Roma", Province: "RM"},
		Mobile: "+393330000002", Email: "laura.bianchi@example.it", Dispositivo: true},
}

// cmdDemo runs the provider in dev mode on SQLite with demo data: a demo
// relying party at /demo/, and two citizens whose fresh PINs it prints.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if os.Getenv("PONTE_DEV") == "" {
		os.Setenv("PONTE_DEV", "true") // the demo generates its master key locally
	}
	showCNS := cnsDemo(stderr, demoCitizens[0]) // a demo card and the card listener (demo_cns.go)
	spidDemoEnv()                               // SPID's test identity provider (demo_spid.go)
	cfg, err := loadConfig(flag.NewFlagSet("demo", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	if !cfg.Dev {
		return errors.New("demo: runs only in dev mode (PONTE_DEV=true)")
	}
	// The demo writes citizens with known PINs and starts a test identity
	// provider that logs anyone in as them: never against a real database
	// or a public address.
	if cfg.DBIsPostgres() || !loopbackURL(cfg.Issuer) {
		return errors.New("demo: runs only on a SQLite file with a loopback issuer (it seeds citizens with known PINs)")
	}
	a, err := openApp(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	methods, err := a.openMethods()
	if err != nil {
		return err
	}
	var pins *pin.Service
	for _, m := range methods {
		if s, ok := pin.ServiceOf(m); ok {
			pins = s
		}
	}
	if pins == nil {
		return errors.New("demo: the PIN login method is not among the methods")
	}
	secret, err := demoClient(ctx, a)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nPonte demo: open %s/demo/ in a browser.\n\n", cfg.Issuer)
	for _, c := range demoCitizens {
		p, err := seedCitizen(ctx, pins, c)
		if err != nil {
			return err
		}
		kind := "ordinario    (consultazione)"
		if c.Dispositivo {
			kind = "dispositivo  (dispositivo)  "
		}
		fmt.Fprintf(stdout, "  %s %-8s %s  codice fiscale %s  PIN %s\n", kind, c.GivenName, c.FamilyName, c.FiscalNumber, p)
	}
	showCNS(stdout, cfg.Issuer)
	showSPID(stdout, methods, cfg.Issuer)
	fmt.Fprintf(stdout, "\nDemo client %q; messages the PIN lifecycle sends show at %s/demo/mailbox.\n\n", demo.ClientID, cfg.Issuer)
	rp := demo.New(cfg.Issuer, secret, a.log)
	var mailbox http.Handler
	for _, m := range methods {
		if h := pin.DevMailbox(m); h != nil {
			mailbox = h
		}
	}
	return a.serve(ctx, methods, []provider.Route{{Path: demo.Path, Prefix: true, Handler: rp.Handler(mailbox)}})
}

// demoClient registers the demo relying party, or gives it a new secret.
func demoClient(ctx context.Context, a *app) (string, error) {
	_, secret, err := a.registry.Create(ctx, clients.Spec{
		ID: demo.ClientID, Name: "Servizio di esempio", RedirectURIs: []string{demo.RedirectURI(a.cfg.Issuer)},
		PostLogoutRedirectURIs: []string{a.cfg.Issuer + demo.Path + "/"},
		Scopes:                 append(clients.DefaultScopes, "inps.dispositivo"),
	})
	if err != nil {
		if _, getErr := a.store.GetClient(ctx, demo.ClientID); getErr != nil {
			return "", err
		}
		return a.registry.RotateSecret(ctx, demo.ClientID, 0)
	}
	return secret, nil
}

// seedCitizen gives a demo citizen a fresh random 8-character PIN.
func seedCitizen(ctx context.Context, pins *pin.Service, c storage.PINAccount) (string, error) {
	const alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	p := string(b)
	return p, pins.Seed(ctx, c, p)
}

// loopbackURL reports whether u names a loopback host.
func loopbackURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	if p.Hostname() == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(p.Hostname())
	return err == nil && ip.IsLoopback()
}
