package provider_test

// Tests written against the mutants that survived `make mutation` (issue 15):
// each case names the decision it pins. They drive the provider over HTTP on a
// real listener, on both storage backends.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite/handler/openid"
	fositejwt "github.com/ory/fosite/token/jwt"
	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/storage"
)

// ladderAuth is a login method whose name and highest level a test chooses.
// Its login completes as the level posted, under its own method name, and it
// always has a step-up hint that names it.
type ladderAuth struct {
	name idp.Method
	max  idp.Level
}

var _ idp.StepUpHinter = ladderAuth{}

func (a ladderAuth) Method() idp.Method  { return a.name }
func (a ladderAuth) Label(string) string { return "Label " + string(a.name) }
func (a ladderAuth) MaxLevel() idp.Level { return a.max }
func (a ladderAuth) StepUpHint(string) (idp.Hint, bool) {
	return idp.Hint{Text: "hint-of-" + string(a.name)}, true
}
func (a ladderAuth) Handler(h idp.Host) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			fmt.Fprintf(w, "page of %s", a.name)
			return
		}
		level, _ := strconv.Atoi(r.FormValue("level"))
		h.CompleteLogin(w, r, r.FormValue("challenge"), idp.Identity{
			FiscalNumber: citizenCF, GivenName: "Mario", FamilyName: "Rossi",
			Level: idp.Level(level), Method: a.name, AMR: []string{"pwd"},
		})
	})
}

// ladderEnv is a provider with two methods: alpha reaches consultazione only,
// beta reaches dispositivo.
func ladderEnv(t *testing.T, store storage.Store, tweaks ...func(*provider.Config)) (*env, *rp) {
	e := newEnv(t, store, append(tweaks, func(c *provider.Config) {
		c.Authenticators = []idp.Authenticator{
			ladderAuth{name: "alpha", max: idp.LevelConsultazione},
			ladderAuth{name: "beta", max: idp.LevelDispositivo},
		}
	})...)
	return e, e.NewRP(clients.Spec{Scopes: []string{"openid", "profile", "inps.consultazione", "inps.dispositivo"}})
}

// session is a login to make before the request under test.
type session struct {
	method string
	level  idp.Level
}

// chooser is what the chooser page shows.
type chooser struct {
	challenge                           string
	methods, hints                      []string
	stepUp, needsDispositivo, canResume bool
}

var (
	methodLinkRE = regexp.MustCompile(`href="/login/([a-z]+)/\?challenge=`)
	hintRE       = regexp.MustCompile(`hint-of-[a-z]+`)
)

