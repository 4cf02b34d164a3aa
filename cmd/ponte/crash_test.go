package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/codicefiscale"
	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/loadtest/flow"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/sqlstore"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// crashCitizen is a seeded citizen with an active PIN, whose first access is done.
type crashCitizen struct{ cf, pin, email, mobile string }

// crashWorld is a database with citizens and a relying party, and the
// `ponte serve` processes started on it (the test binary running main).
type crashWorld struct {
	t        *testing.T
	dir, db  string
	addr     string
	citizens []crashCitizen
	id, sec  string
	redirect string
	logs     *syncBuffer
}

func newCrashWorld(t *testing.T, backend string, citizens int) *crashWorld {
	db := setup(t)
	w := &crashWorld{t: t, dir: filepath.Dir(db), db: db, redirect: "http://127.0.0.1:9/cb", logs: &syncBuffer{}}
	if backend == "postgres" {
		w.db = storagetest.PostgresDSN(t) // a fresh schema, dropped after the test
		t.Setenv("PONTE_DB", w.db)
		mustPonte(t, "migrate")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.addr = l.Addr().String()
	l.Close()
	out := mustPonte(t, "client", "create", "--name", "crash", "--redirect-uri", w.redirect, "--scopes", "openid profile fiscal_number")
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("client create: %v %s", err, out)
	}
	w.id, w.sec = c.ID, c.Secret
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, w.db, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	box, _ := seal.New(make([]byte, 32))
	cfg := pin.DefaultConfig()
	cfg.BaseURL, cfg.Params = "http://"+w.addr, crashParams
	svc, err := pin.NewService(cfg, pin.Deps{Store: store, Box: box, Revoker: provider.Revoker{Store: store}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range citizens {
		first := fmt.Sprintf("BNCLRA90D55F%03d", i)
		ch, _ := codicefiscale.CheckChar(first)
		c := crashCitizen{cf: first + string(ch), pin: fmt.Sprintf("Pin%05d", i),
			email: fmt.Sprintf("c%d@example.it", i), mobile: fmt.Sprintf("+3933300%05d", i)}
		a := storage.PINAccount{FiscalNumber: c.cf, GivenName: "Laura", FamilyName: fmt.Sprintf("Bianchi%d", i), Gender: "F",
			Birthdate: "1990-04-15", BirthPlace: "Roma", Residence: storage.Address{Street: "Via Roma", Number: "1", PostalCode: "00100", City: "Roma", Province: "RM"},
			Mobile: c.mobile, Email: c.email, PreferredPhone: c.mobile, CallbackSlot: "09-13"}
		if err := svc.Seed(ctx, a, c.pin); err != nil {
			t.Fatal(err)
		}
		w.citizens = append(w.citizens, c)
	}
	return w
}

// crashParams keep argon2id cheap: the test is about what survives, not cost.
var crashParams = pin.Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1}

// start runs `ponte serve` as its own process and waits until it is ready.
func (w *crashWorld) start(env ...string) *exec.Cmd {
	w.t.Helper()
	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = append(os.Environ(), envRunMain+"=1", "PONTE_ADDR="+w.addr, "PONTE_ISSUER=http://"+w.addr,
		"PONTE_PIN_ARGON2_MEMORY_KIB=8192", "PONTE_PIN_ARGON2_TIME=1", "PONTE_SHUTDOWN_TIMEOUT=20s",
		"PONTE_PIN_FREE_IP_FAILURES=100000", "PONTE_PIN_LIMIT_PER_IP=100000", "PONTE_PIN_LIMIT_PER_CITIZEN=100000",
		"PONTE_MAX_CHALLENGES_PER_IP=100000", "PONTE_LOG_LEVEL=info")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = io.Discard, w.logs
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + w.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			w.t.Fatalf("ponte serve not ready: %v\n%s", err, w.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *crashWorld) rp(ctx context.Context) *flow.RP {
	w.t.Helper()
	rp, err := flow.NewRP(ctx, "http://"+w.addr, w.id, w.sec, w.redirect)
	if err != nil {
		w.t.Fatal(err)
	}
	return rp
}

// ledger is what the clients got from servers that then died.
type ledger struct {
	mu sync.Mutex
	// codes got and not yet redeemed (redeem attempted without an answer: dropped, it may be spent).
	codes map[string]crashLogin
	// tokens got, by citizen.
	tokens []crashTokens
	// recoveries answered (the same page whatever happened), by citizen: a
	// recovery link must be queued and audited for each.
	recoveries map[string]int
}

type crashLogin struct {
	flow.Login
	cf string
}

type crashTokens struct {
	flow.Tokens
	cf string
}

// issued counts the codes and tokens the ledger holds.
func (l *ledger) issued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.codes) + len(l.tokens)
}

