package pin

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/ponte-id/ponte/storage"
)

// message is the text of a notification in one language: {{secret}} stands
// for the sealed part (filled in at delivery), {name} for a value filled in
// when it is queued (a page's address, a number of minutes, a reason).
type message struct{ subject, body string }

// letter is a notification as INPS writes it to a citizen, in Italian and in
// English; the citizen gets it in the language of the page they used
// (WithLocale), Italian otherwise.
type letter struct{ it, en message }

func (l letter) in(loc string) message {
	if loc == "en" {
		return l.en
	}
	return l.it
}

// signature closes every email, PEC and letter (not an SMS).
var signature = map[string]string{
	"it": "\n\nINPS - Istituto Nazionale della Previdenza Sociale\nContact center: 803 164 da rete fissa (gratuito), 06 164 164 da cellulare o dall'estero (+39 06 164 164).",
	"en": "\n\nINPS - Italian National Social Security Institute\nContact center: 803 164 from an Italian landline (free), 06 164 164 from a mobile, +39 06 164 164 from abroad.",
}

const (
	dearIT = "Gentile cittadina, gentile cittadino,\n"
	dearEN = "Dear citizen,\n"
	// neverIT and neverEN end every message that carries part of a PIN.
	neverIT = "\nNon comunichi il PIN a nessuno: l'INPS non lo chiede mai per telefono o per email."
	neverEN = "\nNever share your PIN: INPS never asks for it by phone or email."
)

