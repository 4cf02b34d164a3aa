package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/ponte-id/ponte/adapters/spid/testidp"
)

// idpCmd runs SPID's test identity provider (adapters/spid/testidp) as its
// own process on loopback, as a real identity provider is Ponte's peer: it
// knows the first n citizens, writes its metadata (the nodes'
// spid.idp_metadata_files), then reads the SP's metadata from Ponte until it
// gets it and trusts it, and touches -ready.
func idpCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("idp", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:18604", "listen address (loopback); its entityID is http://<listen>")
	n := fs.Int("citizens", 500, "citizens it knows (loadtest seed -n)")
	metadataOut := fs.String("metadata-out", "", "file to write its metadata to")
	spMetadata := fs.String("sp-metadata", "http://127.0.0.1:18600/login/spid/metadata", "Ponte's SP metadata URL (loopback)")
	ready := fs.String("ready", "", "file touched once the SP is trusted")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil || !isLoopback(host) {
		return errors.New("-listen must be a loopback host:port")
	}
	if *n < 1 || *n > maxCitizens || *metadataOut == "" {
		return fmt.Errorf("-citizens 1..%d and -metadata-out are required", maxCitizens)
	}
	base := "http://" + *listen
	p, err := testidp.New(testidp.Config{EntityID: base, BaseURL: base, Users: idpUsers(*n)})
	if err != nil {
		return err
	}
	if err := os.WriteFile(*metadataOut, p.Metadata(), 0o600); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	go func() {
		if err := trustSP(ctx, p, *spMetadata); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest idp:", err)
			_ = srv.Close()
			return
		}
		if *ready != "" {
			_ = os.WriteFile(*ready, nil, 0o600)
		}
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// idpUsers are the first n citizens as the identity provider knows them.
func idpUsers(n int) []testidp.User {
	us := make([]testidp.User, n)
	for i := range n {
		cf, _, email, mobile := citizen(i)
		us[i] = testidp.User{FiscalNumber: cf, GivenName: "Laura", FamilyName: fmt.Sprintf("Bianchi%d", i),
			Birthdate: "1990-04-15", Gender: "F", Email: email, Mobile: mobile}
	}
	return us
}

// trustSP reads the SP's metadata every 200 ms (for two minutes at most)
// until Ponte serves it, and trusts it.
func trustSP(ctx context.Context, p *testidp.IdP, metadataURL string) error {
	var last error
	for range 600 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, metadataURL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			switch {
			case rerr != nil:
				err = rerr
			case resp.StatusCode != http.StatusOK:
				err = fmt.Errorf("SP metadata: HTTP %d", resp.StatusCode)
			default:
				return p.TrustSP(b)
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("no SP metadata at %s: %w", metadataURL, last)
}
