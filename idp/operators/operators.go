// Package operators authenticates INPS operators (branch offices, contact
// center, reviewers) on the operator APIs. An operator presents a bearer
// token: an API token an administrator issued with operator roles (checked by
// a TokenChecker, idp/staff), or one of the static bootstrap list configured
// in PONTE_OPERATORS, of which Ponte keeps only the SHA-256 ("id=hex") and
// which acts with every operator role. The operator's ID and roles go in the
// request context (idp.WithOperator, idp.WithOperatorRoles) for the method
// that serves the API to authorize and audit under.
package operators

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/clientaddr"
	"github.com/ponte-id/ponte/internal/ratelimit"
	"github.com/ponte-id/ponte/storage"
)

// Registry maps token hashes to operator IDs.
type Registry struct {
	ids    []string
	hashes [][]byte
}

// Parse reads entries "id=<sha256 of the token, hex>", reporting every bad
// entry by its position and ID (never its value, which might be a token pasted
// by mistake). An ID or a hash may appear only once: a token shared by two IDs
// would make the audit trail name whichever came last.
func Parse(entries []string) (*Registry, error) {
	r := &Registry{}
	var errs []error
	seenID, seenHash := map[string]bool{}, map[string]bool{}
	for i, e := range entries {
		id, hexHash, ok := strings.Cut(strings.TrimSpace(e), "=")
		h, err := hex.DecodeString(hexHash)
		switch {
		case !ok || id == "" || err != nil || len(h) != sha256.Size:
			errs = append(errs, fmt.Errorf("operators: entry %d (id %q) must be id=<64 hex digits of SHA-256(token)>", i+1, id))
		case seenID[id]:
			errs = append(errs, fmt.Errorf("operators: entry %d: id %q is listed twice", i+1, id))
		case seenHash[string(h)]:
			errs = append(errs, fmt.Errorf("operators: entry %d (id %q): its token hash is already another operator's", i+1, id))
		default:
			seenID[id], seenHash[string(h)] = true, true
			r.ids, r.hashes = append(r.ids, id), append(r.hashes, h)
		}
	}
	return r, errors.Join(errs...)
}

// HashToken is what to configure for a token: hex SHA-256.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// lookup compares the token's hash with every entry in constant time.
func (r *Registry) lookup(token string) string {
	sum := sha256.Sum256([]byte(token))
	found := ""
	for i, h := range r.hashes {
		if subtle.ConstantTimeCompare(sum[:], h) == 1 {
			found = r.ids[i]
		}
	}
	return found
}

// Require lets through only requests with a known operator's bearer token
// from the static list (with every operator role).
func (r *Registry) Require(next http.Handler) http.Handler {
	return Require(r, nil, nil, ratelimit.Failures{})(next)
}

// bootstrapRoles are the roles of an operator of the static list.
var bootstrapRoles = []string{idp.RoleOperatorSede, idp.RoleOperatorContactCenter}

// TokenChecker checks a bearer token issued by an administrator: the
// caller's ID and its operator roles, ok false when the token does not
// authenticate.
type TokenChecker func(ctx context.Context, token string) (id string, roles []string, ok bool, err error)

// Require returns the operators' authentication: a bearer token is looked up
// in the static list (nil: none), then given to tokens (nil: none). Without a
// known token the answer is 401; with a token that holds no operator role,
// 403. fails bounds the unknown tokens an address may present (its zero
// fields take the defaults of ratelimit.Failures, fails.Name "operators"):
// beyond, every call from it answers 429 with Retry-After, before its token
// is looked up, until the window ends. log may be nil.
func Require(static *Registry, tokens TokenChecker, log *slog.Logger, fails ratelimit.Failures) func(http.Handler) http.Handler {
	if fails.Name == "" {
		fails.Name = "operators"
	}
	fails = fails.WithDefaults()
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			client := clientaddr.Of(req)
			attempt, retry, blocked := fails.Begin(req.Context(), client)
			if blocked {
				w.Header().Set("Retry-After", ratelimit.RetryAfter(retry))
				writeJSON(w, http.StatusTooManyRequests, "too many unknown operator tokens from this address: try again later")
				return
			}
			token, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
			var (
				id    string
				roles []string
			)
			if ok && token != "" && static != nil {
				if id = static.lookup(token); id != "" {
					roles = bootstrapRoles
				}
			}
			if id == "" && ok && token != "" && tokens != nil {
				tid, troles, known, err := tokens(req.Context(), token)
				if known {
					id, roles = tid, troles
				}
				if err != nil {
					attempt.Passed(req.Context()) // the database failed, not the token
				}
				if errors.Is(err, storage.ErrUnavailable) {
					if log != nil {
						log.WarnContext(req.Context(), "operator authentication: database unavailable", "err", err)
					}
					w.Header().Set("Retry-After", strconv.Itoa(int(storage.RetryAfter/time.Second)))
					writeJSON(w, http.StatusServiceUnavailable, "temporarily unavailable")
					return
				}
				if err != nil {
					if log != nil {
						log.ErrorContext(req.Context(), "operator authentication failed", "err", err)
					}
					writeJSON(w, http.StatusInternalServerError, "internal error")
					return
				}
			}
			if id != "" || !ok || token == "" {
				attempt.Passed(req.Context()) // a known token, or none offered
			}
			switch {
			case id == "":
				w.Header().Set("WWW-Authenticate", `Bearer realm="ponte-operators"`)
				writeJSON(w, http.StatusUnauthorized, "operator authentication required")
				return
			case len(roles) == 0:
				writeJSON(w, http.StatusForbidden, "this token holds no operator role")
				return
			}
			ctx := idp.WithOperatorRoles(idp.WithOperator(req.Context(), id), roles...)
			next.ServeHTTP(w, req.WithContext(ctx))
		})
	}
}

func writeJSON(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"error": msg})
	_, _ = w.Write(append(b, '\n'))
}
