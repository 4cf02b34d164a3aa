package provider

import (
	"mime"
	"net/http"
)

// formMediaType is the only body the OAuth endpoints read (RFC 6749 §3.2,
// §4.1.3; RFC 7009 §2.1; RFC 7662 §2.1; RFC 9126 §2) and the only one a
// browser's POST to /authorize or /logout needs.
const formMediaType = "application/x-www-form-urlencoded"

var msgUnsupportedMedia = message{
	"La richiesta non è nel formato atteso.",
	"The request is not in the expected format.",
}

// formEncoded reports whether r carries no body, or a form-encoded one. A body
// without a Content-Type is refused too: it can only be a client's mistake.
func formEncoded(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return r.ContentLength == 0
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == formMediaType
}

// formOnly refuses, with 415, a request whose body is not form-encoded before
// it reaches fosite. fosite parses bodies with ParseMultipartForm, which keeps
// the parts of a multipart body in memory or spools them to temporary files:
// work for anyone, before any client authentication. oauthJSON selects an
// RFC 6749 §5.2 JSON error (the endpoints a client calls) over a page for a
// person (the endpoints a browser posts to).
func (p *Provider) formOnly(h http.Handler, oauthJSON bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if formEncoded(r) {
			h.ServeHTTP(w, r)
			return
		}
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		p.log.InfoContext(r.Context(), "request refused: body not form-encoded", "path", r.URL.Path, "media_type", mt)
		if !oauthJSON {
			p.errorPage(w, r, http.StatusUnsupportedMediaType, msgUnsupportedMedia)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{
			"error":             "invalid_request",
			"error_description": "The request body must be " + formMediaType + ".",
		})
	})
}
