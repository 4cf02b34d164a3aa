package provider

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"mime"
	"net/http"
	"net/url"
)

// formPostScript submits the form_post page's form. It is the only script
// Ponte serves; the page's Content-Security-Policy allows it by its hash.
const formPostScript = `document.forms[0].submit();`

// formPostScriptHash is the CSP source for formPostScript (CSP Level 2 §4.2.4).
var formPostScriptHash = func() string {
	sum := sha256.Sum256([]byte(formPostScript))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

// formPostCSP lets the page run formPostScript and nothing else, load nothing,
// and be framed by no one. form-action is left open: the form goes to the
// client's registered redirect URI, whatever its scheme, and a browser applies
// form-action to the redirects that follow the post too.
var formPostCSP = "default-src 'none'; script-src " + formPostScriptHash + "; base-uri 'none'; frame-ancestors 'none'"

// formPostTemplate is the authorization response in response_mode=form_post
// (OAuth 2.0 Form Post Response Mode): fosite renders successes with it
// (fosite.Config.FormPostHTMLTemplate) and authorizeError renders errors. The
// form submits itself; without JavaScript the person presses the button. The
// script is spliced in as text, not through a template action, so that its
// bytes are exactly the ones hashed.
var formPostTemplate = template.Must(template.New("form_post").Parse(`<!DOCTYPE html>
<html lang="it">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Ponte</title>
</head>
<body>
<form method="post" action="{{.RedirURL}}">
{{- range $key, $values := .Parameters}}{{range $values}}
<input type="hidden" name="{{$key}}" value="{{.}}">
{{- end}}{{end}}
<noscript>
<p lang="it">Premi il pulsante per tornare al servizio.</p>
<p lang="en">Press the button to return to the service.</p>
<button type="submit">Prosegui / Continue</button>
</noscript>
</form>
<script>` + formPostScript + `</script>
</body>
</html>
`))

// setFormPostHeaders sets the headers of a form_post page: the CSP above, no
// framing, no referrer (the page's URL is the authorization request), never cached.
func setFormPostHeaders(h http.Header) {
	h.Set("Content-Security-Policy", formPostCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// writeFormPost writes a form_post page posting values to redirectURI.
func writeFormPost(w http.ResponseWriter, redirectURI string, values url.Values) {
	setFormPostHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = formPostTemplate.Execute(w, struct {
		RedirURL   string
		Parameters url.Values
	}{redirectURI, values})
}

// htmlHeaders gives every HTML response of h that sets no Content-Security-
// Policy of its own the form_post page's headers. Pages rendered through
// internal/ui set their own; what remains is the form_post page, which fosite
// writes for a granted authorization (WriteAuthorizeResponse sets only
// Content-Type and Cache-Control) from any route that can complete a login.
func htmlHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&htmlHeaderWriter{ResponseWriter: w}, r)
	})
}

// htmlHeaderWriter adds the form_post headers, if the response needs them,
// when the status line is written.
type htmlHeaderWriter struct {
	http.ResponseWriter
	checked bool
}

func (w *htmlHeaderWriter) check() {
	if w.checked {
		return
	}
	w.checked = true
	h := w.Header()
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	if mt == "text/html" && h.Get("Content-Security-Policy") == "" {
		setFormPostHeaders(h)
	}
}

// WriteHeader implements http.ResponseWriter.
func (w *htmlHeaderWriter) WriteHeader(status int) {
	w.check()
	w.ResponseWriter.WriteHeader(status)
}

// Write implements http.ResponseWriter.
func (w *htmlHeaderWriter) Write(b []byte) (int, error) {
	w.check()
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *htmlHeaderWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
