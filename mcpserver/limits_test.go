package mcpserver_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

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

// /mcp limits each token: at most MCP_MAX_SESSIONS_PER_TOKEN open sessions
// (a closed one frees its place) and MCP_RATE_LIMIT_PER_TOKEN requests a
// minute; another token of the same user has its own budget.
func TestMCPLimitsPerToken(t *testing.T) {
	t.Parallel()
	b, err := servicetest.Start(t, service.ModeServe,
		servicetest.Env{"MCP_MAX_SESSIONS_PER_TOKEN": "2", "MCP_RATE_LIMIT_PER_TOKEN": "8"}, service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	user := servicetest.User(t)
	mint := func() string {
		r := b.Do(t, "POST", "/api/mcp/tokens", map[string]any{"user_id": user}).Expect(t, http.StatusCreated)
		return r.Str("token")
	}
	tok, other := mint(), mint()

	var sessions []string
	for i := 0; i < 2; i++ { // requests 1-2
		status, body, h := mcpDo(t, b, http.MethodPost, tok, "", initialize)
		if status != http.StatusOK || h.Get("Mcp-Session-Id") == "" {
			t.Fatalf("session %d: %d %s", i, status, body)
		}
		sessions = append(sessions, h.Get("Mcp-Session-Id"))
	}
	status, body, h := mcpDo(t, b, http.MethodPost, tok, "", initialize) // 3
	wantCode(t, "a third session", status, body, "too_many_sessions")
	if h.Get("Retry-After") == "" {
		t.Fatal("no Retry-After on the session cap")
	}
	// The other token of the same user opens its own.
	if status, body, _ := mcpDo(t, b, http.MethodPost, other, "", initialize); status != http.StatusOK {
		t.Fatalf("other token: %d %s", status, body)
	}
	// Closing a session frees its place.
	if status, body, _ := mcpDo(t, b, http.MethodDelete, tok, sessions[0], ""); status != http.StatusNoContent && status != http.StatusOK {
		t.Fatalf("DELETE session: %d %s", status, body)
	} // 4
	if status, body, _ := mcpDo(t, b, http.MethodPost, tok, "", initialize); status != http.StatusOK { // 5
		t.Fatalf("a session after closing one: %d %s", status, body)
	}
	// Requests 6-8 pass, the 9th is over the rate.
	ping := `{"jsonrpc":"2.0","id":2,"method":"ping"}`
	for i := 6; i <= 8; i++ {
		if status, body, _ := mcpDo(t, b, http.MethodPost, tok, sessions[1], ping); status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, status, body)
		}
	}
	status, body, _ = mcpDo(t, b, http.MethodPost, tok, sessions[1], ping)
	wantCode(t, "the 9th request in a minute", status, body, "rate_limited")
	if status, body, _ := mcpDo(t, b, http.MethodPost, other, "", initialize); status != http.StatusOK {
		t.Fatalf("other token after the first's rate limit: %d %s", status, body)
	}
}
