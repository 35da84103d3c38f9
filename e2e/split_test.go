package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/internal/testservices"
	"github.com/openanalyst/mcp-integration-service/keyring"
	"github.com/openanalyst/mcp-integration-service/service/servicetest"
)

// Split mode: one API node and two worker processes on the machine's NATS
// share the durable consumers, and both take jobs.
func TestSplitModeTwoWorkers(t *testing.T) {
	host, port := testservices.Need(t, testservices.NATS)
	testservices.Need(t, testservices.Postgres)
	ferret, err := embedded.StartFerret(context.Background(), t.TempDir(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ferret.Close() })
	key, _ := keyring.Generate()
	apiPort := freePort(t)
	env := map[string]string{
		"NATS_URL": fmt.Sprintf("nats://%s:%d", host, port), "MONGODB_URI": ferret.URI(),
		"MONGODB_DB_NAME": "split_" + fmt.Sprint(time.Now().UnixNano()),
		"AGENT_API_KEY":   "split-key", "DB_ENCRYPTION_KEY": key, "MCP_ALLOW_PRIVATE_HOSTS": "true",
		"MCP_LOG_LEVEL": "debug", "MCP_WORKERS": "2", "MCP_METRICS_ADDR": "127.0.0.1:0",
	}
	apiEnv := map[string]string{"MCP_SERVICE_HOST": "127.0.0.1", "MCP_SERVICE_PORT": fmt.Sprint(apiPort)}
	for k, v := range env {
		apiEnv[k] = v
	}
	t0 := time.Now()
	startProc(t, apiEnv, "api")
	w1 := startProc(t, env, "worker")
	w2 := startProc(t, env, "worker")
	base := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	waitHTTP(t, base+"/api/tools/health", 20*time.Second)

	t.Logf("up after %s", time.Since(t0))
	b := &servicetest.Bundle{URL: base, Key: "split-key", HTTP: shared.HTTP}
	user := servicetest.User(t)
	dbID := b.Do(t, "POST", "/api/databases/connect", pgConnectBody(t, user, "pw")).Expect(t, 200).Str("db_id")
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 8; i++ {
				r := b.Do(t, "POST", "/api/tools/execute", map[string]any{"user_id": user, "action": "DB_QUERY_" + dbID,
					"params": map[string]any{"query": "SELECT pg_sleep(0.02), 1 AS one"}})
				if r.Status != 200 || !strings.Contains(string(r.Body), `"one":1`) {
					errs <- fmt.Sprintf("%d %s", r.Status, r.Body)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal("execute failed: ", e)
	}
	// The log lines are read from the processes' stderr asynchronously.
	var n1, n2 int
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		n1, n2 = strings.Count(w1.Logs(), `"msg":"job done"`), strings.Count(w2.Logs(), `"msg":"job done"`)
		if n1+n2 >= 64 {
			break
		}
	}
	t.Logf("worker 1 ran %d jobs, worker 2 ran %d", n1, n2)
	if n1 == 0 || n2 == 0 || n1+n2 < 64 {
		t.Fatalf("both workers must take jobs: %d and %d of 64", n1, n2)
	}
}
