package pin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ponte-id/ponte/internal/codicefiscale"
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

// FieldError names a request field that is wrong: Problem says how, as a
// word the pages turn into a sentence in the citizen's language (invalid,
// required, mismatch with the codice fiscale, ...); Reason says it in English
// for the operators' API and the log.
type FieldError struct {
	Field   string
	Problem string
	Reason  string
}

// The problems a FieldError names.
const (
	ProblemInvalid     = "invalid"
	ProblemRequired    = "required"
	ProblemMismatch    = "mismatch"     // disagrees with the codice fiscale
	ProblemItalian     = "italian"      // an Italian address without CAP or province
	ProblemNeedsMobile = "needs_mobile" // the first half by SMS without a mobile
	ProblemNeedsPEC    = "needs_pec"    // the first half by PEC without a PEC address
	ProblemTooLong     = "too_long"     // longer than any real value (the field's limit)
)

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
	bad := func(field, problem, reason string) { errs = append(errs, &FieldError{field, problem, reason}) }
	// Every field has a length no real value reaches: the record, the
	// letters and the operators' screens stay bounded.
	for _, f := range []struct {
		field, v string
		max      int
	}{
		{"given_name", r.GivenName, 100}, {"family_name", r.FamilyName, 100}, {"birth_place", r.BirthPlace, 100},
		{"street", r.Residence.Street, 200}, {"number", r.Residence.Number, 20}, {"postal_code", r.Residence.PostalCode, 16},
		{"city", r.Residence.City, 100}, {"province", r.Residence.Province, 40}, {"country", r.Residence.Country, 100},
		{"email", r.Email, 254}, {"pec", r.PEC, 254},
	} {
		if len(f.v) > f.max {
			bad(f.field, ProblemTooLong, fmt.Sprintf("at most %d bytes", f.max))
		}
	}
	if r.CallbackSlot != "" && !slices.Contains(CallbackSlots, r.CallbackSlot) {
		bad("callback_slot", ProblemInvalid, "one of "+strings.Join(CallbackSlots, ", "))
	}
	code, err := codicefiscale.Parse(r.FiscalNumber)
	if err != nil {
		bad("fiscal_number", ProblemInvalid, "not a valid codice fiscale")
	}
	if r.GivenName == "" {
		bad("given_name", ProblemRequired, "required")
	}
	if r.FamilyName == "" {
		bad("family_name", ProblemRequired, "required")
	}
	if r.Gender != "M" && r.Gender != "F" {
		bad("gender", ProblemInvalid, "M or F")
	} else if err == nil && code.Female != (r.Gender == "F") {
		bad("gender", ProblemMismatch, "does not match the codice fiscale")
	}
	if bd, perr := time.Parse(time.DateOnly, r.Birthdate); perr != nil || bd.After(now) {
		bad("birthdate", ProblemInvalid, "a date in the past, YYYY-MM-DD")
	} else if err == nil && !code.Birthdate(now).Equal(bd) {
		bad("birthdate", ProblemMismatch, "does not match the codice fiscale")
	}
	if r.BirthPlace == "" {
		bad("birth_place", ProblemRequired, "required")
	}
	a := r.Residence
	if a.Street == "" || a.Number == "" || a.City == "" {
		bad("residence", ProblemRequired, "street, number and city are required")
	}
	if r.ResidenceAbroad {
		if a.Country == "" || strings.EqualFold(a.Country, "italia") || strings.EqualFold(a.Country, "italy") {
			bad("residence_country", ProblemRequired, "the country of residence abroad is required")
		}
	} else if !capShape.MatchString(a.PostalCode) || len(a.Province) != 2 {
		bad("residence", ProblemItalian, "an Italian address needs a 5-digit CAP and a 2-letter province")
	}
	if r.Mobile == "" && r.Phone == "" {
		bad("phone", ProblemRequired, "at least one phone number is required")
	}
	for _, p := range []struct{ field, v string }{{"mobile", r.Mobile}, {"phone", r.Phone}, {"preferred_phone", r.PreferredPhone}} {
		if p.v != "" && !phoneShape.MatchString(p.v) {
			bad(p.field, ProblemInvalid, "not a phone number")
		}
	}
	if _, perr := mail.ParseAddress(r.Email); r.Email == "" || perr != nil {
		bad("email", ProblemInvalid, "a valid email address is required")
	}
	if _, perr := mail.ParseAddress(r.PEC); r.PEC != "" && perr != nil {
		bad("pec", ProblemInvalid, "not a valid address")
	}
	if online && (r.PreferredPhone == "" || r.CallbackSlot == "") {
		bad("preferred_phone", ProblemRequired, "the preferred phone and time slot for a callback are required")
	}
	switch r.FirstHalfVia {
	case "sms":
		if r.Mobile == "" {
			bad("first_half_via", ProblemNeedsMobile, "SMS needs a mobile number")
		}
	case "pec":
		if r.PEC == "" {
			bad("first_half_via", ProblemNeedsPEC, "PEC needs a PEC address")
		}
	case "email", "post":
	default:
		bad("first_half_via", ProblemInvalid, "sms, email, pec or post")
	}
	return errors.Join(errs...)
}

