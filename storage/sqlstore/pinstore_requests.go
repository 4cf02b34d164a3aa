package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ponte-id/ponte/storage"
)

type pinRequestRow struct {
	ID           string `gorm:"column:id;primaryKey"`
	FiscalNumber string `gorm:"column:fiscal_number"`
	// Data is the JSON of the proposed account data and where the first half goes.
	Data      string `gorm:"column:data"`
	Channel   string `gorm:"column:channel"`
	Operator  string `gorm:"column:operator"`
	Status    string `gorm:"column:status"`
	DecidedBy string `gorm:"column:decided_by"`
	Created   dbTime `gorm:"column:created_at"`
	DecidedAt dbTime `gorm:"column:decided_at"`
}

func (pinRequestRow) TableName() string { return "pin_requests" }

// pinRequestData is what the data column holds.
type pinRequestData struct {
	Proposed     storage.PINAccount `json:"proposed"`
	FirstHalfVia string             `json:"first_half_via"`
}

func pinRequestToRow(r storage.PINRequest) (pinRequestRow, error) {
	r.Proposed.Hash, r.Proposed.PreviousHash, r.Proposed.ActivationHash, r.Proposed.ReplacementHash = nil, nil, nil, nil
	data, err := json.Marshal(pinRequestData{Proposed: r.Proposed, FirstHalfVia: r.FirstHalfVia})
	if err != nil {
		return pinRequestRow{}, fmt.Errorf("sqlstore: encode PIN request: %w", err)
	}
	return pinRequestRow{
		ID: r.ID, FiscalNumber: r.FiscalNumber, Data: string(data), Channel: r.Channel, Operator: r.Operator,
		Status: string(r.Status), DecidedBy: r.DecidedBy, Created: newTime(r.CreatedAt), DecidedAt: newTime(r.DecidedAt),
	}, nil
}

func (row pinRequestRow) request() (storage.PINRequest, error) {
	var d pinRequestData
	if err := json.Unmarshal([]byte(row.Data), &d); err != nil {
		return storage.PINRequest{}, fmt.Errorf("sqlstore: decode PIN request: %w", err)
	}
	return storage.PINRequest{
		ID: row.ID, FiscalNumber: row.FiscalNumber, Proposed: d.Proposed, FirstHalfVia: d.FirstHalfVia,
		Channel: row.Channel, Operator: row.Operator, Status: storage.PINRequestStatus(row.Status),
		DecidedBy: row.DecidedBy, CreatedAt: row.Created.t, DecidedAt: row.DecidedAt.t,
	}, nil
}

// CreatePINRequest stores r; storage.ErrConflict if the ID is taken.
func (s *Store) CreatePINRequest(ctx context.Context, r storage.PINRequest) error {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.now()
	}
	row, err := pinRequestToRow(r)
	if err != nil {
		return err
	}
	return wrap("create PIN request", s.writer(ctx).Create(&row).Error)
}

// GetPINRequest returns a request, or storage.ErrNotFound.
func (s *Store) GetPINRequest(ctx context.Context, id string) (storage.PINRequest, error) {
	var row pinRequestRow
	if err := s.conn(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return storage.PINRequest{}, wrap("get PIN request", err)
	}
	return row.request()
}

// ListPINRequests returns up to limit requests in status, oldest first, after offset.
func (s *Store) ListPINRequests(ctx context.Context, status storage.PINRequestStatus, offset, limit int) ([]storage.PINRequest, error) {
	var rows []pinRequestRow
	if err := s.conn(ctx).Where("status = ?", string(status)).Order("created_at, id").Offset(offset).Limit(limit).Find(&rows).Error; err != nil {
		return nil, wrap("list PIN requests", err)
	}
	out := make([]storage.PINRequest, 0, len(rows))
	for _, row := range rows {
		r, err := row.request()
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// DecidePINRequest moves a waiting request to status with one conditional
// UPDATE ... RETURNING: of two operators deciding at once, one gets ErrNotFound.
func (s *Store) DecidePINRequest(ctx context.Context, id string, status storage.PINRequestStatus, by string, at time.Time) (storage.PINRequest, error) {
	var rows []pinRequestRow
	err := s.writer(ctx).Raw(`UPDATE pin_requests SET status = ?, decided_by = ?, decided_at = ?
WHERE id = ? AND status = ?
RETURNING id, fiscal_number, data, channel, operator, status, decided_by, created_at, decided_at`,
		string(status), by, newTime(at), id, string(storage.PINRequestCallback)).Scan(&rows).Error
	if err != nil {
		return storage.PINRequest{}, wrap("decide PIN request", err)
	}
	if len(rows) == 0 {
		return storage.PINRequest{}, notFound("decide PIN request")
	}
	return rows[0].request()
}

// SupersedePINRequests marks the citizen's waiting requests superseded.
func (s *Store) SupersedePINRequests(ctx context.Context, fiscalNumber, by string, at time.Time) (int64, error) {
	res := s.writer(ctx).Model(&pinRequestRow{}).
		Where("fiscal_number = ? AND status = ?", fiscalNumber, string(storage.PINRequestCallback)).
		Updates(map[string]any{"status": string(storage.PINRequestSuperseded), "decided_by": by, "decided_at": newTime(at)})
	return res.RowsAffected, wrap("supersede PIN requests", res.Error)
}