func readChooser(t *testing.T, resp *http.Response, body string) chooser {
	t.Helper()
	m := challengeRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != provider.PathLogin || m == nil {
		t.Fatalf("want the chooser, got %d %s: %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	c := chooser{
		challenge: html.UnescapeString(m[1]), hints: hintRE.FindAllString(body, -1),
		stepUp:           strings.Contains(body, "superiore a quello con cui hai effettuato l&#39;accesso"),
		needsDispositivo: strings.Contains(body, "Questo servizio richiede un accesso di livello dispositivo"),
		canResume:        strings.Contains(body, `value="continue"`),
	}
	for _, l := range methodLinkRE.FindAllStringSubmatch(body, -1) {
		c.methods = append(c.methods, l[1])
	}
	return c
}

// logIn completes a challenge with method at level and returns the response.
func logIn(b *browser, e *env, challenge, method string, level idp.Level) (*http.Response, string) {
	return b.Post(e.Issuer+"/login/"+method+"/", url.Values{"challenge": {challenge}, "cf": {citizenCF}, "level": {strconv.Itoa(int(level))}})
}

// startSession logs b in with s through a plain request of r.
func startSession(t *testing.T, e *env, r *rp, b *browser, s session) {
	t.Helper()
	conf := r.Conf
	conf.Scopes = []string{"openid"}
	resp, body := b.Get(conf.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	c := readChooser(t, resp, body)
	if resp, body := logIn(b, e, c.challenge, s.method, s.level); rpRedirect(resp) == nil {
		t.Fatalf("login with %s: %d %.300s", s.method, resp.StatusCode, body)
	}
}

// authParams is an authorization request of r with scopes and extra parameters.
func authParams(r *rp, scopes []string, params map[string]string) string {
	conf := r.Conf
	conf.Scopes = append([]string{"openid"}, scopes...)
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(oauth2.GenerateVerifier())}
	for k, v := range params {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	return conf.AuthCodeURL(randomString(), opts...)
}

func acrClaim(section string, essential bool, acrs ...string) string {
	return fmt.Sprintf(`"%s":{"acr":{"essential":%t,"values":["%s"]}}`, section, essential, strings.Join(acrs, `","`))
}

func claims(sections ...string) string { return "{" + strings.Join(sections, ",") + "}" }

// TestChooserLevels: the chooser lists the methods that reach the level the
// request needs, explains a step-up (with the hint of the method the citizen
// used, not another's) only to a citizen below that level, offers to go on
// without it only when it was asked, not demanded, and follows idp_hint
// straight to the method unless the citizen is stepping up.
func TestChooserLevels(t *testing.T) {
	essentialDispositivo := claims(acrClaim("id_token", true, idp.ACRDispositivo))
	cases := []struct {
		name    string
		session *session
		scopes  []string
		params  map[string]string
		// wantMethod: straight to this method's page; otherwise the chooser.
		wantMethod string
		want       chooser
	}{
		{name: "consultazione", want: chooser{methods: []string{"alpha", "beta"}}},
		{name: "dispositivo scope", scopes: []string{"inps.dispositivo"},
			want: chooser{methods: []string{"beta"}, needsDispositivo: true}},
		{name: "acr_values dispositivo", params: map[string]string{"acr_values": idp.ACRDispositivo},
			want: chooser{methods: []string{"beta"}, needsDispositivo: true}},
		{name: "step up from alpha", session: &session{"alpha", idp.LevelConsultazione}, scopes: []string{"inps.dispositivo"},
			want: chooser{methods: []string{"beta"}, hints: []string{"hint-of-alpha"}, stepUp: true, canResume: true}},
		{name: "step up from beta", session: &session{"beta", idp.LevelConsultazione}, scopes: []string{"inps.dispositivo"},
			want: chooser{methods: []string{"beta"}, hints: []string{"hint-of-beta"}, stepUp: true, canResume: true}},
		{name: "step up demanded", session: &session{"alpha", idp.LevelConsultazione}, params: map[string]string{"claims": essentialDispositivo},
			want: chooser{methods: []string{"beta"}, hints: []string{"hint-of-alpha"}, stepUp: true}},
		{name: "prompt=login at the session's level", session: &session{"alpha", idp.LevelConsultazione}, params: map[string]string{"prompt": "login"},
			want: chooser{methods: []string{"alpha", "beta"}}},
		{name: "prompt=login at dispositivo, session at dispositivo", session: &session{"beta", idp.LevelDispositivo},
			scopes: []string{"inps.dispositivo"}, params: map[string]string{"prompt": "login"},
			want: chooser{methods: []string{"beta"}, needsDispositivo: true}},
		{name: "idp_hint", params: map[string]string{"idp_hint": "beta"}, wantMethod: "beta"},
		{name: "idp_hint with an entity", params: map[string]string{"idp_hint": "alpha:https://idp.example.org"}, wantMethod: "alpha"},
		{name: "idp_hint below the level", scopes: []string{"inps.dispositivo"}, params: map[string]string{"idp_hint": "alpha"},
			want: chooser{methods: []string{"beta"}, needsDispositivo: true}},
		{name: "idp_hint on a step up", session: &session{"alpha", idp.LevelConsultazione}, scopes: []string{"inps.dispositivo"},
			params: map[string]string{"idp_hint": "beta"},
			want:   chooser{methods: []string{"beta"}, hints: []string{"hint-of-alpha"}, stepUp: true, canResume: true}},
	}
	backends(t, func(t *testing.T, store storage.Store) {
		e, r := ladderEnv(t, store)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				b := newBrowser(t)
				if tc.session != nil {
					startSession(t, e, r, b, *tc.session)
				}
				resp, body := b.Get(authParams(r, tc.scopes, tc.params))
				if tc.wantMethod != "" {
					if want := "/login/" + tc.wantMethod + "/"; resp.Request.URL.Path != want || body != "page of "+tc.wantMethod {
						t.Fatalf("want %s, got %d %s: %.300s", want, resp.StatusCode, resp.Request.URL, body)
					}
					return
				}
				got := readChooser(t, resp, body)
				got.challenge = ""
				if !slices.Equal(got.methods, tc.want.methods) || !slices.Equal(got.hints, tc.want.hints) ||
					got.stepUp != tc.want.stepUp || got.needsDispositivo != tc.want.needsDispositivo || got.canResume != tc.want.canResume {
					t.Fatalf("chooser %+v, want %+v", got, tc.want)
				}
			})
		}
	})
}

// TestRequirementLevels: the level a request needs is the highest of the
// elevated scope, the lowest of its acr_values and the lowest of an acr claim;
// the claim demands it (no token below) only when essential and at least as
// high as the rest. A citizen logged in at consultazione either gets a code
// straight away or is sent to the chooser, with or without the way on.
func TestRequirementLevels(t *testing.T) {
	const (
		code     = "code"
		optional = "step up, optional"
		demanded = "step up, demanded"
	)
	cons, disp := idp.ACRConsultazione, idp.ACRDispositivo
	cases := []struct {
		name   string
		scopes []string
		params map[string]string
		want   string
	}{
		{name: "acr_values consultazione", params: map[string]string{"acr_values": cons}, want: code},
		{name: "acr_values dispositivo", params: map[string]string{"acr_values": disp}, want: optional},
		{name: "acr_values, the lowest first", params: map[string]string{"acr_values": cons + " " + disp}, want: code},
		{name: "acr_values, the lowest last", params: map[string]string{"acr_values": disp + " " + cons}, want: code},
		{name: "acr_values, unknown and dispositivo", params: map[string]string{"acr_values": "urn:other:loa " + disp}, want: optional},
		{name: "dispositivo scope, acr_values consultazione", scopes: []string{"inps.dispositivo"},
			params: map[string]string{"acr_values": cons}, want: optional},
		{name: "essential claim at consultazione", params: map[string]string{"claims": claims(acrClaim("id_token", true, cons))}, want: code},
		{name: "claim at dispositivo", params: map[string]string{"claims": claims(acrClaim("id_token", false, disp))}, want: optional},
		{name: "essential claim at dispositivo", params: map[string]string{"claims": claims(acrClaim("id_token", true, disp))}, want: demanded},
		{name: "essential claim, the lowest value counts", params: map[string]string{"claims": claims(acrClaim("id_token", true, disp, cons))}, want: code},
		{name: "dispositivo scope, essential claim at consultazione", scopes: []string{"inps.dispositivo"},
			params: map[string]string{"claims": claims(acrClaim("id_token", true, cons))}, want: optional},
		{name: "dispositivo scope, essential claim at dispositivo", scopes: []string{"inps.dispositivo"},
			params: map[string]string{"claims": claims(acrClaim("id_token", true, disp))}, want: demanded},
		{name: "claim at dispositivo, essential in userinfo", params: map[string]string{"claims": claims(acrClaim("id_token", false, disp), acrClaim("userinfo", true, disp))}, want: demanded},
		{name: "essential claim at dispositivo, userinfo asks consultazione", params: map[string]string{"claims": claims(acrClaim("id_token", true, disp), acrClaim("userinfo", false, cons))}, want: demanded},
		{name: "essential at consultazione, userinfo asks dispositivo", params: map[string]string{"claims": claims(acrClaim("id_token", true, cons), acrClaim("userinfo", false, disp))}, want: demanded},
	}
	backends(t, func(t *testing.T, store storage.Store) {
		e, r := ladderEnv(t, store)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				b := newBrowser(t)
				startSession(t, e, r, b, session{"alpha", idp.LevelConsultazione})
				resp, body := b.Get(authParams(r, tc.scopes, tc.params))
				got := code
				if loc := rpRedirect(resp); loc == nil {
					if c := readChooser(t, resp, body); !c.stepUp {
						t.Fatalf("a chooser without a step-up: %+v", c)
					} else if c.canResume {
						got = optional
					} else {
						got = demanded
					}
				} else if loc.Query().Get("code") == "" {
					t.Fatalf("no code: %v", loc)
				}
				if got != tc.want {
					t.Fatalf("got %s, want %s", got, tc.want)
				}
			})
		}
	})
}

