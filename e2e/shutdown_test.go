package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/service/servicetest"
)

// startServe runs `serve` as a process with embedded servers on free ports.
func startServe(t *testing.T, extra map[string]string) (*proc, *servicetest.Bundle) {
	t.Helper()
	port := freePort(t)
	env := map[string]string{
		"MCP_DATA_DIR": t.TempDir(), "MCP_SERVICE_HOST": "127.0.0.1", "MCP_SERVICE_PORT": fmt.Sprint(port),
		"MCP_EMBEDDED_NATS_PORT": fmt.Sprint(freePort(t)), "MCP_EMBEDDED_MONGO_PORT": fmt.Sprint(freePort(t)),
		"AGENT_API_KEY": "proc-key", "MCP_LOG_LEVEL": "info",
	}
	for k, v := range extra {
		env[k] = v
	}
	p := startProc(t, env, "serve")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitHTTP(t, base+"/api/tools/health", 30*time.Second)
	return p, &servicetest.Bundle{URL: base, Key: "proc-key", HTTP: shared.HTTP}
}

// SIGTERM drains in-flight jobs, then exits; a second SIGTERM exits at once.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	p, b := startServe(t, nil)
	user := servicetest.User(t)
	dbID := b.Do(t, "POST", "/api/databases/connect", pgConnectBody(t, user, "pw")).Expect(t, 200).Str("db_id")

	got := make(chan *servicetest.Response, 1)
	go func() {
		got <- b.Do(t, "POST", "/api/tools/execute", map[string]any{"user_id": user, "action": "DB_QUERY_" + dbID,
			"params": map[string]any{"query": "SELECT 'drained' AS state FROM pg_sleep(1.5)"}})
	}()
	time.Sleep(500 * time.Millisecond) // the job is running
	p.signal(syscall.SIGTERM)
	r := <-got
	if r.Status != 200 || !strings.Contains(string(r.Body), `"state":"drained"`) {
		t.Fatalf("in-flight job was not drained: %d %s", r.Status, r.Body)
	}
	if code := p.exited(t, 20*time.Second); code != 0 {
		t.Fatalf("exit code %d after a graceful drain:\n%s", code, p.Logs())
	}
	if !strings.Contains(p.Logs(), "draining in-flight jobs") {
		t.Fatalf("no drain log:\n%s", p.Logs())
	}
}

func TestSecondSignalExitsAtOnce(t *testing.T) {
	t.Parallel()
	p, b := startServe(t, nil)
	user := servicetest.User(t)
	dbID := b.Do(t, "POST", "/api/databases/connect", pgConnectBody(t, user, "pw")).Expect(t, 200).Str("db_id")
	go func() {
		// The process dies under this request: only its start matters.
		body := fmt.Sprintf(`{"user_id":%q,"action":"DB_QUERY_%s","params":{"query":"SELECT pg_sleep(30)"}}`, user, dbID)
		req, _ := http.NewRequestWithContext(context.Background(), "POST", b.URL+"/api/tools/execute", strings.NewReader(body))
		req.Header.Set("X-API-Key", b.Key)
		if resp, err := b.HTTP.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(500 * time.Millisecond)
	p.signal(syscall.SIGTERM)
	p.waitLog(t, "draining in-flight jobs", 5*time.Second)
	p.signal(syscall.SIGTERM)
	if code := p.exited(t, 5*time.Second); code != 130 {
		t.Fatalf("second SIGTERM: exit code %d, want 130:\n%s", code, p.Logs())
	}
}
