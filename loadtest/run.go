package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ponte-id/ponte/loadtest/flow"
)

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
	// kLetIn and kRefused: a stranger's request the node served (its
	// handler refused the made-up challenge) or turned away at its gate.
	kLetIn   = "stranger let in"
	kRefused = "stranger refused at the gate"
	kSkipped = "not sent (in-flight bound)"
	// kErrRedirect is a login sent back to the relying party with an OAuth error (server_error ...).
	kErrRedirect = "error redirect"
)

// The login methods `run` drives, and the recovery form.
const (
	methodPIN  = "pin"
	methodSPID = "spid"
	methodCNS  = "cns"
	methodForm = "recover-form"
	// methodStranger is a stranger's request that claims to continue a
	// login: a made-up challenge and browser cookie on the PIN form.
	methodStranger = "stranger"
)

// tally is what happened to the arrivals of one method.
type tally struct {
	kinds map[string]int
	lat   []time.Duration
	first map[string]string // an example of each error kind
	// recovered: completed logins whose code exchange succeeded only at the
	// retry after a 502 or 503; retryFailed: exchanges that failed the retry
	// too; reposted: SPID responses posted again after the ACS's 503.
	recovered, retryFailed, reposted int
	// crossNode: completed SPID logins whose response was consumed by
	// another node than the one that issued the AuthnRequest.
	crossNode int
}

type stats struct {
	mu sync.Mutex
	by map[string]*tally
}

func newStats() *stats { return &stats{by: map[string]*tally{}} }

func (s *stats) tally(method string) *tally {
	t, ok := s.by[method]
	if !ok {
		t = &tally{kinds: map[string]int{}, first: map[string]string{}}
		s.by[method] = t
	}
	return t
}

// result is one arrival's end.
type result struct {
	kind, detail      string
	lat               time.Duration
	retried, reposted bool
	// crossNode: a SPID response consumed by another node than the AuthnRequest's.
	crossNode bool
}

func (s *stats) add(method string, r result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tally(method)
	t.kinds[r.kind]++
	if r.kind == kOK {
		t.lat = append(t.lat, r.lat)
		if r.retried {
			t.recovered++
		}
		if r.crossNode {
			t.crossNode++
		}
	}
	if r.retried && r.kind == kHalfDone {
		t.retryFailed++
	}
	if r.reposted {
		t.reposted++
	}
	if _, ok := t.first[r.kind]; !ok && r.detail != "" {
		t.first[r.kind] = r.detail[:min(len(r.detail), 300)]
	}
}