// TestChooserNamesTheClient: the chooser shows the client's registered name,
// or its ID when it has none.
func TestChooserNamesTheClient(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		named := e.NewRP(clients.Spec{Name: "Cassetto previdenziale"})
		anonymous := e.NewRP(clients.Spec{})
		for _, tc := range []struct {
			name string
			r    *rp
			want string
		}{
			{"named", named, "Cassetto previdenziale"},
			{"unnamed", anonymous, anonymous.ID},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, body := newBrowser(t).Get(authParams(tc.r, nil, nil))
				if want := "<strong>" + html.EscapeString(tc.want) + "</strong>"; !strings.Contains(body, want) {
					t.Fatalf("the chooser does not show %s: %.400s", want, body)
				}
			})
		}
	})
}

// TestPageLanguage: the chooser speaks the ui_locales of the authorization
// request, and an error page the browser's language.
func TestPageLanguage(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		r := e.NewRP(clients.Spec{})
		cases := []struct {
			name, url, acceptLanguage string
			status                    int
			want                      string
		}{
			{name: "chooser, ui_locales=en", url: authParams(r, nil, map[string]string{"ui_locales": "en"}), status: http.StatusOK, want: "Choose how to log in"},
			{name: "chooser, ui_locales=it", url: authParams(r, nil, map[string]string{"ui_locales": "it"}), acceptLanguage: "en", status: http.StatusOK, want: "Scegli come entrare"},
			{name: "chooser, by default", url: authParams(r, nil, nil), status: http.StatusOK, want: "Scegli come entrare"},
			{name: "error page in English", url: e.Issuer + provider.PathLogin + "?challenge=unknown", acceptLanguage: "en",
				status: http.StatusBadRequest, want: "The login request has expired or is not valid."},
			{name: "error page in Italian", url: e.Issuer + provider.PathLogin + "?challenge=unknown", acceptLanguage: "it",
				status: http.StatusBadRequest, want: "La richiesta di accesso è scaduta o non è valida."},
			{name: "a bad request in English", url: e.Issuer + "/authorize?response_type=code&client_id=nobody", acceptLanguage: "en",
				status: http.StatusUnauthorized, want: "The service sent an invalid login request (invalid_client)."},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				b := newBrowser(t)
				req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
				if tc.acceptLanguage != "" {
					req.Header.Set("Accept-Language", tc.acceptLanguage)
				}
				resp, err := b.Client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				raw, _ := io.ReadAll(resp.Body)
				body := string(raw)
				if resp.StatusCode != tc.status || !strings.Contains(html.UnescapeString(body), tc.want) {
					t.Fatalf("got %d %.400s, want %d with %q", resp.StatusCode, body, tc.status, tc.want)
				}
			})
		}
	})
}

// TestBrowserCookie: the cookie that binds challenges to a browser keeps its
// random part when it has the length of one Ponte issues (32 characters at
// least), issued again with a MAC when it has none (set before the MAC, or
// made up); a shorter one is replaced; a current one of ours is left alone.
func TestBrowserCookie(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		r := e.NewRP(clients.Spec{})
		authorize := func(t *testing.T, value string) *http.Cookie {
			req, _ := http.NewRequest(http.MethodGet, authParams(r, nil, nil), nil)
			if value != "" {
				req.AddCookie(&http.Cookie{Name: "ponte_browser", Value: value})
			}
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("authorize: %d", resp.StatusCode)
			}
			for _, ck := range resp.Cookies() {
				if ck.Name == "ponte_browser" {
					return ck
				}
			}
			return nil
		}
		for _, n := range []int{0, 1, 31, 32, 43} {
			t.Run(strconv.Itoa(n), func(t *testing.T) {
				value := strings.Repeat("b", n)
				set := authorize(t, value)
				if set == nil {
					t.Fatalf("a %d-character browser cookie was not issued again with a MAC", n)
				}
				random, _, _ := strings.Cut(set.Value, ".")
				switch keep := n >= 32; {
				case keep && random != value:
					t.Fatalf("a %d-character browser cookie lost its random part: %q", n, set.Value)
				case !keep && (len(random) < 32 || random == value):
					t.Fatalf("a %d-character browser cookie was kept: %q", n, set.Value)
				case strings.Count(set.Value, ".") != 2:
					t.Fatalf("the issued cookie %q has no issue time and MAC", set.Value)
				}
				if again := authorize(t, set.Value); again != nil {
					t.Fatalf("a current cookie of ours was issued again: %q", again.Value)
				}
			})
		}
	})
}

