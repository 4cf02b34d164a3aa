package pin

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ponte-id/ponte/internal/codicefiscale"
	"github.com/ponte-id/ponte/storage"
)

// Purposes of one-time codes.
const (
	purposeRecovery = "pin-recovery"
	purposeChange   = "pin-change"
)

func hashCode(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

// newCode stores a random single-use code for cf and returns it.
func (s *Service) newCode(ctx context.Context, purpose, cf string, ttl time.Duration) (string, error) {
	code := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	now := s.now().UTC()
	err := s.store.CreateCode(ctx, storage.OneTimeCode{
		Hash: hashCode(code), Purpose: purpose, FiscalNumber: cf, ExpiresAt: now.Add(ttl), CreatedAt: now,
	})
	return code, err
}

// consumeCode redeems a code once.
func (s *Service) consumeCode(ctx context.Context, purpose, code string) (string, error) {
	if code == "" || len(code) > 100 {
		return "", ErrExpiredCode
	}
	c, err := s.store.ConsumeCode(ctx, hashCode(code), purpose, s.now())
	if errors.Is(err, storage.ErrNotFound) {
		return "", ErrExpiredCode
	}
	if err != nil {
		return "", err
	}
	return c.FiscalNumber, nil
}

// ChangeTicket lets the change form act for a citizen who has just proved
// their PIN but must change it (first access, expiry).
func (s *Service) ChangeTicket(ctx context.Context, cf string) (string, error) {
	return s.newCode(ctx, purposeChange, cf, s.cfg.TicketTTL)
}

// RedeemChangeTicket returns the codice fiscale of a live ticket, once.
func (s *Service) RedeemChangeTicket(ctx context.Context, ticket string) (string, error) {
	return s.consumeCode(ctx, purposeChange, ticket)
}

// Contacts are the contacts a citizen types to recover a PIN.
type Contacts struct {
	Mobile string
	Email  string
	PEC    string
}

// StartRecovery (ripristino): if the codice fiscale has an active PIN whose
// first access is done and at least two of the given contacts match those on
// record, a single-use link goes to the email on record. The caller answers the
// same way whatever happened: nothing here tells whether anything matched.
// Only a *RateLimitedError (too many from ip) is for the caller to show.
func (s *Service) StartRecovery(ctx context.Context, cf string, c Contacts, ip string) error {
	if err := s.allowIP(ctx, actionRecover, ip); err != nil {
		return err
	}
	cf = codicefiscale.Normalize(cf)
	if !codicefiscale.Valid(cf) {
		return nil
	}
	if ok, err := s.allowCitizen(ctx, actionRecover, cf); err != nil || !ok {
		return err
	}
	a, err := s.store.GetPINAccount(ctx, cf)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	matches := 0
	if c.Mobile != "" && compactPhone(c.Mobile) == a.Mobile {
		matches++
	}
	if c.Email != "" && strings.EqualFold(strings.TrimSpace(c.Email), a.Email) {
		matches++
	}
	if c.PEC != "" && a.PEC != "" && strings.EqualFold(strings.TrimSpace(c.PEC), a.PEC) {
		matches++
	}
	if matches < 2 || a.Status != storage.PINActive || !a.FirstAccessDone {
		s.log.InfoContext(ctx, "PIN recovery refused", "cf", Mask(cf), "matches", matches)
		return nil
	}
	return s.inTx(ctx, func(ctx context.Context) error {
		code, err := s.newCode(ctx, purposeRecovery, cf, s.cfg.RecoveryTTL)
		if err != nil {
			return err
		}
		if err := s.sendHalf(ctx, a, "email", s.recoveryLink(ctx, code), msgRecoveryLink,
			"{minutes}", strconv.Itoa(int(s.cfg.RecoveryTTL.Round(time.Minute)/time.Minute))); err != nil {
			return err
		}
		return s.appendAudit(ctx, cf, "recovery_requested", ChannelOnline, "", "")
	})
}

// RecoverConfirmPath is the page a recovery link points to, below the PIN's pages.
const RecoverConfirmPath = "/recover/confirm"

// recoveryLink is the link a recovery email carries: the confirmation page in
// the citizen's language and, when they started from a login, with its
// challenge, so that they come back to it. The code comes last.
func (s *Service) recoveryLink(ctx context.Context, code string) string {
	q := url.Values{}
	if loc := localeOf(ctx); loc == "en" {
		q.Set("lang", loc)
	}
	if ch := citizenOf(ctx).challenge; ch != "" {
		q.Set("challenge", ch)
	}
	prefix := ""
	if len(q) > 0 {
		prefix = q.Encode() + "&"
	}
	return s.cfg.BaseURL + s.pages() + RecoverConfirmPath + "?" + prefix + "code=" + url.QueryEscape(code)
}

// CompleteRecovery redeems a recovery link: a new 16-character provisional PIN,
// half by SMS and half by email (or PEC), to be changed at the next login. It
// lifts a lock: the failures counted were guesses of the PIN it replaces.
func (s *Service) CompleteRecovery(ctx context.Context, code string) error {
	cf, err := s.consumeCode(ctx, purposeRecovery, code)
	if err != nil {
		return err
	}
	pin16 := newPIN16()
	h, err := s.hash.Hash(ctx, pin16)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(ctx context.Context) error {
		var acct storage.PINAccount
		err := s.store.UpdatePINAccount(ctx, cf, func(a storage.PINAccount) (storage.PINAccount, error) {
			if a.Status != storage.PINActive {
				return a, ErrRevoked
			}
			a.PreviousHash, a.Hash, a.MustChange, a.ChangedAt = a.Hash, h, true, s.now().UTC()
			acct = a
			return a, nil
		})
		if err != nil {
			return err
		}
		first, second := "sms", "email"
		if acct.Mobile == "" {
			first = "email"
			second = "pec"
		}
		if acct.PEC != "" && second == "email" && acct.Email == "" {
			second = "pec"
		}
		if err := s.sendHalf(ctx, acct, first, pin16[:8], msgProvisionalFirst); err != nil {
			return err
		}
		if err := s.sendHalf(ctx, acct, second, pin16[8:], msgProvisionalSecond); err != nil {
			return err
		}
		if err := s.store.ResetAttempts(ctx, accountKey(cf)); err != nil {
			return err
		}
		return s.appendAudit(ctx, cf, "recovered", ChannelOnline, "", "")
	})
}

