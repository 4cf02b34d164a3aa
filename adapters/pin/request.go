package pin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"

	"github.com/ponte-id/ponte/adapters/pin/codicefiscale"
	"github.com/ponte-id/ponte/storage"
)

// Channels a PIN request arrives by.
const (
	ChannelOnline        = "online"
	ChannelContactCenter = "contact_center"
	ChannelBranch        = "sede"
)

// Request is the data of a PIN request (SPEC §3), whoever types it in.
type Request struct {
	FiscalNumber string `json:"fiscal_number"`
	GivenName    string `json:"given_name"`
	FamilyName   string `json:"family_name"`
	// Gender is M or F; Birthdate YYYY-MM-DD; both must agree with the codice fiscale.
	Gender          string `json:"gender"`
	Birthdate       string `json:"birthdate"`
	BirthPlace      string `json:"birth_place"`
	ResidenceAbroad bool   `json:"residence_abroad"`
	// HasItalianID: the citizen holds an Italian identity document (and so can get SPID).
	HasItalianID   bool            `json:"has_italian_id"`
	Residence      storage.Address `json:"residence"`
	Mobile         string          `json:"mobile"`
	Phone          string          `json:"phone"`
	Email          string          `json:"email"`
	PEC            string          `json:"pec"`
	PreferredPhone string          `json:"preferred_phone"`
	CallbackSlot   string          `json:"callback_slot"`
	// FirstHalfVia is where the first 8 characters go: sms, email, pec, or post
	// (then the PIN waits for activation with the health-card data).
	FirstHalfVia string `json:"first_half_via"`
}

// FieldError names a request field that is wrong.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Is makes every FieldError match ErrInvalidRequest.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidRequest }

var (
	phoneShape = regexp.MustCompile(`^\+?[0-9]{8,15}$`) // as the SMS gateway takes them
	capShape   = regexp.MustCompile(`^[0-9]{5}$`)
)

// normalize trims the request and upper-cases the codice fiscale.
func (r Request) normalize() Request {
	t := strings.TrimSpace
	r.FiscalNumber = codicefiscale.Normalize(r.FiscalNumber)
	r.GivenName, r.FamilyName, r.BirthPlace = t(r.GivenName), t(r.FamilyName), t(r.BirthPlace)
	r.Gender, r.Birthdate = strings.ToUpper(t(r.Gender)), t(r.Birthdate)
	r.Mobile, r.Phone, r.PreferredPhone = compactPhone(r.Mobile), compactPhone(r.Phone), compactPhone(r.PreferredPhone)
	r.Email, r.PEC = strings.ToLower(t(r.Email)), strings.ToLower(t(r.PEC))
	r.CallbackSlot, r.FirstHalfVia = t(r.CallbackSlot), strings.ToLower(t(r.FirstHalfVia))
	a := &r.Residence
	a.Street, a.Number, a.PostalCode, a.City, a.Province, a.Country = t(a.Street), t(a.Number), t(a.PostalCode), t(a.City), strings.ToUpper(t(a.Province)), t(a.Country)
	return r
}

func compactPhone(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '.' || r == '/' {
			return -1
		}
		return r
	}, s)
}

