package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/storage"
)

var _ idp.Citizens = Revoker{}

// Known reports whether a citizen has a subject (has logged in with some
// method), with the email the subject carries.
func (rv Revoker) Known(ctx context.Context, fiscalNumber string) (bool, string, error) {
	subj, err := rv.Store.GetSubjectByFiscalNumber(ctx, fiscalNumber)
	if errors.Is(err, storage.ErrNotFound) {
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("provider: known citizen: %w", err)
	}
	return true, subj.Email, nil
}