// RevokeOnline (revoca) is for a citizen whose PIN may be in the wrong hands.
// Knowing the data of the request proves nothing (birth date and sex are in
// the codice fiscale), so it revokes nothing at once: when every field given
// (names, sex, birth date and place) matches an active PIN, it starts a
// replacement — a new 16-character PIN whose first half goes to the mobile (or
// email) on record and the second by post to the residence on record. The
// current PIN keeps working until the replacement is first used (Login), which
// revokes it and ends every session and token. Like recovery it reveals
// nothing; only a *RateLimitedError (too many from ip) is for the caller.
func (s *Service) RevokeOnline(ctx context.Context, req Request, ip string) error {
	if err := s.allowIP(ctx, actionRevoke, ip); err != nil {
		return err
	}
	req = req.normalize()
	if !codicefiscale.Valid(req.FiscalNumber) {
		return nil
	}
	if ok, err := s.allowCitizen(ctx, actionRevoke, req.FiscalNumber); err != nil || !ok {
		return err
	}
	a, err := s.store.GetPINAccount(ctx, req.FiscalNumber)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !sameIdentity(a, req.account()) || a.Status != storage.PINActive {
		s.log.InfoContext(ctx, "PIN revocation refused: data do not match an active PIN", "cf", Mask(req.FiscalNumber))
		return nil
	}
	if s.liveReplacement(a, s.now()) {
		// One replacement at a time: another revoca would cancel the one on
		// its way to the citizen and send more letters.
		s.log.InfoContext(ctx, "PIN revocation: a replacement is already on its way", "cf", Mask(req.FiscalNumber))
		return nil
	}
	pin16 := newPIN16()
	h, err := s.hash.Hash(ctx, pin16)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	err = s.inTx(ctx, func(ctx context.Context) error {
		var acct storage.PINAccount
		err := s.store.UpdatePINAccount(ctx, req.FiscalNumber, func(a storage.PINAccount) (storage.PINAccount, error) {
			if a.Status != storage.PINActive || s.liveReplacement(a, now) {
				return a, errChanged
			}
			a.ReplacementHash, a.ReplacementAt = h, now
			acct = a
			return a, nil
		})
		if err != nil {
			return err
		}
		first := "sms"
		if acct.Mobile == "" {
			first = "email"
		}
		if err := s.sendHalf(ctx, acct, first, pin16[:8], msgReplacementFirst); err != nil {
			return err
		}
		if err := s.sendHalf(ctx, acct, "post", pin16[8:], msgReplacementSecond); err != nil {
			return err
		}
		return s.appendAudit(ctx, acct.FiscalNumber, "revocation_requested", ChannelOnline, "",
			"replacement sent to the contacts and residence on record; the current PIN works until it is used")
	})
	if errors.Is(err, errChanged) {
		return nil // a parallel revoca sent the replacement, or the PIN was revoked meanwhile
	}
	return err
}

