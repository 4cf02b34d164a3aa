package pin

import (
	"context"
	"errors"
	"fmt"

	"github.com/ponte-id/ponte/internal/codicefiscale"
	"github.com/ponte-id/ponte/storage"
)

// LockState is the throttle of a citizen's PIN: how many consecutive checks
// failed and whether the PIN is locked (or delayed), and until when. An
// unknown codice fiscale is storage.ErrNotFound.
func (s *Service) LockState(ctx context.Context, cf string) (Lock, error) {
	cf = codicefiscale.Normalize(cf)
	if _, err := s.store.GetPINAccount(ctx, cf); err != nil {
		return Lock{}, err
	}
	n, last, err := s.store.GetAttempts(ctx, accountKey(cf))
	if err != nil {
		return Lock{}, fmt.Errorf("pin: lock state: %w", err)
	}
	return s.cfg.Throttle.lockOf(n, last, s.now()), nil
}

// Unlock lifts the lock of a citizen's PIN (and any progressive delay) before
// it ends by itself: for an operator who has identified the citizen on the
// phone (contact_center) or at a branch office (sede). It clears the count
// of failures, and audits what it found, under the operator. It returns the
// state before.
func (s *Service) Unlock(ctx context.Context, cf, channel, operator string) (Lock, error) {
	if operator == "" {
		return Lock{}, errors.New("pin: an unlock names its operator")
	}
	if channel != ChannelContactCenter && channel != ChannelBranch {
		return Lock{}, fmt.Errorf("pin: unlock channel %q", channel)
	}
	if err := s.refuseSelf(ctx, cf, channel, operator, "unlock"); err != nil {
		return Lock{}, err
	}
	cf = codicefiscale.Normalize(cf)
	var before Lock
	err := s.inTx(ctx, func(ctx context.Context) error {
		if _, err := s.store.GetPINAccount(ctx, cf); err != nil {
			return err
		}
		n, last, err := s.store.GetAttempts(ctx, accountKey(cf))
		if err != nil {
			return err
		}
		before = s.cfg.Throttle.lockOf(n, last, s.now())
		if err := s.store.ResetAttempts(ctx, accountKey(cf)); err != nil {
			return err
		}
		detail := fmt.Sprintf("%d consecutive failures cleared", n)
		if before.Locked {
			detail = fmt.Sprintf("lock lifted before %s; %s", before.Until.UTC().Format("2006-01-02T15:04:05Z"), detail)
		}
		return s.appendAudit(ctx, cf, "unlocked", channel, operator, detail)
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		err = fmt.Errorf("pin: unlock: %w", err)
	}
	return before, err
}
