package selfclient_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/internal/selfclient"
)

// Example mounts a set of pages that demand the dispositivo level (a staff
// console, say) behind a self client. server is the whole handler of the
// server, set once it is built: the client reaches the provider through it,
// in process.
func Example() {
	var (
		box      *seal.Box           // the master key's box
		sessions selfclient.Sessions // the *provider.Provider
		registry *clients.Registry
		server   http.Handler
	)
	console, err := selfclient.New(selfclient.Config{
		Issuer: "https://login.inps.it", ClientID: "ponte-console", Name: "Console", Path: "/console",
		Scopes: []string{"profile", "fiscal_number"}, Level: idp.LevelDispositivo,
		Box: box, Sessions: sessions, HTTPClient: selfclient.InProcess(func() http.Handler { return server }),
	})
	if err != nil {
		log.Fatal(err)
	}
	// At start, on every node: the same client and derived secret.
	if err := console.Register(context.Background(), registry); err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /console/callback", console.Handler())
	mux.Handle("/console/", console.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := selfclient.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s (%s, %s)", s.GivenName, s.FiscalNumber, s.ACR)
	})))
	// Mount mux at /console (a provider.Route with Prefix), and link to console.LogoutURL().
}
