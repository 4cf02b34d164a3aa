package pin

import (
	"context"
	"fmt"
	"time"

	"github.com/ponte-id/ponte/internal/clientaddr"
)

// Limits throttle the forms that a stranger can post about any citizen: the
// online request, recovery (ripristino) and revocation (revoca). Each action
// is counted per codice fiscale and per client IP in fixed windows. Beyond the
// citizen's limit the form answers as usual and does nothing (the answer
// reveals nothing, and no more mail or letters go out); beyond the IP's limit
// it answers 429.
//
// The citizen's count is kept in the database: it stands between a stranger
// and letters and messages sent to the citizen, and must survive a restart of
// anything. The IP's count, a guard against floods, goes to the node's limiter:
// shared by every node through Redis when it is configured, per node while
// Redis is down.
type Limits struct {
	PerCitizen    int           `yaml:"per_citizen"`
	CitizenWindow time.Duration `yaml:"citizen_window"`
	PerIP         int           `yaml:"per_ip"`
	IPWindow      time.Duration `yaml:"ip_window"`
}

// DefaultLimits allow three of each action a day per citizen and twenty an
// hour per address.
var DefaultLimits = Limits{PerCitizen: 3, CitizenWindow: 24 * time.Hour, PerIP: 20, IPWindow: time.Hour}

// RateLimitedError says a form was refused because its IP sent too many.
type RateLimitedError struct {
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("pin: too many requests from this address, retry in %s", e.RetryAfter.Round(time.Second))
}

// The throttled actions.
const (
	actionRequest = "request"
	actionRecover = "recover"
	actionRevoke  = "revoke"
)

// allowIP counts an action from ip (none for an operator's call, which has no
// IP here) and refuses it beyond the limit.
func (s *Service) allowIP(ctx context.Context, action, ip string) error {
	client := clientaddr.Key(ip) // an IPv6 /64 counts as one client
	if client == "" {
		return nil
	}
	d := s.limiter.Allow(ctx, "pin:"+action+":ip:"+client, s.cfg.Limits.PerIP, s.cfg.Limits.IPWindow)
	if !d.Allowed {
		return &RateLimitedError{RetryAfter: d.RetryAfter}
	}
	return nil
}

// allowCitizen counts an action about cf and says whether it may go on.
func (s *Service) allowCitizen(ctx context.Context, action, cf string) (bool, error) {
	n, err := s.store.CountInWindow(ctx, "rl:"+action+":cf:"+cf, s.now(), s.cfg.Limits.CitizenWindow)
	if err != nil {
		return false, fmt.Errorf("pin: rate limit: %w", err)
	}
	if n > s.cfg.Limits.PerCitizen {
		s.log.InfoContext(ctx, "PIN form throttled for the citizen", "action", action, "cf", Mask(cf), "count", n)
		return false, nil
	}
	return true, nil
}
