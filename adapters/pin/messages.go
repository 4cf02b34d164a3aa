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

// warnExisting tells the contacts on record that someone asked for a PIN for
// their codice fiscale.
func (s *Service) warnExisting(ctx context.Context, cf string) {
	a, err := s.store.GetPINAccount(ctx, cf)
	if err == nil && a.Email != "" {
		err = s.sendHalf(ctx, a, "email", "", msgExistingWarning)
	}
	if err != nil {
		s.log.WarnContext(ctx, "warning an existing PIN holder failed", "cf", Mask(cf), "err", err)
	}
}
