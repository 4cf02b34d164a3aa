// Package ui is the look of every page Ponte shows a person: one accessible
// layout (WCAG 2.1 AA contrast, skip link, no JavaScript) after the Italian
// public-administration design, the choice of language, and rendering that
// never sends half a page. The provider and every login method use it.
package ui

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
)

//go:embed layout.html
var layoutFS embed.FS

// Pages parses each named page from fsys (files "<dir>/<name>.html", each
// defining "content"), together with the layout.
func Pages(fsys fs.FS, dir string, names ...string) map[string]*template.Template {
	out := make(map[string]*template.Template, len(names))
	for _, name := range names {
		t := template.Must(template.ParseFS(layoutFS, "layout.html"))
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
	// Layout is the layout's own wording, set by Render.
	Layout map[string]string
}

// layoutText is the wording of the layout itself, shared by every page.
var layoutText = map[string]map[string]string{
	"it": {"brand": "Accesso ai servizi online", "skip": "Vai al contenuto", "footer": "Istituto Nazionale della Previdenza Sociale"},
	"en": {"brand": "Access to online services", "skip": "Skip to content", "footer": "Italian National Social Security Institute"},
}

// Render writes a page with the headers every page carries. It renders into a
// buffer first, so that a template error becomes a clean 500.
func Render(w http.ResponseWriter, r *http.Request, log *slog.Logger, t *template.Template, status int, d Data) {
	if d.Lang != "en" {
		d.Lang = "it"
	}
	d.Layout = layoutText[d.Lang]
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", d); err != nil {
		log.ErrorContext(r.Context(), "rendering page failed", "err", err)
		http.Error(w, "Errore interno / Internal error", http.StatusInternalServerError)
		return
	}
	Write(w, status, buf.Bytes())
}

// Write sends a rendered page with the headers every page carries: never
// cached, no referrer, no framing, no script.
func Write(w http.ResponseWriter, status int, page []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https: http:; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(page)
}

// Locale picks "it" or "en" from the preferences given (ui_locales values,
// a lang parameter) and then Accept-Language; Italian by default.
func Locale(r *http.Request, prefs ...string) string {
	all := strings.Join(prefs, " ") + " " + strings.ReplaceAll(r.Header.Get("Accept-Language"), ",", " ")
	for _, tag := range strings.Fields(all) {
		tag, _, _ = strings.Cut(strings.ToLower(tag), ";")
		lang, _, _ := strings.Cut(tag, "-")
		if lang == "it" || lang == "en" {
			return lang
		}
	}
	return "it"
}
