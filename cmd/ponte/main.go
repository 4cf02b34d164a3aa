// Command ponte runs and administers the Ponte OpenID Connect provider.
//
//	ponte serve            run the provider
//	ponte demo             run it with demo data on a local SQLite file
//	ponte migrate          apply database migrations
//	ponte client ...       create, list, delete, rotate-secret
//	ponte keys ...         list, rotate, rotate-master, retire-master
//	ponte staff ...        grant, revoke, list; token create, list, revoke
//	ponte logouts ...      back-channel logouts: pending, parked, requeue
//	ponte healthcheck      probe a node's /readyz (exit 1 when not ready)
//
// Every subcommand takes --config FILE; PONTE_* environment variables override it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: ponte <command> [flags]

commands:
  serve                    run the provider
  demo                     run the provider with demo data (SQLite, dev master key)
  migrate                  apply pending database migrations
  client create|list|delete|rotate-secret
  keys list|rotate|rotate-master|retire-master
  staff grant|revoke|list, staff token create|list|revoke
  logouts pending|parked|requeue
  healthcheck              probe the node's /readyz on loopback (exit 1 when not ready)

Run 'ponte <command> -h' for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "ponte:", err)
		}
		var coded interface{ ExitCode() int }
		if errors.As(err, &coded) {
			os.Exit(coded.ExitCode())
		}
		os.Exit(2)
	}
}

// run dispatches a subcommand.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, stderr)
	case "demo":
		return cmdDemo(ctx, rest, stdout, stderr)
	case "migrate":
		return cmdMigrate(ctx, rest, stdout, stderr)
	case "client":
		return cmdClient(ctx, rest, stdout, stderr)
	case "keys":
		return cmdKeys(ctx, rest, stdout, stderr)
	case "staff":
		return cmdStaff(ctx, rest, stdout, stderr)
	case "logouts":
		return cmdLogouts(ctx, rest, stdout, stderr)
	case "healthcheck":
		return cmdHealthcheck(ctx, rest, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
