package provider

import (
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/ory/fosite"

	"github.com/ponte-id/ponte/internal/ui"
	"github.com/ponte-id/ponte/storage"
)

// An outage of the database (storage.ErrUnavailable, found through fosite's
// wrapping: fosite keeps a storage error as the cause of its own, often
// server_error, sometimes invalid_client) is answered 503 with Retry-After in
// each endpoint's own form: temporarily_unavailable as JSON to clients
// (RFC 6749 §5.2) or as an authorization error redirect (§4.1.2.1) when the
// redirect URI was verified; otherwise the come-back page (ui.ComeBack).
// Nothing was done: the same request may be sent again.

// unavailable reports whether err comes from the database being unavailable.
func unavailable(err error) bool {
	return errors.Is(err, storage.ErrUnavailable)
}

// setRetryAfter tells the client when to try again after an outage.
func setRetryAfter(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(storage.RetryAfter.Seconds()))))
}

// oauthUnavailable turns an error caused by a database outage into
// temporarily_unavailable (503), its cause kept, and sets Retry-After on w
// (also for fosite's own temporarily_unavailable); any other error it
// returns as it is.
func oauthUnavailable(w http.ResponseWriter, err error) error {
	if errors.Is(err, fosite.ErrTemporarilyUnavailable) {
		setRetryAfter(w)
		return err
	}
	if err == nil || !unavailable(err) {
		return err
	}
	setRetryAfter(w)
	// fosite keeps the storage error's text as its debug field.
	debug := fosite.ErrorToRFC6749Error(err).DebugField
	if debug == "" {
		debug = err.Error()
	}
	return fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(debug)
}

// comeBack answers a person's request that an outage stopped with the
// come-back page (503, Retry-After), and logs it at Warn: an outage is the
// database's, seen by /readyz and the alerts, not a bug of this request.
func (p *Provider) comeBack(w http.ResponseWriter, r *http.Request, msg string, err error) {
	p.log.WarnContext(r.Context(), msg+": database unavailable", "err", err)
	ui.ComeBack(w, r, storage.RetryAfter, ui.Unavailable)
}
