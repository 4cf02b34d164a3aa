package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/ponte-id/ponte/idp/keys"
	"github.com/ponte-id/ponte/idp/staff"
	"github.com/ponte-id/ponte/internal/datakey"
	"github.com/ponte-id/ponte/internal/seal"
)

const keysUsage = `usage: ponte keys list|rotate [--alg ES256|RS256]
       ponte keys rotate-master [--new-key-file FILE]   (new key in PONTE_NEW_MASTER_KEY or FILE)
       ponte keys retire-master                         (run with the new key in PONTE_MASTER_KEY)`

// envNewMasterKey names the variable that gives rotate-master the new master key.
const envNewMasterKey = "PONTE_NEW_MASTER_KEY"

func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	subs := []string{"list", "rotate", "rotate-master", "retire-master"}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(stdout, keysUsage)
		return nil
	}
	if len(args) == 0 || !slices.Contains(subs, args[0]) {
		fmt.Fprintln(stderr, keysUsage)
		return errors.New("keys: want list, rotate, rotate-master or retire-master")
	}
	sub := args[0]
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var alg, newKeyFile *string
	switch sub {
	case "rotate":
		alg = fs.String("alg", keys.ES256, "algorithm of the key to rotate")
	case "rotate-master":
		newKeyFile = fs.String("new-key-file", "", "file holding the new master key (base64, mode 0600); default: $"+envNewMasterKey)
	}
	a, err := loadApp(ctx, fs, args[1:], stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	switch sub {
	case "rotate":
		rec, err := a.admin.RotateKey(ctx, staff.CLI, *alg)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "new %s key %s is published now and signs from %s\n", rec.Algorithm, rec.ID, rec.NotBefore.Format(time.RFC3339))
		return nil
	case "rotate-master":
		return rotateMaster(ctx, a, *newKeyFile, stdout)
	case "retire-master":
		return retireMaster(ctx, a, stdout)
	}
	return listKeys(ctx, a, stdout)
}

// listKeys prints the signing keys, then the master keys the data key is
// wrapped under.
func listKeys(ctx context.Context, a *app, stdout io.Writer) error {
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
	if err := tw.Flush(); err != nil {
		return err
	}
	wraps, err := a.store.ListDataKeyWraps(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MASTER_KEY\tDATA_KEY\tWRAPS_SINCE\tTHIS_NODE")
	for _, w := range wraps {
		this := "-"
		if w.Fingerprint == a.dataKey.Fingerprint {
			this = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", w.Fingerprint, w.DataKeyID, w.CreatedAt.Format(time.RFC3339), this)
	}
	return tw.Flush()
}

// newMasterKey reads the new master key from file, or else from the environment.
func newMasterKey(file string) ([]byte, error) {
	env := os.Getenv(envNewMasterKey)
	switch {
	case file != "" && env != "":
		return nil, fmt.Errorf("keys rotate-master: the new master key is given twice, in --new-key-file and %s: give it once", envNewMasterKey)
	case file != "":
		return seal.ReadMasterKeyFile(file)
	case env != "":
		key, err := seal.ParseMasterKey(env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envNewMasterKey, err)
		}
		return key, nil
	}
	return nil, fmt.Errorf("keys rotate-master: no new master key: set %s or pass --new-key-file", envNewMasterKey)
}

// rotateMaster wraps the data key under the new master key too.
func rotateMaster(ctx context.Context, a *app, newKeyFile string, stdout io.Writer) error {
	next, err := newMasterKey(newKeyFile)
	if err != nil {
		return err
	}
	w, err := datakey.AddMaster(ctx, a.store, a.master, next)
	switch {
	case errors.Is(err, datakey.ErrAlreadyWraps):
		fp, _ := datakey.Fingerprint(next)
		fmt.Fprintf(stdout, "master key %s already wraps the data key: nothing to add\n", fp)
		return nil
	case errors.Is(err, datakey.ErrSameKey):
		return fmt.Errorf("keys rotate-master: the new master key is the current one (PONTE_MASTER_KEY): generate a new one with `openssl rand -base64 32`")
	case err != nil:
		return masterKeyError(err, masterKeySource(a.cfg))
	}
	if err := a.staff.Record(ctx, staff.CLI, "master_key.added", "master-key:"+w.Fingerprint, "", "data key "+w.DataKeyID+" wrapped under it by master key "+a.dataKey.Fingerprint); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "the data key %s is now wrapped under master key %s too (and still under %s).\n"+
		"Give each node the new key in PONTE_MASTER_KEY and restart it, one at a time; then run\n"+
		"`ponte keys retire-master` with the new key to remove the other wrappings.\n", w.DataKeyID, w.Fingerprint, a.dataKey.Fingerprint)
	return nil
}

// retireMaster removes the wrappings under every master key but the node's.
func retireMaster(ctx context.Context, a *app, stdout io.Writer) error {
	removed, err := datakey.Retire(ctx, a.store, a.master)
	if err != nil {
		return masterKeyError(err, masterKeySource(a.cfg))
	}
	if len(removed) == 0 {
		fmt.Fprintf(stdout, "only master key %s wraps the data key: nothing to retire\n", a.dataKey.Fingerprint)
		return nil
	}
	for _, w := range removed {
		if err := a.staff.Record(ctx, staff.CLI, "master_key.retired", "master-key:"+w.Fingerprint, "", "retired by master key "+a.dataKey.Fingerprint); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "retired master key %s: it opens nothing in this database any more\n", w.Fingerprint)
	}
	fmt.Fprintf(stdout, "only master key %s wraps the data key %s now\n", a.dataKey.Fingerprint, a.dataKey.DataKeyID)
	return nil
}