// CallbackSlots are the time slots a citizen may choose for a callback.
var CallbackSlots = []string{"09-13", "13-17", "17-20"}

// PendingError says a request would change what is on record for a citizen
// who already has an account (another residence, other contacts or names): it
// waits, as RequestID, for an operator's callback, and nothing was issued or
// changed.
type PendingError struct{ RequestID string }

func (e *PendingError) Error() string {
	return "pin: the request differs from the data on record and waits for a callback (" + e.RequestID + ")"
}

// RequestPIN registers a request made online by the citizen (from ip) or by
// phone through a contact-center operator (who validates the data while on
// the call). A codice fiscale with no account gets an ordinary PIN: the first
// half to the chosen contact, the second by post. One that has an account, in
// any state, never gets a PIN at new contacts or a new address from a request:
// a request that differs from the record waits for a callback (PendingError);
// one that matches it is refused while the PIN is live (ErrExists) and, after
// a revocation, issues a new PIN to what is on record. After the cutoff only
// residents abroad without an Italian identity document may ask. It returns
// the first half for the operator to read out on the phone. Online, every
// outcome answers the same (nil): the form reveals no account, and the
// contacts on record are told of a request they did not expect.
func (s *Service) RequestPIN(ctx context.Context, req Request, channel, operator, ip string) (firstHalf string, err error) {
	if channel != ChannelOnline && channel != ChannelContactCenter {
		return "", fmt.Errorf("pin: request channel %q", channel)
	}
	online := channel == ChannelOnline
	if !online && operator == "" {
		return "", errors.New("pin: a contact-center request names its operator")
	}
	if err := s.refuseSelf(ctx, req.FiscalNumber, channel, operator, "request"); err != nil {
		return "", err
	}
	if online {
		if err := s.allowIP(ctx, actionRequest, ip); err != nil {
			return "", err
		}
	}
	req = req.normalize()
	now := s.now()
	if err := req.validate(now, online); err != nil {
		return "", err
	}
	if !now.Before(s.cfg.RequestCutoff.Time) && (!req.ResidenceAbroad || req.HasItalianID) {
		return "", ErrPolicy
	}
	if online {
		if ok, err := s.allowCitizen(ctx, actionRequest, req.FiscalNumber); err != nil || !ok {
			return "", err
		}
	}
	pin16, err := s.register(ctx, req, channel, operator)
	var pending *PendingError
	switch {
	case online && errors.Is(err, ErrExists):
		s.warnOnRecord(ctx, req.FiscalNumber, msgExistingWarning)
		return "", nil
	case online && errors.As(err, &pending):
		return "", nil
	case err != nil || online:
		return "", err
	}
	return pin16[:8], nil
}

