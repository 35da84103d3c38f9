package api_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/api"
	"github.com/openanalyst/mcp-integration-service/metrics"
)

// serve runs h behind NewHTTPServer with t on a loopback port.
func serve(t *testing.T, h http.Handler, to api.Timeouts) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewHTTPServer(h, to)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// trickle writes head at once, then slow one byte every gap until the
// server closes the connection, and returns how long that took (or fails
// after limit).
func trickle(t *testing.T, addr, head, s string, gap, limit time.Duration) time.Duration {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		// The server answers (408 or 400) or just closes: either way the
		// connection ends, which is what is measured.
		_, _ = io.Copy(io.Discard, c)
		close(closed)
	}()
	for i := 0; ; i = (i + 1) % len(s) {
		select {
		case <-closed:
			return time.Since(start)
		case <-time.After(gap):
		}
		if time.Since(start) > limit {
			t.Fatalf("still connected after %s of trickling", limit)
		}
		if _, err := c.Write([]byte{s[i]}); err != nil {
			<-closed
			return time.Since(start)
		}
	}
}

// A slowloris client sending its headers one byte at a time is cut off
// after ReadHeader; one trickling its body after Read.
func TestHTTPServerCutsSlowClients(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})
	addr := serve(t, ok, api.Timeouts{ReadHeader: 500 * time.Millisecond, Read: 1500 * time.Millisecond, Idle: time.Second})
	if d := trickle(t, addr, "", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "+strings.Repeat("a", 100),
		100*time.Millisecond, 5*time.Second); d > 1500*time.Millisecond {
		t.Fatalf("slow headers held the connection %s", d)
	}
	if d := trickle(t, addr, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", strings.Repeat("b", 1000),
		100*time.Millisecond, 6*time.Second); d < time.Second || d > 3*time.Second {
		t.Fatalf("a slow body held the connection %s, want about 1.5 s", d)
	}
}

// Once the request is read, Read no longer applies: a handler may wait
// (a synchronous execute, an MCP stream) longer than Read, its context
// still live.
func TestHTTPServerLongHandlers(t *testing.T) {
	t.Parallel()
	wait := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(1200 * time.Millisecond):
			_, _ = io.WriteString(w, "done")
		case <-r.Context().Done():
			http.Error(w, "cancelled", http.StatusServiceUnavailable)
		}
	})
	addr := serve(t, wait, api.Timeouts{ReadHeader: 300 * time.Millisecond, Read: 400 * time.Millisecond, Idle: time.Second})
	for _, body := range []string{"", `{"user_id":"u"}`} {
		method := http.MethodGet
		var rd io.Reader
		if body != "" {
			method, rd = http.MethodPost, strings.NewReader(body)
		}
		req, _ := http.NewRequestWithContext(context.Background(), method, "http://"+addr+"/", rd)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "done" {
			t.Fatalf("%s: %d %q: the read timeout cut a handler that had read its request", method, resp.StatusCode, b)
		}
	}
}

func TestDefaultTimeouts(t *testing.T) {
	t.Parallel()
	srv := api.NewHTTPServer(http.NotFoundHandler(), api.DefaultTimeouts())
	if srv.ReadHeaderTimeout <= 0 || srv.ReadHeaderTimeout > 30*time.Second || srv.ReadTimeout < srv.ReadHeaderTimeout ||
		srv.ReadTimeout > 5*time.Minute || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 1<<20 {
		t.Fatalf("timeouts %v %v %v, max header %d", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
	// Oversized headers are refused.
	addr := serve(t, http.NotFoundHandler(), api.DefaultTimeouts())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 200<<10)+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if resp == nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized headers: %+v", resp)
	}
}

// Through the router, with no API key: an invented 80-character method adds
// no series of its own to /metrics.
func TestInventedMethodAddsNoSeries(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	srv := api.New(api.Deps{APIKey: "k", Observe: m.ObserveRequest})
	for i := 0; i < 20; i++ {
		method := strings.Repeat("Z", 79) + string(rune('A'+i))
		for _, path := range []string{"/api/tools/execute", "/healthz", "/nowhere/" + method} {
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		}
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	out := rec.Body.String()
	if strings.Contains(out, "ZZZZ") {
		t.Fatal("an invented method or a raw path became a label value")
	}
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "mcp_http_requests_total{") {
			n++
			if !strings.Contains(l, `method="OTHER"`) {
				t.Errorf("series %s", l)
			}
		}
	}
	if n == 0 || n > 3 {
		t.Fatalf("%d request series for 60 requests of 20 invented methods:\n%s", n, out)
	}
}
