package flow

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"
)

// SPIDResult is what a SPID login went through besides its code.
type SPIDResult struct {
	// Reposted is true when the assertion consumer service answered 503
	// (its verification line full) and the response was posted again after
	// the Retry-After, as the busy page asks the citizen to.
	Reposted bool
	// AuthnNode and ACSNode are the nodes (X-Loadtest-Node, set by loadtest
	// lb) that issued the AuthnRequest and answered the ACS; empty when
	// the answers did not say.
	AuthnNode, ACSNode string
}

// NodeHeader is the header in which loadtest lb names the node that answered.
const NodeHeader = "X-Loadtest-Node"

// SPIDLogin logs cf in with SPID through the test identity provider
// idpEntityID (adapters/spid/testidp, on its own listener) in browser b:
// /authorize with idp_hint=spid:<entityID> → Ponte's AuthnRequest → the
// identity provider's page → cf chosen and posted → its signed Response
// posted to Ponte's ACS → the relying party's redirect with the code.
func (rp *RP) SPIDLogin(ctx context.Context, b *Browser, idpEntityID, cf string) (Login, SPIDResult, error) {
	var res SPIDResult
	u, l := rp.start("spid:" + idpEntityID)
	resp, body, err := b.do(ctx, http.MethodGet, u, nil)
	if err != nil {
		return l, res, err
	}
	if resp.Request.Response != nil { // the redirect to the identity provider: the AuthnRequest
		res.AuthnNode = resp.Request.Response.Header.Get(NodeHeader)
	}
	pick, ok := formWith(body, "request")
	if resp.StatusCode != http.StatusOK || !ok {
		return l, res, statusError("SPID identity provider's page", resp, body)
	}
	action, err := resp.Request.URL.Parse(pick.Action)
	if err != nil {
		return l, res, err
	}
	form := url.Values{"request": pick.Hidden["request"], "user": {cf}, "action": {"login"}}
	resp, body, err = b.do(ctx, http.MethodPost, action.String(), form)
	if err != nil {
		return l, res, err
	}
	post, ok := formWith(body, "SAMLResponse")
	if resp.StatusCode != http.StatusOK || !ok {
		return l, res, statusError("SPID identity provider's answer", resp, body)
	}
	resp, body, err = b.do(ctx, http.MethodPost, post.Action, post.Hidden)
	if err != nil {
		return l, res, err
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		// The busy page: the login waits; the same response posted again later completes it.
		if _, ok := formWith(body, "SAMLResponse"); !ok {
			return l, res, statusError("SPID ACS", resp, body)
		}
		select {
		case <-ctx.Done():
			return l, res, ctx.Err()
		case <-time.After(RetryDelay(resp.Header.Get("Retry-After"), time.Now(), MaxRetryWait)):
		}
		res.Reposted = true
		if resp, body, err = b.do(ctx, http.MethodPost, post.Action, post.Hidden); err != nil {
			return l, res, err
		}
	}
	first := resp // the ACS's own answer, before the redirects it started
	for first.Request.Response != nil {
		first = first.Request.Response
	}
	res.ACSNode = first.Header.Get(NodeHeader)
	l, err = rp.code(l, resp, body)
	var se *StatusError
	if errors.As(err, &se) {
		se.Step = "SPID ACS"
	}
	return l, res, err
}