// TestSessionCookieLifecycle: a new login in a browser ends the session its
// cookie named (no session outlives its replacement), a cookie naming no
// session does not stop a login, and logging out expires the cookie at once,
// with nothing logged as an error.
func TestSessionCookieLifecycle(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		logs := &logRecorder{}
		e, r := ladderEnv(t, store, recordLogs(logs))
		issuer, _ := url.Parse(e.Issuer)
		sessionCookie := func(b *browser) string {
			for _, c := range b.Client.Jar.Cookies(issuer) {
				if c.Name == "ponte_session" {
					return c.Value
				}
			}
			t.Fatal("no session cookie")
			return ""
		}
		silent := func(cookie string) string {
			b := newBrowser(t)
			b.Client.Jar.SetCookies(issuer, []*http.Cookie{{Name: "ponte_session", Value: cookie, Path: "/"}})
			resp, body := b.Get(authParams(r, nil, map[string]string{"prompt": "none"}))
			loc := rpRedirect(resp)
			if loc == nil {
				t.Fatalf("prompt=none: %d %.300s", resp.StatusCode, body)
			}
			if loc.Query().Get("code") != "" {
				return "code"
			}
			return loc.Query().Get("error")
		}

		t.Run("a new login ends the old session", func(t *testing.T) {
			b := newBrowser(t)
			startSession(t, e, r, b, session{"alpha", idp.LevelConsultazione})
			first := sessionCookie(b)
			resp, body := b.Get(authParams(r, nil, map[string]string{"prompt": "login"}))
			c := readChooser(t, resp, body)
			if resp, _ := logIn(b, e, c.challenge, "beta", idp.LevelConsultazione); rpRedirect(resp) == nil {
				t.Fatalf("second login: %d", resp.StatusCode)
			}
			second := sessionCookie(b)
			if got := silent(second); second == first || got != "code" {
				t.Fatalf("the new session: %s", got)
			}
			if got := silent(first); got != "login_required" {
				t.Fatalf("the replaced session still answers: %s", got)
			}
		})

		t.Run("a cookie naming no session", func(t *testing.T) {
			b := newBrowser(t)
			b.Client.Jar.SetCookies(issuer, []*http.Cookie{{Name: "ponte_session", Value: randomString(), Path: "/"}})
			startSession(t, e, r, b, session{"alpha", idp.LevelConsultazione})
		})

		t.Run("logout expires the cookie", func(t *testing.T) {
			b := newBrowser(t)
			startSession(t, e, r, b, session{"alpha", idp.LevelConsultazione})
			resp, body := b.Post(e.Issuer+provider.PathLogout, url.Values{"confirm": {"yes"}})
			var set *http.Cookie
			for _, c := range resp.Cookies() {
				if c.Name == "ponte_session" {
					set = c
				}
			}
			// RFC 6265 §5.2.2: Max-Age=0 removes the cookie now (net/http reads it as -1).
			if resp.StatusCode != http.StatusOK || set == nil || set.MaxAge >= 0 || set.Value != "" {
				t.Fatalf("logout: %d %v %.200s", resp.StatusCode, set, body)
			}
			if errs := logs.errors(); len(errs) > 0 {
				t.Fatalf("logged as errors: %q", errs)
			}
		})
	})
}

// TestNonceLength: a nonce has at least fosite.MinParameterEntropy (8) characters.
func TestNonceLength(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		r := e.NewRP(clients.Spec{})
		for _, tc := range []struct {
			n         int
			wantError string
		}{
			{8, ""},
			{7, "invalid_request"},
		} {
			t.Run(strconv.Itoa(tc.n), func(t *testing.T) {
				resp, body := newBrowser(t).Get(authParams(r, nil, map[string]string{"nonce": strings.Repeat("n", tc.n)}))
				loc := rpRedirect(resp)
				switch {
				case tc.wantError == "" && loc != nil:
					t.Fatalf("an %d-character nonce refused: %v", tc.n, loc)
				case tc.wantError == "":
					readChooser(t, resp, body)
				case loc == nil || loc.Query().Get("error") != tc.wantError:
					t.Fatalf("a %d-character nonce: %d %v, want %s", tc.n, resp.StatusCode, loc, tc.wantError)
				}
			})
		}
	})
}

