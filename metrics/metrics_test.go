package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/metrics"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// An invented method or an impossible status never becomes a label value:
// the request series stay within the standard methods, OTHER and valid
// codes, however many distinct methods clients send.
func TestRequestLabelsAreBounded(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	invented := strings.Repeat("X", 80)
	for i := 0; i < 50; i++ {
		m.ObserveRequest("unmatched", invented+string(rune('A'+i%26)), http.StatusMethodNotAllowed, time.Millisecond)
	}
	m.ObserveRequest("/api/tools", "get", 1000, time.Millisecond)
	m.ObserveRequest("/api/tools", http.MethodGet, http.StatusOK, time.Millisecond)
	out := scrape(t, m)
	if strings.Contains(out, invented[:20]) || strings.Contains(out, `method="get"`) || strings.Contains(out, `status="1000"`) {
		t.Fatalf("a raw label leaked into /metrics:\n%s", grep(out, "mcp_http_requests_total"))
	}
	for _, want := range []string{
		`mcp_http_requests_total{method="OTHER",route="unmatched",status="405"} 50`,
		`mcp_http_requests_total{method="OTHER",route="/api/tools",status="other"} 1`,
		`mcp_http_requests_total{method="GET",route="/api/tools",status="200"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in:\n%s", want, grep(out, "mcp_http_requests_total"))
		}
	}
	if n := strings.Count(out, "mcp_http_requests_total{"); n != 3 {
		t.Fatalf("%d request series, want 3:\n%s", n, grep(out, "mcp_http_requests_total"))
	}
}

func TestMethod(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"GET": "GET", "POST": "POST", "PUT": "PUT", "PATCH": "PATCH",
		"DELETE": "DELETE", "HEAD": "HEAD", "OPTIONS": "OPTIONS", "get": "OTHER", "TRACE": "OTHER",
		"CONNECT": "OTHER", "": "OTHER", "PROPFIND": "OTHER"} {
		if got := metrics.Method(in); got != want {
			t.Errorf("Method(%q) = %q, want %q", in, got, want)
		}
	}
}

func grep(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