var (
	msgFirstHalf = letter{
		message{"PIN INPS: prima parte",
			dearIT + "ecco la prima parte (8 caratteri) del suo PIN INPS: {{secret}}\n" +
				"La seconda parte le arriverà per posta all'indirizzo di residenza. Quando le avrà entrambe, entri nei servizi " +
				"online INPS ({login}) con il codice fiscale e i 16 caratteri, senza spazi: al primo accesso sceglierà il suo " +
				"PIN personale di 8 caratteri." + neverIT},
		message{"INPS PIN: first half",
			dearEN + "here is the first half (8 characters) of your INPS PIN: {{secret}}\n" +
				"The second half will reach you by post at your residence. When you have both, log in to the INPS online " +
				"services ({login}) with your tax code and the 16 characters, without spaces: at the first access you will " +
				"choose your personal 8-character PIN." + neverEN},
	}
	msgFirstHalfByPost = letter{
		message{"PIN INPS: prima parte, da attivare",
			dearIT + "ecco la prima parte (8 caratteri) del suo PIN INPS: {{secret}}\n" +
				"Prima di usarlo deve attivare il PIN: vada alla pagina {activate} e inserisca il codice fiscale, questa prima " +
				"parte e i dati della sua tessera sanitaria (il numero di 20 cifre sul retro e la scadenza).\n" +
				"La seconda parte le arriverà con un'altra lettera. Dopo l'attivazione entri con il codice fiscale e i 16 " +
				"caratteri, senza spazi: al primo accesso sceglierà il suo PIN personale di 8 caratteri." + neverIT},
		message{"INPS PIN: first half, to be activated",
			dearEN + "here is the first half (8 characters) of your INPS PIN: {{secret}}\n" +
				"Before you can use it you must activate the PIN: go to {activate} and enter your tax code, this first half " +
				"and your health card data (the 20-digit number on the back and the expiry date).\n" +
				"The second half will reach you in another letter. Once the PIN is active, log in with your tax code and the " +
				"16 characters, without spaces: at the first access you will choose your personal 8-character PIN." + neverEN},
	}
	msgSecondHalf = letter{
		message{"PIN INPS: seconda parte",
			dearIT + "ecco la seconda parte (8 caratteri) del suo PIN INPS: {{secret}}\n" +
				"La prima parte le è arrivata al contatto che ha scelto. Entri nei servizi online INPS ({login}) con il codice " +
				"fiscale e le due parti unite (16 caratteri, senza spazi): al primo accesso sceglierà il suo PIN personale di 8 " +
				"caratteri." + neverIT},
		message{"INPS PIN: second half",
			dearEN + "here is the second half (8 characters) of your INPS PIN: {{secret}}\n" +
				"The first half reached you at the contact you chose. Log in to the INPS online services ({login}) with your " +
				"tax code and the two halves joined (16 characters, without spaces): at the first access you will choose your " +
				"personal 8-character PIN." + neverEN},
	}
	msgSecondHalfByPost = letter{
		message{"PIN INPS: seconda parte",
			dearIT + "ecco la seconda parte (8 caratteri) del suo PIN INPS: {{secret}}\n" +
				"La prima parte le arriva con un'altra lettera. Prima di entrare attivi il PIN alla pagina {activate}, con il " +
				"codice fiscale, la prima parte e i dati della tessera sanitaria; poi entri con il codice fiscale e le due parti " +
				"unite (16 caratteri, senza spazi)." + neverIT},
		message{"INPS PIN: second half",
			dearEN + "here is the second half (8 characters) of your INPS PIN: {{secret}}\n" +
				"The first half reaches you in another letter. Before logging in, activate the PIN at {activate} with your tax " +
				"code, the first half and your health card data; then log in with your tax code and the two halves joined (16 " +
				"characters, without spaces)." + neverEN},
	}
	msgRecoveryLink = letter{
		message{"PIN INPS: ripristino",
			dearIT + "abbiamo ricevuto una richiesta di ripristino del suo PIN INPS. Per ricevere un nuovo PIN provvisorio apra " +
				"questo collegamento entro {minutes} minuti e confermi: {{secret}}\n" +
				"Il collegamento si può usare una sola volta. Se non ha chiesto lei il ripristino, ignori questo messaggio: " +
				"il suo PIN resta valido."},
		message{"INPS PIN: recovery",
			dearEN + "we received a request to recover your INPS PIN. To receive a new provisional PIN, open this link within " +
				"{minutes} minutes and confirm: {{secret}}\n" +
				"The link works once. If you did not ask for a recovery, ignore this message: your PIN keeps working."},
	}
	msgProvisionalFirst = letter{
		message{"PIN INPS: nuovo PIN provvisorio (1/2)",
			"INPS: prima parte del suo nuovo PIN provvisorio: {{secret}}. La seconda parte le arriva con un altro messaggio. " +
				"Entri con il codice fiscale e i 16 caratteri: le sarà chiesto di scegliere un nuovo PIN. Non comunichi il PIN a nessuno."},
		message{"INPS PIN: new provisional PIN (1/2)",
			"INPS: first half of your new provisional PIN: {{secret}}. The second half comes in another message. " +
				"Log in with your tax code and the 16 characters: you will be asked to choose a new PIN. Never share your PIN."},
	}
	msgProvisionalSecond = letter{
		message{"PIN INPS: nuovo PIN provvisorio (2/2)",
			dearIT + "ecco la seconda parte del suo nuovo PIN provvisorio: {{secret}}\n" +
				"La prima parte le è arrivata con un altro messaggio. Entri nei servizi online INPS ({login}) con il codice " +
				"fiscale e le due parti unite (16 caratteri, senza spazi): le sarà chiesto di scegliere un nuovo PIN personale." + neverIT},
		message{"INPS PIN: new provisional PIN (2/2)",
			dearEN + "here is the second half of your new provisional PIN: {{secret}}\n" +
				"The first half came in another message. Log in to the INPS online services ({login}) with your tax code and " +
				"the two halves joined (16 characters, without spaces): you will be asked to choose a new personal PIN." + neverEN},
	}
	msgExistingWarning = letter{
		message{"PIN INPS: richiesta per il suo codice fiscale",
			dearIT + "abbiamo ricevuto una richiesta di PIN per il suo codice fiscale, che ha già un PIN: non è stato rilasciato " +
				"nessun nuovo PIN. Se ha dimenticato il PIN, lo ripristini alla pagina {recover}; se ha perso il PIN iniziale " +
				"o non ha più i contatti dati alla richiesta, lo revochi alla pagina {revoke}. Se non è stato lei a fare la " +
				"richiesta, chiami il contact center INPS."},
		message{"INPS PIN: a request for your tax code",
			dearEN + "we received a PIN request for your tax code, which already has a PIN: no new PIN was issued. If you forgot " +
				"your PIN, recover it at {recover}; if you lost the initial PIN or no longer have the contacts you gave, revoke " +
				"it at {revoke}. If you did not make the request, call the INPS contact center."},
	}
	msgPendingWarning = letter{
		message{"PIN INPS: richiesta con dati diversi da quelli in archivio",
			dearIT + "abbiamo ricevuto una richiesta di PIN per il suo codice fiscale con dati (indirizzo, contatti o dati " +
				"anagrafici) diversi da quelli che risultano all'INPS. Nessun PIN è stato rilasciato e i suoi dati non sono " +
				"cambiati: un operatore la richiamerà per verificare la richiesta prima di qualsiasi rilascio. Se non è stato " +
				"lei, lo dica all'operatore o chiami il contact center; il suo PIN attuale resta valido."},
		message{"INPS PIN: a request with data that differ from our records",
			dearEN + "we received a PIN request for your tax code with data (address, contacts or personal details) that differ " +
				"from our records. No PIN was issued and your data have not changed: an operator will call you back to verify " +
				"the request before anything is issued. If it was not you, tell the operator or call the contact center; your " +
				"current PIN keeps working."},
	}
	msgPendingNoPIN = letter{
		message{"PIN INPS: richiesta di PIN per il suo codice fiscale",
			dearIT + "abbiamo ricevuto una richiesta di PIN INPS per il suo codice fiscale. Nessun PIN è stato rilasciato: " +
				"un operatore richiamerà il richiedente per verificarne l'identità prima di qualsiasi rilascio. Se non è stato " +
				"lei, chiami il contact center. Può continuare ad accedere ai servizi INPS con SPID o CNS."},
		message{"INPS PIN: a PIN request for your tax code",
			dearEN + "we received a request for an INPS PIN for your tax code. No PIN was issued: an operator will call the " +
				"applicant back to verify their identity before anything is issued. If it was not you, call the contact center. " +
				"You can keep logging in to INPS services with SPID or CNS."},
	}
	msgReplacementFirst = letter{
		message{"PIN INPS: revoca richiesta, prima parte del nuovo PIN",
			dearIT + "è stata richiesta online la revoca del suo PIN. Ecco la prima parte (8 caratteri) del nuovo PIN: {{secret}}\n" +
				"La seconda parte le arriverà per posta all'indirizzo di residenza in archivio. Il PIN attuale resta valido " +
				"finché non userà il nuovo: al primo accesso con i 16 caratteri del nuovo PIN quello attuale sarà revocato, " +
				"tutte le sessioni saranno chiuse e le sarà chiesto di scegliere un PIN personale. Se non ha chiesto lei la " +
				"revoca, ignori questo messaggio e continui a usare il PIN attuale." + neverIT},
		message{"INPS PIN: revocation requested, first half of the new PIN",
			dearEN + "a revocation of your PIN was requested online. Here is the first half (8 characters) of the new PIN: {{secret}}\n" +
				"The second half will reach you by post at the residence on record. The current PIN keeps working until you use " +
				"the new one: the first login with the 16 characters of the new PIN revokes the current one, ends every session " +
				"and asks you to choose a personal PIN. If you did not ask for the revocation, ignore this message and keep " +
				"using your current PIN." + neverEN},
	}
	msgReplacementSecond = letter{
		message{"PIN INPS: revoca richiesta, seconda parte del nuovo PIN",
			dearIT + "ecco la seconda parte (8 caratteri) del nuovo PIN richiesto con la revoca online: {{secret}}\n" +
				"Unisca le due parti per il primo accesso ({login}): il PIN precedente sarà revocato in quel momento. Se non ha " +
				"chiesto lei la revoca, ignori questa lettera e continui a usare il PIN attuale." + neverIT},
		message{"INPS PIN: revocation requested, second half of the new PIN",
			dearEN + "here is the second half (8 characters) of the new PIN requested with the online revocation: {{secret}}\n" +
				"Join the two halves for the first access ({login}): the previous PIN is revoked at that moment. If you did not " +
				"ask for the revocation, ignore this letter and keep using your current PIN." + neverEN},
	}
	msgConversionApproved = letter{
		message{"PIN INPS: il suo PIN è ora dispositivo",
			dearIT + "la sua richiesta di conversione del PIN ordinario in PIN dispositivo è stata accolta. Da ora il suo PIN è " +
				"dispositivo: con lo stesso PIN può usare anche i servizi che lo richiedono, come le domande di prestazioni. " +
				"Non deve fare nient'altro."},
		message{"INPS PIN: your PIN is now dispositivo",
			dearEN + "your request to convert your ordinary PIN to a dispositivo PIN has been approved. Your PIN is now " +
				"dispositivo: with the same PIN you can also use the services that require it, such as applications for " +
				"benefits. There is nothing else you need to do."},
	}
	msgConversionRejected = letter{
		message{"PIN INPS: richiesta di PIN dispositivo non accolta",
			dearIT + "la sua richiesta di conversione del PIN ordinario in PIN dispositivo non è stata accolta, per questo " +
				"motivo: {reason}\n" +
				"Può presentare una nuova richiesta alla pagina {convert}, con il modulo firmato e la copia fronte e retro di " +
				"un documento di identità valido, oppure rivolgersi a una sede INPS. Il suo PIN ordinario resta valido."},
		message{"INPS PIN: dispositivo PIN request not approved",
			dearEN + "your request to convert your ordinary PIN to a dispositivo PIN was not approved, for this reason: " +
				"{reason}\n" +
				"You can send a new request at {convert}, with the signed form and a front and back copy of a valid identity " +
				"document, or go to an INPS office. Your ordinary PIN keeps working."},
	}
)

