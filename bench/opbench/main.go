// Command opbench measures the token-endpoint operations a relying party
// repeats after a login — the refresh grant and RFC 7662 introspection — on
// an OpenID provider, or on two interleaved in one run (A, B, B, A, ...), as
// ../shared/tools/ssobench does for the single-sign-on code flow.
//
//	opbench -mode refresh|introspect [-interleave -rounds K] -d D -c C -a "<flags of A>" -b "<flags of B>"
//
// Each worker first logs in once in a browser of its own (scope openid
// offline_access, prompt=consent) to get its tokens; then it loops:
//
//	refresh     POST token grant_type=refresh_token with the current refresh
//	            token (client_secret_basic), keeping the one returned when the
//	            provider rotates it; a response without an access token is an error
//	introspect  POST the introspection endpoint with the worker's access
//	            token; an answer other than active=true is an error
//
// It reports operations/s, latency percentiles and, with -pid, the server's
// CPU per operation (from /proc). Standard library only; loopback only;
// every loop is bounded in time and count. Login drivers: ponte (the method
// chooser and the PIN form) and oidc-provider (its development login and
// consent forms).
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	maxDuration = 10 * time.Minute
	maxOps      = 5_000_000
	maxWorkers  = 256
	maxSteps    = 15
	maxBody     = 1 << 20
)

type config struct {
	Name, Mode, Issuer, Client, Secret, Redirect, Login, CF, PIN, User string
	C, PID                                                             int
	D, Warmup                                                          time.Duration
}

func bind(fs *flag.FlagSet, c *config) {
	fs.StringVar(&c.Name, "name", c.Name, "label for the report")
	fs.StringVar(&c.Mode, "mode", c.Mode, "refresh or introspect")
	fs.StringVar(&c.Issuer, "issuer", c.Issuer, "issuer URL")
	fs.StringVar(&c.Client, "client", c.Client, "client_id")
	fs.StringVar(&c.Secret, "secret", c.Secret, "client secret (client_secret_basic)")
	fs.StringVar(&c.Redirect, "redirect", c.Redirect, "registered redirect URI (never contacted)")
	fs.StringVar(&c.Login, "login", c.Login, "login driver: ponte or oidc-provider")
	fs.StringVar(&c.CF, "cf", c.CF, "ponte: codice fiscale")
	fs.StringVar(&c.PIN, "pin", c.PIN, "ponte: PIN")
	fs.StringVar(&c.User, "user", c.User, "oidc-provider: login name")
	fs.IntVar(&c.C, "c", c.C, "concurrency (workers)")
	fs.IntVar(&c.PID, "pid", c.PID, "server PID: report its CPU per operation")
	fs.DurationVar(&c.D, "d", c.D, "measured duration")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "unmeasured warm-up")
}

