package mcpserver_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/service"
	"github.com/openanalyst/mcp-integration-service/service/servicetest"
)

const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",` +
	`"capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

// mcpDo sends one request to /mcp with a bearer token.
func mcpDo(t *testing.T, b *servicetest.Bundle, method, token, session, body string) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, b.URL+"/mcp", rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	}
	resp, err := b.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), resp.Header
}

func wantCode(t *testing.T, what string, status int, body string, code string) {
	t.Helper()
	var e struct {
		Success *bool  `json:"success"`
		Error   string `json:"error"`
		Code    string `json:"code"`
	}
	if status != http.StatusTooManyRequests || json.Unmarshal([]byte(body), &e) != nil || e.Success == nil || *e.Success ||
		e.Code != code || e.Error == "" {
		t.Fatalf("%s: %d %s, want 429 with code %s", what, status, body, code)
	}
}

// mcpStream opens a session's event stream (GET), held until the returned
// stop is called, and returns the status it got.
func mcpStream(t *testing.T, b *servicetest.Bundle, token, session string) (int, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.URL+"/mcp", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Mcp-Session-Id", session)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		_ = resp.Body.Close()
		cancel()
		return resp.StatusCode, func() {}
	}
	stop := func() { cancel(); _ = resp.Body.Close() }
	t.Cleanup(stop)
	return resp.StatusCode, stop
}

const ping = `{"jsonrpc":"2.0","id":2,"method":"ping"}`

// /mcp limits each token's connections on a node to
// MCP_MAX_SESSIONS_PER_TOKEN: requests in flight, event streams included;
// another token of the same user has its own budget. The same number bounds
// the sessions the node keeps for the token: one more closes the oldest,
// whose id still works, statelessly, without an event stream.
func TestMCPLimitsPerToken(t *testing.T) {
	t.Parallel()
	b, err := servicetest.Start(t, service.ModeServe, servicetest.Env{"MCP_MAX_SESSIONS_PER_TOKEN": "2"}, service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	user := servicetest.User(t)
	mint := func() string {
		r := b.Do(t, "POST", "/api/mcp/tokens", map[string]any{"user_id": user}).Expect(t, http.StatusCreated)
		return r.Str("token")
	}
	tok, other := mint(), mint()
	open := func(token string) string {
		t.Helper()
		status, body, h := mcpDo(t, b, http.MethodPost, token, "", initialize)
		if status != http.StatusOK || h.Get("Mcp-Session-Id") == "" {
			t.Fatalf("initialize: %d %s", status, body)
		}
		return h.Get("Mcp-Session-Id")
	}
	pingOK := func(token, session string) bool {
		status, _, _ := mcpDo(t, b, http.MethodPost, token, session, ping)
		return status == http.StatusOK
	}
	s1, s2 := open(tok), open(tok)

	// Two event streams take the token's two places.
	status, stop1 := mcpStream(t, b, tok, s1)
	status2, stop2 := mcpStream(t, b, tok, s2)
	if status != http.StatusOK || status2 != http.StatusOK {
		t.Fatalf("event streams: %d %d", status, status2)
	}
	status, body, h := mcpDo(t, b, http.MethodPost, tok, s1, ping)
	wantCode(t, "a request beside two open streams", status, body, "too_many_sessions")
	if h.Get("Retry-After") == "" {
		t.Fatal("no Retry-After on the connection cap")
	}
	if !pingOK(other, open(other)) {
		t.Fatal("the other token of the same user was refused")
	}
	// A closed stream frees its place.
	stop1()
	deadline := time.Now().Add(10 * time.Second)
	for !pingOK(tok, s1) {
		if time.Now().After(deadline) {
			t.Fatal("closing an event stream did not free its place")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop2()
	for !pingOK(tok, s2) { // the stream's end is seen by the server a little later
		if time.Now().After(deadline) {
			t.Fatal("closing an event stream did not free its place")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A third session closes the oldest, s1: its id still works, without an
	// event stream (405, as on a node that never held it).
	s3 := open(tok)
	if status, _ := mcpStream(t, b, tok, s1); status != http.StatusMethodNotAllowed {
		t.Fatalf("the evicted session's event stream: %d, want 405", status)
	}
	if !pingOK(tok, s1) {
		t.Fatal("the evicted session's id is refused")
	}
	if status, stop := mcpStream(t, b, tok, s2); status != http.StatusOK {
		t.Fatalf("s2 was evicted too: %d", status)
	} else {
		stop()
	}
	// A closed (DELETE) session no longer counts: s3 stays after a fourth.
	if status, body, _ := mcpDo(t, b, http.MethodDelete, tok, s2, ""); status != http.StatusNoContent {
		t.Fatalf("DELETE session: %d %s", status, body)
	}
	open(tok)
	if status, stop := mcpStream(t, b, tok, s3); status != http.StatusOK {
		t.Fatalf("s3 was evicted although s2 was closed: %d", status)
	} else {
		stop()
	}
}

// MCP_RATE_LIMIT_PER_TOKEN requests a minute per token; another token of
// the same user has its own budget.
func TestMCPRateLimitPerToken(t *testing.T) {
	t.Parallel()
	b, err := servicetest.Start(t, service.ModeServe, servicetest.Env{"MCP_RATE_LIMIT_PER_TOKEN": "3"}, service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	user := servicetest.User(t)
	mint := func() string {
		return b.Do(t, "POST", "/api/mcp/tokens", map[string]any{"user_id": user}).Expect(t, http.StatusCreated).Str("token")
	}
	tok, other := mint(), mint()
	for i := 1; i <= 3; i++ {
		if status, body, _ := mcpDo(t, b, http.MethodPost, tok, "", initialize); status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, status, body)
		}
	}
	status, body, _ := mcpDo(t, b, http.MethodPost, tok, "", initialize)
	wantCode(t, "the 4th request in a minute", status, body, "rate_limited")
	if status, body, _ := mcpDo(t, b, http.MethodPost, other, "", initialize); status != http.StatusOK {
		t.Fatalf("other token after the first's rate limit: %d %s", status, body)
	}
}
