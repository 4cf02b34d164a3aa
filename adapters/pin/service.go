package pin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/codicefiscale"
	"github.com/ponte-id/ponte/internal/ratelimit"
	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/storage"
)

// Errors of the PIN service. Messages for people are chosen by the web layer.
var (
	// ErrBadCredentials: wrong codice fiscale or PIN (never which of the two).
	ErrBadCredentials = errors.New("pin: wrong codice fiscale or PIN")
	// ErrRevoked: the PIN was right but has been revoked.
	ErrRevoked = errors.New("pin: the PIN has been revoked")
	// ErrNotActivated: the PIN was right but waits for activation.
	ErrNotActivated = errors.New("pin: the PIN is not activated yet")
	// ErrWeakPIN: a new PIN that breaks the rules.
	ErrWeakPIN = errors.New("pin: the new PIN must be 8 letters or digits")
	// ErrReusedPIN: a new PIN equal to the current or the previous one.
	ErrReusedPIN = errors.New("pin: the new PIN must differ from the last ones")
	// ErrInvalidRequest: a request form with wrong or missing data (see the joined field errors).
	ErrInvalidRequest = errors.New("pin: the request data are not valid")
	// ErrPolicy: the request channel is closed to this citizen by policy (the 2021 switch).
	ErrPolicy = errors.New("pin: new PINs are issued only to residents abroad without an Italian identity document")
	// ErrExists: the citizen already has a live PIN.
	ErrExists = errors.New("pin: the citizen already has a PIN")
	// ErrExpiredCode: an unknown, used or expired code or link.
	ErrExpiredCode = errors.New("pin: the code is not valid or has expired")
)

// ThrottledError says a login was refused before checking the PIN.
type ThrottledError struct {
	Wait   time.Duration
	Locked bool
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("pin: too many failed attempts, retry in %s", e.Wait.Round(time.Second))
}

// Service is the PIN lifecycle, independent of HTTP.
type Service struct {
	cfg     Config
	store   storage.PINStore
	box     *seal.Box
	revoker idp.Revoker
	// citizens is nil when the core does not say (tests of the service alone).
	citizens idp.Citizens
	limiter  ratelimit.Limiter
	hash     *hasher
	now      func() time.Time
	log      *slog.Logger
	// mount is the path the core mounts the pages on (pages()).
	mount atomic.Pointer[string]
	// logins counts the login form's results (CollectMetrics).
	logins loginCounts
}

// Deps are the collaborators of a Service.
type Deps struct {
	Store storage.PINStore
	// Box seals PIN halves in the outbox and conversion documents.
	Box *seal.Box
	// Revoker ends a citizen's sessions and tokens on revocation.
	Revoker idp.Revoker
	// Citizens says whether the core knows a citizen who has no PIN (one who
	// logs in with SPID or CNS): a request for them waits for a callback.
	Citizens idp.Citizens
	// Limiter counts the forms per client address (in this process if nil).
	Limiter ratelimit.Limiter
	Now     func() time.Time
	Logger  *slog.Logger
}