// recovered is how many recovery links the server confirmed queued.
func (l *ledger) recovered() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recoveries)
}

// drive runs logins, redemptions and recovery forms from workers until ctx
// ends (the server is killed under them), recording only what the server
// answered in full.
func (w *crashWorld) drive(ctx context.Context, rp *flow.RP, l *ledger, workers int) {
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			for ctx.Err() == nil {
				c := w.citizens[r.IntN(len(w.citizens))]
				switch r.IntN(4) {
				case 0: // the recovery form: a link by email, queued with its audit event
					form := url.Values{"fiscal_number": {c.cf}, "email": {c.email}, "mobile": {c.mobile}}
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, rp.Issuer+"/login/pin/recover", strings.NewReader(form.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						continue
					}
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode == http.StatusOK {
						l.mu.Lock()
						l.recoveries[c.cf]++
						l.mu.Unlock()
					}
				default:
					login, err := rp.PINLogin(ctx, flow.NewBrowser(rp), c.cf, c.pin)
					if err != nil {
						continue
					}
					if r.IntN(2) == 0 { // kept for after the crash
						l.mu.Lock()
						l.codes[login.Code] = crashLogin{login, c.cf}
						l.mu.Unlock()
						continue
					}
					tok, err := rp.Redeem(ctx, login)
					if err != nil {
						continue // maybe spent, maybe not: no claim either way
					}
					if tok.FiscalNumber != c.cf {
						w.t.Errorf("%s logged in and got the ID token of %s", c.cf, tok.FiscalNumber)
					}
					l.mu.Lock()
					l.tokens = append(l.tokens, crashTokens{tok, c.cf})
					l.mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
}

// TestCrashLosesNothing kills `ponte serve` (SIGKILL) at random moments, on
// SQLite and on PostgreSQL (when PONTE_TEST_POSTGRES_DSN is set),
// while logins, code redemptions and recovery forms run in parallel, starts
// it again, and checks that everything a client was given survived: every
// code redeems (with the right citizen's ID token), every access token
// answers userinfo for its citizen, every answered recovery form left its
// queued email and its audit event. PONTE_CRASH_CYCLES sets the number of
// kills (3 by default; `make crash` runs 20).
func TestCrashLosesNothing(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { crashLosesNothing(t, backend) })
	}
}