// TestChallengeSizeBounds: a challenge stores each known parameter up to 4 KiB
// and all of them (names and values) up to 8 KiB; one byte more is
// invalid_request at the client, with the state echoed only if it is within
// its bound.
func TestChallengeSizeBounds(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		r := e.NewRP(clients.Spec{})
		// request builds an authorization request with a state of stateLen
		// bytes whose kept parameters (names and values) add up to total
		// bytes, acr_values (unknown values, ignored) making up the rest.
		request := func(stateLen, total int) (string, string) {
			v := url.Values{"response_type": {"code"}, "client_id": {r.ID}, "redirect_uri": {redirectURI}, "scope": {"openid"},
				"code_challenge": {s256(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}, "nonce": {randomString()},
				"state": {strings.Repeat("s", stateLen)}}
			n := len("acr_values")
			for k, vs := range v {
				n += len(k) + len(vs[0])
			}
			if total < n {
				t.Fatalf("total %d is below the request's own %d", total, n)
			}
			v.Set("acr_values", strings.Repeat("x", total-n))
			return e.Issuer + "/authorize?" + v.Encode(), v.Get("state")
		}
		cases := []struct {
			name            string
			stateLen, total int
			wantState       bool // echoed with the error
			ok              bool
		}{
			{name: "a 4 KiB state", stateLen: 4096, total: 4096 + 600, ok: true},
			{name: "a state one byte over", stateLen: 4097, total: 4097 + 600},
			{name: "8 KiB in all", stateLen: 4096, total: 8192, ok: true},
			{name: "one byte over 8 KiB in all", stateLen: 4096, total: 8193, wantState: true},
			{name: "3 KiB over in all", stateLen: 4000, total: 11 << 10, wantState: true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				u, state := request(tc.stateLen, tc.total)
				resp, body := newBrowser(t).Get(u)
				loc := rpRedirect(resp)
				if tc.ok {
					if loc != nil {
						t.Fatalf("refused: %s", loc.Query().Get("error_description"))
					}
					readChooser(t, resp, body)
					return
				}
				if loc == nil || loc.Query().Get("error") != "invalid_request" {
					t.Fatalf("got %d %v, want invalid_request at the client", resp.StatusCode, loc)
				}
				if got := loc.Query().Get("state"); tc.wantState && got != state || !tc.wantState && got != "" {
					t.Fatalf("state of %d bytes echoed as %d bytes", len(state), len(got))
				}
			})
		}
	})
}

// testClock is a settable time source for the provider.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestChallengeRetryAfter: a browser over its cap of pending challenges is
// told to come back when its oldest expires.
func TestChallengeRetryAfter(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		clock := &testClock{t: time.Now()}
		e := newEnv(t, store, caps(1, 100), func(c *provider.Config) { c.Now, c.ChallengeTTL = clock.Now, 10*time.Minute })
		r := e.NewRP(clients.Spec{})
		b := newBrowser(t)
		resp, body := b.Get(authParams(r, nil, nil))
		readChooser(t, resp, body)
		clock.Advance(4 * time.Minute)
		resp, _ = b.Get(authParams(r, nil, nil))
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "360" {
			t.Fatalf("got %d, Retry-After %q; want 429 and 360", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	})
}

// TestAssertionLifetimeBounds: a client assertion may live exactly 5 minutes
// from its iat, fractions of a second counted.
func TestAssertionLifetimeBounds(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		k := newJWTClient(t)
		r := e.NewRP(clients.Spec{AuthMethod: clients.AuthPrivateKeyJWT, JWKS: k.jwks})
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		if err != nil {
			t.Fatal(err)
		}
		iat := time.Now().Unix()
		for _, tc := range []struct {
			name   string
			after  float64 // exp, in seconds after iat
			status int
		}{
			{"299.5 seconds", 299.5, http.StatusOK},
			{"300 seconds", 300, http.StatusOK},
			{"300.5 seconds", 300.5, http.StatusUnauthorized},
		} {
			t.Run(tc.name, func(t *testing.T) {
				after := tc.after
				claims := map[string]any{"iss": r.ID, "sub": r.ID, "aud": e.Issuer + "/token", "jti": randomString(),
					"iat": iat, "exp": float64(iat) + after}
				assertion, err := josejwt.Signed(signer).Claims(claims).Serialize()
				if err != nil {
					t.Fatal(err)
				}
				status, body := clientCall(t, e, "/revoke", url.Values{"token": {"unknown"}}, func(_ *http.Request, form url.Values) {
					form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
					form.Set("client_assertion", assertion)
				})
				if status != tc.status {
					t.Fatalf("exp %v s after iat: %d %v, want %d", after, status, body, tc.status)
				}
			})
		}
	})
}

// TestAssertionAlgFromJWK: a client's assertions are signed with the alg its
// key names, not one guessed from the key type.
func TestAssertionAlgFromJWK(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k384", Algorithm: "ES384", Use: "sig"}}})
		r := e.NewRP(clients.Spec{AuthMethod: clients.AuthPrivateKeyJWT, JWKS: set})
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k384"))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		assertion, err := josejwt.Signed(signer).Claims(josejwt.Claims{Issuer: r.ID, Subject: r.ID, Audience: josejwt.Audience{e.Issuer + "/token"},
			ID: randomString(), IssuedAt: josejwt.NewNumericDate(now), Expiry: josejwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		status, body := clientCall(t, e, "/revoke", url.Values{"token": {"unknown"}}, func(_ *http.Request, form url.Values) {
			form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
			form.Set("client_assertion", assertion)
		})
		if status != http.StatusOK {
			t.Fatalf("an ES384 assertion for an ES384 key: %d %v", status, body)
		}
	})
}

// introspection posts body to /introspect with the client's credentials
// (wrong ones if secret is set) and returns the status, the WWW-Authenticate
// header and the decoded answer.
func introspection(t *testing.T, r *rp, body, secret string) (int, string, map[string]any) {
	t.Helper()
	if secret == "" {
		secret = r.Secret
	}
	req, _ := http.NewRequest(http.MethodPost, r.Env.Issuer+"/introspect", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(r.ID), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), out
}