// register issues a PIN for a request, or parks it: see RequestPIN.
func (s *Service) register(ctx context.Context, req Request, channel, operator string) (string, error) {
	old, err := s.store.GetPINAccount(ctx, req.FiscalNumber)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		// No PIN, but a citizen the core knows (from SPID or CNS) is no
		// newcomer: a PIN for them needs the same verified act.
		known, email, err := s.knownCitizen(ctx, req.FiscalNumber)
		if err != nil {
			return "", err
		}
		if known {
			return "", s.park(ctx, storage.PINAccount{FiscalNumber: req.FiscalNumber, Email: email}, req, channel, operator,
				[]string{"no PIN on record, a citizen known through another login method"}, msgPendingNoPIN)
		}
		return s.issueNew(ctx, req, channel, operator)
	case err != nil:
		return "", err
	}
	if diff := differences(old, req.account()); len(diff) > 0 {
		return "", s.park(ctx, old, req, channel, operator, diff, msgPendingWarning)
	}
	if old.Status != storage.PINRevoked {
		return "", ErrExists
	}
	return s.reissue(ctx, req, channel, operator)
}

// credential is a new 16-character PIN with the hashes that go on record.
type credential struct {
	pin16      string
	hash       []byte
	activation []byte // the first half's hash when it goes by post (activation)
}

func (s *Service) newCredential(ctx context.Context, via string) (credential, error) {
	c := credential{pin16: newPIN16()}
	var err error
	if c.hash, err = s.hash.Hash(ctx, c.pin16); err != nil {
		return c, err
	}
	if via == "post" {
		if c.activation, err = s.hash.Hash(ctx, c.pin16[:8]); err != nil {
			return c, err
		}
	}
	return c, nil
}

// install puts the credential on a: an initial PIN to change at first use,
// ordinario unless issued at a branch office; it waits for activation when
// its first half goes by post. The PIN it replaces is kept as the previous one.
func (c credential) install(a *storage.PINAccount, now time.Time, channel, operator string, branch bool) {
	if a.Hash != nil {
		a.PreviousHash = a.Hash
	}
	a.Hash, a.ActivationHash, a.Status = c.hash, c.activation, storage.PINActive
	if c.activation != nil && !branch {
		a.Status = storage.PINPending
	}
	a.Dispositivo, a.MustChange, a.FirstAccessDone, a.ChangedAt = branch, true, false, now
	a.ReplacementHash, a.ReplacementAt = nil, time.Time{}
	a.Channel, a.Operator = channel, operator
}

// deliver queues the halves of a new PIN to what is on record for a (the
// second half always by post to its residence) and audits the issue.
// A first half sent by post waits for activation: both letters say so, and where.
func (s *Service) deliver(ctx context.Context, a storage.PINAccount, via, pin16, channel, operator string) error {
	first, second := msgFirstHalf, msgSecondHalf
	if via == "post" {
		first, second = msgFirstHalfByPost, msgSecondHalfByPost
	}
	if err := s.sendHalf(ctx, a, via, pin16[:8], first); err != nil {
		return err
	}
	if err := s.sendHalf(ctx, a, "post", pin16[8:], second); err != nil {
		return err
	}
	return s.appendAudit(ctx, a.FiscalNumber, "issued", channel, operator, issuedDetail(a))
}

// issueNew creates the account of a citizen who has none.
func (s *Service) issueNew(ctx context.Context, req Request, channel, operator string) (string, error) {
	return s.issueRequested(ctx, req, channel, operator, func(ctx context.Context, c credential, now time.Time) (storage.PINAccount, error) {
		acct := req.account()
		c.install(&acct, now, channel, operator, false)
		acct.CreatedAt, acct.UpdatedAt = now, now
		if err := s.store.CreatePINAccount(ctx, acct); errors.Is(err, storage.ErrConflict) {
			return acct, ErrExists // another request for the same citizen got there first
		} else if err != nil {
			return acct, err
		}
		return acct, nil
	})
}

// reissue gives a citizen whose PIN was revoked a new one, sent to what is on
// record (which the request matched).
func (s *Service) reissue(ctx context.Context, req Request, channel, operator string) (string, error) {
	return s.issueRequested(ctx, req, channel, operator, func(ctx context.Context, c credential, now time.Time) (storage.PINAccount, error) {
		var acct storage.PINAccount
		err := s.store.UpdatePINAccount(ctx, req.FiscalNumber, func(a storage.PINAccount) (storage.PINAccount, error) {
			if a.Status != storage.PINRevoked || len(differences(a, req.account())) > 0 {
				return a, ErrExists // changed since it was read
			}
			c.install(&a, now, channel, operator, false)
			acct = a
			return a, nil
		})
		return acct, err
	})
}

