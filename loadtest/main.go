// Command loadtest offers PIN logins to Ponte at a fixed rate (open loop: the
// arrivals do not wait for the answers) through a relying party and one
// browser per login, checks that every ID token and userinfo belongs to the
// citizen who logged in, and reports what was held: completed logins per
// second, errors by kind, latency percentiles, mix-ups. Loopback only,
// bounded in time, rate and logins in flight. It is run by loadtest/run.sh,
// never by CI.
//
//	loadtest seed -n 500                      # PONTE_DB: citizens with PINs (benchmarks only)
//	loadtest run -issuer URL -client ID -secret S -rate 1000 -d 20s
//	loadtest lb -listen 127.0.0.1:18600 -backends 127.0.0.1:18601,127.0.0.1:18602
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/adapters/pin/codicefiscale"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/loadtest/flow"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/sqlstore"
)

const (
	maxRate     = 5000
	maxDuration = 5 * time.Minute
	maxInFlight = 4096
	maxCitizens = 26000
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadtest seed|run|lb [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "seed":
		err = seedCmd(ctx, os.Args[2:])
	case "run":
		err = runCmd(ctx, os.Args[2:])
	case "lb":
		err = lbCmd(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// citizen i: a valid codice fiscale, its PIN and contacts.
func citizen(i int) (cf, pinValue, email, mobile string) {
	first := fmt.Sprintf("BNCLRA90D55%c%03d", 'A'+byte(i/1000), i%1000)
	ch, _ := codicefiscale.CheckChar(first)
	return first + string(ch), fmt.Sprintf("Pin%05d", i), fmt.Sprintf("c%d@example.it", i), fmt.Sprintf("+3933300%05d", i)
}

func seedCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	n := fs.Int("n", 500, "citizens")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *n > maxCitizens {
		return fmt.Errorf("-n between 1 and %d", maxCitizens)
	}
	store, err := sqlstore.Open(ctx, os.Getenv("PONTE_DB"), sqlstore.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	key := make([]byte, 32) // Seed stores only the PIN's hash: nothing is sealed
	_, _ = rand.Read(key)
	box, _ := seal.New(key)
	cfg := pin.DefaultConfig()
	cfg.BaseURL = "http://127.0.0.1"
	svc, err := pin.NewService(cfg, pin.Deps{Store: store, Box: box, Revoker: provider.Revoker{Store: store}})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, *n)
	sem := make(chan struct{}, 4)
	for i := range *n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cf, p, email, mobile := citizen(i)
			a := storage.PINAccount{FiscalNumber: cf, GivenName: "Laura", FamilyName: fmt.Sprintf("Bianchi%d", i), Gender: "F",
				Birthdate: "1990-04-15", BirthPlace: "Roma", Residence: storage.Address{Street: "Via Roma", Number: "1", PostalCode: "00100", City: "Roma", Province: "RM"},
				Mobile: mobile, Email: email, PreferredPhone: mobile, CallbackSlot: "09-13"}
			if err := svc.Seed(ctx, a, p); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// outcome kinds.
const (
	kOK        = "ok"
	k503       = "503 with Retry-After"
	k503NoRA   = "503 without Retry-After"
	k429       = "429"
	k5xx       = "other 5xx"
	k4xx       = "other 4xx"
	kTransport = "transport error"
	kHalfDone  = "code that did not redeem"
	kMixUp     = "MIX-UP"
	kFormOK    = "form ok"
	kSkipped   = "not sent (in-flight bound)"
	// kErrRedirect is a login sent back to the relying party with an OAuth error (server_error ...).
	kErrRedirect = "error redirect"
)

type stats struct {
	mu    sync.Mutex
	kinds map[string]int
	lat   []time.Duration
	first map[string]string // an example of each error kind
}

func (s *stats) add(kind string, d time.Duration, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kinds[kind]++
	if kind == kOK {
		s.lat = append(s.lat, d)
	}
	if _, ok := s.first[kind]; !ok && detail != "" {
		s.first[kind] = detail[:min(len(detail), 300)]
	}
}

func classify(err error) string {
	var se *flow.StatusError
	if errors.As(err, &se) {
		switch {
		case se.Status == http.StatusServiceUnavailable && se.RetryAfter != "":
			return k503
		case se.Status == http.StatusServiceUnavailable:
			return k503NoRA
		case se.Status == http.StatusTooManyRequests:
			return k429
		case se.Status >= 500:
			return k5xx
		case se.Status >= 400 || se.Status == 200:
			return k4xx
		default:
			return kErrRedirect
		}
	}
	switch s := flow.Status(err); {
	case s == http.StatusServiceUnavailable:
		return k503
	case s == http.StatusTooManyRequests:
		return k429
	case s >= 500:
		return k5xx
	case s >= 400:
		return k4xx
	}
	return kTransport
}

func runCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	issuer := fs.String("issuer", "http://127.0.0.1:18600", "issuer URL (loopback)")
	client := fs.String("client", "", "client_id (client_secret_basic)")
	secret := fs.String("secret", "", "client secret")
	redirect := fs.String("redirect", "http://127.0.0.1:9/cb", "registered redirect URI (never contacted)")
	rate := fs.Int("rate", 1000, "logins offered per second")
	d := fs.Duration("d", 20*time.Second, "duration")
	n := fs.Int("citizens", 500, "seeded citizens (loadtest seed -n)")
	forms := fs.Float64("forms", 0.1, "share of arrivals that post the recovery form instead")
	inflight := fs.Int("inflight", 2000, "logins in flight at most (beyond: not sent, counted)")
	label := fs.String("label", "", "label for the JSON line")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*issuer)
	if err != nil || !isLoopback(u.Hostname()) {
		return errors.New("-issuer must be a loopback URL")
	}
	if *rate < 1 || *rate > maxRate || *d <= 0 || *d > maxDuration || *inflight < 1 || *inflight > maxInFlight || *n < 1 || *n > maxCitizens {
		return fmt.Errorf("bounds: rate 1..%d, d ≤ %s, inflight 1..%d, citizens 1..%d", maxRate, maxDuration, maxInFlight, maxCitizens)
	}
	rp, err := flow.NewRP(ctx, *issuer, *client, *secret, *redirect)
	if err != nil {
		return err
	}
	st := &stats{kinds: map[string]int{}, first: map[string]string{}}
	sem := make(chan struct{}, *inflight)
	var wg sync.WaitGroup
	var seq atomic.Int64
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	defer tick.Stop()
	end := time.After(*d)
	offered := 0
	// every second: completed logins that second, for the time line.
	var perSecond [int(maxDuration / time.Second)]atomic.Int64
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-end:
			break loop
		case <-tick.C:
		}
		offered++
		select {
		case sem <- struct{}{}:
		default:
			st.add(kSkipped, 0, "")
			continue
		}
		k := int(seq.Add(1))
		i := k % *n
		form := float64(k%100)/100 < *forms
		wg.Go(func() {
			defer func() { <-sem }()
			cf, p, email, mobile := citizen(i)
			t0 := time.Now()
			if form {
				kind, detail := recoverForm(ctx, rp, cf, email, mobile)
				st.add(kind, 0, detail)
				return
			}
			login, err := rp.PINLogin(ctx, flow.NewBrowser(rp), cf, p)
			if err != nil {
				st.add(classify(err), 0, err.Error())
				return
			}
			tok, err := rp.Redeem(ctx, login)
			if err != nil {
				st.add(kHalfDone, 0, err.Error())
				return
			}
			sub, uicf, err := rp.UserInfo(ctx, tok.Access)
			if err != nil {
				st.add(classify(err), 0, "userinfo: "+err.Error())
				return
			}
			if tok.FiscalNumber != cf || uicf != cf || sub != tok.Subject {
				st.add(kMixUp, 0, fmt.Sprintf("%s logged in, ID token %s, userinfo %s/%s", cf, tok.FiscalNumber, uicf, sub))
				return
			}
			st.add(kOK, time.Since(t0), "")
			if s := int(time.Since(start) / time.Second); s < len(perSecond) {
				perSecond[s].Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(st.lat)
	pct := func(p float64) time.Duration {
		if len(st.lat) == 0 {
			return 0
		}
		return st.lat[min(len(st.lat)-1, int(p*float64(len(st.lat))))].Round(time.Millisecond)
	}
	var line []int64
	for s := range min(int(elapsed.Seconds())+1, len(perSecond)) {
		line = append(line, perSecond[s].Load())
	}
	report := map[string]any{
		"label": *label, "offered_per_s": *rate, "duration_s": d.Seconds(), "offered": offered,
		"completed_logins": st.kinds[kOK], "held_logins_per_s": float64(st.kinds[kOK]) / d.Seconds(),
		"kinds": st.kinds, "examples": st.first, "p50_ms": pct(0.50).Milliseconds(), "p99_ms": pct(0.99).Milliseconds(),
		"max_ms": pct(1).Milliseconds(), "mixups": st.kinds[kMixUp], "completed_per_second": line, "wall_s": elapsed.Seconds(),
	}
	out, _ := json.Marshal(report)
	fmt.Println(string(out))
	if st.kinds[kMixUp] > 0 {
		return fmt.Errorf("%d MIX-UPS", st.kinds[kMixUp])
	}
	return nil
}

// recoverForm posts the recovery form, as a browser would: 200 (the same
// page whatever matched) or 429 are the answers it may get.
func recoverForm(ctx context.Context, rp *flow.RP, cf, email, mobile string) (string, string) {
	form := url.Values{"fiscal_number": {cf}, "email": {email}, "mobile": {mobile}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, rp.Issuer+"/login/pin/recover", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := flow.NewBrowser(rp).HTTP.Do(req)
	if err != nil {
		return kTransport, err.Error()
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusSeeOther:
		return kFormOK, ""
	case resp.StatusCode == http.StatusTooManyRequests:
		return k429, "recover form"
	case resp.StatusCode == http.StatusServiceUnavailable:
		return k503, "recover form"
	case resp.StatusCode >= 500:
		return k5xx, fmt.Sprintf("recover form: %d", resp.StatusCode)
	}
	return k4xx, fmt.Sprintf("recover form: %d", resp.StatusCode)
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// lbCmd is a small load balancer on loopback, as nginx with
// proxy_next_upstream error: a request whose connection to a node cannot be
// made goes to the next node (it was never sent); a node refusing
// connections is left alone for a second. A request in flight on a node that
// dies gets 502.
func lbCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("lb", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:18600", "listen address (loopback)")
	backends := fs.String("backends", "", "comma-separated host:port of the nodes (loopback)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(*listen)
	if !isLoopback(host) {
		return errors.New("-listen must be on loopback")
	}
	nodes := strings.Split(*backends, ",")
	downUntil := make([]atomic.Int64, len(nodes))
	for _, b := range nodes {
		if h, _, err := net.SplitHostPort(b); err != nil || !isLoopback(h) {
			return fmt.Errorf("backend %q must be a loopback host:port", b)
		}
	}
	var next atomic.Uint64
	dialer := &net.Dialer{Timeout: time.Second}
	tr := &http.Transport{MaxIdleConnsPerHost: 512, IdleConnTimeout: 30 * time.Second,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var errs []error
			start := next.Add(1)
			for k := range len(nodes) {
				i := int(start+uint64(k)) % len(nodes)
				if time.Now().UnixNano() < downUntil[i].Load() && k < len(nodes)-1 {
					continue
				}
				c, err := dialer.DialContext(ctx, "tcp", nodes[i])
				if err == nil {
					return c, nil
				}
				downUntil[i].Store(time.Now().Add(time.Second).UnixNano())
				errs = append(errs, err)
			}
			return nil, errors.Join(errs...)
		}}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = "http", "ponte-nodes" // the dialer picks the node
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
		Transport: tr,
		// A node that dies or closes a connection gives 502, counted by `run`.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	srv := &http.Server{Addr: *listen, Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