// TestIntrospectionAnswers: access and refresh tokens are introspected; a
// refused client is told how to authenticate (WWW-Authenticate, RFC 6749
// §5.2) and a bad request is not.
func TestIntrospectionAnswers(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		r := e.NewRP(clients.Spec{})
		tok, _, _ := codeFlow(r, newBrowser(t), citizenCF, idp.LevelConsultazione)
		cases := []struct {
			name, body, secret string
			status             int
			challenge          bool
			answer             map[string]any // the members checked; nil: none
		}{
			{name: "access token", body: "token=" + url.QueryEscape(tok.AccessToken), status: http.StatusOK,
				answer: map[string]any{"active": true}},
			{name: "refresh token", body: "token=" + url.QueryEscape(tok.RefreshToken) + "&token_type_hint=refresh_token", status: http.StatusOK,
				answer: map[string]any{"active": true}},
			{name: "wrong secret", body: "token=" + url.QueryEscape(tok.AccessToken), secret: "wrong", status: http.StatusUnauthorized, challenge: true,
				answer: map[string]any{"error": "invalid_client"}},
			{name: "no token", body: "token_type_hint=access_token", status: http.StatusBadRequest,
				answer: map[string]any{"error": "invalid_request"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				status, challenge, answer := introspection(t, r, tc.body, tc.secret)
				if status != tc.status || (challenge != "") != tc.challenge {
					t.Fatalf("%d, WWW-Authenticate %q, %v; want %d and a challenge: %t", status, challenge, answer, tc.status, tc.challenge)
				}
				for k, want := range tc.answer {
					if got, ok := answer[k]; want == nil && ok || want != nil && got != want {
						t.Fatalf("%s is %v, want %v: %v", k, got, want, answer)
					}
				}
			})
		}
	})
}

// failingStore is the real store whose token table fails on demand: every
// write (tokensDown), or marking a code used (deactivateDown).
type failingStore struct {
	storage.Store
	tokensDown, deactivateDown atomic.Bool
}

var errTokensDown = errors.New("the token table is unavailable")

func (s *failingStore) CreateToken(ctx context.Context, t storage.Token) error {
	if s.tokensDown.Load() {
		return errTokensDown
	}
	return s.Store.CreateToken(ctx, t)
}

func (s *failingStore) DeactivateToken(ctx context.Context, kind storage.TokenKind, sig string) error {
	if s.deactivateDown.Load() {
		return errTokensDown
	}
	return s.Store.DeactivateToken(ctx, kind, sig)
}

// TestAuthorizeErrorDescription: an error at the client's redirect URI says
// what was wrong (error_description) when the client was wrong, and nothing
// of a server error.
func TestAuthorizeErrorDescription(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		fs := &failingStore{Store: store}
		e := newEnv(t, fs)
		r := e.NewRP(clients.Spec{})
		b := newBrowser(t)
		startSession(t, e, r, b, session{"test", idp.LevelConsultazione})
		for _, tc := range []struct {
			name        string
			params      map[string]string
			tokensDown  bool
			wantError   string
			description bool
		}{
			{name: "a client's error", params: map[string]string{"max_age": "soon"}, wantError: "invalid_request", description: true},
			{name: "a server error", params: map[string]string{"prompt": "none"}, tokensDown: true, wantError: "server_error"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				fs.tokensDown.Store(tc.tokensDown)
				defer fs.tokensDown.Store(false)
				resp, _ := b.Get(authParams(r, nil, tc.params))
				loc := rpRedirect(resp)
				if loc == nil || loc.Query().Get("error") != tc.wantError || loc.Query().Get("iss") != e.Issuer {
					t.Fatalf("got %d %v, want %s at the client", resp.StatusCode, loc, tc.wantError)
				}
				if d := loc.Query().Get("error_description"); (d != "") != tc.description {
					t.Fatalf("error_description %q", d)
				}
			})
		}
	})
}

// TestClientChangedDuringLogin: the request is checked again when the login
// completes; if the client changed meanwhile, a request still valid for its
// redirect URI gets the error there, and one whose redirect URI was withdrawn
// gets a page that names the error (never a redirect to that URI).
func TestClientChangedDuringLogin(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		for _, tc := range []struct {
			name       string
			exempt     bool // a confidential client exempted from PKCE, asking without it
			change     func(*storage.Client)
			wantError  string // at the client
			wantStatus int    // a page
		}{
			{name: "a scope withdrawn", change: func(c *storage.Client) { c.Scopes = []string{"openid"} }, wantError: "invalid_scope"},
			{name: "the redirect URI withdrawn", change: func(c *storage.Client) { c.RedirectURIs = []string{"https://rp.example.org/cb"} }, wantStatus: http.StatusBadRequest},
			{name: "the PKCE exemption withdrawn", exempt: true, change: func(c *storage.Client) { c.PKCEExempt = false }, wantError: "invalid_request"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := e.NewRP(clients.Spec{PKCEExempt: tc.exempt})
				b := newBrowser(t)
				u := authParams(r, []string{"profile"}, nil)
				if tc.exempt {
					u = r.Conf.AuthCodeURL(randomString(), oidcNonce())
				}
				resp, body := b.Get(u)
				c := readChooser(t, resp, body)
				err := e.Store.UpdateClient(context.Background(), r.ID, func(sc storage.Client) (storage.Client, error) {
					tc.change(&sc)
					return sc, nil
				})
				if err != nil {
					t.Fatal(err)
				}
				resp, body = b.Post(e.Issuer+"/login/test/", url.Values{"challenge": {c.challenge}, "cf": {citizenCF}, "level": {"1"}})
				loc := rpRedirect(resp)
				if tc.wantError != "" {
					if loc == nil || loc.Query().Get("error") != tc.wantError {
						t.Fatalf("got %d %v, want %s at the client", resp.StatusCode, loc, tc.wantError)
					}
					return
				}
				if loc != nil || resp.StatusCode != tc.wantStatus || !strings.Contains(body, "richiesta di accesso non valida (invalid_request)") {
					t.Fatalf("got %d %v %.300s, want the page of the invalid request", resp.StatusCode, loc, body)
				}
			})
		}
	})
}

