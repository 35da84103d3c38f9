package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			_, _ = io.WriteString(w, `{"status":"ok"}`)
		default:
			http.Error(w, "degraded", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	env := func(k string) string {
		if k == "MCP_SERVICE_PORT" {
			return port
		}
		return ""
	}
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"default URL is /readyz on MCP_SERVICE_PORT", nil, 0},
		{"explicit healthy URL", []string{srv.URL + "/readyz"}, 0},
		{"non-2xx is unhealthy", []string{srv.URL + "/down"}, 1},
		{"unreachable is unhealthy", []string{"http://127.0.0.1:1/readyz"}, 1},
		{"too many arguments", []string{"a", "b"}, 2},
	}
	for _, c := range cases {
		if got := run(c.args, env, io.Discard); got != c.want {
			t.Errorf("%s: exit %d, want %d", c.name, got, c.want)
		}
	}
}
