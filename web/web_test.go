package web_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/openanalyst/mcp-integration-service/web"
)

const wantCSP = "default-src 'self'; img-src 'self' https: data:; style-src 'self'; script-src 'self'; " +
	"connect-src 'self'; frame-ancestors 'none'"

func get(t *testing.T, h http.Handler, method, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	res := rec.Result()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

// mounts are the two ways the API node may mount the page.
func mounts() map[string]http.Handler {
	stripped := http.NewServeMux()
	stripped.Handle("/ui/", http.StripPrefix("/ui", web.Handler()))
	direct := http.NewServeMux()
	direct.Handle("/ui/", web.Handler())
	return map[string]http.Handler{"StripPrefix": stripped, "at /ui/": direct}
}

func TestHandlerServesPage(t *testing.T) {
	for name, h := range mounts() {
		t.Run(name, func(t *testing.T) {
			res, body := get(t, h, http.MethodGet, "/ui/")
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET /ui/: %d %s", res.StatusCode, body)
			}
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("GET /ui/ Content-Type = %q, want text/html", ct)
			}
			if !strings.Contains(body, `<script type="module" src="app.js"></script>`) {
				t.Errorf("index.html does not load app.js as a module")
			}
			checkHeaders(t, "/ui/", res)

			// The OAuth return lands on the page with a query string.
			res, _ = get(t, h, http.MethodGet, "/ui/?status=success&provider=gmail")
			if res.StatusCode != http.StatusOK {
				t.Errorf("GET /ui/?status=success: %d", res.StatusCode)
			}

			for path, want := range map[string]string{
				"/ui/app.js":    "javascript",
				"/ui/api.js":    "javascript",
				"/ui/style.css": "text/css",
			} {
				res, body := get(t, h, http.MethodGet, path)
				if res.StatusCode != http.StatusOK || body == "" {
					t.Errorf("GET %s: %d, %d bytes", path, res.StatusCode, len(body))
					continue
				}
				if ct := res.Header.Get("Content-Type"); !strings.Contains(ct, want) {
					t.Errorf("GET %s Content-Type = %q, want %s", path, ct, want)
				}
				checkHeaders(t, path, res)
			}

			res, _ = get(t, h, http.MethodGet, "/ui/nope.js")
			if res.StatusCode != http.StatusNotFound {
				t.Errorf("GET /ui/nope.js: %d, want 404", res.StatusCode)
			}
			if got := res.Header.Get("Content-Security-Policy"); got != wantCSP {
				t.Errorf("/ui/nope.js: Content-Security-Policy = %q", got)
			}

			res, _ = get(t, h, http.MethodPost, "/ui/")
			if res.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("POST /ui/: %d, want 405", res.StatusCode)
			}
		})
	}
}

func TestHandlerRedirectsBareUI(t *testing.T) {
	res, _ := get(t, web.Handler(), http.MethodGet, "/ui?status=failed&provider=slack")
	if res.StatusCode != http.StatusMovedPermanently {
		t.Fatalf("GET /ui: %d, want 301", res.StatusCode)
	}
	if loc := res.Header.Get("Location"); loc != "/ui/?status=failed&provider=slack" {
		t.Errorf("GET /ui redirects to %q", loc)
	}
}

func checkHeaders(t *testing.T, path string, res *http.Response) {
	t.Helper()
	for k, want := range map[string]string{
		"Content-Security-Policy": wantCSP,
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "no-cache",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s: %s = %q, want %q", path, k, got, want)
		}
	}
}

// The CSP forbids inline script and style, so the markup must have none, and
// every module a script imports must be embedded.
func TestStaticFilesKeepTheCSP(t *testing.T) {
	files := web.Files()
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	html := string(index)
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`), // a script with a body
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle\s*=`),
		regexp.MustCompile(`\son[a-z]+\s*=`), // inline event handlers
		regexp.MustCompile(`(?:src|href)\s*=\s*"(?:https?:)?//`),
	} {
		if m := bad.FindString(html); m != "" {
			t.Errorf("index.html has %q, which the CSP forbids or which leaves this origin", m)
		}
	}

	importRe := regexp.MustCompile(`(?m)^\s*import\s[^'"]*['"]([^'"]+)['"]`)
	err = fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".js") {
			return err
		}
		src, err := fs.ReadFile(files, path)
		if err != nil {
			return err
		}
		for _, m := range importRe.FindAllStringSubmatch(string(src), -1) {
			spec := m[1]
			if !strings.HasPrefix(spec, "./") {
				t.Errorf("%s imports %q: only relative imports of embedded files work without a bundler", path, spec)
				continue
			}
			if _, err := fs.Stat(files, strings.TrimPrefix(spec, "./")); err != nil {
				t.Errorf("%s imports %q, which is not embedded", path, spec)
			}
		}
		if strings.Contains(string(src), "innerHTML") || strings.Contains(string(src), "console.log") {
			t.Errorf("%s uses innerHTML or console.log: service data is inserted as text, and nothing is logged", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