// stateAuth is a login method that saves a state with the lifetime asked.
type stateAuth struct{ testAuth }

func (stateAuth) Method() idp.Method { return "state" }
func (stateAuth) Handler(h idp.Host) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ttl, _ := time.ParseDuration(r.FormValue("ttl"))
		if err := h.SaveState(r.Context(), r.FormValue("key"), "challenge", []byte("data"), ttl); err != nil {
			fmt.Fprint(w, "refused")
			return
		}
		fmt.Fprint(w, "saved")
	})
}

// TestSaveStateNeedsALifetime: a method's state needs a key and a positive lifetime.
func TestSaveStateNeedsALifetime(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store, func(c *provider.Config) { c.Authenticators = []idp.Authenticator{stateAuth{}} })
		for _, tc := range []struct {
			key, ttl, want string
		}{
			{"k1", "1m", "saved"},
			{"k2", "1ns", "saved"},
			{"k3", "0s", "refused"},
			{"k4", "-1s", "refused"},
			{"", "1m", "refused"},
		} {
			t.Run(tc.key+" "+tc.ttl, func(t *testing.T) {
				_, body := newBrowser(t).Get(e.Issuer + "/login/state/?" + url.Values{"key": {tc.key}, "ttl": {tc.ttl}}.Encode())
				if body != tc.want {
					t.Fatalf("%q, want %q", body, tc.want)
				}
			})
		}
	})
}

// TestLogoutHints: a logout with an id_token_hint of the session's citizen
// needs no confirmation, even when the token has expired (RP-Initiated Logout
// §2); without one, the confirmation page carries the client (named, or the
// hint's audience), the post-logout URI and the state, and confirming it
// goes there.
func TestLogoutHints(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		r := e.NewRP(clients.Spec{})
		bye := "http://127.0.0.1:9/bye"
		// expired re-signs an ID token with the provider's key, expired an hour ago.
		expired := func(idToken string) string {
			payload, err := base64.RawURLEncoding.DecodeString(strings.Split(idToken, ".")[1])
			if err != nil {
				t.Fatal(err)
			}
			claims := fositejwt.MapClaims{}
			if err := json.Unmarshal(payload, &claims); err != nil {
				t.Fatal(err)
			}
			claims["iat"], claims["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
			raw, _, err := e.Keys.Signer().Generate(context.Background(), claims, &fositejwt.Headers{Extra: map[string]any{"alg": "ES256"}})
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}
		other, _, _ := codeFlow(r, newBrowser(t), otherCF, idp.LevelConsultazione)
		cases := []struct {
			name    string
			params  func(own string) url.Values
			confirm bool
		}{
			{name: "the citizen's hint", params: func(own string) url.Values { return url.Values{"id_token_hint": {own}} }},
			{name: "the citizen's expired hint", params: func(own string) url.Values { return url.Values{"id_token_hint": {expired(own)}} }},
			{name: "another citizen's hint", confirm: true, params: func(string) url.Values {
				return url.Values{"id_token_hint": {other.Extra("id_token").(string)}}
			}},
			{name: "no hint, a client", confirm: true, params: func(string) url.Values { return url.Values{"client_id": {r.ID}} }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				b := newBrowser(t)
				tok, _, _ := codeFlow(r, b, citizenCF, idp.LevelConsultazione)
				q := tc.params(tok.Extra("id_token").(string))
				q.Set("post_logout_redirect_uri", bye)
				q.Set("state", "st-"+randomString())
				resp, body := b.Get(e.Issuer + provider.PathLogout + "?" + q.Encode())
				if tc.confirm {
					if rpRedirect(resp) != nil || !strings.Contains(body, `name="confirm"`) {
						t.Fatalf("got %d %v, want the confirmation", resp.StatusCode, rpRedirect(resp))
					}
					form := url.Values{}
					for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
						form.Set(m[1], html.UnescapeString(m[2]))
					}
					if form.Get("client_id") != r.ID {
						t.Fatalf("the confirmation does not carry the client: %v", form)
					}
					resp, _ = b.Post(e.Issuer+provider.PathLogout, form)
				}
				loc := rpRedirect(resp)
				if loc == nil || loc.Path != "/bye" || loc.Query().Get("state") != q.Get("state") {
					t.Fatalf("got %d %v, want %s with the state", resp.StatusCode, loc, bye)
				}
				resp, _ = b.Get(authParams(r, nil, map[string]string{"prompt": "none"}))
				if loc := rpRedirect(resp); loc == nil || loc.Query().Get("error") != "login_required" {
					t.Fatalf("the session outlived the logout: %v", loc)
				}
			})
		}
	})
}

