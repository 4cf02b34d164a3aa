package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/staff"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

const clientUsage = `usage: ponte client create|list|delete|rotate-secret [flags]

  create          register a relying party (client_secret_basic by default; the secret is shown once;
                  default scopes are all but inps.dispositivo: pass --scopes to allow it)
  list            list the relying parties
  delete --id ID  delete one
  rotate-secret --id ID [--overlap 24h]
                  give a confidential client a new secret (shown once); the old one works for --overlap

Run 'ponte client <subcommand> -h' for its flags. The command opens the same database and master
key as the server: against 'ponte demo', run it in the demo's folder with PONTE_DEV=true.`

func cmdClient(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, clientUsage)
		return errors.New("client: no subcommand")
	}
	sub, args := args[0], args[1:]
	if sub == "-h" || sub == "--help" || sub == "help" {
		fmt.Fprintln(stdout, clientUsage)
		return nil
	}
	fs := flag.NewFlagSet("client "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		spec                    clients.Spec
		redirects, postLogout   listFlag
		scopes, jwksFile, idArg string
		overlap                 time.Duration
	)
	switch sub {
	case "create":
		fs.StringVar(&spec.ID, "id", "", "client_id (generated if empty)")
		fs.StringVar(&spec.Name, "name", "", "display name shown on the login page")
		fs.Var(&redirects, "redirect-uri", "redirect URI, matched exactly (repeatable)")
		fs.Var(&postLogout, "post-logout-uri", "post-logout redirect URI (repeatable)")
		fs.StringVar(&scopes, "scopes", "", "space-separated scopes the client may request (default: all but inps.dispositivo)")
		fs.StringVar(&spec.AuthMethod, "auth", clients.AuthSecretBasic, "token endpoint auth: client_secret_basic, client_secret_post, private_key_jwt, none")
		fs.StringVar(&jwksFile, "jwks-file", "", "public JWKS file, for private_key_jwt")
		fs.StringVar(&spec.JWKSURI, "jwks-uri", "", "public JWKS URL, for private_key_jwt")
		fs.StringVar(&spec.SigningAlg, "alg", "ES256", "ID token signing algorithm: ES256 or RS256")
		fs.StringVar(&spec.SectorIdentifier, "sector", "", "sector identifier URI: gives the client pairwise subjects")
		fs.StringVar(&spec.BackchannelLogoutURI, "backchannel-logout-uri", "", "where the client takes back-channel logout tokens (https; http on loopback)")
		fs.BoolVar(&spec.BackchannelLogoutSessionRequired, "backchannel-logout-session-required", false, "the client needs the sid in logout tokens")
		fs.BoolVar(&spec.PKCEExempt, "insecure-skip-pkce", false, "INSECURE: let a legacy confidential client use the code flow without PKCE (refused for public clients)")
		fs.DurationVar(&spec.AccessTokenTTL, "access-ttl", 0, "access token lifetime (0: provider default)")
		fs.DurationVar(&spec.RefreshTokenTTL, "refresh-ttl", 0, "refresh token lifetime (0: provider default)")
		fs.DurationVar(&spec.IDTokenTTL, "id-ttl", 0, "ID token lifetime (0: provider default)")
	case "delete":
		fs.StringVar(&idArg, "id", "", "client_id")
	case "rotate-secret":
		fs.StringVar(&idArg, "id", "", "client_id")
		fs.DurationVar(&overlap, "overlap", 0, "how long the old secret keeps working (at most 720h; 0 ends it now)")
	case "list":
	default:
		fmt.Fprintln(stderr, clientUsage)
		return fmt.Errorf("client: unknown subcommand %q", sub)
	}
	a, err := loadApp(ctx, fs, args, stderr)
	if err != nil {
		return err
	}
	defer a.Close()

	switch sub {
	case "create":
		spec.RedirectURIs, spec.PostLogoutRedirectURIs, spec.Scopes = redirects, postLogout, strings.Fields(scopes)
		if jwksFile != "" {
			if spec.JWKS, err = os.ReadFile(jwksFile); err != nil {
				return err
			}
		}
		c, secret, err := a.admin.CreateClient(ctx, staff.CLI, spec)
		if err != nil {
			return err
		}
		out := map[string]any{"client_id": c.ID, "token_endpoint_auth_method": c.TokenEndpointAuthMethod, "redirect_uris": c.RedirectURIs, "scopes": c.Scopes}
		if secret != "" {
			out["client_secret"] = secret
		}
		if c.BackchannelLogoutURI != "" {
			out["backchannel_logout_uri"] = c.BackchannelLogoutURI
			out["backchannel_logout_session_required"] = c.BackchannelLogoutSessionRequired
		}
		if c.PKCEExempt {
			out["pkce_exempt"] = true
			fmt.Fprintf(stderr, "WARNING: client %s may use the code flow without PKCE (--insecure-skip-pkce)\n", c.ID)
		}
		return writeOut(stdout, out)
	case "rotate-secret":
		c, secret, err := a.admin.RotateSecret(ctx, staff.CLI, idArg, overlap)
		if err != nil {
			return err
		}
		out := map[string]string{"client_id": idArg, "client_secret": secret}
		if len(c.PreviousSecretHash) > 0 {
			out["previous_secret_expires_at"] = c.PreviousSecretExpiresAt.Format(time.RFC3339)
		}
		return writeOut(stdout, out)
	case "delete":
		return a.admin.DeleteClient(ctx, staff.CLI, idArg)
	}
	list, err := a.admin.Clients(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT_ID\tNAME\tAUTH\tALG\tSCOPES\tREDIRECT_URIS")
	for _, c := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, c.TokenEndpointAuthMethod, c.IDTokenSigningAlg,
			strings.Join(c.Scopes, " "), strings.Join(c.RedirectURIs, " "))
	}
	return tw.Flush()
}

func writeOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
