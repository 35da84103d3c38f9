package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/openanalyst/mcp-integration-service/api"
)

type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			In     string `json:"in"`
			Name   string `json:"name"`
			Scheme string `json:"scheme"`
		} `json:"securitySchemes"`
		Responses map[string]json.RawMessage `json:"responses"`
	} `json:"components"`
}

func loadOpenAPI(t *testing.T) (openAPIDoc, any) {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	var raw any
	_ = json.Unmarshal(api.OpenAPI(), &raw)
	return doc, raw
}

// extensionPaths are served by handlers of other packages that the router
// mounts (Deps.MCP, Deps.Metrics).
var extensionPaths = []string{"/mcp", "/metrics"}

var chiParam = regexp.MustCompile(`\{([^}:]+)(:[^}]*)?\}`)

// openAPIPath turns a chi pattern into an OpenAPI path: /a/{id:[0-9]+} ->
// /a/{id}. Wildcard mounts (/ui/*) have no OpenAPI form: ok is false.
func openAPIPath(pattern string) (string, bool) {
	if strings.HasSuffix(pattern, "*") {
		return "", false
	}
	p := chiParam.ReplaceAllString(pattern, "{$1}")
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	return p, true
}

// routes walks a router and returns "METHOD /path" of every route.
func routes(t *testing.T, r chi.Routes) []string {
	t.Helper()
	var out []string
	err := chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if p, ok := openAPIPath(route); ok {
			out = append(out, method+" "+p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestOpenAPIDocument(t *testing.T) {
	doc, raw := loadOpenAPI(t)
	if !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(doc.OpenAPI) {
		t.Fatalf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	if s := doc.Components.SecuritySchemes["ApiKeyAuth"]; s.Type != "apiKey" || s.In != "header" || s.Name != "X-API-Key" {
		t.Fatalf("ApiKeyAuth = %+v", s)
	}
	if s := doc.Components.SecuritySchemes["McpBearer"]; s.Type != "http" || s.Scheme != "bearer" {
		t.Fatalf("McpBearer = %+v", s)
	}
	for _, name := range []string{"BadRequest", "Unauthorized", "NotFound", "Conflict", "PayloadTooLarge",
		"Unprocessable", "TooManyRequests", "ServiceUnavailable", "GatewayTimeout"} {
		if _, ok := doc.Components.Responses[name]; !ok {
			t.Errorf("components.responses.%s is missing", name)
		}
	}
	if !bytes.Contains(doc.Components.Responses["TooManyRequests"], []byte(`"Retry-After"`)) {
		t.Error("429 does not document Retry-After")
	}
	if !bytes.Contains(doc.Components.Responses["GatewayTimeout"], []byte(`TimeoutError`)) {
		t.Error("504 does not carry job_id")
	}
	for _, p := range extensionPaths {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("extension path %s is not documented", p)
		}
	}
	// Every local $ref resolves.
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if !resolves(raw, ref) {
					t.Errorf("$ref %q does not resolve", ref)
				}
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(raw)
}

func resolves(root any, ref string) bool {
	if !strings.HasPrefix(ref, "#/") {
		return false
	}
	cur := root
	for _, part := range strings.Split(ref[2:], "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[strings.NewReplacer("~1", "/", "~0", "~").Replace(part)]; !ok {
			return false
		}
	}
	return true
}

// Every route the router registers is documented with its method, and every
// documented route outside the extensions is registered.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	stub := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	srv := api.New(api.Deps{
		APIKey: "test-key",
		// The other endpoints, as the composition root passes them.
		MCP: stub, Metrics: stub, UI: stub,
	})
	registered := routes(t, srv.Router())
	if len(registered) < 15 {
		t.Fatalf("walked only %d routes: %v", len(registered), registered)
	}
	methods := map[string][]string{}
	for _, rt := range registered {
		method, path, _ := strings.Cut(rt, " ")
		methods[path] = append(methods[path], method)
	}
	for path, ms := range methods {
		if path == "/ui" {
			continue // the redirect to the page, /ui/
		}
		ops, ok := doc.Paths[path]
		if !ok {
			t.Errorf("route %s %s is registered but not in openapi.json", strings.Join(ms, ","), path)
			continue
		}
		// r.Handle registers every method (CONNECT and TRACE included, which
		// no route names on purpose): the handler picks its own, so the
		// document lists those it serves.
		if slices.Contains(ms, http.MethodConnect) && slices.Contains(ms, http.MethodTrace) {
			continue
		}
		for _, m := range ms {
			if _, ok := ops[strings.ToLower(m)]; !ok {
				t.Errorf("route %s %s: openapi.json documents the path without %s", m, path, m)
			}
		}
	}
	seen := map[string]bool{}
	for path := range methods {
		seen[path] = true
	}
	for path := range doc.Paths {
		if !seen[path] && path != "/ui/" {
			t.Errorf("openapi.json documents %s, which no router registers", path)
		}
	}
}

// The document is served at /api/openapi.json without the API key.
func TestOpenAPIServed(t *testing.T) {
	for name, h := range map[string]http.Handler{
		"handler": api.OpenAPIHandler(),
		"router":  api.New(api.Deps{APIKey: "test-key"}),
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/openapi.json", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: GET /api/openapi.json without a key: status %d (%s)", name, rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s: Content-Type %q", name, ct)
		}
		if !bytes.Equal(rec.Body.Bytes(), api.OpenAPI()) {
			t.Fatalf("%s: served a different document", name)
		}
	}
}

func TestOpenAPIPath(t *testing.T) {
	for in, want := range map[string]string{
		"/api/jobs/{job_id}":          "/api/jobs/{job_id}",
		"/api/x/{id:[0-9]+}/y":        "/api/x/{id}/y",
		"/api/mcp/tokens/{token_id}/": "/api/mcp/tokens/{token_id}",
		"/":                           "/",
	} {
		if got, ok := openAPIPath(in); !ok || got != want {
			t.Errorf("openAPIPath(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := openAPIPath("/ui/*"); ok {
		t.Error("a wildcard mount got a path")
	}
}