// NewService validates the policy and returns the service.
func NewService(cfg Config, d Deps) (*Service, error) {
	errs := []error{cfg.Validate()}
	if cfg.BaseURL == "" {
		errs = append(errs, errors.New("pin: base URL is required (links are never built from the Host header)"))
	}
	if d.Store == nil || d.Box == nil || d.Revoker == nil {
		errs = append(errs, errors.New("pin: store, box and revoker are required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.HashConcurrency <= 0 {
		cfg.HashConcurrency = runtime.GOMAXPROCS(0)
	}
	if cfg.HashQueue <= 0 {
		cfg.HashQueue = 16 * cfg.HashConcurrency
	}
	if cfg.HashMaxWait <= 0 {
		cfg.HashMaxWait = 3 * time.Second
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Limiter == nil {
		d.Limiter = ratelimit.NewLocal(d.Now, 0)
	}
	return &Service{cfg: cfg, store: d.Store, box: d.Box, revoker: d.Revoker, citizens: d.Citizens, limiter: d.Limiter,
		hash: newHasher(cfg.Params, cfg.HashConcurrency, cfg.HashQueue, cfg.HashMaxWait), now: d.Now, log: d.Logger}, nil
}

// ChangeReason says why a login leads to the change form.
type ChangeReason string

// The reasons for a forced change.
const (
	ChangeNone        ChangeReason = ""
	ChangeFirstAccess ChangeReason = "first_access"
	ChangeExpired     ChangeReason = "expired"
)

// LoginResult is a successful PIN check.
type LoginResult struct {
	Account storage.PINAccount
	// Change, when set, means the PIN opens only the change form.
	Change ChangeReason
}

// Identity is what a PIN login proves, at the level of the PIN.
func (r LoginResult) Identity() idp.Identity {
	a := r.Account
	level := idp.LevelConsultazione
	if a.Dispositivo {
		level = idp.LevelDispositivo
	}
	phone := a.Mobile
	if phone == "" {
		phone = a.Phone
	}
	return idp.Identity{
		FiscalNumber: a.FiscalNumber, GivenName: a.GivenName, FamilyName: a.FamilyName,
		Birthdate: a.Birthdate, Gender: a.Gender, Email: a.Email, PhoneNumber: phone,
		Level: level, Method: idp.MethodPIN, AMR: []string{"pin"},
	}
}

// Login checks a codice fiscale and PIN: the attempt is reserved first (and
// refused if a delay or the lockout applies), then verified with argon2id
// (against a fake hash when there is no account, so that timing reveals
// nothing), then the state of the PIN is read. A 16-character PIN may be the
// replacement sent after an online revoca: its first use replaces the current
// PIN and ends every session and token, as the revoca asked.
func (s *Service) Login(ctx context.Context, cf, pin, ip string) (LoginResult, error) {
	cf = codicefiscale.Normalize(cf)
	if !codicefiscale.Valid(cf) || len(pin) == 0 || len(pin) > 64 {
		return LoginResult{}, ErrBadCredentials
	}
	now := s.now()
	acct, m, rehash, err := s.check(ctx, cf, ip, now, func(a storage.PINAccount) [][]byte {
		if len(pin) == 16 && s.liveReplacement(a, now) {
			return [][]byte{a.ReplacementHash, a.Hash}
		}
		return [][]byte{a.Hash}
	}, pin)
	if err != nil {
		return LoginResult{}, err
	}
	if m == noMatch {
		return LoginResult{}, ErrBadCredentials
	}
	if m == replacementMatched {
		if acct, err = s.completeReplacement(ctx, cf); err != nil {
			return LoginResult{}, err
		}
		rehash = false
	}
	switch acct.Status {
	case storage.PINRevoked:
		return LoginResult{}, ErrRevoked
	case storage.PINPending:
		return LoginResult{}, ErrNotActivated
	}
	if rehash {
		s.rehash(ctx, cf, pin, acct.Hash)
	}
	res := LoginResult{Account: acct}
	switch {
	case acct.MustChange:
		res.Change = ChangeFirstAccess
	case s.cfg.Expiry > 0 && !now.Before(acct.ChangedAt.Add(s.cfg.Expiry)):
		res.Change = ChangeExpired
		s.audit(ctx, cf, "expired", "", "", "")
	}
	return res, nil
}

// liveReplacement says whether a's replacement PIN (from an online revoca)
// can still be used at now.
func (s *Service) liveReplacement(a storage.PINAccount, now time.Time) bool {
	return a.ReplacementHash != nil && now.Before(a.ReplacementAt.Add(s.cfg.ReplacementTTL))
}

// match says which of the candidate hashes a secret matched.
type match int

const (
	noMatch match = iota
	currentMatched
	replacementMatched
)

// check is the throttled verification shared by login and activation: it
// reserves the attempt, reads the account, verifies secret against the hashes
// candidates picks (in order; a missing account verifies against the fake
// hash), and settles the reservation: kept as a failure, cleared on success,
// given back if the hashing line was full. ok tells which candidate matched:
// the first (replacementMatched when there are two) or another (currentMatched).
func (s *Service) check(ctx context.Context, cf, ip string, now time.Time, candidates func(storage.PINAccount) [][]byte, secret string) (storage.PINAccount, match, bool, error) {
	r, err := s.cfg.Throttle.reserve(ctx, s.store, cf, ip, now)
	if err != nil {
		return storage.PINAccount{}, noMatch, false, err
	}
	acct, err := s.store.GetPINAccount(ctx, cf)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storage.PINAccount{}, noMatch, false, errors.Join(err, s.cfg.Throttle.refund(ctx, s.store, r))
	}
	hashes := candidates(acct)
	var (
		got    match
		rehash bool
	)
	for i, h := range hashes {
		ok, weak, err := s.hash.Verify(ctx, h, secret)
		if err != nil && !errors.Is(err, errMalformedHash) {
			// Nothing was checked (ErrBusy, a cancelled request): the attempt is not a failure.
			return storage.PINAccount{}, noMatch, false, errors.Join(err, s.cfg.Throttle.refund(ctx, s.store, r))
		}
		if ok {
			got, rehash = currentMatched, weak
			if i == 0 && len(hashes) > 1 {
				got = replacementMatched
			}
			break
		}
	}
	if got == noMatch {
		if n := r.failures(); n == s.cfg.Throttle.MaxAccountFailures && acct.FiscalNumber != "" {
			s.audit(ctx, cf, "locked", "", "", fmt.Sprintf("%d consecutive failures", n))
		}
		return acct, noMatch, false, nil
	}
	if err := s.cfg.Throttle.succeed(ctx, s.store, r); err != nil {
		return storage.PINAccount{}, noMatch, false, err
	}
	return acct, got, rehash, nil
}

// rehash upgrades a hash made with weaker parameters, verified is the hash
// the login just checked: if the PIN changed meanwhile (a branch office, a
// callback, a recovery), the new one stays. A failure only waits for the
// next login.
func (s *Service) rehash(ctx context.Context, cf, pin string, verified []byte) {
	h, err := s.hash.Hash(ctx, pin)
	if err == nil {
		err = s.store.UpdatePINAccount(ctx, cf, func(a storage.PINAccount) (storage.PINAccount, error) {
			if !bytes.Equal(a.Hash, verified) {
				return a, errChanged
			}
			a.Hash = h
			return a, nil
		})
	}
	if err != nil && !errors.Is(err, errChanged) {
		s.log.WarnContext(ctx, "PIN rehash failed", "err", err)
	}
}

// newPINShape is the citizen's own PIN: 8 letters or digits.
var newPINShape = regexp.MustCompile(`^[A-Za-z0-9]{8}$`)

// ChangePIN sets the citizen's own 8-character PIN. The caller has just checked
// the current PIN (Login, or a change ticket issued after it).
func (s *Service) ChangePIN(ctx context.Context, cf, newPIN string) (storage.PINAccount, error) {
	if !newPINShape.MatchString(newPIN) {
		return storage.PINAccount{}, ErrWeakPIN
	}
	acct, err := s.store.GetPINAccount(ctx, cf)
	if err != nil {
		return storage.PINAccount{}, err
	}
	for _, old := range [][]byte{acct.Hash, acct.PreviousHash} {
		if len(old) == 0 {
			continue
		}
		if same, _, err := s.hash.Verify(ctx, old, newPIN); err == nil && same {
			return storage.PINAccount{}, ErrReusedPIN
		}
	}
	h, err := s.hash.Hash(ctx, newPIN)
	if err != nil {
		return storage.PINAccount{}, err
	}
	event := "changed"
	if acct.MustChange {
		event = "first_access"
	}
	err = s.inTx(ctx, func(ctx context.Context) error {
		err := s.store.UpdatePINAccount(ctx, cf, func(a storage.PINAccount) (storage.PINAccount, error) {
			if a.Status != storage.PINActive {
				return a, ErrRevoked
			}
			a.PreviousHash, a.Hash = a.Hash, h
			a.MustChange, a.FirstAccessDone, a.ChangedAt = false, true, s.now().UTC()
			acct = a
			return a, nil
		})
		if err != nil {
			return err
		}
		return s.appendAudit(ctx, cf, event, "online", "", "")
	})
	return acct, err
}

// changeReason says why the citizen is on the change form: a first access
// until they have chosen a PIN of their own after the last initial or
// provisional one, an expired PIN otherwise.
func (s *Service) changeReason(ctx context.Context, cf string) (ChangeReason, error) {
	a, err := s.store.GetPINAccount(ctx, cf)
	if err != nil {
		return ChangeNone, err
	}
	if a.MustChange {
		return ChangeFirstAccess, nil
	}
	return ChangeExpired, nil
}

// inTx runs fn in one storage transaction.
func (s *Service) inTx(ctx context.Context, fn func(ctx context.Context) error) error {
	return inTx(ctx, s.store, fn)
}

// audit appends an event outside any transaction, logging a failure.
func (s *Service) audit(ctx context.Context, cf, event, channel, operator, detail string) {
	if err := s.appendAudit(ctx, cf, event, channel, operator, detail); err != nil {
		s.log.ErrorContext(ctx, "audit append failed", "event", event, "err", err)
	}
}

func (s *Service) appendAudit(ctx context.Context, cf, event, channel, operator, detail string) error {
	return s.store.AppendAudit(ctx, storage.AuditEvent{
		At: s.now().UTC(), FiscalNumber: cf, Event: event, Channel: channel, Operator: operator, Detail: detail,
	})
}

// Mask hides a codice fiscale in logs: the first 3 and the last character remain.
func Mask(cf string) string {
	if len(cf) != 16 {
		return "****"
	}
	return cf[:3] + "************" + cf[15:]
}

// Seed creates or replaces an active account whose PIN is pin, past its first
// access: for `ponte demo` and for tests, never for a real citizen.
func (s *Service) Seed(ctx context.Context, a storage.PINAccount, pin string) error {
	h, err := s.hash.Hash(ctx, pin)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	a.Hash, a.Status, a.MustChange, a.FirstAccessDone, a.ChangedAt = h, storage.PINActive, false, true, now
	a.CreatedAt, a.UpdatedAt = now, now
	if a.Channel == "" {
		a.Channel = "seed"
	}
	return s.store.ReplacePINAccount(ctx, a)
}
