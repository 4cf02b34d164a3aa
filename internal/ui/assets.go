package ui

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// AssetsPath is where the edge serves the layout's files (the Titillium Web
// fonts): from Ponte itself, never from a CDN, so that a page loads nothing
// from another site.
const AssetsPath = "/assets/"

//go:embed assets
var assetsFS embed.FS

// Assets serves the layout's files below AssetsPath: only the files embedded,
// no directory listing, cached for a day.
func Assets() http.Handler {
	sub, _ := fs.Sub(assetsFS, "assets")
	files := http.FileServer(http.FS(sub))
	return http.StripPrefix(strings.TrimSuffix(AssetsPath, "/"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	}))
}
