package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/ponte-id/ponte/idp/backchannel"
)

const logoutsUsage = `usage: ponte logouts pending|parked|requeue [flags]

  pending              the back-channel logouts waiting for delivery (with their last error)
  parked               those the sender gave up on (a refusal, a redirect, or too many failures)
  requeue --id ID      after fixing the relying party's endpoint: due again now, attempts counted afresh`

// cmdLogouts shows the back-channel logout outbox to an operator.
func cmdLogouts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, logoutsUsage)
		return errors.New("logouts: no subcommand")
	}
	sub, args := args[0], args[1:]
	if sub == "-h" || sub == "--help" || sub == "help" {
		fmt.Fprintln(stdout, logoutsUsage)
		return nil
	}
	fs := flag.NewFlagSet("logouts "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var id string
	limit := 100
	switch sub {
	case "pending", "parked":
		fs.IntVar(&limit, "limit", 100, "at most this many, oldest first")
	case "requeue":
		fs.StringVar(&id, "id", "", "the logout's ID (its jti)")
	default:
		fmt.Fprintln(stderr, logoutsUsage)
		return fmt.Errorf("logouts: unknown subcommand %q", sub)
	}
	a, err := loadApp(ctx, fs, args, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	if sub == "requeue" {
		m, err := backchannel.Requeue(ctx, a.store, id, time.Now())
		if err != nil {
			return fmt.Errorf("logouts: requeue %q: %w", id, err)
		}
		a.log.Info("back-channel logout requeued", "id", m.ID, "client", m.ClientID)
		return writeOut(stdout, map[string]string{"id": m.ID, "client_id": m.ClientID, "status": "due"})
	}
	list, err := a.store.ListLogouts(ctx, sub == "parked", limit)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCLIENT_ID\tCREATED\tATTEMPTS\tLAST_ERROR")
	for _, m := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", m.ID, m.ClientID, m.CreatedAt.Format(time.RFC3339), m.Attempts, m.LastError)
	}
	return tw.Flush()
}