// issueRequested issues a new PIN for a request: put writes the credential
// on record and returns the account; the audit and the halves follow in the
// same transaction.
func (s *Service) issueRequested(ctx context.Context, req Request, channel, operator string,
	put func(ctx context.Context, c credential, now time.Time) (storage.PINAccount, error)) (string, error) {
	c, err := s.newCredential(ctx, req.FirstHalfVia)
	if err != nil {
		return "", err
	}
	now := s.now().UTC()
	err = s.inTx(ctx, func(ctx context.Context) error {
		acct, err := put(ctx, c, now)
		if err != nil {
			return err
		}
		if err := s.appendAudit(ctx, acct.FiscalNumber, "requested", channel, operator, ""); err != nil {
			return err
		}
		return s.deliver(ctx, acct, req.FirstHalfVia, c.pin16, channel, operator)
	})
	if err != nil {
		return "", err
	}
	return c.pin16, nil
}

// knownCitizen asks the core whether the citizen has logged in with another
// method, and the email it holds for them.
func (s *Service) knownCitizen(ctx context.Context, cf string) (bool, string, error) {
	if s.citizens == nil {
		return false, "", nil
	}
	known, email, err := s.citizens.Known(ctx, cf)
	if err != nil {
		return false, "", fmt.Errorf("pin: %w", err)
	}
	return known, email, nil
}

// park keeps a request that differs from the record (old: the account, or
// only the contacts the core holds for a citizen with no PIN) for an
// operator's callback, tells the contacts on record, and changes nothing else.
func (s *Service) park(ctx context.Context, old storage.PINAccount, req Request, channel, operator string, diff []string, warning letter) error {
	pr := storage.PINRequest{
		ID: base64.RawURLEncoding.EncodeToString(randomBytes(12)), FiscalNumber: req.FiscalNumber,
		Proposed: req.account(), FirstHalfVia: req.FirstHalfVia, Channel: channel, Operator: operator,
		Status: storage.PINRequestCallback, CreatedAt: s.now().UTC(),
	}
	err := s.inTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreatePINRequest(ctx, pr); err != nil {
			return err
		}
		detail := "request " + pr.ID + " differs from the record: " + strings.Join(diff, ", ")
		if err := s.appendAudit(ctx, pr.FiscalNumber, "callback_pending", channel, operator, detail); err != nil {
			return err
		}
		return s.notifyOnRecord(ctx, old, warning)
	})
	if err != nil {
		return err
	}
	return &PendingError{RequestID: pr.ID}
}

// account is the identity, residence and contacts of a request, as a record.
func (r Request) account() storage.PINAccount {
	return storage.PINAccount{
		FiscalNumber: r.FiscalNumber, GivenName: r.GivenName, FamilyName: r.FamilyName,
		Gender: r.Gender, Birthdate: r.Birthdate, BirthPlace: r.BirthPlace,
		ResidenceAbroad: r.ResidenceAbroad, Residence: r.Residence,
		Mobile: r.Mobile, Phone: r.Phone, Email: r.Email, PEC: r.PEC,
		PreferredPhone: r.PreferredPhone, CallbackSlot: r.CallbackSlot,
	}
}

// differences names what the data of b (a request) would change in a (the
// record): identity, residence or contacts (the preferred phone and slot are
// only for a callback).
func differences(a, r storage.PINAccount) []string {
	var out []string
	if !sameIdentity(a, r) {
		out = append(out, "identity")
	}
	if a.ResidenceAbroad != r.ResidenceAbroad || !sameAddress(a.Residence, r.Residence) {
		out = append(out, "residence")
	}
	if a.Mobile != r.Mobile || a.Phone != r.Phone || a.Email != r.Email || a.PEC != r.PEC {
		out = append(out, "contacts")
	}
	return out
}

// sameIdentity compares the identity of a request (r) with the record's (a),
// as people type names (case and spacing do not count).
func sameIdentity(a, r storage.PINAccount) bool {
	return fold(a.GivenName) == fold(r.GivenName) && fold(a.FamilyName) == fold(r.FamilyName) &&
		a.Gender == r.Gender && a.Birthdate == r.Birthdate && fold(a.BirthPlace) == fold(r.BirthPlace)
}

