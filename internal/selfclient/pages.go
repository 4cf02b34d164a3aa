package selfclient

import (
	"crypto/rand"
	"embed"
	"encoding/base64"
	"net/http"

	"github.com/ponte-id/ponte/internal/ui"
)

//go:embed pages/*.html
var pagesFS embed.FS

var pages = ui.Pages(pagesFS, "pages", "error")

// message is one sentence in Italian and English.
type message struct{ it, en string }

var (
	msgExpired = message{
		"La sessione è scaduta. Ricarica la pagina per accedere di nuovo.",
		"Your session has expired. Reload the page to log in again.",
	}
	msgUnavailable = message{
		"Il servizio non è al momento disponibile. Riprova tra qualche minuto.",
		"The service is not available at the moment. Please try again in a few minutes.",
	}
	msgStartAgain = message{
		"La richiesta di accesso non è valida o è scaduta. Torna alla pagina iniziale e accedi di nuovo.",
		"The login request is not valid or has expired. Go back to the start page and log in again.",
	}
	msgRefused = message{
		"L'accesso non è stato completato.",
		"The login was not completed.",
	}
	msgLevel = message{
		"Queste pagine richiedono un accesso con credenziali di livello dispositivo (PIN dispositivo, SPID o CNS).",
		"These pages require a login with dispositivo-level credentials (dispositivo PIN, SPID or CNS).",
	}
)

// errorPage answers a person with one sentence in their language and a link
// back to the pages' root.
func (c *Client) errorPage(w http.ResponseWriter, r *http.Request, status int, m message) {
	lang := ui.Locale(r)
	text, title, back := m.it, "Accesso non riuscito", "Torna alla pagina iniziale"
	if lang == ui.English {
		text, title, back = m.en, "Login not completed", "Back to the start page"
	}
	ui.Render(w, r, c.log, pages["error"], status, ui.Data{Lang: lang, Title: title,
		T: map[string]string{"title": title, "back": back}, View: errorView{Text: text, Home: c.cfg.Path + "/"}})
}

type errorView struct{ Text, Home string }

func rand32() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func b64(b []byte) string            { return base64.RawURLEncoding.EncodeToString(b) }
func unb64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
