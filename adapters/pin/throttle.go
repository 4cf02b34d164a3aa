package pin

import (
	"context"
	"fmt"
	"time"

	"github.com/ponte-id/ponte/storage"
)

// Throttle is the brute-force regulation of PIN logins: a progressive delay per
// account and per client IP, and a lockout after MaxAccountFailures consecutive
// failures on one account (NIST SP 800-63B §5.2.2: at most 100) that ends by
// itself after Lockout. It only guards the PIN: SPID and CNS keep working for a
// locked citizen, so an attacker cannot lock anyone out of INPS.
type Throttle struct {
	// FreeAccountFailures and FreeIPFailures are the failures allowed before delays start.
	FreeAccountFailures int
	FreeIPFailures      int
	// MaxDelay caps the progressive delay.
	MaxDelay time.Duration
	// MaxAccountFailures locks the account's PIN; Lockout is how long.
	MaxAccountFailures int
	Lockout            time.Duration
}

// DefaultThrottle is Ponte's regulation.
var DefaultThrottle = Throttle{
	FreeAccountFailures: 5, FreeIPFailures: 20, MaxDelay: 15 * time.Minute,
	MaxAccountFailures: 100, Lockout: time.Hour,
}

// verdict is the throttle's answer before a login attempt.
type verdict struct {
	// wait is how long the caller must wait before trying (zero: go ahead).
	wait   time.Duration
	locked bool
	// failures is the account's consecutive count.
	failures int
}

func accountKey(cf string) string { return "cf:" + cf }
func ipKey(ip string) string      { return "ip:" + ip }

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

// check reads the counters of an account and an IP.
func (t Throttle) check(ctx context.Context, s storage.Attempts, cf, ip string, now time.Time) (verdict, error) {
	n, last, err := s.Failures(ctx, accountKey(cf))
	if err != nil {
		return verdict{}, fmt.Errorf("pin: throttle: %w", err)
	}
	if n >= t.MaxAccountFailures {
		if until := last.Add(t.Lockout); now.Before(until) {
			return verdict{wait: until.Sub(now), locked: true, failures: n}, nil
		}
		return verdict{failures: n}, nil // the lockout has ended by itself
	}
	v := verdict{failures: n}
	if until := last.Add(delay(n, t.FreeAccountFailures, t.MaxDelay)); n > 0 && now.Before(until) {
		v.wait = until.Sub(now)
	}
	if ip != "" {
		m, lastIP, err := s.Failures(ctx, ipKey(ip))
		if err != nil {
			return verdict{}, fmt.Errorf("pin: throttle: %w", err)
		}
		if until := lastIP.Add(delay(m, t.FreeIPFailures, t.MaxDelay)); m > 0 && now.Before(until) && until.Sub(now) > v.wait {
			v.wait = until.Sub(now)
		}
	}
	return v, nil
}

// fail records a failure on both counters; it returns the account's count.
func (t Throttle) fail(ctx context.Context, s storage.Attempts, cf, ip string, now time.Time) (int, error) {
	n, err := s.RecordFailure(ctx, accountKey(cf), now)
	if err != nil {
		return 0, fmt.Errorf("pin: throttle: %w", err)
	}
	if ip != "" {
		if _, err := s.RecordFailure(ctx, ipKey(ip), now); err != nil {
			return 0, fmt.Errorf("pin: throttle: %w", err)
		}
	}
	return n, nil
}

// succeed clears the account's counter (not the IP's: one success from an IP
// does not excuse its failures on other accounts).
func (t Throttle) succeed(ctx context.Context, s storage.Attempts, cf string) error {
	if err := s.ResetFailures(ctx, accountKey(cf)); err != nil {
		return fmt.Errorf("pin: throttle: %w", err)
	}
	return nil
}
