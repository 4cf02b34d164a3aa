package provider

import (
	"embed"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/ory/fosite"

	"github.com/ponte-id/ponte/internal/ui"
)

//go:embed templates/*.html
var templateFS embed.FS

// pages holds one template set per page, each with the shared layout.
var pages = ui.Pages(templateFS, "templates", "chooser", "error", "logout")

// text is the wording of the pages, in Italian and English.
var text = map[string]map[string]string{
	"it": {
		"chooser_title": "Scegli come entrare", "chooser_for": "Stai accedendo a", "methods": "Modalità di accesso",
		"needs_dispositivo": "Questo servizio richiede un accesso di livello dispositivo: PIN dispositivo, SPID o CNS.",
		"stepup":            "Questa operazione richiede il livello dispositivo, superiore a quello con cui hai effettuato l'accesso. Entra con una delle modalità qui sotto.",
		"no_methods":        "Nessuna modalità di accesso disponibile per questa richiesta.",
		"continue_lower":    "Prosegui senza le funzioni dispositive", "cancel": "Annulla e torna al servizio",
		"error_title": "Impossibile proseguire", "error_back": "Torna al servizio da cui sei partito e riprova.",
		"logout_title": "Uscita", "logout_confirm": "Vuoi uscire da tutti i servizi INPS su questo dispositivo?",
		"logout_button": "Esci", "logged_out_title": "Sei uscito", "logged_out": "La sessione è stata chiusa. Puoi chiudere questa finestra.",
	},
	"en": {
		"chooser_title": "Choose how to log in", "chooser_for": "You are logging in to", "methods": "Login methods",
		"needs_dispositivo": "This service needs a dispositivo-level login: dispositivo PIN, SPID or CNS.",
		"stepup":            "This operation needs the dispositivo level, higher than the one you logged in with. Log in with one of the methods below.",
		"no_methods":        "No login method can satisfy this request.",
		"continue_lower":    "Continue without dispositivo features", "cancel": "Cancel and return to the service",
		"error_title": "Unable to continue", "error_back": "Go back to the service you came from and try again.",
		"logout_title": "Log out", "logout_confirm": "Do you want to log out of every INPS service on this device?",
		"logout_button": "Log out", "logged_out_title": "You are logged out", "logged_out": "Your session has ended. You can close this window.",
	},
}

// message is a sentence for a person, in both languages.
type message struct{ it, en string }

func (m message) in(loc string) string {
	if loc == "en" {
		return m.en
	}
	return m.it
}

var (
	msgChallengeExpired = message{
		"La richiesta di accesso è scaduta o non è valida.",
		"The login request has expired or is not valid.",
	}
	msgTooManyChallenges = message{
		"Ci sono troppe richieste di accesso in sospeso da questo browser o da questa rete. Riprova tra qualche minuto.",
		"There are too many pending login requests from this browser or network. Please try again in a few minutes.",
	}
	msgCrossSite = message{
		"Per la tua sicurezza la richiesta non è stata eseguita: il modulo è stato inviato da una pagina che non appartiene a questo sito. Torna al servizio INPS da cui sei partito e riprova da lì.",
		"For your security the request was not carried out: the form was sent from a page that does not belong to this site. Go back to the INPS service you came from and try again from there.",
	}
	msgInternal = message{
		"Si è verificato un errore interno. Riprova tra qualche minuto.",
		"An internal error occurred. Please try again in a few minutes.",
	}
)

// msgBadRequest explains an OAuth error to a person (the code is for the log and the client).
func msgBadRequest(e *fosite.RFC6749Error) message {
	if e.CodeField >= http.StatusInternalServerError {
		return msgInternal
	}
	return message{
		"Il servizio ha inviato una richiesta di accesso non valida (" + e.ErrorField + ").",
		"The service sent an invalid login request (" + e.ErrorField + ").",
	}
}

// render writes a page in loc.
func (p *Provider) render(w http.ResponseWriter, r *http.Request, loc string, status int, page string, view any) {
	t := text[loc]
	ui.Render(w, r, p.log, pages[page], status, ui.Data{Lang: loc, Title: t[page+"_title"], T: t, View: view})
}

// errorPage shows a person a plain message.
func (p *Provider) errorPage(w http.ResponseWriter, r *http.Request, status int, m message) {
	loc := locale(r, nil)
	p.render(w, r, loc, status, "error", m.in(loc))
}

// crossOriginProtection refuses cross-site form posts (CSRF) to every page
// behind it, answering 403 with the error page in the person's language
// instead of net/http's plain English text.
func crossOriginProtection(log *slog.Logger) *http.CrossOriginProtection {
	c := http.NewCrossOriginProtection()
	c.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.InfoContext(r.Context(), "cross-origin request refused", "method", r.Method,
			"sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		loc := locale(r, nil)
		t := text[loc]
		ui.Render(w, r, log, pages["error"], http.StatusForbidden, ui.Data{Lang: loc, Title: t["error_title"], T: t, View: msgCrossSite.in(loc)})
	}))
	return c
}

// locale picks "it" or "en" for a request, ui_locales first.
func locale(r *http.Request, form url.Values) string {
	prefs := []string{r.URL.Query().Get("ui_locales")}
	if form != nil {
		prefs = append([]string{form.Get("ui_locales")}, prefs...)
	}
	return ui.Locale(r, prefs...)
}