func crashLosesNothing(t *testing.T, backend string) {
	cycles := 3
	if n, err := strconv.Atoi(os.Getenv("PONTE_CRASH_CYCLES")); err == nil && n > 0 {
		cycles = n
	}
	w := newCrashWorld(t, backend, 40)
	l := &ledger{codes: map[string]crashLogin{}, recoveries: map[string]int{}}
	ctx := context.Background()
	for cycle := range cycles {
		cmd := w.start()
		rp := w.rp(ctx)
		if cycle > 0 {
			w.check(ctx, rp, l)
		}
		run, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		issued := l.issued()
		go func() { w.drive(run, rp, l, 8); close(done) }()
		// Kill at a random moment once this cycle has issued something (and
		// once the run has queued a recovery link at all): on a loaded machine
		// the first logins and forms can take longer than a fixed delay.
		for wait := time.Now().Add(30 * time.Second); (l.issued() == issued || l.recovered() == 0) && time.Now().Before(wait); {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Duration(200+rand.IntN(1200)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		cancel()
		<-done
	}
	cmd := w.start()
	w.check(ctx, w.rp(ctx), l)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("%d kills; checked %d tokens and %d recovery forms", cycles, len(l.tokens), len(l.recoveries))
	if len(l.tokens) == 0 || len(l.recoveries) == 0 {
		t.Fatal("nothing was issued before the kills: the test proved nothing")
	}
	w.checkOutbox(ctx, l)
}

// check redeems every code kept from before the crash and asks userinfo
// with every access token.
func (w *crashWorld) check(ctx context.Context, rp *flow.RP, l *ledger) {
	w.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for code, login := range l.codes {
		tok, err := rp.Redeem(ctx, login.Login)
		if err != nil {
			w.t.Errorf("a code issued before the crash to %s does not redeem after it: %v", login.cf, err)
			continue
		}
		if tok.FiscalNumber != login.cf {
			w.t.Errorf("the code of %s redeemed for %s", login.cf, tok.FiscalNumber)
		}
		l.tokens = append(l.tokens, crashTokens{tok, login.cf})
		delete(l.codes, code)
	}
	for _, tok := range l.tokens {
		sub, cf, err := rp.UserInfo(ctx, tok.Access)
		if err != nil || sub != tok.Subject || cf != tok.cf {
			w.t.Errorf("an access token of %s after the crash: %q %q %v", tok.cf, sub, cf, err)
		}
	}
}

// checkOutbox reads the database: each answered recovery form queued a link
// and appended its audit event.
func (w *crashWorld) checkOutbox(ctx context.Context, l *ledger) {
	store, err := sqlstore.Open(ctx, w.db, sqlstore.Options{})
	if err != nil {
		w.t.Fatal(err)
	}
	defer store.Close()
	msgs, err := store.ListMessages(ctx, 100000)
	if err != nil {
		w.t.Fatal(err)
	}
	queued := map[string]int{}
	for _, m := range msgs {
		queued[m.FiscalNumber]++
	}
	for cf, n := range l.recoveries {
		events, err := store.ListAudit(ctx, cf)
		if err != nil {
			w.t.Fatal(err)
		}
		audited := 0
		for _, e := range events {
			if e.Event == "recovery_requested" {
				audited++
			}
		}
		if queued[cf] < n || audited < n {
			w.t.Errorf("%s: %d recovery forms answered, %d messages queued, %d audited", cf, n, queued[cf], audited)
		}
	}
}

// TestSIGTERMFinishesLogins: logins in flight when `ponte serve` gets SIGTERM
// (PIN checks queued behind one hashing slot) all end with their code, the
// process exits 0, and the codes redeem after a restart.
func TestSIGTERMFinishesLogins(t *testing.T) {
	w := newCrashWorld(t, "sqlite", 12)
	ctx := context.Background()
	// One PIN check at a time, each rehashing at a higher cost: the logins queue.
	cmd := w.start("PONTE_PIN_HASH_CONCURRENCY=1", "PONTE_PIN_ARGON2_MEMORY_KIB=32768", "PONTE_PIN_ARGON2_TIME=2", "PONTE_PIN_HASH_MAX_WAIT=20s")
	rp := w.rp(ctx)
	type result struct {
		login flow.Login
		cf    string
		err   error
	}
	results := make(chan result, len(w.citizens))
	var started sync.WaitGroup
	for _, c := range w.citizens {
		started.Add(1)
		go func() {
			b := flow.NewBrowser(rp)
			// The PIN form first, then the post, whose check waits for the slot.
			login, err := rp.PINLoginThen(ctx, b, c.cf, c.pin, started.Done)
			results <- result{login, c.cf, err}
		}()
	}
	started.Wait()
	time.Sleep(100 * time.Millisecond) // the posts are in
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var codes []result
	for range w.citizens {
		r := <-results
		if r.err != nil {
			var se *flow.StatusError
			if errors.As(r.err, &se) {
				t.Errorf("a login in flight at SIGTERM: %d %s\n%s", se.Status, pageText(se.Body), w.logs.String())
				continue
			}
			t.Errorf("a login in flight at SIGTERM: %v", r.err)
			continue
		}
		codes = append(codes, r)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("ponte serve after SIGTERM: %v\n%s", err, w.logs.String())
	}
	if !strings.Contains(w.logs.String(), "shutting down") {
		t.Errorf("no shutdown logged:\n%s", w.logs.String())
	}
	cmd = w.start()
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	rp = w.rp(ctx)
	for _, r := range codes {
		if tok, err := rp.Redeem(ctx, r.login); err != nil || tok.FiscalNumber != r.cf {
			t.Errorf("the code of %s, issued during the shutdown: %q %v", r.cf, tok.FiscalNumber, err)
		}
	}
}

var tags = regexp.MustCompile(`(?s)<head>.*</head>|<[^>]*>|\s+`)

// pageText is a page's visible text, for a failure message.
func pageText(page string) string {
	s := strings.TrimSpace(tags.ReplaceAllString(page, " "))
	return s[:min(len(s), 400)]
}
