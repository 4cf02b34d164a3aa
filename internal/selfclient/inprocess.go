package selfclient

import (
	"net/http"
	"net/http/httptest"
)

// InProcess returns an HTTP client that serves every request with h (the
// server's own handler, set once it is built), without the network: a server
// behind a TLS-terminating proxy need not reach its own public address to
// redeem a code or read its JWKS. The requests come from 127.0.0.1.
func InProcess(h func() http.Handler) *http.Client {
	return &http.Client{Transport: inProcess{h}, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

type inProcess struct{ h func() http.Handler }

// RoundTrip serves req with the handler and returns the recorded response.
func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	in := req.Clone(req.Context())
	in.RequestURI = req.URL.RequestURI()
	in.RemoteAddr = "127.0.0.1:0"
	if in.Host == "" {
		in.Host = req.URL.Host
	}
	if in.Body == nil {
		in.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	t.h().ServeHTTP(rec, in)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}