// validate reports every wrong field at once (as FieldErrors joined).
func (r Request) validate(now time.Time, online bool) error {
	var errs []error
	bad := func(field, reason string) { errs = append(errs, &FieldError{field, reason}) }
	code, err := codicefiscale.Parse(r.FiscalNumber)
	if err != nil {
		bad("fiscal_number", "not a valid codice fiscale")
	}
	if r.GivenName == "" || len(r.GivenName) > 100 {
		bad("given_name", "required")
	}
	if r.FamilyName == "" || len(r.FamilyName) > 100 {
		bad("family_name", "required")
	}
	if r.Gender != "M" && r.Gender != "F" {
		bad("gender", "M or F")
	} else if err == nil && code.Female != (r.Gender == "F") {
		bad("gender", "does not match the codice fiscale")
	}
	if bd, perr := time.Parse(time.DateOnly, r.Birthdate); perr != nil || bd.After(now) {
		bad("birthdate", "a date in the past, YYYY-MM-DD")
	} else if err == nil && !code.Birthdate(now).Equal(bd) {
		bad("birthdate", "does not match the codice fiscale")
	}
	if r.BirthPlace == "" {
		bad("birth_place", "required")
	}
	a := r.Residence
	if a.Street == "" || a.Number == "" || a.City == "" {
		bad("residence", "street, number and city are required")
	}
	if r.ResidenceAbroad {
		if a.Country == "" || strings.EqualFold(a.Country, "italia") || strings.EqualFold(a.Country, "italy") {
			bad("residence_country", "the country of residence abroad is required")
		}
	} else if !capShape.MatchString(a.PostalCode) || len(a.Province) != 2 {
		bad("residence", "an Italian address needs a 5-digit CAP and a 2-letter province")
	}
	if r.Mobile == "" && r.Phone == "" {
		bad("phone", "at least one phone number is required")
	}
	for field, v := range map[string]string{"mobile": r.Mobile, "phone": r.Phone, "preferred_phone": r.PreferredPhone} {
		if v != "" && !phoneShape.MatchString(v) {
			bad(field, "not a phone number")
		}
	}
	if _, perr := mail.ParseAddress(r.Email); r.Email == "" || perr != nil {
		bad("email", "a valid email address is required")
	}
	if _, perr := mail.ParseAddress(r.PEC); r.PEC != "" && perr != nil {
		bad("pec", "not a valid address")
	}
	if online && (r.PreferredPhone == "" || r.CallbackSlot == "") {
		bad("preferred_phone", "the preferred phone and time slot for a callback are required")
	}
	switch r.FirstHalfVia {
	case "sms":
		if r.Mobile == "" {
			bad("first_half_via", "SMS needs a mobile number")
		}
	case "pec":
		if r.PEC == "" {
			bad("first_half_via", "PEC needs a PEC address")
		}
	case "email", "post":
	default:
		bad("first_half_via", "sms, email, pec or post")
	}
	return errors.Join(errs...)
}

// RequestPIN registers a request made online by the citizen or by phone through
// a contact-center operator (who validates the data while on the call), and
// issues an ordinary PIN: the first half to the chosen contact, the second by
// post. After the cutoff only residents abroad without an Italian identity
// document may ask. It returns the first half for the operator to read out on
// the phone (empty online). For an existing live PIN, online, it answers as if
// registered and warns the contacts on record: the form reveals no account.
func (s *Service) RequestPIN(ctx context.Context, req Request, channel, operator string) (firstHalf string, err error) {
	if channel != ChannelOnline && channel != ChannelContactCenter {
		return "", fmt.Errorf("pin: request channel %q", channel)
	}
	if channel == ChannelContactCenter && operator == "" {
		return "", errors.New("pin: a contact-center request names its operator")
	}
	req = req.normalize()
	now := s.now()
	if err := req.validate(now, channel == ChannelOnline); err != nil {
		return "", err
	}
	if !now.Before(s.cfg.RequestCutoff) && (!req.ResidenceAbroad || req.HasItalianID) {
		return "", ErrPolicy
	}
	pin16, err := s.issue(ctx, req, channel, operator, false)
	if errors.Is(err, ErrExists) && channel == ChannelOnline {
		s.warnExisting(ctx, req.FiscalNumber)
		return "", nil
	}
	if err != nil || channel == ChannelOnline {
		return "", err
	}
	return pin16[:8], nil
}

