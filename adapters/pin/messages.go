package pin

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/ponte-id/ponte/storage"
)

// message is the text of a notification, {{secret}} standing for the sealed part.
type message struct{ subject, body string }

var (
	msgFirstHalf = message{
		"PIN INPS: prima parte",
		"Gentile cittadino, ecco la prima parte (8 caratteri) del suo PIN INPS: {{secret}}\n" +
			"La seconda parte le arriverà per posta all'indirizzo di residenza. Al primo accesso le sarà chiesto di scegliere un nuovo PIN.",
	}
	msgSecondHalf = message{
		"PIN INPS: seconda parte",
		"Gentile cittadino, ecco la seconda parte (8 caratteri) del suo PIN INPS: {{secret}}\n" +
			"Unisca le due parti per il primo accesso.",
	}
	msgRecoveryLink = message{
		"PIN INPS: ripristino",
		"Gentile cittadino, per ripristinare il suo PIN INPS apra questo collegamento entro pochi minuti: {{secret}}\n" +
			"Se non ha chiesto lei il ripristino, ignori questo messaggio.",
	}
	msgProvisionalFirst = message{
		"PIN INPS: nuovo PIN provvisorio (1/2)",
		"Prima parte del PIN provvisorio: {{secret}}. La seconda parte arriva per email o PEC.",
	}
	msgProvisionalSecond = message{
		"PIN INPS: nuovo PIN provvisorio (2/2)",
		"Seconda parte del PIN provvisorio: {{secret}}. Al primo accesso le sarà chiesto di scegliere un nuovo PIN.",
	}
	msgExistingWarning = message{
		"PIN INPS: richiesta per il suo codice fiscale",
		"È stata presentata una richiesta di PIN per il suo codice fiscale, che ha già un PIN attivo. " +
			"Se ha dimenticato il PIN usi il ripristino; se non è stato lei, contatti l'INPS.",
	}
	msgPendingWarning = message{
		"PIN INPS: richiesta con dati diversi da quelli in archivio",
		"Gentile cittadino, è stata presentata una richiesta di PIN per il suo codice fiscale con dati (indirizzo, contatti o " +
			"anagrafica) diversi da quelli che risultano all'INPS. Nessun PIN è stato rilasciato e i suoi dati non sono cambiati: " +
			"un operatore la richiamerà per verificare la richiesta prima di qualsiasi rilascio. Se non è stato lei, lo dica " +
			"all'operatore o contatti l'INPS; il suo PIN attuale resta valido.",
	}
	msgReplacementFirst = message{
		"PIN INPS: revoca richiesta, prima parte del nuovo PIN",
		"Gentile cittadino, è stata richiesta online la revoca del suo PIN. Ecco la prima parte (8 caratteri) del nuovo PIN: {{secret}}\n" +
			"La seconda parte le arriverà per posta all'indirizzo di residenza in archivio. Il PIN attuale resta valido finché non " +
			"userà il nuovo: al primo accesso con i 16 caratteri del nuovo PIN, quello attuale sarà revocato, tutte le sessioni " +
			"saranno chiuse e le sarà chiesto di scegliere un PIN personale. Se non ha chiesto lei la revoca, ignori questo messaggio " +
			"e continui a usare il PIN attuale.",
	}
	msgReplacementSecond = message{
		"PIN INPS: revoca richiesta, seconda parte del nuovo PIN",
		"Gentile cittadino, ecco la seconda parte (8 caratteri) del nuovo PIN richiesto con la revoca online: {{secret}}\n" +
			"Unisca le due parti per il primo accesso: il PIN precedente sarà revocato in quel momento. Se non ha chiesto lei " +
			"la revoca, ignori questa lettera e continui a usare il PIN attuale.",
	}
	msgConversionDone = message{
		"PIN INPS: richiesta di PIN dispositivo",
		"La sua richiesta di conversione del PIN in PIN dispositivo è stata esaminata: {{secret}}",
	}
)

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

// sendHalf queues a message with a sealed secret; call it inside the event's transaction.
func (s *Service) sendHalf(ctx context.Context, a storage.PINAccount, channel, secret string, m message) error {
	to := recipient(a, channel)
	if to == "" {
		return fmt.Errorf("pin: no %s contact on record", channel)
	}
	id := base64.RawURLEncoding.EncodeToString(randomBytes(16))
	msg := storage.Message{
		ID: id, Channel: channel, To: to, Subject: m.subject, Body: m.body,
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

// notifyOnRecord queues msg (with no secret) to the first contact on record
// among email, PEC and mobile; call it inside the event's transaction. A
// citizen with none of them has nowhere to be told.
func (s *Service) notifyOnRecord(ctx context.Context, a storage.PINAccount, m message) error {
	for _, channel := range []string{"email", "pec", "sms"} {
		if recipient(a, channel) != "" {
			return s.sendHalf(ctx, a, channel, "", m)
		}
	}
	return nil
}

// warnOnRecord tells the contacts on record of cf about a request they may not
// have made; a failure is only logged.
func (s *Service) warnOnRecord(ctx context.Context, cf string, m message) {
	a, err := s.store.GetPINAccount(ctx, cf)
	if err == nil {
		err = s.notifyOnRecord(ctx, a, m)
	}
	if err != nil {
		s.log.WarnContext(ctx, "warning the citizen on record failed", "cf", Mask(cf), "err", err)
	}
}