// fold normalizes a typed name or address part for comparison.
func fold(s string) string { return strings.Join(strings.Fields(strings.ToUpper(s)), " ") }

// sameAddress compares two residences as people type them.
func sameAddress(a, b storage.Address) bool {
	return fold(a.Street) == fold(b.Street) && fold(a.Number) == fold(b.Number) &&
		fold(a.PostalCode) == fold(b.PostalCode) && fold(a.City) == fold(b.City) &&
		fold(a.Province) == fold(b.Province) && fold(a.Country) == fold(b.Country)
}

// IssueAtBranch is form MV35: an operator at a branch office has checked the
// citizen's identity document and hands over a PIN that is active and
// dispositivo at once. It returns the 16 characters for the sealed envelope.
// The identification is a verified act: the data given go on record, a live
// PIN is replaced, waiting requests are superseded, and the citizen's sessions
// and tokens end.
func (s *Service) IssueAtBranch(ctx context.Context, req Request, operator, document string) (string, error) {
	if operator == "" || strings.TrimSpace(document) == "" {
		return "", errors.New("pin: MV35 needs the operator and the identity document checked")
	}
	if err := s.refuseSelf(ctx, req.FiscalNumber, ChannelBranch, operator, "issue (MV35)"); err != nil {
		return "", err
	}
	req = req.normalize()
	req.FirstHalfVia = "email" // nothing is sent: the envelope carries all 16 characters
	if err := req.validate(s.now(), false); err != nil {
		return "", err
	}
	c, err := s.newCredential(ctx, "")
	if err != nil {
		return "", err
	}
	who := operator + " doc:" + document
	now := s.now().UTC()
	err = s.inTx(ctx, func(ctx context.Context) error {
		acct := req.account()
		old, err := s.store.GetPINAccount(ctx, req.FiscalNumber)
		switch {
		case err == nil:
			acct.Hash, acct.CreatedAt = old.Hash, old.CreatedAt
		case !errors.Is(err, storage.ErrNotFound):
			return err
		default:
			acct.CreatedAt = now
		}
		c.install(&acct, now, ChannelBranch, who, true)
		acct.UpdatedAt = now
		if err := s.store.ReplacePINAccount(ctx, acct); err != nil {
			return err
		}
		if _, err := s.store.SupersedePINRequests(ctx, acct.FiscalNumber, operator, now); err != nil {
			return err
		}
		if err := s.revoker.RevokeCitizen(ctx, acct.FiscalNumber); err != nil {
			return err
		}
		if err := s.appendAudit(ctx, acct.FiscalNumber, "requested", ChannelBranch, who, ""); err != nil {
			return err
		}
		return s.appendAudit(ctx, acct.FiscalNumber, "issued", ChannelBranch, who, issuedDetail(acct))
	})
	if err != nil {
		return "", err
	}
	return c.pin16, nil
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

// ErrNotWaiting: a callback outcome for a request that does not wait for one
// (unknown, already decided, or superseded).
var ErrNotWaiting = errors.New("pin: no request waits for a callback with that ID")

// waitingPage is how many waiting requests one listing shows.
const waitingPage = 200

// WaitingRequests lists the requests waiting for a callback, oldest first,
// a page of 200 after the first offset.
func (s *Service) WaitingRequests(ctx context.Context, offset int) ([]storage.PINRequest, error) {
	return s.store.ListPINRequests(ctx, storage.PINRequestCallback, max(offset, 0), waitingPage)
}

// ConfirmCallback records the outcome of an operator's callback about a
// waiting request. Confirmed, it is the verified act that changes the record:
// the request's identity, residence and contacts go on record, a new ordinary
// PIN is issued to them (first half to the contact chosen, second by post to
// the residence now on record), the citizen's other waiting requests are
// superseded and their sessions and tokens end. Refused, nothing changes.
// Two operators cannot both decide one request.
func (s *Service) ConfirmCallback(ctx context.Context, requestID, operator string, confirmed bool) error {
	if operator == "" {
		return errors.New("pin: a callback names its operator")
	}
	now := s.now().UTC()
	pr, err := s.store.GetPINRequest(ctx, requestID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && pr.Status != storage.PINRequestCallback) {
		return ErrNotWaiting
	} else if err != nil {
		return err
	}
	if err := s.refuseSelf(ctx, pr.FiscalNumber, ChannelContactCenter, operator, "callback "+pr.ID); err != nil {
		return err
	}
	if !confirmed {
		return s.inTx(ctx, func(ctx context.Context) error {
			pr, err := s.store.DecidePINRequest(ctx, requestID, storage.PINRequestRefused, operator, now)
			if errors.Is(err, storage.ErrNotFound) {
				return ErrNotWaiting
			} else if err != nil {
				return err
			}
			return s.appendAudit(ctx, pr.FiscalNumber, "callback_refused", ChannelContactCenter, operator, "request "+pr.ID)
		})
	}
	c, err := s.newCredential(ctx, pr.FirstHalfVia)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(ctx context.Context) error {
		pr, err := s.store.DecidePINRequest(ctx, requestID, storage.PINRequestConfirmed, operator, now)
		if errors.Is(err, storage.ErrNotFound) {
			return ErrNotWaiting
		} else if err != nil {
			return err
		}
		if _, err := s.store.SupersedePINRequests(ctx, pr.FiscalNumber, operator, now); err != nil {
			return err
		}
		var acct storage.PINAccount
		err = s.store.UpdatePINAccount(ctx, pr.FiscalNumber, func(a storage.PINAccount) (storage.PINAccount, error) {
			p := pr.Proposed
			p.FiscalNumber, p.CreatedAt, p.Hash = a.FiscalNumber, a.CreatedAt, a.Hash
			c.install(&p, now, ChannelContactCenter, operator, false)
			acct = p
			return p, nil
		})
		if errors.Is(err, storage.ErrNotFound) { // a citizen known from another method, with no PIN yet
			acct = pr.Proposed
			c.install(&acct, now, ChannelContactCenter, operator, false)
			acct.CreatedAt, acct.UpdatedAt = now, now
			err = s.store.CreatePINAccount(ctx, acct)
		}
		if err != nil {
			return err
		}
		if err := s.appendAudit(ctx, pr.FiscalNumber, "callback_confirmed", ChannelContactCenter, operator, "request "+pr.ID); err != nil {
			return err
		}
		if err := s.revoker.RevokeCitizen(ctx, pr.FiscalNumber); err != nil {
			return err
		}
		return s.deliver(ctx, acct, pr.FirstHalfVia, c.pin16, ChannelContactCenter, operator)
	})
}

