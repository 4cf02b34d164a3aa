package flow

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/oauth2"
)

// MaxRetryWait caps the wait a Retry-After asks before the one retry.
const MaxRetryWait = 3 * time.Second

// RetryDelay is how long to wait before retrying after an answer with the
// Retry-After header h (RFC 9110 §10.2.3: seconds or an HTTP date), at
// most limit; one second when h says nothing usable.
func RetryDelay(h string, now time.Time, limit time.Duration) time.Duration {
	d := time.Second
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = max(t.Sub(now), 0)
	}
	return min(d, limit)
}

// retryable reports whether a failed exchange is worth one more try, and
// after how long: the token endpoint answered 502 or 503 (a balancer whose
// node died, a node shedding load or without its database). The code is
// in the database, so another node can redeem it.
func retryable(err error, now time.Time) (time.Duration, bool) {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil {
		return 0, false
	}
	switch re.Response.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return RetryDelay(re.Response.Header.Get("Retry-After"), now, MaxRetryWait), true
	}
	return 0, false
}

// RedeemRetry is Redeem as a robust relying party does it: after a 502 or
// 503 from the token endpoint it waits for the Retry-After (at most
// MaxRetryWait) and tries once more. retried says whether it did.
func (rp *RP) RedeemRetry(ctx context.Context, l Login) (tok Tokens, retried bool, err error) {
	tok, err = rp.Redeem(ctx, l)
	d, ok := retryable(err, time.Now())
	if !ok {
		return tok, false, err
	}
	select {
	case <-ctx.Done():
		return tok, false, err
	case <-time.After(d):
	}
	tok, err = rp.Redeem(ctx, l)
	return tok, true, err
}
