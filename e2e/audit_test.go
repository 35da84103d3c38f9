package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/service/servicetest"
	"github.com/openanalyst/mcp-integration-service/storage"
)

// Connect, execute and disconnect land in the audit log with who, what, when,
// outcome and duration, and never the query or its rows.
func TestAuditLog(t *testing.T) {
	t.Parallel()
	user := servicetest.User(t)
	dbID := connectPG(t, shared, user, "audit-pw-991")
	shared.Do(t, "POST", "/api/tools/execute", map[string]any{"user_id": user, "action": "DB_QUERY_" + dbID,
		"params": map[string]any{"query": "SELECT 'row-secret-42' AS v"}}).Expect(t, 200)
	shared.Do(t, "POST", "/api/tools/execute", map[string]any{"user_id": user, "action": "DB_QUERY_" + dbID,
		"params": map[string]any{"query": "SELECT * FROM no_such_table_a"}}).Expect(t, 422)
	shared.Do(t, "POST", "/api/databases/disconnect", map[string]any{"user_id": user, "db_id": dbID}).Expect(t, 200)

	var entries []storage.AuditEntry
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		entries, err = shared.In.Store.AuditLog(context.Background(), user, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) >= 4 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(entries) != 4 {
		t.Fatalf("want 4 audit entries, got %+v", entries)
	}
	// Newest first.
	// REST-only actions record their HTTP status; tool calls, which the
	// tools service records for REST and MCP alike, their error code.
	want := []struct {
		action, outcome string
		status          int
		code            string
	}{{"database.disconnect", "ok", 200, ""}, {"tool.execute", "error", 0, "query_failed"}, {"tool.execute", "ok", 0, ""}, {"database.connect", "ok", 200, ""}}
	for i, w := range want {
		e := entries[i]
		if e.Action != w.action || e.Outcome != w.outcome || e.Status != w.status || e.Code != w.code || e.UserID != user ||
			e.Actor != "api_key" || e.At.IsZero() || e.DurationMS < 0 {
			t.Fatalf("entry %d = %+v, want %+v", i, e, w)
		}
	}
	if entries[1].Target != "DB_QUERY_"+dbID || entries[1].JobID == "" {
		t.Fatalf("execute entry lacks target or job id: %+v", entries[1])
	}
	// Neither the query, its rows nor the password reach the log.
	for _, e := range entries {
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), "row-secret") || strings.Contains(string(b), "audit-pw") || strings.Contains(string(b), "SELECT") {
			t.Fatalf("audit entry holds a query, a result or a secret: %s", b)
		}
	}
}
