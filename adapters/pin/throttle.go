package pin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ponte-id/ponte/internal/clientaddr"
	"github.com/ponte-id/ponte/storage"
)

// Throttle is the brute-force regulation of PIN checks: a progressive delay per
// account and per client IP, and a lockout after MaxAccountFailures consecutive
// failures on one account (NIST SP 800-63B §5.2.2: at most 100) that ends by
// itself after Lockout. It only guards the PIN: SPID and CNS keep working for a
// locked citizen, so an attacker cannot lock anyone out of INPS.
//
// An attempt is reserved (counted, in one atomic statement shared by every
// node) before the PIN is hashed, and given back when it turns out not to be a
// failure: a burst of parallel guesses counts as that many guesses, and at
// most MaxAccountFailures guesses are ever checked against one account.
type Throttle struct {
	// FreeAccountFailures and FreeIPFailures are the failures allowed before delays start.
	FreeAccountFailures int `yaml:"free_account_failures"`
	FreeIPFailures      int `yaml:"free_ip_failures"`
	// MaxDelay caps the progressive delay.
	MaxDelay time.Duration `yaml:"max_delay"`
	// MaxAccountFailures locks the account's PIN; Lockout is how long.
	MaxAccountFailures int           `yaml:"max_failures"`
	Lockout            time.Duration `yaml:"lockout"`
	// ForgetIP is how long an IP must stay quiet for its counter to start
	// again (many citizens can share one address behind a NAT).
	ForgetIP time.Duration `yaml:"forget_ip"`
}

// DefaultThrottle is Ponte's regulation.
var DefaultThrottle = Throttle{
	FreeAccountFailures: 5, FreeIPFailures: 20, MaxDelay: 15 * time.Minute,
	MaxAccountFailures: 100, Lockout: time.Hour, ForgetIP: 24 * time.Hour,
}

func accountKey(cf string) string { return "cf:" + cf }
func ipKey(ip string) string      { return "ip:" + clientaddr.Key(ip) }

// delay is the wait after n consecutive failures when free are allowed:
// 1s, 2s, 4s ... up to max.
func delay(n, free int, max time.Duration) time.Duration {
	if n < free {
		return 0
	}
	shift := n - free
	if shift > 20 {
		return max
	}
	d := time.Second << shift
	if d > max {
		return max
	}
	return d
}

// reservation is an attempt counted on an account and, when known, an IP.
type reservation struct {
	account storage.Attempt
	ip      *storage.Attempt
}

// failures is the account's consecutive failures including this attempt, had it failed.
func (r reservation) failures() int { return r.account.Count }

// reserve counts an attempt on the account and the IP before it is checked,
// in one transaction. If a delay or the lockout applies, the transaction
// rolls back (the attempt was never counted) and reserve returns a
// *ThrottledError. A throttled attempt must not stay counted even for a
// moment: parallel guesses would otherwise raise the count past the lockout
// threshold until their refunds, and other attempts would read a lock.
func (t Throttle) reserve(ctx context.Context, s storage.PINStore, cf, ip string, now time.Time) (reservation, error) {
	var (
		r         reservation
		throttled *ThrottledError
	)
	err := inTx(ctx, s, func(ctx context.Context) error {
		a, err := s.ReserveAttempt(ctx, accountKey(cf), now, time.Time{})
		if err != nil {
			return err
		}
		r.account = a
		if clientaddr.Key(ip) != "" {
			b, err := s.ReserveAttempt(ctx, ipKey(ip), now, now.Add(-t.ForgetIP))
			if err != nil {
				return err
			}
			r.ip = &b
		}
		if wait, locked := t.decide(r, now); wait > 0 {
			throttled = &ThrottledError{Wait: wait, Locked: locked}
			return throttled
		}
		return nil
	})
	if throttled != nil && errors.Is(err, throttled) {
		return reservation{}, throttled
	}
	if err != nil {
		return reservation{}, fmt.Errorf("pin: throttle: %w", err)
	}
	return r, nil
}