func main() {
	base := config{Mode: "refresh", Login: "ponte", User: "bench", C: 8, D: 10 * time.Second, Warmup: time.Second}
	fs := flag.NewFlagSet("opbench", flag.ExitOnError)
	bind(fs, &base)
	interleave := fs.Bool("interleave", false, "compare -a and -b, alternately")
	rounds := fs.Int("rounds", 5, "interleave: rounds")
	aFlags := fs.String("a", "", "interleave: flags of provider A")
	bFlags := fs.String("b", "", "interleave: flags of provider B")
	_ = fs.Parse(os.Args[1:])
	if !*interleave {
		r, err := run(base)
		must(err)
		fmt.Println(r)
		return
	}
	a, b := derive(base, *aFlags, "A"), derive(base, *bFlags, "B")
	if *rounds < 1 || *rounds > 50 {
		must(errors.New("-rounds must be 1..50"))
	}
	var ra, rb []result
	for i := range *rounds {
		order := []*config{&a, &b}
		if i%2 == 1 {
			order = []*config{&b, &a}
		}
		for _, c := range order {
			r, err := run(*c)
			must(err)
			fmt.Printf("round %d  %s\n", i+1, r)
			if c == &a {
				ra = append(ra, r)
			} else {
				rb = append(rb, r)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	fmt.Printf("\nmedians over %d rounds (c=%d, %s each):\n", len(ra), a.C, a.D)
	var ratios []float64
	for i := range ra {
		ratios = append(ratios, ra[i].rate()/rb[i].rate())
	}
	for _, rs := range [][]result{ra, rb} {
		fmt.Printf("  %-8s %9.1f %s/s  p50=%.2fms p99=%.2fms  errors=%d  server %.3f cpu-ms/op\n", rs[0].cfg.Name,
			med(rs, result.rate), rs[0].cfg.Mode, med(rs, func(r result) float64 { return ms(r.pct(.5)) }),
			med(rs, func(r result) float64 { return ms(r.pct(.99)) }), errCount(rs), med(rs, result.cpuPerOp))
	}
	fmt.Printf("  ratio %s/%s: %.2fx (of medians), %.2fx (median of per-round ratios)\n", a.Name, b.Name,
		med(ra, result.rate)/med(rb, result.rate), median(ratios))
}

func derive(base config, args, label string) config {
	c := base
	fs := flag.NewFlagSet(label, flag.ExitOnError)
	bind(fs, &c)
	_ = fs.Parse(strings.Fields(args))
	if c.Name == "" {
		c.Name = label
	}
	return c
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "opbench:", err)
		os.Exit(1)
	}
}

// ---------------------------------------------------------------- HTTP

var transport = &http.Transport{
	DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	MaxIdleConns:        1024,
	MaxIdleConnsPerHost: 1024,
	DisableCompression:  true,
}

func newBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Transport: transport, Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var backend = &http.Client{Transport: transport, Timeout: 30 * time.Second}

func loopback(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return err
	}
	if h := p.Hostname(); h != "127.0.0.1" && h != "localhost" && h != "::1" {
		return fmt.Errorf("refusing non-loopback URL %s", u)
	}
	return nil
}