// citizenKey carries, in a context, what the web layer knows of the citizen
// a call acts for: the language of their page and their pending login.
type citizenKey struct{}

type citizen struct{ locale, challenge string }

// WithLocale returns ctx carrying the citizen's language ("it" or "en"): the
// messages that the calls made with it send the citizen are in that
// language. Without it they are in Italian.
func WithLocale(ctx context.Context, locale string) context.Context {
	c := citizenOf(ctx)
	c.locale = locale
	return context.WithValue(ctx, citizenKey{}, c)
}

// withChallenge returns ctx carrying the citizen's pending login, so that a
// link sent to them (a recovery link) brings them back to it.
func withChallenge(ctx context.Context, challenge string) context.Context {
	c := citizenOf(ctx)
	c.challenge = challenge
	return context.WithValue(ctx, citizenKey{}, c)
}

func citizenOf(ctx context.Context) citizen {
	c, _ := ctx.Value(citizenKey{}).(citizen)
	return c
}

func localeOf(ctx context.Context) string {
	if citizenOf(ctx).locale == "en" {
		return "en"
	}
	return "it"
}

// pageLink is the address of one of the PIN's pages for a message to the
// citizen: absolute, in their language.
func (s *Service) pageLink(loc, page string) string {
	u := s.cfg.BaseURL + s.pages() + page
	if loc == "en" {
		u += "?lang=en"
	}
	return u
}

