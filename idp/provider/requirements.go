package provider

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/ponte-id/ponte/idp"
)

// ScopeDispositivo is the elevated scope: granted only at the dispositivo level.
const ScopeDispositivo = "inps.dispositivo"

// requirement is what an authorization request asks of the citizen's login.
type requirement struct {
	// level is the lowest level that satisfies the request fully.
	level idp.Level
	// essential means no token may be issued below level (an essential acr claim).
	essential   bool
	promptNone  bool
	promptLogin bool
	// maxAge is the max_age parameter; negative when absent.
	maxAge    time.Duration
	loginHint string
	idpHint   string
}

// requirementOf reads the level ladder (SPEC §2) from a request: the elevated
// scope and acr_values ask for a level voluntarily, an essential acr claim
// demands it; prompt, max_age, login_hint and idp_hint shape the login.
func requirementOf(ar fosite.AuthorizeRequester) (requirement, error) {
	form := ar.GetRequestForm()
	req := requirement{maxAge: -1, level: idp.LevelConsultazione}
	if ar.GetRequestedScopes().Has(ScopeDispositivo) {
		req.level = idp.LevelDispositivo
	}
	if l, ok := lowestLevel(strings.Fields(form.Get("acr_values"))); ok && l > req.level {
		req.level = l
	}
	if raw := form.Get("claims"); raw != "" {
		l, essential, err := acrClaim(raw)
		if err != nil {
			return req, err
		}
		if l > req.level {
			req.level = l
		}
		req.essential = essential && l >= req.level
	}
	for _, p := range strings.Fields(form.Get("prompt")) {
		req.promptNone = req.promptNone || p == "none"
		req.promptLogin = req.promptLogin || p == "login"
	}
	if v := form.Get("max_age"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return req, fosite.ErrInvalidRequest.WithHint("max_age must be a non-negative integer.")
		}
		req.maxAge = time.Duration(n) * time.Second
	}
	if hint := strings.ToUpper(strings.TrimSpace(form.Get("login_hint"))); len(hint) == 16 {
		req.loginHint = hint
	}
	req.idpHint = form.Get("idp_hint")
	return req, nil
}

// lowestLevel returns the lowest known level among acr values (any of them satisfies).
func lowestLevel(acrs []string) (idp.Level, bool) {
	var (
		lowest idp.Level
		found  bool
	)
	for _, a := range acrs {
		if l, ok := idp.ParseACR(a); ok && (!found || l < lowest) {
			lowest, found = l, true
		}
	}
	return lowest, found
}

// acrClaim reads the acr member of the claims parameter (OIDC Core §5.5.1.1),
// from the id_token or userinfo section.
func acrClaim(raw string) (idp.Level, bool, error) {
	var claims map[string]map[string]*struct {
		Essential bool     `json:"essential"`
		Value     string   `json:"value"`
		Values    []string `json:"values"`
	}
	if err := json.Unmarshal([]byte(raw), &claims); err != nil {
		return 0, false, fosite.ErrInvalidRequest.WithHint("The claims parameter is not valid JSON.")
	}
	var (
		level     idp.Level
		essential bool
	)
	for _, section := range []string{"id_token", "userinfo"} {
		acr := claims[section]["acr"]
		if acr == nil {
			continue
		}
		values := acr.Values
		if acr.Value != "" {
			values = append(values, acr.Value)
		}
		if l, ok := lowestLevel(values); ok && l >= level {
			level, essential = l, essential || acr.Essential
		}
	}
	return level, essential, nil
}
