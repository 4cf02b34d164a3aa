package pin

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ponte-id/ponte/storage"
)

// ErrUpload: a conversion document that is too large or of a type not accepted.
var ErrUpload = errors.New("pin: documents must be PDF, JPEG or PNG, within the size limit")

// acceptedTypes are the document types a conversion takes, as sniffed from the bytes.
var acceptedTypes = map[string]bool{"application/pdf": true, "image/jpeg": true, "image/png": true}

// sniff returns the content type of a document, judged from its bytes (never
// from what the browser claims).
func sniff(doc []byte) string {
	t, _, _ := strings.Cut(http.DetectContentType(doc), ";")
	return t
}

// SubmitConversion records a citizen's request to make their ordinary PIN
// dispositivo: the signed request form and a scan of an identity document
// (front and back), both sealed at rest. The caller has just checked the PIN.
func (s *Service) SubmitConversion(ctx context.Context, cf string, form, document []byte) (storage.Conversion, error) {
	for _, doc := range [][]byte{form, document} {
		if len(doc) == 0 || int64(len(doc)) > s.cfg.MaxUpload || !acceptedTypes[sniff(doc)] {
			return storage.Conversion{}, ErrUpload
		}
	}
	a, err := s.store.GetPINAccount(ctx, cf)
	if err != nil {
		return storage.Conversion{}, err
	}
	if a.Status != storage.PINActive || a.Dispositivo {
		return storage.Conversion{}, fmt.Errorf("pin: only an active ordinary PIN converts")
	}
	id := base64.RawURLEncoding.EncodeToString(randomBytes(12))
	sealedForm, err := s.box.Seal(form, []byte("conversion:"+id+":form"))
	if err != nil {
		return storage.Conversion{}, err
	}
	sealedDoc, err := s.box.Seal(document, []byte("conversion:"+id+":document"))
	if err != nil {
		return storage.Conversion{}, err
	}
	c := storage.Conversion{
		ID: id, FiscalNumber: cf, Form: sealedForm, FormType: sniff(form), Document: sealedDoc,
		DocumentType: sniff(document), Status: storage.ConversionPending, CreatedAt: s.now().UTC(),
	}
	err = s.inTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateConversion(ctx, c); err != nil {
			return err
		}
		return s.appendAudit(ctx, cf, "conversion_requested", ChannelOnline, "", c.ID+" lang="+localeOf(ctx))
	})
	c.Form, c.Document = nil, nil
	return c, err
}

// PendingConversions is the operators' review queue, oldest first.
func (s *Service) PendingConversions(ctx context.Context) ([]storage.Conversion, error) {
	return s.store.ListConversions(ctx, storage.ConversionPending)
}

// ConversionDocuments opens a request's documents for an operator to check.
func (s *Service) ConversionDocuments(ctx context.Context, id string) (form, document []byte, err error) {
	c, err := s.store.GetConversion(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if form, err = s.box.Open(c.Form, []byte("conversion:"+id+":form")); err != nil {
		return nil, nil, err
	}
	document, err = s.box.Open(c.Document, []byte("conversion:"+id+":document"))
	return form, document, err
}

// ErrReviewed is returned when a conversion request was already approved or
// rejected (by another operator, maybe at the same moment).
var ErrReviewed = errors.New("already reviewed")

// ReviewConversion approves or rejects a pending request. On approval the same
// PIN becomes dispositivo. The citizen is told either way.
func (s *Service) ReviewConversion(ctx context.Context, id, operator string, approve bool, reason string) error {
	if operator == "" || (!approve && reason == "") {
		return errors.New("pin: a review names its operator, and a rejection its reason")
	}
	pending, err := s.store.GetConversion(ctx, id)
	if err != nil {
		return err
	}
	if err := s.refuseSelf(ctx, pending.FiscalNumber, ChannelBranch, operator, "conversion review "+id); err != nil {
		return err
	}
	return s.inTx(ctx, func(ctx context.Context) error {
		var c storage.Conversion
		err := s.store.UpdateConversion(ctx, id, func(old storage.Conversion) (storage.Conversion, error) {
			if old.Status != storage.ConversionPending {
				return old, fmt.Errorf("pin: conversion %s is %s: %w", id, old.Status, ErrReviewed)
			}
			old.Status, old.Reason, old.ReviewedBy, old.ReviewedAt = storage.ConversionRejected, reason, operator, s.now().UTC()
			if approve {
				old.Status = storage.ConversionApproved
			}
			c = old
			return old, nil
		})
		if err != nil {
			return err
		}
		var acct storage.PINAccount
		err = s.store.UpdatePINAccount(ctx, c.FiscalNumber, func(a storage.PINAccount) (storage.PINAccount, error) {
			if approve {
				a.Dispositivo = true
			}
			acct = a
			return a, nil
		})
		if err != nil {
			return err
		}
		event, outcome := "conversion_rejected", msgConversionRejected
		if approve {
			event, outcome = "converted", msgConversionApproved
		}
		if acct.Email != "" {
			ctx := WithLocale(ctx, s.conversionLocale(ctx, c))
			// The reason is the operator's text: it can never stand for a secret.
			reason := strings.ReplaceAll(strings.TrimSpace(reason), "{{", "{ {")
			if err := s.sendHalf(ctx, acct, "email", "", outcome, "{reason}", reason); err != nil {
				return err
			}
		}
		return s.appendAudit(ctx, c.FiscalNumber, event, "", operator, id)
	})
}

// conversionLocale is the language the citizen used to ask for conversion c,
// as its audit event records it ("<id> lang=<locale>"); Italian if unknown.
func (s *Service) conversionLocale(ctx context.Context, c storage.Conversion) string {
	events, err := s.store.ListAudit(ctx, c.FiscalNumber)
	if err != nil {
		s.log.WarnContext(ctx, "reading the conversion's language failed", "err", err)
		return "it"
	}
	for _, e := range events {
		if f := strings.Fields(e.Detail); e.Event == "conversion_requested" && len(f) == 2 && f[0] == c.ID && f[1] == "lang=en" {
			return "en"
		}
	}
	return "it"
}