func classify(err error) string {
	var re *flow.RedirectError
	if errors.As(err, &re) {
		return kErrRedirect
	}
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

// parseMethods reads -methods: a comma-separated list of pin, spid and
// cns, each at most once; arrivals take them in turn.
func parseMethods(s string) ([]string, error) {
	var out []string
	for m := range strings.SplitSeq(s, ",") {
		m = strings.TrimSpace(m)
		switch {
		case m != methodPIN && m != methodSPID && m != methodCNS:
			return nil, fmt.Errorf("-methods: unknown method %q (pin, spid, cns)", m)
		case slices.Contains(out, m):
			return nil, fmt.Errorf("-methods: %s twice", m)
		}
		out = append(out, m)
	}
	return out, nil
}

// arrival is what the k-th arrival does: a stranger's request for a share
// strangers of them, the recovery form for a share forms of the rest, else a
// login with the methods in turn.
func arrival(k int, methods []string, forms, strangers float64) string {
	u := float64(k%100) / 100
	if u < strangers {
		return methodStranger
	}
	if (u-strangers)/(1-strangers) < forms {
		return methodForm
	}
	return methods[k%len(methods)]
}

// arrivalsIn is how many arrivals rate a second makes in d.
func arrivalsIn(rate int, d time.Duration) int {
	return int(int64(rate) * int64(d) / int64(time.Second))
}

// dueAt is when arrival k (from 0) is due, from the start.
func dueAt(k, rate int) time.Duration {
	return time.Duration(int64(k) * int64(time.Second) / int64(rate))
}

// driver runs one login of each method for citizen i.
type driver struct {
	rp    *flow.RP
	idp   string // the SPID test identity provider's entityID
	cards []tls.Certificate
	roots *x509.CertPool
}

// login runs one arrival of method for citizen i to its end: the login, the
// code's exchange (retried once after a 502 or 503), userinfo, and the check
// that both name the citizen.
func (d *driver) login(ctx context.Context, method string, i int) result {
	cf, p, email, mobile := citizen(i)
	t0 := time.Now()
	var login flow.Login
	var err error
	var r result
	switch method {
	case methodForm:
		kind, detail := recoverForm(ctx, d.rp, cf, email, mobile)
		return result{kind: kind, detail: detail}
	case methodStranger:
		kind, detail := stranger(ctx, d.rp)
		return result{kind: kind, detail: detail}
	case methodPIN:
		login, err = d.rp.PINLogin(ctx, flow.NewBrowser(d.rp), cf, p)
	case methodSPID:
		var sr flow.SPIDResult
		login, sr, err = d.rp.SPIDLogin(ctx, flow.NewBrowser(d.rp), d.idp, cf)
		r.reposted = sr.Reposted
		r.crossNode = sr.AuthnNode != "" && sr.ACSNode != "" && sr.AuthnNode != sr.ACSNode
	case methodCNS:
		login, err = d.rp.CNSLogin(ctx, flow.NewCardBrowser(d.rp, d.cards[i], d.roots))
	}
	if err != nil {
		r.kind, r.detail = classify(err), err.Error()
		return r
	}
	tok, retried, err := d.rp.RedeemRetry(ctx, login)
	r.retried = retried
	if err != nil {
		r.kind, r.detail = kHalfDone, err.Error()
		return r
	}
	sub, uicf, err := d.rp.UserInfo(ctx, tok.Access)
	if err != nil {
		r.kind, r.detail = classify(err), "userinfo: "+err.Error()
		return r
	}
	if tok.FiscalNumber != cf || uicf != cf || sub != tok.Subject {
		r.kind, r.detail = kMixUp, fmt.Sprintf("%s logged in, ID token %s, userinfo %s/%s", cf, tok.FiscalNumber, uicf, sub)
		return r
	}
	r.kind, r.lat = kOK, time.Since(t0)
	return r
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
	strangers := fs.Float64("strangers", 0, "share of the arrivals that are a stranger's requests claiming a login under way (a made-up challenge and browser cookie on the PIN form)")
	inflight := fs.Int("inflight", 2000, "logins in flight at most (beyond: not sent, counted)")
	label := fs.String("label", "", "label for the JSON line")
	methodList := fs.String("methods", "pin", "login methods, taken in turn by the arrivals: pin,spid,cns")
	idpID := fs.String("idp", "http://127.0.0.1:18604", "SPID: the test identity provider's entityID (loadtest idp)")
	pkiDir := fs.String("pki", "", "CNS: the folder of loadtest pki (the CNS CA issues the cards, the TLS CA is trusted)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*issuer)
	if err != nil || !isLoopback(u.Hostname()) {
		return errors.New("-issuer must be a loopback URL")
	}
	if *strangers < 0 || *strangers >= 1 {
		return errors.New("-strangers: a share in [0, 1)")
	}
	if *rate < 1 || *rate > maxRate || *d <= 0 || *d > maxDuration || *inflight < 1 || *inflight > maxInFlight || *n < 1 || *n > maxCitizens {
		return fmt.Errorf("bounds: rate 1..%d, d ≤ %s, inflight 1..%d, citizens 1..%d", maxRate, maxDuration, maxInFlight, maxCitizens)
	}
	methods, err := parseMethods(*methodList)
	if err != nil {
		return err
	}
	rp, err := flow.NewRP(ctx, *issuer, *client, *secret, *redirect)
	if err != nil {
		return err
	}
	dr := &driver{rp: rp, idp: *idpID}
	if slices.Contains(methods, methodCNS) {
		if *pkiDir == "" {
			return errors.New("-methods cns needs -pki")
		}
		if dr.cards, dr.roots, err = cards(*pkiDir, *n); err != nil {
			return fmt.Errorf("cards: %w", err)
		}
	}
	st := newStats()
	sem := make(chan struct{}, *inflight)
	var wg sync.WaitGroup
	start := time.Now()
	offered, total := 0, arrivalsIn(*rate, *d)
	// every second: completed logins that second, for the time line.
	var perSecond [int(maxDuration / time.Second)]atomic.Int64
	for offered < total && ctx.Err() == nil {
		// Open loop on a schedule: arrival k is due at k/rate. A generator
		// that fell behind (its cores busy) sends what is due at once
		// rather than dropping arrivals, as a ticker would.
		if wait := time.Until(start.Add(dueAt(offered, *rate))); wait > 0 {
			select {
			case <-ctx.Done():
				continue
			case <-time.After(wait):
			}
		}
		offered++
		k := offered
		method := arrival(k, methods, *forms, *strangers)
		select {
		case sem <- struct{}{}:
		default:
			st.add(method, result{kind: kSkipped})
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			r := dr.login(ctx, method, k%*n)
			st.add(method, r)
			if r.kind != kOK {
				return
			}
			if s := int(time.Since(start) / time.Second); s < len(perSecond) {
				perSecond[s].Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var line []int64
	for s := range min(int(elapsed.Seconds())+1, len(perSecond)) {
		line = append(line, perSecond[s].Load())
	}
	rep := report(st, *d, elapsed)
	rep["label"], rep["offered_per_s"], rep["offered"], rep["completed_per_second"] = *label, *rate, offered, line
	rep["methods_in_turn"] = methods
	out, _ := json.Marshal(rep)
	fmt.Println(string(out))
	if m := rep["mixups"].(int); m > 0 {
		return fmt.Errorf("%d MIX-UPS", m)
	}
	return nil
}

// report sums up the run: per method its kinds, an example of each error,
// completed logins over the duration, p50/p99/max, retries; and the totals.
func report(st *stats, d, elapsed time.Duration) map[string]any {
	st.mu.Lock()
	defer st.mu.Unlock()
	per := map[string]any{}
	completed, mixups := 0, 0
	for m, t := range st.by {
		slices.Sort(t.lat)
		pct := func(p float64) int64 {
			if len(t.lat) == 0 {
				return 0
			}
			return t.lat[min(len(t.lat)-1, int(p*float64(len(t.lat))))].Round(time.Millisecond).Milliseconds()
		}
		per[m] = map[string]any{"completed": t.kinds[kOK], "held_per_s": float64(t.kinds[kOK]) / d.Seconds(),
			"kinds": t.kinds, "examples": t.first, "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1),
			"mixups": t.kinds[kMixUp], "recovered_by_retry": t.recovered, "retried_and_failed": t.retryFailed, "acs_reposts": t.reposted, "spid_cross_node": t.crossNode}
		completed += t.kinds[kOK]
		mixups += t.kinds[kMixUp]
	}
	return map[string]any{"duration_s": d.Seconds(), "wall_s": elapsed.Seconds(), "completed_logins": completed,
		"held_logins_per_s": float64(completed) / d.Seconds(), "mixups": mixups, "methods": per}
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

// stranger sends what someone who wants to jump the line under load would:
// the PIN form of a made-up challenge, with a made-up browser cookie of the
// real one's shape. The node either serves it (the handler refuses the
// challenge: 4xx) or turns it away at its gate (503).
func stranger(ctx context.Context, rp *flow.RP) (string, string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rp.Issuer+"/login/pin/?challenge="+rand.Text()+rand.Text()[:17], nil)
	req.AddCookie(&http.Cookie{Name: "ponte_browser", Value: rand.Text() + rand.Text()[:17] + "." + strconv.FormatInt(time.Now().Unix(), 10) + "." + rand.Text()[:22]})
	resp, err := flow.NewBrowser(rp).HTTP.Do(req)
	if err != nil {
		return kTransport, err.Error()
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		return kRefused, ""
	}
	return kLetIn, ""
}