// errChanged: the account changed between the read that decided and the
// write (a parallel request).
var errChanged = errors.New("pin: the account changed meanwhile")

// completeReplacement makes the replacement PIN (just verified) the current
// one: the old PIN is revoked, every session and token of the citizen ends,
// and the new PIN must be changed at once (first access).
func (s *Service) completeReplacement(ctx context.Context, cf string) (storage.PINAccount, error) {
	var (
		acct     storage.PINAccount
		replaced bool
	)
	err := s.inTx(ctx, func(ctx context.Context) error {
		err := s.store.UpdatePINAccount(ctx, cf, func(a storage.PINAccount) (storage.PINAccount, error) {
			if a.ReplacementHash != nil { // a parallel login may have completed it already
				a.PreviousHash, a.Hash, a.ReplacementHash, a.ReplacementAt = a.Hash, a.ReplacementHash, nil, time.Time{}
				a.Status, a.ActivationHash, a.MustChange, a.ChangedAt = storage.PINActive, nil, true, s.now().UTC()
				replaced = true
			}
			acct = a
			return a, nil
		})
		if err != nil || !replaced {
			return err
		}
		if err := s.appendAudit(ctx, cf, "revoked", ChannelOnline, "", "the replacement sent after an online revoca was used"); err != nil {
			return err
		}
		return s.revoker.RevokeCitizen(ctx, cf)
	})
	return acct, err
}

// RevokeByOperator revokes at a branch office (MV35) or the contact center.
func (s *Service) RevokeByOperator(ctx context.Context, cf, channel, operator string) error {
	if operator == "" {
		return errors.New("pin: an operator revocation names the operator")
	}
	if err := s.refuseSelf(ctx, cf, channel, operator, "revoke"); err != nil {
		return err
	}
	cf = codicefiscale.Normalize(cf)
	if _, err := s.store.GetPINAccount(ctx, cf); err != nil {
		return err
	}
	return s.revoke(ctx, cf, channel, operator)
}

// revoke ends the PIN and, in the same transaction when the core shares the
// store, every session and token of the citizen.
func (s *Service) revoke(ctx context.Context, cf, channel, operator string) error {
	return s.inTx(ctx, func(ctx context.Context) error {
		err := s.store.UpdatePINAccount(ctx, cf, func(a storage.PINAccount) (storage.PINAccount, error) {
			// The hash stays, so the right PIN is told it was revoked; a
			// replacement in flight dies with it.
			a.Status, a.ActivationHash, a.ReplacementHash, a.ReplacementAt = storage.PINRevoked, nil, nil, time.Time{}
			return a, nil
		})
		if err != nil {
			return err
		}
		if err := s.appendAudit(ctx, cf, "revoked", channel, operator, ""); err != nil {
			return err
		}
		return s.revoker.RevokeCitizen(ctx, cf)
	})
}