func do(ctx context.Context, c *http.Client, method, u string, form url.Values, hdr map[string]string) (*http.Response, []byte, error) {
	if err := loopback(u); err != nil {
		return nil, nil, err
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return resp, b, err
}

func rnd(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ---------------------------------------------------------------- provider

type provider struct {
	cfg  config
	auth string
	disc struct {
		Authorization string `json:"authorization_endpoint"`
		Token         string `json:"token_endpoint"`
		Introspection string `json:"introspection_endpoint"`
	}
}

type tokens struct {
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
}

func newProvider(ctx context.Context, c config) (*provider, error) {
	p := &provider{cfg: c, auth: "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(c.Client)+":"+url.QueryEscape(c.Secret)))}
	resp, b, err := do(ctx, backend, "GET", strings.TrimRight(c.Issuer, "/")+"/.well-known/openid-configuration", nil, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("discovery: %s", resp.Status)
	}
	if err := json.Unmarshal(b, &p.disc); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	for _, u := range []string{p.disc.Authorization, p.disc.Token, p.disc.Introspection, c.Redirect} {
		if err := loopback(u); err != nil {
			return nil, err
		}
	}
	return p, nil
}

var (
	reForm   = regexp.MustCompile(`(?is)<form[^>]*\baction="([^"]*)"[^>]*>(.*?)</form>`)
	reInput  = regexp.MustCompile(`(?is)<input\b[^>]*>`)
	reAttr   = regexp.MustCompile(`(?is)\b(name|value|type)="([^"]*)"`)
	rePinRef = regexp.MustCompile(`href="([^"]*/login/pin/\?challenge=[^"]*)"`)
)

// login logs in a fresh browser and redeems the code: the worker's tokens.
func (p *provider) login(ctx context.Context) (tokens, error) {
	verifier, state := rnd(32), rnd(16)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {p.cfg.Client}, "response_type": {"code"}, "redirect_uri": {p.cfg.Redirect},
		"scope": {"openid offline_access"}, "prompt": {"consent"}, "state": {state}, "nonce": {rnd(16)},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	br := newBrowser()
	method, target, form := "GET", p.disc.Authorization+"?"+q.Encode(), url.Values(nil)
	for range maxSteps {
		resp, b, err := do(ctx, br, method, target, form, nil)
		if err != nil {
			return tokens{}, err
		}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			loc := resp.Header.Get("Location")
			if strings.HasPrefix(loc, p.cfg.Redirect+"?") {
				u, _ := url.Parse(loc)
				if u.Query().Get("state") != state || u.Query().Get("code") == "" {
					return tokens{}, fmt.Errorf("authorize: %s", u.RawQuery)
				}
				return p.redeem(ctx, u.Query().Get("code"), verifier)
			}
			if target, err = resolve(target, loc); err != nil {
				return tokens{}, err
			}
			method, form = "GET", nil
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return tokens{}, fmt.Errorf("login: %s %.200s", resp.Status, b)
		}
		next, f, err := p.fill(string(b))
		if err != nil {
			return tokens{}, err
		}
		if target, err = resolve(target, next); err != nil {
			return tokens{}, err
		}
		method, form = "GET", nil
		if f != nil {
			method, form = "POST", f
		}
	}
	return tokens{}, errors.New("login: too many steps")
}

// fill reads a login page and says where to go next.
func (p *provider) fill(page string) (string, url.Values, error) {
	for _, m := range reForm.FindAllStringSubmatch(page, -1) {
		action, fields, names := html.UnescapeString(m[1]), url.Values{}, map[string]bool{}
		for _, in := range reInput.FindAllString(m[2], -1) {
			var name, value, typ string
			for _, a := range reAttr.FindAllStringSubmatch(in, -1) {
				switch strings.ToLower(a[1]) {
				case "name":
					name = html.UnescapeString(a[2])
				case "value":
					value = html.UnescapeString(a[2])
				case "type":
					typ = strings.ToLower(a[2])
				}
			}
			if name != "" {
				names[name] = true
				if typ == "hidden" || value != "" {
					fields.Set(name, value)
				}
			}
		}
		switch {
		case p.cfg.Login == "ponte" && names["fiscal_number"] && names["pin"]:
			fields.Set("fiscal_number", p.cfg.CF)
			fields.Set("pin", p.cfg.PIN)
			return action, fields, nil
		case p.cfg.Login == "oidc-provider" && names["login"]:
			fields.Set("login", p.cfg.User)
			if names["password"] {
				fields.Set("password", "any-password")
			}
			return action, fields, nil
		case p.cfg.Login == "oidc-provider" && (fields.Get("prompt") == "consent" || strings.HasSuffix(action, "/confirm")):
			return action, fields, nil
		}
	}
	if m := rePinRef.FindStringSubmatch(page); p.cfg.Login == "ponte" && m != nil {
		return html.UnescapeString(m[1]), nil, nil
	}
	return "", nil, fmt.Errorf("%s: no known form or link on the page: %.200s", p.cfg.Login, page)
}

func resolve(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", err
	}
	return b.ResolveReference(r).String(), nil
}

func (p *provider) token(ctx context.Context, form url.Values) (tokens, error) {
	resp, b, err := do(ctx, backend, "POST", p.disc.Token, form, map[string]string{"Authorization": p.auth})
	if err != nil {
		return tokens{}, err
	}
	var t tokens
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &t) != nil || t.Access == "" {
		return tokens{}, fmt.Errorf("token: %s %.200s", resp.Status, b)
	}
	return t, nil
}

func (p *provider) redeem(ctx context.Context, code, verifier string) (tokens, error) {
	t, err := p.token(ctx, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {p.cfg.Redirect}, "code_verifier": {verifier}})
	if err == nil && t.Refresh == "" {
		err = errors.New("login: no refresh token (scope offline_access, prompt=consent)")
	}
	return t, err
}

// refresh runs one refresh grant and keeps the rotated refresh token.
func (p *provider) refresh(ctx context.Context, t *tokens) error {
	next, err := p.token(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {t.Refresh}})
	if err != nil {
		return err
	}
	t.Access = next.Access
	if next.Refresh != "" {
		t.Refresh = next.Refresh
	}
	return nil
}

