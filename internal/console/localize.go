package console

import (
	"cmp"
	"regexp"
	"slices"
	"strings"

	"github.com/ponte-id/ponte/internal/fields"
	"github.com/ponte-id/ponte/internal/ui"
)

// translation is a validation message of idp/clients or idp/admin, as its
// English format, and its Italian: each verb of the format (%q, %d, %s, %v)
// becomes a %s of the Italian, in the same order.
type translation struct {
	en string
	re *regexp.Regexp
	it string
}

// fieldMessages are the field messages the console's forms can show; a
// message not listed stays in English.
var fieldMessages = compile(map[string]string{
	"id %q: at most 128 characters, no spaces and none of : / ? #": "id %s: al massimo 128 caratteri, senza spazi né : / ? #",
	"at most %d characters":                                                  "al massimo %s caratteri",
	"at most %d":                                                             "al massimo %s",
	"private_key_jwt needs jwks or jwks_uri":                                 "private_key_jwt richiede jwks o jwks_uri",
	"jwks is not a JSON Web Key Set with at least one key":                   "jwks non è un JSON Web Key Set con almeno una chiave",
	"jwks key %q is not a public key":                                        "la chiave %s di jwks non è una chiave pubblica",
	"jwks_uri: %v":                                                           "jwks_uri non valido: %s",
	"auth method %q: want %s, %s, %s or %s":                                  "metodo di autenticazione %s: deve essere %s, %s, %s o %s",
	"a public client cannot be exempted from PKCE (RFC 9700 §2.1.1)":         "un client pubblico non può essere esentato da PKCE (RFC 9700 §2.1.1)",
	"at least one redirect URI is required":                                  "serve almeno un redirect URI",
	"redirect URI %q: %v":                                                    "redirect URI %s non valido: %s",
	"post-logout redirect URI %q: %v":                                        "redirect URI dopo il logout %s: %s",
	"back-channel logout URI %q: %v":                                         "URI di back-channel logout %s: %s",
	"back-channel logout session required without a back-channel logout URI": "sessione di back-channel logout richiesta senza un URI di back-channel logout",
	"unknown scope %q (known: %s)":                                           "scope sconosciuto %s (quelli noti: %s)",
	"scopes must include openid":                                             "gli scope devono comprendere openid",
	"signing alg %q: want ES256 or RS256":                                    "algoritmo di firma %s: deve essere ES256 o RS256",
	"sector identifier: %v":                                                  "identificatore di settore non valido: %s",
	"%s must not be negative":                                                "%s non può essere negativo",
	"%s must be at most %s":                                                  "%s può essere al massimo %s",
	"unknown parameter":                                                      "parametro sconosciuto",
	"given more than once":                                                   "indicato più di una volta",
	"not an RFC 3339 time such as 2026-01-31T23:00:00Z":                      "non è una data valida",
	"must be an event ID (a positive integer)":                               "deve essere l'ID di un evento (un intero positivo)",
	"must be after from":                                                     "deve essere successivo all'inizio",
	"must be between 1 and %d":                                               "deve essere tra 1 e %s",
	"must be csv or json":                                                    "deve essere csv o json",
})

// uriProblems are the reasons idp/clients gives for a URI it refuses.
var uriProblems = strings.NewReplacer(
	"not a URI", "non è un URI",
	"must not have a fragment", "non deve avere un frammento (#)",
	"http is allowed only on loopback; use https", "http è ammesso solo su loopback; usa https",
	"must be an absolute https URI", "deve essere un URI https assoluto",
)

var verb = regexp.MustCompile(`%[qdsv]`)

func compile(m map[string]string) []translation {
	out := make([]translation, 0, len(m))
	for en, it := range m {
		parts := verb.Split(en, -1)
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		out = append(out, translation{en: en, re: regexp.MustCompile(`^` + strings.Join(parts, `(.*)`) + `$`), it: it})
	}
	// The longest first, so that "at most %d characters" wins over "at most %d".
	slices.SortFunc(out, func(a, b translation) int { return cmp.Or(len(b.en)-len(a.en), strings.Compare(a.en, b.en)) })
	return out
}

// localized returns the field messages in lang: Italian ones translated, the
// others as they are.
func localized(lang string, errs fields.Errors) map[string]string {
	if lang != ui.Italian {
		return errs
	}
	out := make(map[string]string, len(errs))
	for field, msg := range errs {
		out[field] = italian(msg)
	}
	return out
}

// italian translates one message; an unknown one stays in English.
func italian(msg string) string {
	for _, t := range fieldMessages {
		m := t.re.FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		args := make([]string, len(m)-1)
		for i, a := range m[1:] {
			args[i] = uriProblems.Replace(a)
		}
		return fill(t.it, args)
	}
	return msg
}

// fill puts args in the Italian's %s, in order (they are already formatted).
func fill(format string, args []string) string {
	var b strings.Builder
	i := 0
	for {
		j := strings.Index(format, "%s")
		if j < 0 || i >= len(args) {
			b.WriteString(format)
			return b.String()
		}
		b.WriteString(format[:j])
		b.WriteString(args[i])
		format, i = format[j+2:], i+1
	}
}
