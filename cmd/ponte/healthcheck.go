package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// unhealthy is the error of a failed health check: the process exits 1, what
// container health checks read as unhealthy.
type unhealthy struct{ err error }

func (u unhealthy) Error() string { return "unhealthy: " + u.err.Error() }
func (u unhealthy) Unwrap() error { return u.err }

// ExitCode is the process's exit status.
func (unhealthy) ExitCode() int { return 1 }

// cmdHealthcheck probes the node's /readyz on loopback: for container health
// checks in images without curl. It reads only PONTE_ADDR (or --addr), never
// the rest of the configuration, so it needs no secret.
func cmdHealthcheck(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	addr := fs.String("addr", "", "the node's listen address (default: PONTE_ADDR, else 127.0.0.1:8080)")
	path := fs.String("path", "/readyz", "the probe's path")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" {
		*addr = os.Getenv("PONTE_ADDR")
	}
	if *addr == "" {
		*addr = "127.0.0.1:8080"
	}
	host, port, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("healthcheck: address %q: %w", *addr, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1" // listening on every interface: ask on loopback
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	u := "http://" + net.JoinHostPort(host, port) + *path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return unhealthy{err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return unhealthy{fmt.Errorf("%s answered %d: %s", u, resp.StatusCode, body)}
	}
	fmt.Fprintf(stdout, "%s: %d\n", u, resp.StatusCode)
	return nil
}