// introspect asks about the worker's access token; it must be active.
func (p *provider) introspect(ctx context.Context, t *tokens) error {
	resp, b, err := do(ctx, backend, "POST", p.disc.Introspection, url.Values{"token": {t.Access}}, map[string]string{"Authorization": p.auth})
	if err != nil {
		return err
	}
	var ans struct {
		Active bool `json:"active"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &ans) != nil || !ans.Active {
		return fmt.Errorf("introspect: %s %.200s", resp.Status, b)
	}
	return nil
}

// ---------------------------------------------------------------- runner

type result struct {
	cfg       config
	ok, errs  int64
	elapsed   time.Duration
	lat       []time.Duration
	serverCPU time.Duration // -1 when unknown
	firstErr  string
}

func (r result) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := min(max(int(p*float64(len(r.lat))+0.5)-1, 0), len(r.lat)-1)
	return r.lat[i]
}

func (r result) cpuPerOp() float64 {
	if r.serverCPU < 0 || r.ok == 0 {
		return -1
	}
	return float64(r.serverCPU) / 1e6 / float64(r.ok)
}

func (r result) String() string {
	s := fmt.Sprintf("%-8s %-10s c=%d  %8.1f ops/s  ok=%d errors=%d  p50=%.2fms p95=%.2fms p99=%.2fms", r.cfg.Name, r.cfg.Mode, r.cfg.C,
		r.rate(), r.ok, r.errs, ms(r.pct(.5)), ms(r.pct(.95)), ms(r.pct(.99)))
	if c := r.cpuPerOp(); c >= 0 {
		s += fmt.Sprintf("  server cpu=%.2f cores, %.3f ms/op", r.serverCPU.Seconds()/r.elapsed.Seconds(), c)
	}
	if r.firstErr != "" {
		s += "\n    error: " + r.firstErr
	}
	return s
}

func cpuOf(pid int) time.Duration {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return -1
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ
}

func run(c config) (result, error) {
	r := result{cfg: c, serverCPU: -1}
	if c.C < 1 || c.C > maxWorkers {
		return r, fmt.Errorf("-c must be 1..%d", maxWorkers)
	}
	if c.D <= 0 || c.D > maxDuration {
		c.D = maxDuration
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.D+c.Warmup+5*time.Minute)
	defer cancel()
	p, err := newProvider(ctx, c)
	if err != nil {
		return r, err
	}
	var op func(context.Context, *tokens) error
	switch c.Mode {
	case "refresh":
		op = p.refresh
	case "introspect":
		op = p.introspect
	default:
		return r, fmt.Errorf("unknown -mode %q", c.Mode)
	}
	toks := make([]tokens, c.C)
	for i := range toks { // one at a time: parallel logins of one account look like guessing
		if toks[i], err = p.login(ctx); err != nil {
			return r, fmt.Errorf("worker login: %w", err)
		}
	}
	loop := func(until time.Time, rec bool) {
		var issued, ok, bad atomic.Int64
		lats := make([][]time.Duration, c.C)
		var once sync.Once
		var wg sync.WaitGroup
		for w := range c.C {
			wg.Go(func() {
				for ctx.Err() == nil && time.Now().Before(until) && issued.Add(1) <= maxOps {
					t0 := time.Now()
					if err := op(ctx, &toks[w]); err != nil {
						bad.Add(1)
						once.Do(func() { r.firstErr = err.Error() })
						continue
					}
					ok.Add(1)
					if rec {
						lats[w] = append(lats[w], time.Since(t0))
					}
				}
			})
		}
		wg.Wait()
		if rec {
			r.ok, r.errs = ok.Load(), bad.Load()
			for _, l := range lats {
				r.lat = append(r.lat, l...)
			}
			slices.Sort(r.lat)
		}
	}
	loop(time.Now().Add(c.Warmup), false)
	r.firstErr = ""
	cpu0 := cpuOf(c.PID)
	start := time.Now()
	loop(start.Add(c.D), true)
	r.elapsed = time.Since(start)
	if cpu1 := cpuOf(c.PID); cpu0 >= 0 && cpu1 >= 0 {
		r.serverCPU = cpu1 - cpu0
	}
	return r, nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func median(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := slices.Clone(x)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func med(rs []result, f func(result) float64) float64 {
	var x []float64
	for _, r := range rs {
		x = append(x, f(r))
	}
	return median(x)
}

func errCount(rs []result) (n int64) {
	for _, r := range rs {
		n += r.errs
	}
	return n
}