func issuedDetail(a storage.PINAccount) string {
	if a.Dispositivo {
		return "dispositivo"
	}
	return "ordinario"
}

// Activate is for a citizen whose first half came by post: codice fiscale, the
// first half and the health card (tessera sanitaria) — its 20-digit number and
// expiry, checked for shape (no registry is reachable from here). The first
// half is checked under the same throttle as the PIN.
func (s *Service) Activate(ctx context.Context, cf, firstHalf, cardNumber, cardExpiry, ip string) error {
	cf = codicefiscale.Normalize(cf)
	if !codicefiscale.Valid(cf) || len(firstHalf) != 8 || !validHealthCard(cardNumber, cardExpiry, s.now()) {
		return ErrBadCredentials
	}
	_, m, _, err := s.check(ctx, cf, ip, s.now(), func(a storage.PINAccount) [][]byte {
		if a.Status != storage.PINPending {
			return [][]byte{nil} // the fake hash: the same time, never a match
		}
		return [][]byte{a.ActivationHash}
	}, strings.ToUpper(firstHalf))
	if err != nil {
		return err
	}
	if m == noMatch {
		return ErrBadCredentials
	}
	return s.inTx(ctx, func(ctx context.Context) error {
		err := s.store.UpdatePINAccount(ctx, cf, func(a storage.PINAccount) (storage.PINAccount, error) {
			if a.Status != storage.PINPending {
				return a, ErrBadCredentials
			}
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
