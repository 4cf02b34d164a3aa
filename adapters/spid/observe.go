package spid

import (
	"context"
	"sync/atomic"

	"github.com/ponte-id/ponte/idp"
)

var _ idp.Metered = (*authenticator)(nil)

// refusal is why the assertion consumer service refused a response; the log
// has the details (the rule broken), the metrics only these few reasons.
type refusal int

const (
	// refusedMalformed: the form, its size, base64 or XML.
	refusedMalformed refusal = iota
	// refusedUnknownRequest: InResponseTo names no pending AuthnRequest.
	refusedUnknownRequest
	// refusedState: the request's state or RelayState does not match.
	refusedState
	// refusedUnknownIDP: the identity provider left the registry.
	refusedUnknownIDP
	// refusedIDPStatus: the identity provider answered with an error status.
	refusedIDPStatus
	// refusedRules: a SPID rule on the Response or the Assertion is broken
	// (signatures included).
	refusedRules
	// refusedSAML: crewjam/saml's own checks failed.
	refusedSAML
	// refusedReplay: the assertion was already used.
	refusedReplay
	// refusedIdentity: the attributes make no identity (codice fiscale).
	refusedIdentity
	// refusedBusy: the verification line was full (503, the login pending).
	refusedBusy
	numRefusals
)

var refusalNames = [numRefusals]string{
	"malformed", "unknown_request", "state_mismatch", "unknown_idp", "idp_status",
	"spid_rules", "saml_checks", "replay", "identity", "busy",
}

// refusalCounts counts refusals by reason.
type refusalCounts [numRefusals]atomic.Uint64

// CollectMetrics reports the responses refused by reason, the logins refused
// in all, and the verification gate.
func (a *authenticator) CollectMetrics(_ context.Context, emit func(idp.Sample)) {
	var all uint64
	for r := range numRefusals {
		n := a.refusals[r].Load()
		all += n
		emit(idp.Sample{Name: "ponte_spid_refusals_total", Help: "SAML responses refused by the SPID assertion consumer service, by reason.",
			Kind: idp.Counter, Labels: []idp.Label{{Name: "reason", Value: refusalNames[r]}}, Value: float64(n)})
	}
	emit(idp.Sample{Name: idp.MetricLogins, Kind: idp.Counter, Labels: []idp.Label{{Name: "result", Value: "refused"}}, Value: float64(all)})
	a.acs.Samples("saml", emit)
}
