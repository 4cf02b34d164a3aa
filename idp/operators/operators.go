// Package operators authenticates INPS operators (branch offices, contact
// center, reviewers) on the operator APIs. An operator presents a bearer token;
// Ponte keeps only the SHA-256 of each token, configured as "id=hex", and puts
// the operator's ID in the request context (idp.WithOperator) for the method
// that serves the API to audit under. The back-office console will replace the
// static list with managed roles.
package operators

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ponte-id/ponte/idp"
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

// Require lets through only requests with a known operator's bearer token.
func (r *Registry) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		token, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		id := ""
		if ok && token != "" {
			id = r.lookup(token)
		}
		if id == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ponte-operators"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"operator authentication required"}` + "\n"))
			return
		}
		next.ServeHTTP(w, req.WithContext(idp.WithOperator(req.Context(), id)))
	})
}