// decide says how long a reserved attempt must wait, from the attempts before
// it (in flight ones included), and whether the account is locked.
func (t Throttle) decide(r reservation, now time.Time) (wait time.Duration, locked bool) {
	prior := r.account.Count - 1
	if prior >= t.MaxAccountFailures {
		if until := r.account.Prev.Add(t.Lockout); now.Before(until) {
			return until.Sub(now), true
		}
		return 0, false // the lockout has ended by itself
	}
	// A delay applies only beyond the free failures: without one, an attempt
	// reserved just before ours but with a later clock reading (parallel
	// requests, or another node's clock) must not make us wait.
	if d := delay(prior, t.FreeAccountFailures, t.MaxDelay); d > 0 && prior > 0 && now.Before(r.account.Prev.Add(d)) {
		wait = r.account.Prev.Add(d).Sub(now)
	}
	if r.ip != nil {
		priorIP := r.ip.Count - 1
		if d := delay(priorIP, t.FreeIPFailures, t.MaxDelay); d > 0 && priorIP > 0 && now.Before(r.ip.Prev.Add(d)) && r.ip.Prev.Add(d).Sub(now) > wait {
			wait = r.ip.Prev.Add(d).Sub(now)
		}
	}
	return wait, false
}

// refund gives back an attempt that was never checked (throttled, or the
// hashing queue was full).
func (t Throttle) refund(ctx context.Context, s storage.PINStore, r reservation) error {
	return t.settle(ctx, s, r, false)
}

// succeed clears the account's counter and gives the IP its attempt back (one
// success from an IP does not excuse its failures on other accounts).
func (t Throttle) succeed(ctx context.Context, s storage.PINStore, r reservation) error {
	return t.settle(ctx, s, r, true)
}

// settle gives the IP its attempt back and, for the account, clears the
// counter (reset) or gives the attempt back, in one transaction.
func (t Throttle) settle(ctx context.Context, s storage.PINStore, r reservation, reset bool) error {
	err := inTx(ctx, s, func(ctx context.Context) error {
		var err error
		if reset {
			err = s.ResetAttempts(ctx, r.account.Key)
		} else {
			err = s.RefundAttempt(ctx, r.account)
		}
		if err == nil && r.ip != nil {
			err = s.RefundAttempt(ctx, *r.ip)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("pin: throttle: %w", err)
	}
	return nil
}

// inTx runs fn in one storage transaction.
func inTx(ctx context.Context, s storage.Transactor, fn func(ctx context.Context) error) error {
	tx, err := s.BeginTx(ctx)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = s.Rollback(tx)
		return err
	}
	return s.Commit(tx)
}

// Lock is the state of a citizen's PIN throttle, as an operator sees it.
type Lock struct {
	// Failures is the count of consecutive failed checks; LastFailure when
	// the last was (zero if none).
	Failures    int       `json:"failures"`
	LastFailure time.Time `json:"last_failure,omitzero"`
	// Locked is true after MaxAccountFailures failures, until Until, when the
	// lock ends by itself.
	Locked bool      `json:"locked"`
	Until  time.Time `json:"until,omitzero"`
	// DelayUntil is when the next attempt is allowed, while a progressive
	// delay applies (below the lock).
	DelayUntil time.Time `json:"delay_until,omitzero"`
}

// lockOf reads the state of the account counter from its count and last attempt.
func (t Throttle) lockOf(count int, last, now time.Time) Lock {
	l := Lock{Failures: count, LastFailure: last}
	if count == 0 {
		return l
	}
	if count >= t.MaxAccountFailures {
		if until := last.Add(t.Lockout); now.Before(until) {
			l.Locked, l.Until = true, until
		}
		return l
	}
	if until := last.Add(delay(count, t.FreeAccountFailures, t.MaxDelay)); now.Before(until) && count >= t.FreeAccountFailures {
		l.DelayUntil = until
	}
	return l
}
