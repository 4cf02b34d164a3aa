package edge

import (
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ponte-id/ponte/internal/admission"
	"github.com/ponte-id/ponte/internal/ui"
)

// admit bounds the node's requests with g: those for which continues
// reports true as admission.Continuing (a login under way: the whole
// capacity, and the line), the others, and all when continues is nil, as
// admission.Starting (new work: only below the gate's start watermark). A
// request the gate refuses is answered at once with 503 and Retry-After,
// before any handler runs: nothing of it was done, so a login in progress
// stays where it was and the same request can be sent again. Browsers
// (Accept: text/html) get a page in their language; everyone else an
// OAuth-style JSON error.
func admit(g *admission.Gate, continues func(*http.Request) bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		class := admission.Starting
		if continues != nil && continues(c.Request) {
			class = admission.Continuing
		}
		release, err := g.AcquireClass(c.Request.Context(), class)
		if err != nil {
			if errors.Is(err, admission.ErrBusy) {
				busy(c.Writer, c.Request, g.RetryAfter())
			}
			// A client that went away gets nothing.
			c.Abort()
			return
		}
		defer release()
		c.Next()
	}
}

// busyPage is the page of a node too busy to take a request.
var busyPage = template.Must(template.New("busy").Parse(`<!doctype html>
<html lang="{{.Lang}}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · INPS</title>
<style>body{font-family:"Titillium Web",Geneva,Tahoma,sans-serif;margin:0;color:#1a1a1a}header{background:#0066cc;color:#fff;padding:1rem 1.5rem}main{max-width:40rem;padding:1.5rem}</style>
</head>
<body><header><p>INPS</p></header>
<main><h1>{{.Title}}</h1><p>{{.Text}}</p></main>
</body></html>
`))

// busyText is the busy page's wording by language.
var busyText = map[string]struct{ Title, Text string }{
	ui.Italian: {"Servizio momentaneamente occupato", "In questo momento molte persone stanno usando il servizio. Nulla è andato perso: riprova tra qualche secondo ricaricando la pagina."},
	ui.English: {"The service is busy", "Many people are using the service right now. Nothing was lost: try again in a few seconds by reloading the page."},
}

// busy answers 503 with Retry-After (seconds).
func busy(w http.ResponseWriter, r *http.Request, retryAfter int) {
	h := w.Header()
	h.Set("Retry-After", strconv.Itoa(retryAfter))
	h.Set("Cache-Control", "no-store")
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"temporarily_unavailable","error_description":"the server is busy; retry after the time in Retry-After"}` + "\n"))
		return
	}
	lang := ui.Locale(r)
	t := busyText[lang]
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = busyPage.Execute(w, struct{ Lang, Title, Text string }{lang, t.Title, t.Text})
}
