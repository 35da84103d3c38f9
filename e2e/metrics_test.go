package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/openanalyst/mcp-integration-service/service/servicetest"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	user := servicetest.User(t)
	dbID := connectPG(t, shared, user, "pw")
	shared.Do(t, "POST", "/api/tools/execute", map[string]any{"user_id": user, "action": "DB_QUERY_" + dbID,
		"params": map[string]any{"query": "SELECT 1"}}).Expect(t, 200)
	shared.Do(t, "POST", "/api/tools/execute", map[string]any{"user_id": user, "action": "DB_QUERY_" + dbID,
		"params": map[string]any{"query": "SELECT * FROM no_such_table_m"}}).Expect(t, 422)

	req, _ := http.NewRequestWithContext(context.Background(), "GET", shared.URL+"/metrics", nil)
	resp, err := shared.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	text := string(body)
	for _, want := range []string{
		`mcp_http_requests_total{method="POST",route="/api/tools/execute",status="200"}`,
		`mcp_http_requests_total{method="POST",route="/api/tools/execute",status="422"}`,
		`mcp_http_request_duration_seconds_bucket{method="POST",route="/api/tools/execute",status="200"`,
		`mcp_jobs_total{kind="execute",outcome="ok"}`,
		`mcp_jobs_total{kind="execute",outcome="query_failed"}`,
		`mcp_job_duration_seconds_count{kind="execute",outcome="ok"}`,
		`mcp_consumer_pending{consumer="mcp-execute"}`,
		`mcp_consumer_ack_pending{consumer="mcp-execute"}`,
		`mcp_stream_messages`,
		`mcp_pool_connections{connector="postgres"}`,
		`mcp_pool_sources{connector="postgres"}`,
		`mcp_worker_inflight_jobs`,
		`process_cpu_seconds_total`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(text, dbID) || strings.Contains(text, user) {
		t.Error("metrics carry per-user labels")
	}
}
