package ui

import (
	"embed"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

//go:embed templates/comeback.html
var comebackFS embed.FS

var comebackPage = Pages(comebackFS, "templates", "comeback")["comeback"]

// Why is the reason a request is turned away with ComeBack.
type Why int

const (
	// Busy: the node has taken all the work it can (admission control).
	Busy Why = iota
	// Unavailable: the database cannot be reached, or is restarting.
	Unavailable
)

// comebackText is the come-back page's wording by reason and language.
var comebackText = map[Why]map[string]struct{ Title, Text string }{
	Busy: {
		Italian: {"Servizio momentaneamente occupato", "In questo momento molte persone stanno usando il servizio. Nulla è andato perso: riprova tra qualche secondo ricaricando la pagina."},
		English: {"The service is busy", "Many people are using the service right now. Nothing was lost: try again in a few seconds by reloading the page."},
	},
	Unavailable: {
		Italian: {"Servizio momentaneamente non disponibile", "Il servizio è momentaneamente non disponibile. Nulla è andato perso: riprova tra qualche secondo ricaricando la pagina."},
		English: {"The service is temporarily unavailable", "The service is temporarily unavailable. Nothing was lost: try again in a few seconds by reloading the page."},
	},
}

// comebackJSON is the answer for a caller that is not a browser, by reason:
// an OAuth-style error (RFC 6749 §5.2's temporarily_unavailable).
var comebackJSON = map[Why]string{
	Busy:        `{"error":"temporarily_unavailable","error_description":"the server is busy; retry after the time in Retry-After"}` + "\n",
	Unavailable: `{"error":"temporarily_unavailable","error_description":"the service is temporarily unavailable; retry after the time in Retry-After"}` + "\n",
}

// ComeBack answers 503 with Retry-After (retryAfter in whole seconds, at
// least one) for a request that was not carried out and can be sent again:
// a browser (Accept: text/html) gets a page in the site's layout, in its
// language, telling the person that nothing was lost and to try again in a
// few seconds; anyone else the JSON error temporarily_unavailable.
func ComeBack(w http.ResponseWriter, r *http.Request, retryAfter time.Duration, why Why) {
	h := w.Header()
	h.Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(retryAfter.Seconds())))))
	h.Set("Cache-Control", "no-store")
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(comebackJSON[why]))
		return
	}
	lang := Locale(r)
	t := comebackText[why][lang]
	Render(w, r, slog.New(slog.DiscardHandler), comebackPage, http.StatusServiceUnavailable, Data{Lang: lang, Title: t.Title, View: t.Text})
}
