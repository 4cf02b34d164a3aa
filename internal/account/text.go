package account

import (
	"embed"

	"github.com/ponte-id/ponte/internal/ui"
)

//go:embed pages/*.html
var pagesFS embed.FS

var pages = ui.Pages(pagesFS, "pages", "overview", "message")

// text is the pages' wording, in Italian and English.
var text = map[string]map[string]string{
	ui.Italian: {
		"title":               "I tuoi accessi",
		"hello":               "Qui vedi dove hai effettuato l'accesso ai servizi INPS e puoi chiudere gli accessi che non riconosci.",
		"sessions":            "Accessi aperti",
		"sessions_none":       "Non hai altri accessi aperti.",
		"this":                "Questo browser",
		"method":              "Credenziale",
		"level":               "Livello",
		"started":             "Iniziato",
		"expires":             "Scade",
		"ip":                  "Indirizzo IP",
		"browser":             "Browser",
		"services":            "Servizi usati",
		"no_services":         "Nessuno",
		"end":                 "Chiudi questo accesso",
		"end_all":             "Chiudi tutti gli accessi, compreso questo",
		"end_all_hint":        "Se non riconosci un accesso, chiudili tutti e cambia il PIN.",
		"logins":              "Accessi recenti",
		"when":                "Data e ora",
		"service":             "Servizio",
		"logout":              "Esci",
		"ended_one":           "L'accesso è stato chiuso. I servizi che lo usavano sono stati avvisati.",
		"ended_none":          "Quell'accesso non è più aperto.",
		"ended_title":         "Accessi chiusi",
		"ended_text":          "Gli accessi sono stati chiusi e i servizi che li usavano sono stati avvisati.",
		"again":               "Accedi di nuovo",
		"error_title":         "Si è verificato un problema",
		"error_text":          "Non è stato possibile completare l'operazione. Riprova tra qualche minuto.",
		"csrf_text":           "La richiesta non è valida. Torna alla pagina dei tuoi accessi e riprova.",
		"notfound_title":      "Pagina non trovata",
		"notfound_text":       "La pagina richiesta non esiste.",
		"back":                "Torna ai tuoi accessi",
		"level_consultazione": "consultazione",
		"level_dispositivo":   "dispositivo",
		"unknown":             "sconosciuto",
		"caption_sessions":    "Accessi aperti: credenziale, livello, inizio, scadenza, indirizzo, browser e servizi",
		"caption_logins":      "Accessi recenti: data, credenziale, livello, servizio, indirizzo e browser",
	},
	ui.English: {
		"title":               "Your logins",
		"hello":               "Here you see where you are logged in to INPS services, and you can end any login you do not recognise.",
		"sessions":            "Open logins",
		"sessions_none":       "You have no other open logins.",
		"this":                "This browser",
		"method":              "Credential",
		"level":               "Level",
		"started":             "Started",
		"expires":             "Expires",
		"ip":                  "IP address",
		"browser":             "Browser",
		"services":            "Services used",
		"no_services":         "None",
		"end":                 "End this login",
		"end_all":             "End every login, this one included",
		"end_all_hint":        "If you do not recognise a login, end them all and change your PIN.",
		"logins":              "Recent logins",
		"when":                "Date and time",
		"service":             "Service",
		"logout":              "Log out",
		"ended_one":           "The login has been ended. The services that used it have been told.",
		"ended_none":          "That login is no longer open.",
		"ended_title":         "Logins ended",
		"ended_text":          "Your logins have been ended and the services that used them have been told.",
		"again":               "Log in again",
		"error_title":         "Something went wrong",
		"error_text":          "The operation could not be completed. Please try again in a few minutes.",
		"csrf_text":           "The request is not valid. Go back to the page of your logins and try again.",
		"notfound_title":      "Page not found",
		"notfound_text":       "The page you asked for does not exist.",
		"back":                "Back to your logins",
		"level_consultazione": "consultazione (read only)",
		"level_dispositivo":   "dispositivo (full)",
		"unknown":             "unknown",
		"caption_sessions":    "Open logins: credential, level, start, expiry, address, browser and services",
		"caption_logins":      "Recent logins: date, credential, level, service, address and browser",
	},
}
