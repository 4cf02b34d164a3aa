package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ponte-id/ponte/idp/staff"
	"github.com/ponte-id/ponte/internal/clientaddr"
	"github.com/ponte-id/ponte/internal/fields"
	"github.com/ponte-id/ponte/internal/ratelimit"
	"github.com/ponte-id/ponte/storage"
)

// Prefix is where the admin API is mounted.
const Prefix = "/admin/api/v1"

// MaxBody bounds a request body.
const MaxBody = 64 << 10

// Route is one operation of the admin API: its method, its path (a
// net/http pattern under Prefix) and the roles that may call it (none: no
// authentication, for the API's own description).
type Route struct {
	Method, Path string
	Roles        []string
	handle       func(a *api, w http.ResponseWriter, r *http.Request, p staff.Principal)
}

var (
	adminOnly   = []string{staff.RoleAdmin}
	adminOrAudi = []string{staff.RoleAdmin, staff.RoleAuditor}
)

// Routes lists every operation of the admin API.
func Routes() []Route {
	return []Route{
		{"GET", "/openapi.yaml", nil, (*api).openAPI},
		{"GET", "/clients", adminOnly, (*api).listClients},
		{"POST", "/clients", adminOnly, (*api).createClient},
		{"GET", "/clients/{id}", adminOnly, (*api).getClient},
		{"PUT", "/clients/{id}", adminOnly, (*api).updateClient},
		{"DELETE", "/clients/{id}", adminOnly, (*api).deleteClient},
		{"POST", "/clients/{id}/secret", adminOnly, (*api).rotateSecret},
		{"GET", "/keys", adminOrAudi, (*api).listKeys},
		{"POST", "/keys", adminOnly, (*api).rotateKey},
		{"GET", "/staff", adminOrAudi, (*api).listStaff},
		{"POST", "/staff", adminOnly, (*api).grant},
		{"DELETE", "/staff/{fiscal_number}/{role}", adminOnly, (*api).revoke},
		{"GET", "/tokens", adminOnly, (*api).listTokens},
		{"POST", "/tokens", adminOnly, (*api).createToken},
		{"DELETE", "/tokens/{id}", adminOnly, (*api).revokeToken},
		{"DELETE", "/citizens/{fiscal_number}/sessions", adminOnly, (*api).endSessions},
		{"GET", "/audit", adminOrAudi, (*api).searchAudit},
		{"GET", "/audit/export", adminOrAudi, (*api).exportAudit},
	}
}

// api is the admin API's handlers.
type api struct {
	svc     *Service
	log     *slog.Logger
	openapi []byte
	fails   ratelimit.Failures
}

// Handler serves the admin API under Prefix. Callers authenticate with an
// API token (Authorization: Bearer); a route answers 401 without a valid
// token and 403 to a token without one of its roles. openapi is the API's
// description, served at Prefix/openapi.yaml. fails bounds the wrong tokens
// an address may present (its zero fields take the defaults of
// ratelimit.Failures, fails.Name "admin"): beyond, every call from it that
// needs a token answers 429 with Retry-After, before its token is checked,
// until the window ends.
func Handler(svc *Service, openapi []byte, log *slog.Logger, fails ratelimit.Failures) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if fails.Name == "" {
		fails.Name = "admin"
	}
	a := &api{svc: svc, log: log, openapi: openapi, fails: fails.WithDefaults()}
	mux := http.NewServeMux()
	for _, rt := range Routes() {
		mux.Handle(rt.Method+" "+Prefix+rt.Path, a.guard(rt))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if _, pattern := mux.Handler(r); pattern == "" {
			notServed(mux, w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		mux.ServeHTTP(w, r)
	})
}

// notServed answers, as JSON, a request no route serves: 405 with Allow when
// the path is served for other methods, 404 otherwise.
func notServed(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		writeError(w, http.StatusNotFound, "not_found", "no such operation", nil)
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "allowed: "+strings.Join(allow, ", "), nil)
}

