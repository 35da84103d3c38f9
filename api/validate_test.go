package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/openanalyst/mcp-integration-service/api"
	"github.com/openanalyst/mcp-integration-service/storage"
	"github.com/openanalyst/mcp-integration-service/tools"
)

// panicky is an Integrations that must never be reached: the edge refuses
// the request first. Reaching it panics, which the API answers 500.
type panicky struct{}

func (panicky) Providers(context.Context) ([]api.Provider, error) { panic("reached Providers") }
func (panicky) Connect(context.Context, string, string, string) (*api.ConnectStarted, error) {
	panic("reached Connect")
}
func (panicky) Connected(context.Context, string) ([]api.ConnectedIntegration, error) {
	panic("reached Connected")
}
func (panicky) Disconnect(context.Context, string, string, string) ([]string, error) {
	panic("reached Disconnect")
}
func (panicky) Refresh(context.Context, string, string) (*api.ConnectedIntegration, bool, error) {
	panic("reached Refresh")
}
func (panicky) Tools(context.Context, string) ([]tools.Tool, error) { panic("reached Tools") }
func (panicky) CallbackTarget(context.Context, string) (*api.CallbackTarget, error) {
	panic("reached CallbackTarget")
}

// TestBadInputRefusedAtTheEdge sends oversized and malformed names and ids
// to every route that takes one: each is a 400 (a job id a 404) in the
// short error envelope, echoes at most a short prefix, and reaches neither
// storage, the queue, the integrations nor the audit log (all nil or
// panicking here).
func TestBadInputRefusedAtTheEdge(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var audited []storage.AuditEntry
	srv := api.New(api.Deps{APIKey: "k", Integrations: panicky{}, Audit: func(e storage.AuditEntry) {
		mu.Lock()
		defer mu.Unlock()
		audited = append(audited, e)
	}})
	huge := strings.Repeat("A", 900<<10)
	long := strings.Repeat("B", 300)
	body := func(v map[string]any) string { b, _ := json.Marshal(v); return string(b) }
	for _, c := range []struct {
		name, method, target, body string
		status                     int
		code                       string
	}{
		{"huge action", "POST", "/api/tools/execute", body(map[string]any{"user_id": "u1", "action": huge}), 400, "invalid_field"},
		{"action with a newline", "POST", "/api/tools/execute", body(map[string]any{"user_id": "u1", "action": "DB_QUERY\nx"}), 400, "invalid_field"},
		{"action of 129", "POST", "/api/tools/execute", body(map[string]any{"user_id": "u1", "action": strings.Repeat("X", 129)}), 400, "invalid_field"},
		{"user_id with NUL", "POST", "/api/tools/execute", body(map[string]any{"user_id": "u\x00", "action": "GMAIL_SEND_EMAIL"}), 400, "invalid_field"},
		{"user_id with ESC", "GET", "/api/tools?user_id=a%1b%5B31m", "", 400, "invalid_field"},
		{"user_id too long", "GET", "/api/databases?user_id=" + long, "", 400, "invalid_field"},
		{"user_id not UTF-8", "GET", "/api/integrations/connected?user_id=%ff%fe", "", 400, "invalid_field"},
		{"huge db_id", "POST", "/api/databases/disconnect", body(map[string]any{"user_id": "u1", "db_id": huge}), 400, "invalid_field"},
		{"db_id with a quote", "POST", "/api/databases/disconnect", body(map[string]any{"user_id": "u1", "db_id": `db_"x`}), 400, "invalid_field"},
		{"huge db_type", "GET", "/api/databases/schema?db_type=" + long, "", 400, "invalid_field"},
		{"huge db_type in test", "POST", "/api/databases/test", body(map[string]any{"db_type": huge}), 400, "invalid_field"},
		{"huge provider", "POST", "/api/integrations/connect", body(map[string]any{"user_id": "u1", "provider": huge, "redirect_url": "https://a.example"}), 400, "invalid_field"},
		{"provider with a slash", "POST", "/api/integrations/disconnect", body(map[string]any{"user_id": "u1", "provider": "gmail/../x"}), 400, "invalid_field"},
		{"huge integration_id", "POST", "/api/integrations/disconnect", body(map[string]any{"user_id": "u1", "integration_id": huge}), 400, "invalid_field"},
		{"integration id with a quote to refresh", "POST", "/api/integrations/int_%22x/refresh", body(map[string]any{"user_id": "u1"}), 400, "invalid_field"},
		{"refresh without user", "POST", "/api/integrations/int_1/refresh", body(map[string]any{}), 400, "missing_field"},
		{"refresh by a huge user", "POST", "/api/integrations/int_1/refresh", body(map[string]any{"user_id": huge}), 400, "invalid_field"},
		{"huge job id", "GET", "/api/jobs/" + long + "?user_id=u1", "", 404, "job_not_found"},
		{"token without user", "POST", "/api/mcp/tokens", body(map[string]any{"label": "x"}), 400, "missing_field"},
		{"token ttl of 0", "POST", "/api/mcp/tokens", body(map[string]any{"user_id": "u1", "ttl_seconds": 0}), 400, "invalid_field"},
		{"token ttl over a year", "POST", "/api/mcp/tokens", body(map[string]any{"user_id": "u1", "ttl_seconds": 31536001}), 400, "invalid_field"},
		{"token ttl a string", "POST", "/api/mcp/tokens", body(map[string]any{"user_id": "u1", "ttl_seconds": "1"}), 400, "invalid_field"},
		{"huge token label", "POST", "/api/mcp/tokens", body(map[string]any{"user_id": "u1", "label": long}), 400, "invalid_field"},
		{"tokens of a long user", "GET", "/api/mcp/tokens?user_id=" + long, "", 400, "invalid_field"},
		{"huge token_id", "DELETE", "/api/mcp/tokens/" + long + "?user_id=u1", "", 400, "invalid_field"},
		{"token_id with a dot", "DELETE", "/api/mcp/tokens/tok_a.b", body(map[string]any{"user_id": "u1"}), 400, "invalid_field"},
		{"revoke without user", "DELETE", "/api/mcp/tokens/tok_a", "", 400, "missing_field"},
		{"huge field path", "POST", "/api/tools/execute", `{"user_id":"u1","action":"X","max_rows":"` + long + `"}`, 400, "invalid_field"},
	} {
		rec := rlCall(t, srv, c.method, c.target, "k", c.body)
		if rec.Code != c.status {
			t.Errorf("%s: status %d, want %d: %.200s", c.name, rec.Code, c.status, rec.Body)
			continue
		}
		var env struct {
			Success *bool  `json:"success"`
			Error   string `json:"error"`
			Code    string `json:"code"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Success == nil || *env.Success || env.Code != c.code {
			t.Errorf("%s: envelope %.200s, want code %s", c.name, rec.Body, c.code)
		}
		if rec.Body.Len() > 400 || strings.Contains(rec.Body.String(), strings.Repeat("A", 33)) ||
			strings.Contains(rec.Body.String(), strings.Repeat("B", 33)) {
			t.Errorf("%s: the error echoes too much (%d bytes): %.300s", c.name, rec.Body.Len(), rec.Body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(audited) != 0 {
		t.Fatalf("refused requests were audited: %+v", audited[0])
	}
}

func TestClip(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"db_abc":                `"db_abc"`,
		strings.Repeat("x", 32): `"` + strings.Repeat("x", 32) + `"`,
		strings.Repeat("x", 33): `"` + strings.Repeat("x", 32) + `"…`,
		strings.Repeat("é", 40): `"` + strings.Repeat("é", 32) + `"…`,
		"a\nb\x1b":              `"a\nb\x1b"`,
		"\xff" + "ok":           "\"\uFFFDok\"",
	} {
		if got := api.Clip(in); got != want {
			t.Errorf("Clip(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestValidNamesPass(t *testing.T) {
	t.Parallel()
	for _, a := range []string{"DB_QUERY_db_abc123", "GMAIL_SEND_EMAIL", "DB_DESCRIBE_db_" + strings.Repeat("a", 16), "x.y-z"} {
		if err := api.CheckAction(a); err != nil {
			t.Errorf("CheckAction(%q): %v", a, err)
		}
	}
	for _, id := range []string{"db_abc123", "int_001", "tok_abcdefghijklmnop", "db-x"} {
		if err := api.CheckID("id", id); err != nil {
			t.Errorf("CheckID(%q): %v", id, err)
		}
	}
	for _, u := range []string{"user_123", "a b", "a\tb", "ünïcødé 用户", "a.*.>", strings.Repeat("u", 256)} {
		if err := api.RequireUser(u); err != nil {
			t.Errorf("RequireUser(%q): %v", u, err)
		}
	}
}
