package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/ponte-id/ponte/idp/keys"
	"github.com/ponte-id/ponte/idp/staff"
)

func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: ponte keys list|rotate [--alg ES256|RS256]"
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(stdout, usage)
		return nil
	}
	if len(args) == 0 || (args[0] != "list" && args[0] != "rotate") {
		fmt.Fprintln(stderr, usage)
		return errors.New("keys: want list or rotate")
	}
	sub := args[0]
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	alg := fs.String("alg", keys.ES256, "algorithm of the key to rotate")
	a, err := loadApp(ctx, fs, args[1:], stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	if sub == "rotate" {
		rec, err := a.admin.RotateKey(ctx, staff.CLI, *alg)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "new %s key %s is published now and signs from %s\n", rec.Algorithm, rec.ID, rec.NotBefore.Format(time.RFC3339))
		return nil
	}
	recs, err := a.admin.Keys(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tSIGNS_FROM\tPUBLISHED_UNTIL")
	for _, k := range recs {
		until := "-"
		if !k.NotAfter.IsZero() {
			until = k.NotAfter.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.State, k.NotBefore.Format(time.RFC3339), until)
	}
	return tw.Flush()
}
