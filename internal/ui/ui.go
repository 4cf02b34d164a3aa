// Package ui is the look of every page Ponte shows a person: one accessible
// layout (WCAG 2.1 AA, skip link, no JavaScript) after the Italian
// public-administration design guidelines (AgID: Titillium Web served by Ponte
// itself, the blue #0066CC), a language switch on every page and the choice of
// language that survives posts and redirects, and rendering that never sends
// half a page. The provider and every login method use it.
package ui

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
)

//go:embed layout.html
var layoutFS embed.FS

// funcs are the helpers every page template may call.
var funcs = template.FuncMap{
	// withChallenge keeps the pending login on a link (WithChallenge).
	"withChallenge": WithChallenge,
}

// Pages parses each named page from fsys (files "<dir>/<name>.html", each
// defining "content"), together with the layout.
func Pages(fsys fs.FS, dir string, names ...string) map[string]*template.Template {
	out := make(map[string]*template.Template, len(names))
	for _, name := range names {
		t := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(layoutFS, "layout.html"))
		out[name] = template.Must(t.ParseFS(fsys, dir+"/"+name+".html"))
	}
	return out
}

// Data is what the layout reads; View is the page's own data.
type Data struct {
	Lang  string
	Title string
	// T is the page's wording in Lang.
	T    map[string]string
	View any
	// Here is the address (path and query, without lang) at which a GET shows
	// this page, for the language switch; empty means the request's own (see
	// pageURL).
	Here string
	// SwitchPost, when set, makes the language switch re-post these fields to
	// Here (with ?lang=) instead of linking to it: for a page that exists only
	// as the answer to a post, such as the PIN change form and its single-use
	// ticket. The handler must treat such a post as a change of language.
	SwitchPost map[string]string
	// Layout is the layout's own wording, and Switch the language switch,
	// both set by Render.
	Layout map[string]string
	Switch []switchLink
}

// layoutText is the wording of the layout itself, shared by every page.
var layoutText = map[string]map[string]string{
	Italian: {
		"institution": "INPS · Istituto Nazionale della Previdenza Sociale", "brand": "Accesso ai servizi online",
		"tagline": "Entra nei servizi INPS con le tue credenziali", "skip": "Vai al contenuto principale",
		"lang_nav": "Lingua", "footer": "Istituto Nazionale della Previdenza Sociale",
		"contact": "Contact center: 803 164 da rete fissa (gratuito), 06 164 164 da cellulare o dall'estero (+39 06 164 164).",
	},
	English: {
		"institution": "INPS · Italian National Social Security Institute", "brand": "Access to online services",
		"tagline": "Log in to INPS services with your credentials", "skip": "Skip to main content",
		"lang_nav": "Language", "footer": "Italian National Social Security Institute (INPS)",
		"contact": "Contact center: 803 164 from an Italian landline (free), 06 164 164 from a mobile, +39 06 164 164 from abroad.",
	},
}

// Render writes a page with the headers every page carries, and keeps the
// language if the request switched it. It renders into a buffer first, so
// that a template error becomes a clean 500.
func Render(w http.ResponseWriter, r *http.Request, log *slog.Logger, t *template.Template, status int, d Data) {
	if d.Lang != English {
		d.Lang = Italian
	}
	d.Layout = layoutText[d.Lang]
	d.Switch = switchLinks(r, d.Here, d.Lang)
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", d); err != nil {
		log.ErrorContext(r.Context(), "rendering page failed", "err", err)
		http.Error(w, "Errore interno / Internal error", http.StatusInternalServerError)
		return
	}
	KeepLanguage(w, r)
	Write(w, status, buf.Bytes())
}

// Write sends a rendered page with the headers every page carries: never
// cached, no referrer, no framing, no script; fonts only from Ponte.
func Write(w http.ResponseWriter, status int, page []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; font-src 'self'; form-action 'self' https: http:; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(page)
}