// IssueAtBranch is form MV35: an operator at a branch office has checked the
// citizen's identity document and hands over a PIN that is active and
// dispositivo at once. It returns the 16 characters for the sealed envelope.
// A live PIN is replaced (the citizen is present in person).
func (s *Service) IssueAtBranch(ctx context.Context, req Request, operator, document string) (string, error) {
	if operator == "" || strings.TrimSpace(document) == "" {
		return "", errors.New("pin: MV35 needs the operator and the identity document checked")
	}
	req = req.normalize()
	req.FirstHalfVia = "email" // nothing is sent: the envelope carries all 16 characters
	if err := req.validate(s.now(), false); err != nil {
		return "", err
	}
	return s.issue(ctx, req, ChannelBranch, operator+" doc:"+document, true)
}

// pinAlphabet has no 0/O or 1/I, so a printed PIN reads unambiguously; 32
// symbols, so a random byte maps without bias.
const pinAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// newPIN16 returns a random 16-character initial or provisional PIN (80 bits).
func newPIN16() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = pinAlphabet[b[i]%32]
	}
	return string(b)
}

// issue creates (or, after revocation, replaces) the account with a new 16-character
// PIN and queues its halves, in one transaction with the audit events.
func (s *Service) issue(ctx context.Context, req Request, channel, operator string, branch bool) (string, error) {
	pin16 := newPIN16()
	hash, err := s.hash.Hash(ctx, pin16)
	if err != nil {
		return "", err
	}
	now := s.now().UTC()
	acct := storage.PINAccount{
		FiscalNumber: req.FiscalNumber, GivenName: req.GivenName, FamilyName: req.FamilyName,
		Gender: req.Gender, Birthdate: req.Birthdate, BirthPlace: req.BirthPlace,
		ResidenceAbroad: req.ResidenceAbroad, Residence: req.Residence,
		Mobile: req.Mobile, Phone: req.Phone, Email: req.Email, PEC: req.PEC,
		PreferredPhone: req.PreferredPhone, CallbackSlot: req.CallbackSlot,
		Hash: hash, Status: storage.PINActive, Dispositivo: branch, MustChange: true,
		ChangedAt: now, Channel: channel, Operator: operator, CreatedAt: now, UpdatedAt: now,
	}
	if req.FirstHalfVia == "post" && !branch {
		acct.Status = storage.PINPending
		if acct.ActivationHash, err = s.hash.Hash(ctx, pin16[:8]); err != nil {
			return "", err
		}
	}
	callback := false
	err = s.inTx(ctx, func(ctx context.Context) error {
		old, err := s.store.GetPINAccount(ctx, req.FiscalNumber)
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return err
		case old.Status != storage.PINRevoked && old.Status != storage.PINCallback && !branch:
			return ErrExists
		case !branch && channel == ChannelOnline && old.Residence != (storage.Address{}) && !sameAddress(old.Residence, req.Residence):
			// SPEC §3: a residence other than the one on record waits for a callback.
			callback = true
			acct.Status, acct.Hash, acct.ActivationHash, acct.Residence = storage.PINCallback, nil, nil, req.Residence
		}
		if err := s.store.ReplacePINAccount(ctx, acct); err != nil {
			return err
		}
		if err := s.appendAudit(ctx, acct.FiscalNumber, "requested", channel, operator, ""); err != nil {
			return err
		}
		if callback {
			return s.appendAudit(ctx, acct.FiscalNumber, "callback_pending", channel, operator, "residence differs from the one on record")
		}
		if !branch {
			if err := s.sendHalf(ctx, acct, req.FirstHalfVia, pin16[:8], msgFirstHalf); err != nil {
				return err
			}
			if err := s.sendHalf(ctx, acct, "post", pin16[8:], msgSecondHalf); err != nil {
				return err
			}
		}
		return s.appendAudit(ctx, acct.FiscalNumber, "issued", channel, operator, issuedDetail(acct))
	})
	if err != nil || callback {
		return "", err
	}
	return pin16, nil
}

// sameAddress compares two residences as people type them.
func sameAddress(a, b storage.Address) bool {
	norm := func(s string) string { return strings.Join(strings.Fields(strings.ToUpper(s)), " ") }
	return norm(a.Street) == norm(b.Street) && norm(a.Number) == norm(b.Number) &&
		norm(a.PostalCode) == norm(b.PostalCode) && norm(a.City) == norm(b.City) && norm(a.Country) == norm(b.Country)
}

