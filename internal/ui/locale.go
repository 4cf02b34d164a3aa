package ui

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The languages of Ponte's pages. Italian is the default.
const (
	Italian = "it"
	English = "en"
)

// LangParam is the query parameter of the language switch (?lang=en), and
// LangCookie the cookie that keeps the choice, so that it survives form posts,
// redirects and links without a parameter. The cookie holds only "it" or
// "en": it is a strictly necessary preference, not a tracker.
const (
	LangParam  = "lang"
	LangCookie = "ponte_lang"
)

// langCookieAge is how long the choice of language is kept.
const langCookieAge = 365 * 24 * time.Hour

// Locale picks "it" or "en" for r: the language switch (?lang=) of this
// request first, then the choice kept in the cookie, then the preferences
// given (ui_locales values of the relying party), then Accept-Language;
// Italian by default.
func Locale(r *http.Request, prefs ...string) string {
	if l := chosen(r); l != "" {
		return l
	}
	all := strings.Join(prefs, " ") + " " + strings.ReplaceAll(r.Header.Get("Accept-Language"), ",", " ")
	for _, tag := range strings.Fields(all) {
		tag, _, _ = strings.Cut(strings.ToLower(tag), ";")
		lang, _, _ := strings.Cut(tag, "-")
		if lang == Italian || lang == English {
			return lang
		}
	}
	return Italian
}

// chosen is the language the person chose with the switch: on this request,
// or earlier (the cookie); "" if none.
func chosen(r *http.Request) string {
	if l := switched(r); l != "" {
		return l
	}
	if c, err := r.Cookie(LangCookie); err == nil && known(c.Value) {
		return c.Value
	}
	return ""
}

// switched is the language asked for by the switch on this request, or "".
func switched(r *http.Request) string {
	if l := r.URL.Query().Get(LangParam); known(l) {
		return l
	}
	return ""
}

func known(l string) bool { return l == Italian || l == English }

// KeepLanguage sets the cookie that keeps the language chosen with the switch
// on r, if any. Render calls it; a handler that answers a switched request
// with a redirect calls it itself.
func KeepLanguage(w http.ResponseWriter, r *http.Request) {
	l := switched(r)
	if l == "" {
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: LangCookie, Value: l, Path: "/", MaxAge: int(langCookieAge / time.Second),
		HttpOnly: true, Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https", SameSite: http.SameSiteLaxMode,
	})
}

// switchLink is one entry of the language switch.
type switchLink struct {
	Lang, Label, URL string
	Current          bool
}

// languages are the switch's entries, each in its own language.
var languages = []struct{ lang, label string }{{Italian, "Italiano"}, {English, "English"}}

// switchLinks builds the language switch of a page shown in lang: each entry
// is here (the address of the page as a GET, "" for the request's own) with
// the lang parameter set.
func switchLinks(r *http.Request, here, lang string) []switchLink {
	u := pageURL(r, here)
	out := make([]switchLink, 0, len(languages))
	for _, l := range languages {
		q := u.Query()
		q.Set(LangParam, l.lang)
		v := *u
		v.RawQuery = q.Encode()
		out = append(out, switchLink{Lang: l.lang, Label: l.label, URL: v.RequestURI(), Current: l.lang == lang})
	}
	return out
}

// pageURL is the address a GET shows this page at: here when the page gave
// one; otherwise the request's own address (as the client sent it, before
// any prefix was stripped) and, for a form post, the same path with the
// pending login's challenge, which every form carries.
func pageURL(r *http.Request, here string) *url.URL {
	if here != "" {
		if u, err := url.Parse(here); err == nil {
			return u
		}
	}
	u, err := url.ParseRequestURI(r.RequestURI)
	if r.RequestURI == "" || err != nil {
		u = &url.URL{Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	}
	u = &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		u.RawQuery = ""
		if ch := r.PostFormValue("challenge"); ch != "" {
			u.RawQuery = url.Values{"challenge": {ch}}.Encode()
		}
	}
	return u
}

// WithChallenge returns the site path p with the pending login's challenge
// added (p unchanged when there is none, or when p leaves the site): for a
// link that must bring the citizen back to the login they started.
func WithChallenge(p, challenge string) string {
	if challenge == "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return p
	}
	u, err := url.Parse(p)
	if err != nil {
		return p
	}
	q := u.Query()
	q.Set("challenge", challenge)
	u.RawQuery = q.Encode()
	return u.String()
}