// guard authenticates and authorizes before the handler runs.
func (a *api) guard(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.Roles == nil {
			rt.handle(a, w, r, staff.Principal{})
			return
		}
		client := clientaddr.Of(r)
		attempt, retry, blocked := a.fails.Begin(r.Context(), client)
		if blocked {
			w.Header().Set("Retry-After", ratelimit.RetryAfter(retry))
			writeError(w, http.StatusTooManyRequests, "too_many_requests", "too many wrong API tokens from this address: try again later", nil)
			return
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			attempt.Passed(r.Context())
			w.Header().Set("WWW-Authenticate", `Bearer realm="ponte-admin"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "an API token is required", nil)
			return
		}
		p, err := a.svc.staff.Authenticate(r.Context(), token)
		if errors.Is(err, staff.ErrUnauthenticated) {
			a.log.WarnContext(r.Context(), "admin API: a wrong API token", "client", client)
			w.Header().Set("WWW-Authenticate", `Bearer realm="ponte-admin", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "the API token is not valid", nil)
			return
		}
		attempt.Passed(r.Context())
		if err != nil {
			a.failed(w, r, err)
			return
		}
		if !slices.ContainsFunc(rt.Roles, p.Has) {
			writeError(w, http.StatusForbidden, "forbidden", "this operation needs the role "+strings.Join(rt.Roles, " or "), nil)
			return
		}
		rt.handle(a, w, r, p)
	})
}

func (a *api) openAPI(w http.ResponseWriter, _ *http.Request, _ staff.Principal) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(a.openapi)
}

// failed answers an error: a field problem is 400, a missing record 404, a
// duplicate 409, the database unavailable 503 with Retry-After, anything
// else 500 (logged, not shown).
func (a *api) failed(w http.ResponseWriter, r *http.Request, err error) {
	var fe *fields.Error
	switch {
	case errors.As(err, &fe):
		writeError(w, http.StatusBadRequest, "invalid_request", "", fe.Fields)
	case errors.Is(err, storage.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such record", nil)
	case errors.Is(err, storage.ErrConflict):
		writeError(w, http.StatusConflict, "conflict", "it exists already", nil)
	case errors.Is(err, staff.ErrLastAdmin):
		writeError(w, http.StatusConflict, "conflict", "the last admin cannot lose the role", nil)
	case errors.Is(err, context.Canceled):
	case errors.Is(err, storage.ErrUnavailable):
		a.log.WarnContext(r.Context(), "admin API: database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", strconv.Itoa(int(storage.RetryAfter/time.Second)))
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the database is unavailable; retry after the time in Retry-After", nil)
	default:
		a.log.ErrorContext(r.Context(), "admin API failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "internal error", nil)
	}
}

// apiError is every error's body.
type apiError struct {
	Error       string            `json:"error"`
	Description string            `json:"error_description,omitempty"`
	Fields      map[string]string `json:"fields,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, desc string, f map[string]string) {
	writeJSON(w, status, apiError{Error: code, Description: desc, Fields: f})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// readJSON decodes a JSON body into v, refusing another content type (415),
// unknown fields, values of the wrong type (400, by field) and trailing data.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be application/json", nil)
		return false
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("data after the JSON value")
	}
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("data after the JSON value")
		}
	}
	if err == nil {
		return true
	}
	var (
		typeErr *json.UnmarshalTypeError
		tooBig  *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "request_too_large", "the body is too large", nil)
	case errors.As(err, &typeErr) && typeErr.Field != "":
		writeError(w, http.StatusBadRequest, "invalid_request", "", map[string]string{typeErr.Field: "must be " + jsonType(typeErr.Type.Kind().String())})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		writeError(w, http.StatusBadRequest, "invalid_request", "", map[string]string{name: "unknown field"})
	default:
		writeError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("malformed JSON: %v", err), nil)
	}
	return false
}

// jsonType names a Go kind as JSON knows it.
func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return "a number"
}
