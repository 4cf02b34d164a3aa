package pin

import (
	"context"
	"errors"

	"github.com/ponte-id/ponte/internal/codicefiscale"
)

// ErrSelf refuses a procedure an operator runs on their own PIN: no one
// requests, issues (MV35), revokes, unlocks, converts or decides a callback
// about their own PIN, nor requeues a message about it; a colleague must.
// The operator API answers it 403, the console with its page; the refusal is
// audited (operator_self_refused) under the operator.
var ErrSelf = errors.New("pin: an operator cannot run a procedure on their own PIN: ask a colleague")

// errSelfText is ErrSelf as the operator API says it.
const errSelfText = "you cannot run a procedure on your own PIN: ask a colleague"

// isSelf reports whether cf is the operator's own codice fiscale (staff are
// identified by theirs; the IDs of the static operator list never match).
func isSelf(cf, operator string) bool {
	return operator != "" && codicefiscale.Normalize(cf) == codicefiscale.Normalize(operator)
}

// refuseSelf returns nil unless cf is the operator's own; then it logs and
// audits the refusal of procedure, outside any transaction, and returns
// ErrSelf.
func (s *Service) refuseSelf(ctx context.Context, cf, channel, operator, procedure string) error {
	if !isSelf(cf, operator) {
		return nil
	}
	cf = codicefiscale.Normalize(cf)
	s.log.WarnContext(ctx, "pin: an operator's procedure on their own PIN refused", "procedure", procedure, "cf", Mask(cf))
	s.audit(ctx, cf, "operator_self_refused", channel, operator, procedure)
	return ErrSelf
}