// ConfirmCallback records the outcome of an operator's callback to a citizen
// whose request waits for it: confirmed, the initial PIN is issued to the
// contacts and residence given (first half by SMS or email, second by post);
// refused, the request is dropped.
func (s *Service) ConfirmCallback(ctx context.Context, cf, operator string, confirmed bool) error {
	if operator == "" {
		return errors.New("pin: a callback names its operator")
	}
	a, err := s.store.GetPINAccount(ctx, cf)
	if err != nil {
		return err
	}
	if a.Status != storage.PINCallback {
		return fmt.Errorf("pin: %s does not wait for a callback", Mask(cf))
	}
	if !confirmed {
		return s.inTx(ctx, func(ctx context.Context) error {
			err := s.store.UpdatePINAccount(ctx, cf, func(a storage.PINAccount) (storage.PINAccount, error) {
				a.Status = storage.PINRevoked
				return a, nil
			})
			if err != nil {
				return err
			}
			return s.appendAudit(ctx, cf, "callback_refused", ChannelContactCenter, operator, "")
		})
	}
	via := "email"
	if a.Mobile != "" {
		via = "sms"
	}
	req := Request{FiscalNumber: a.FiscalNumber, GivenName: a.GivenName, FamilyName: a.FamilyName, Gender: a.Gender,
		Birthdate: a.Birthdate, BirthPlace: a.BirthPlace, ResidenceAbroad: a.ResidenceAbroad, Residence: a.Residence,
		Mobile: a.Mobile, Phone: a.Phone, Email: a.Email, PEC: a.PEC, PreferredPhone: a.PreferredPhone,
		CallbackSlot: a.CallbackSlot, FirstHalfVia: via}
	if err := s.appendAudit(ctx, cf, "callback_confirmed", ChannelContactCenter, operator, ""); err != nil {
		return err
	}
	_, err = s.issue(ctx, req, ChannelContactCenter, operator, false)
	return err
}

func issuedDetail(a storage.PINAccount) string {
	if a.Dispositivo {
		return "dispositivo"
	}
	return "ordinario"
}

// Activate is for a citizen whose first half came by post: codice fiscale, the
// first half and the health card (tessera sanitaria) — its 20-digit number and
// expiry, checked for shape (no registry is reachable from here).
func (s *Service) Activate(ctx context.Context, cf, firstHalf, cardNumber, cardExpiry string) error {
	cf = codicefiscale.Normalize(cf)
	if !codicefiscale.Valid(cf) || len(firstHalf) != 8 || !validHealthCard(cardNumber, cardExpiry, s.now()) {
		return ErrBadCredentials
	}
	acct, err := s.store.GetPINAccount(ctx, cf)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	ok, _, _ := s.hash.Verify(ctx, acct.ActivationHash, strings.ToUpper(firstHalf))
	if !ok || acct.Status != storage.PINPending {
		return ErrBadCredentials
	}
	return s.inTx(ctx, func(ctx context.Context) error {
		err := s.store.UpdatePINAccount(ctx, cf, func(a storage.PINAccount) (storage.PINAccount, error) {
			a.Status, a.ActivationHash = storage.PINActive, nil
			return a, nil
		})
		if err != nil {
			return err
		}
		return s.appendAudit(ctx, cf, "activated", ChannelOnline, "", "")
	})
}

var cardShape = regexp.MustCompile(`^80380[0-9]{15}$`)

// validHealthCard checks a tessera sanitaria number (Italian cards start 80380)
// and that the card, expiring in the given month (YYYY-MM), has not expired.
func validHealthCard(number, expiry string, now time.Time) bool {
	if !cardShape.MatchString(compactPhone(number)) {
		return false
	}
	exp, err := time.Parse("2006-01", strings.TrimSpace(expiry))
	return err == nil && now.Before(exp.AddDate(0, 1, 0))
}
