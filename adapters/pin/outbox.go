package pin

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/storage"
)

// maxParkedListed bounds one listing of parked messages.
const maxParkedListed = 200

// ParkedMessages returns the messages the dispatcher gave up on (a permanent
// refusal, or every attempt failed), oldest first, at most 200.
func (s *Service) ParkedMessages(ctx context.Context) ([]storage.Message, error) {
	return s.store.ListParked(ctx, s.now(), maxParkedListed)
}

// RequeueMessage makes a parked message due now, with a fresh count of
// attempts, once an operator has fixed its cause (a wrong address on record,
// a gateway down for days). The requeue is audited under the operator.
func (s *Service) RequeueMessage(ctx context.Context, id, operator string) error {
	if operator == "" {
		return errors.New("pin: a requeue names its operator")
	}
	var m storage.Message
	err := s.inTx(ctx, func(ctx context.Context) error {
		var err error
		if m, err = s.store.Requeue(ctx, id, s.now()); err != nil {
			return err
		}
		if isSelf(m.FiscalNumber, operator) {
			return ErrSelf // rolled back, then audited
		}
		return s.appendAudit(ctx, m.FiscalNumber, "message_requeued", m.Channel, operator, "message "+m.ID)
	})
	if errors.Is(err, ErrSelf) {
		return s.refuseSelf(ctx, m.FiscalNumber, m.Channel, operator, "requeue message "+m.ID)
	}
	return err
}

// parkedItem is a parked message as operators see it: no body, no secret.
type parkedItem struct {
	ID           string    `json:"id"`
	Channel      string    `json:"channel"`
	To           string    `json:"to"`
	Subject      string    `json:"subject"`
	FiscalNumber string    `json:"fiscal_number"`
	Attempts     int       `json:"attempts"`
	LastError    string    `json:"last_error"`
	CreatedAt    time.Time `json:"created_at"`
}

func (s *Service) opParked(w http.ResponseWriter, r *http.Request) {
	list, err := s.ParkedMessages(r.Context())
	if err != nil {
		s.opFailed(w, r, err)
		return
	}
	out := make([]parkedItem, 0, len(list))
	for _, m := range list {
		out = append(out, parkedItem{ID: m.ID, Channel: m.Channel, To: m.To, Subject: m.Subject,
			FiscalNumber: m.FiscalNumber, Attempts: m.Attempts, LastError: m.LastError, CreatedAt: m.CreatedAt})
	}
	writeJSONBody(w, http.StatusOK, out)
}

func (s *Service) opRequeue(w http.ResponseWriter, r *http.Request) {
	err := s.RequeueMessage(r.Context(), r.PathValue("id"), idp.OperatorFrom(r.Context()))
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, storage.ErrNotFound):
		writeError(w, http.StatusNotFound, "no unsent message with that id", nil)
	default:
		s.opFailed(w, r, err)
	}
}
