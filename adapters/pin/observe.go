package pin

import (
	"context"
	"sync/atomic"

	"github.com/ponte-id/ponte/idp"
)

var _ idp.Metered = (*authenticator)(nil)

// loginResult is one way a PIN login form can end short of the core's
// session; the core counts the successes.
type loginResult int

// The results of the login form, as the metrics name them. A wrong PIN and an
// unknown codice fiscale are one result: nothing tells them apart.
const (
	resultBadCredentials loginResult = iota
	resultThrottled
	resultBusy
	resultRevoked
	resultNotActivated
	resultChangeRequired
	resultError
	numLoginResults
)

var loginResultNames = [numLoginResults]string{
	"bad_credentials", "throttled", "busy", "revoked", "not_activated", "change_required", "error",
}

// loginCounts counts the login form's results.
type loginCounts [numLoginResults]atomic.Uint64

func (c *loginCounts) add(r loginResult) { c[r].Add(1) }

// CollectMetrics reports the login form's results, the argon2id gate (the
// checks in flight and in line, refusals, the wait) and the outbox (messages
// waiting for delivery, parked for an operator).
func (a *authenticator) CollectMetrics(ctx context.Context, emit func(idp.Sample)) {
	s := a.s
	for r := range numLoginResults {
		emit(idp.Sample{Name: idp.MetricLogins, Kind: idp.Counter, Value: float64(s.logins[r].Load()),
			Labels: []idp.Label{{Name: "result", Value: loginResultNames[r]}}})
	}
	s.hash.gate.Samples("argon2id", emit)
	n, err := s.store.CountOutbox(ctx, s.now())
	if err != nil {
		s.log.WarnContext(ctx, "counting the outbox for metrics failed", "err", err)
		return
	}
	emit(idp.Sample{Name: "ponte_pin_outbox_backlog", Help: "Unsent PIN messages (letters, SMS, email) waiting for delivery or a retry.", Kind: idp.Gauge, Value: float64(n.Backlog)})
	emit(idp.Sample{Name: "ponte_pin_outbox_parked", Help: "Unsent PIN messages parked until an operator requeues them.", Kind: idp.Gauge, Value: float64(n.Parked)})
}
