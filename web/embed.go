package web

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// Prefix is the path the page is served under.
const Prefix = "/ui/"

// CSP is the Content-Security-Policy of every response: scripts, styles and
// API calls come from this origin only, and the page cannot be framed.
const CSP = "default-src 'self'; img-src 'self' https: data:; style-src 'self'; script-src 'self'; " +
	"connect-src 'self'; frame-ancestors 'none'"

// Files returns the embedded page (index.html, app.js, style.css, ...).
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}

// Handler serves the embedded page under /ui/ (the caller mounts it with http.StripPrefix or at /ui/).
//
// Both mountings work: a path that still starts with /ui/ is stripped here,
// and /ui itself redirects to /ui/. Only GET and HEAD are answered.
func Handler() http.Handler {
	files := http.FileServerFS(Files())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := r.URL.Path
		if p == strings.TrimSuffix(Prefix, "/") {
			target := Prefix
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			// The path is fixed; only the query (an OAuth return) is carried over.
			http.Redirect(w, r, target, http.StatusMovedPermanently) //nolint:gosec // not an open redirect

			return
		}
		if strings.HasPrefix(p, Prefix) {
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/" + strings.TrimPrefix(p, Prefix)
			r2.URL.RawPath = ""
			r = r2
		}
		files.ServeHTTP(w, r)
	})
}
