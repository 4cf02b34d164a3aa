package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ponte-id/ponte/idp/staff"
)

const staffUsage = `usage: ponte staff <subcommand> [flags]

  grant --cf CF --role ROLE     give a role to a member of staff (the first admin is made this way)
  revoke --cf CF --role ROLE    take it away (the last admin keeps it)
  list                          who holds which role
  token create --name NAME --role ROLE [--role ROLE] [--ttl 720h]
                                issue an API token (shown once; stored only as a keyed hash)
  token list                    the API tokens (never their secrets)
  token revoke --id ID          revoke one at once

Roles: admin, operator-sede, operator-contact-center, auditor. Every action is written to the
audit trail under the actor "cli".`

func cmdStaff(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, staffUsage)
		return errors.New("staff: no subcommand")
	}
	sub, args := args[0], args[1:]
	if sub == "-h" || sub == "--help" || sub == "help" {
		fmt.Fprintln(stdout, staffUsage)
		return nil
	}
	if sub == "token" {
		if len(args) == 0 {
			fmt.Fprintln(stderr, staffUsage)
			return errors.New("staff token: want create, list or revoke")
		}
		sub, args = "token "+args[0], args[1:]
	}
	fs := flag.NewFlagSet("staff "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cf, role, name, id string
		roles              listFlag
		ttl                time.Duration
	)
	switch sub {
	case "grant", "revoke":
		fs.StringVar(&cf, "cf", "", "codice fiscale of the member of staff")
		fs.StringVar(&role, "role", "", "admin, operator-sede, operator-contact-center or auditor")
	case "token create":
		fs.StringVar(&name, "name", "", "what the token is for (shown in lists and the audit trail)")
		fs.Var(&roles, "role", "a role the token acts with (repeatable)")
		fs.DurationVar(&ttl, "ttl", 30*24*time.Hour, "lifetime (at most 8784h)")
	case "token revoke":
		fs.StringVar(&id, "id", "", "the token's ID")
	case "list", "token list":
	default:
		fmt.Fprintln(stderr, staffUsage)
		return fmt.Errorf("staff: unknown subcommand %q", sub)
	}
	a, err := loadApp(ctx, fs, args, stderr)
	if err != nil {
		return err
	}
	defer a.Close()

	switch sub {
	case "grant":
		g, err := a.staff.Grant(ctx, staff.CLI, cf, role)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s now holds %s\n", g.FiscalNumber, g.Role)
		return nil
	case "revoke":
		if err := a.staff.Revoke(ctx, staff.CLI, cf, role); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s no longer holds %s\n", strings.ToUpper(cf), role)
		return nil
	case "token create":
		t, secret, err := a.staff.CreateToken(ctx, staff.CLI, staff.TokenSpec{Name: name, Roles: roles, TTL: ttl})
		if err != nil {
			return err
		}
		return writeOut(stdout, map[string]any{"id": t.ID, "name": t.Name, "roles": t.Roles,
			"expires_at": t.ExpiresAt.Format(time.RFC3339), "token": secret})
	case "token revoke":
		if err := a.staff.RevokeToken(ctx, staff.CLI, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token %s revoked\n", id)
		return nil
	case "token list":
		list, err := a.staff.Tokens(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLES\tEXPIRES\tREVOKED")
		for _, t := range list {
			revoked := "-"
			if !t.RevokedAt.IsZero() {
				revoked = t.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, strings.Join(t.Roles, ","), t.ExpiresAt.Format(time.RFC3339), revoked)
		}
		return tw.Flush()
	}
	list, err := a.staff.Grants(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CODICE_FISCALE\tROLE\tGRANTED_BY\tGRANTED_AT")
	for _, g := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.FiscalNumber, g.Role, g.GrantedBy, g.GrantedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}