// recipient returns the address of a contact channel on the account.
func recipient(a storage.PINAccount, channel string) string {
	switch channel {
	case "sms":
		return a.Mobile
	case "email":
		return a.Email
	case "pec":
		return a.PEC
	case "post":
		r := a.Residence
		return strings.TrimSpace(fmt.Sprintf("%s %s, %s %s, %s %s (%s)", a.GivenName, a.FamilyName,
			r.Street, r.Number, r.PostalCode, r.City, strings.Trim(r.Province+" "+r.Country, " ")))
	}
	return ""
}

// sendHalf queues a message with a sealed secret, in the citizen's language
// (WithLocale), the PIN's pages filled in ({login}, {activate}, {recover},
// {revoke}, {convert}) and the given values (pairs of {name} and value);
// call it inside the event's transaction.
func (s *Service) sendHalf(ctx context.Context, a storage.PINAccount, channel, secret string, l letter, values ...string) error {
	to := recipient(a, channel)
	if to == "" {
		return fmt.Errorf("pin: no %s contact on record", channel)
	}
	loc := localeOf(ctx)
	m := l.in(loc)
	pairs := append([]string{
		"{login}", s.cfg.BaseURL, "{activate}", s.pageLink(loc, "/activate"), "{recover}", s.pageLink(loc, "/recover"),
		"{revoke}", s.pageLink(loc, "/revoke"), "{convert}", s.pageLink(loc, "/convert"),
	}, values...)
	body := strings.NewReplacer(pairs...).Replace(m.body)
	if channel != "sms" {
		body += signature[loc]
	}
	id := base64.RawURLEncoding.EncodeToString(randomBytes(16))
	msg := storage.Message{
		ID: id, Channel: channel, To: to, Subject: m.subject, Body: body,
		FiscalNumber: a.FiscalNumber, CreatedAt: s.now().UTC(), NextAttemptAt: s.now().UTC(),
	}
	if secret != "" {
		sealed, err := s.box.Seal([]byte(secret), []byte("outbox:"+id))
		if err != nil {
			return err
		}
		msg.Secret = sealed
	}
	return s.store.Enqueue(ctx, msg)
}

// notifyOnRecord queues l (with no secret) to the first contact on record
// among email, PEC and mobile; call it inside the event's transaction. A
// citizen with none of them has nowhere to be told.
func (s *Service) notifyOnRecord(ctx context.Context, a storage.PINAccount, l letter, values ...string) error {
	for _, channel := range []string{"email", "pec", "sms"} {
		if recipient(a, channel) != "" {
			return s.sendHalf(ctx, a, channel, "", l, values...)
		}
	}
	return nil
}

// warnOnRecord tells the contacts on record of cf about a request they may not
// have made; a failure is only logged.
func (s *Service) warnOnRecord(ctx context.Context, cf string, l letter) {
	a, err := s.store.GetPINAccount(ctx, cf)
	if err == nil {
		err = s.notifyOnRecord(ctx, a, l)
	}
	if err != nil {
		s.log.WarnContext(ctx, "warning the citizen on record failed", "cf", Mask(cf), "err", err)
	}
}