// TestRedemptionFailsClosed: a code is redeemed in one transaction with its
// use (and, for a code an older Ponte issued, its separate PKCE challenge's
// removal: TestPKCEChallengeRemoval); if storage fails there, the token
// request fails, nothing is issued, and the code still redeems once.
func TestRedemptionFailsClosed(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		fs := &failingStore{Store: store}
		e := newEnv(t, fs)
		r := e.NewRP(clients.Spec{})
		for _, tc := range []struct {
			name string
			down *atomic.Bool
		}{
			{"marking the code used fails", &fs.deactivateDown},
		} {
			t.Run(tc.name, func(t *testing.T) {
				verifier := oauth2.GenerateVerifier()
				loc := login(newBrowser(t), e.Issuer, r.Conf.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(verifier), oidcNonce()), citizenCF, idp.LevelConsultazione)
				tc.down.Store(true)
				_, err := r.Conf.Exchange(r.Ctx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
				tc.down.Store(false)
				if err == nil {
					t.Fatal("tokens issued by a redemption whose storage failed")
				}
				if _, err := r.Conf.Exchange(r.Ctx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
					t.Fatalf("the code after a failed redemption: %v", err)
				}
				if _, err := r.Conf.Exchange(r.Ctx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier)); !isOAuthError(err, "invalid_grant") {
					t.Fatalf("the code redeemed twice: %v", err)
				}
			})
		}
	})
}

// pushed sends a pushed authorization request as r and returns its request_uri and lifetime.
func pushed(t *testing.T, r *rp, form url.Values) (string, float64) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.Env.Issuer+"/par", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(r.ID), url.QueryEscape(r.Secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var par struct {
		RequestURI string  `json:"request_uri"`
		ExpiresIn  float64 `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&par); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("PAR: %d %v %+v", resp.StatusCode, err, par)
	}
	return par.RequestURI, par.ExpiresIn
}

// TestPushedRequestLifetimes: a pushed request lives 90 seconds (RFC 9126
// §2.2), an access token 15 minutes by default (expires_in, RFC 6749 §5.1);
// a pushed request answered at once by the SSO session goes to the pushed
// redirect URI with the pushed state, and its code redeems.
func TestPushedRequestLifetimes(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		r := e.NewRP(clients.Spec{})
		b := newBrowser(t)
		tok, _, _ := codeFlow(r, b, citizenCF, idp.LevelConsultazione)
		if in := time.Until(tok.Expiry).Round(time.Minute); in != 15*time.Minute {
			t.Fatalf("an access token for %v, want 15m", in)
		}
		verifier, state := oauth2.GenerateVerifier(), randomString()
		uri, expiresIn := pushed(t, r, url.Values{"response_type": {"code"}, "client_id": {r.ID}, "redirect_uri": {redirectURI},
			"scope": {"openid"}, "state": {state}, "nonce": {randomString()},
			"code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"}})
		if expiresIn != 90 {
			t.Fatalf("a pushed request for %v s, want 90", expiresIn)
		}
		resp, body := b.Get(e.Issuer + "/authorize?" + url.Values{"client_id": {r.ID}, "request_uri": {uri}}.Encode())
		loc := rpRedirect(resp)
		if loc == nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != state {
			t.Fatalf("got %d %v %.300s, want a code at %s", resp.StatusCode, loc, body, redirectURI)
		}
		if _, err := r.Conf.Exchange(r.Ctx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSessionClone: a cloned session is a copy, its OpenID Connect part
// included, and a session without that part clones too.
func TestSessionClone(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    *provider.Session
	}{
		{"with claims", &provider.Session{SubjectID: "s1", DefaultSession: &openid.DefaultSession{Subject: "pub-1", Claims: &fositejwt.IDTokenClaims{Subject: "pub-1"}}}},
		{"without", &provider.Session{SubjectID: "s1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := tc.s.Clone().(*provider.Session)
			if !ok || c == tc.s || c.SubjectID != tc.s.SubjectID {
				t.Fatalf("clone %+v of %+v", c, tc.s)
			}
			if tc.s.DefaultSession == nil {
				if c.DefaultSession != nil {
					t.Fatalf("an OpenID Connect part from nowhere: %+v", c.DefaultSession)
				}
				return
			}
			if c.DefaultSession == tc.s.DefaultSession || c.DefaultSession.Subject != "pub-1" {
				t.Fatalf("the OpenID Connect part is shared or lost: %p %p", c.DefaultSession, tc.s.DefaultSession)
			}
			c.DefaultSession.Subject = "changed"
			if tc.s.DefaultSession.Subject != "pub-1" {
				t.Fatal("changing the clone changed the original")
			}
		})
	}
}

// TestRefreshRetiresAccessTokens: a refresh retires the grant's access tokens
// with the refresh token it used.
func TestRefreshRetiresAccessTokens(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		r := e.NewRP(clients.Spec{})
		old, _, _ := codeFlow(r, newBrowser(t), citizenCF, idp.LevelConsultazione)
		fresh, err := r.Conf.TokenSource(r.Ctx(), &oauth2.Token{RefreshToken: old.RefreshToken}).Token()
		if err != nil {
			t.Fatal(err)
		}
		if introspect(t, r, old.AccessToken) || introspect(t, r, old.RefreshToken) {
			t.Fatal("the tokens the refresh replaced are still active")
		}
		if !introspect(t, r, fresh.AccessToken) || !introspect(t, r, fresh.RefreshToken) {
			t.Fatal("the refreshed tokens are not active")
		}
	})
}
