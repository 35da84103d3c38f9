package e2e

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/keyring"
	"github.com/openanalyst/mcp-integration-service/service"
	"github.com/openanalyst/mcp-integration-service/service/servicetest"
)

func waitStatus(t *testing.T, b *servicetest.Bundle, path string, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last *servicetest.Response
	for time.Now().Before(deadline) {
		last = b.Do(t, "GET", path, nil)
		if last.Status == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: status %d, want %d within %s: %s", path, last.Status, want, within, last.Body)
}

// NATS goes down: calls fail fast with 503, the service reconnects on its
// own, the next calls succeed, and no goroutine is left behind.
func TestNATSRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	port := freePort(t)
	ns, err := embedded.StartNATS(dir, port)
	if err != nil {
		t.Fatal(err)
	}
	b, err := servicetest.Start(t, service.ModeServe, servicetest.Env{"NATS_URL": ns.URL(), "MCP_ALLOW_PRIVATE_HOSTS": "true"}, service.Options{})
	if err != nil {
		ns.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	user := servicetest.User(t)
	dbID := connectPG(t, b, user, "pw")
	exec := func() *servicetest.Response {
		return b.Do(t, "POST", "/api/tools/execute", map[string]any{"user_id": user, "action": "DB_QUERY_" + dbID,
			"params": map[string]any{"query": "SELECT 1 AS one"}})
	}
	exec().Expect(t, 200)
	b.HTTP.CloseIdleConnections()
	before := runtime.NumGoroutine()

	for cycle := 0; cycle < 3; cycle++ {
		ns.Close()
		start := time.Now()
		r := exec().Expect(t, http.StatusServiceUnavailable)
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("cycle %d: 503 took %s; it must fail fast", cycle, took)
		}
		if r.Str("code") != "broker_unavailable" || r.Str("error") == "" {
			t.Fatalf("cycle %d: %s", cycle, r.Body)
		}
		b.Do(t, "GET", "/api/tools/health", nil).Expect(t, http.StatusServiceUnavailable)
		if ns, err = embedded.StartNATS(dir, port); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, b, "/api/tools/health", 200, 15*time.Second)
		// The workers' consumers resume too.
		deadline := time.Now().Add(15 * time.Second)
		for {
			r := exec()
			if r.Status == 200 && strings.Contains(string(r.Body), `"one":1`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cycle %d: no success after reconnect: %d %s", cycle, r.Status, r.Body)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	b.HTTP.CloseIdleConnections()
	time.Sleep(500 * time.Millisecond)
	after := runtime.NumGoroutine()
	t.Logf("goroutines: %d before, %d after three NATS restarts", before, after)
	if after > before+25 {
		t.Fatalf("goroutine leak: %d before, %d after three restarts", before, after)
	}
}

// Storage unreachable: 503 with a reason, within the deadline, never a hang.
func TestStorageUnreachable(t *testing.T) {
	t.Parallel()
	ferret, err := embedded.StartFerret(context.Background(), t.TempDir(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := servicetest.Start(t, service.ModeServe, servicetest.Env{"MONGODB_URI": ferret.URI(), "MCP_ALLOW_PRIVATE_HOSTS": "true"}, service.Options{})
	if err != nil {
		_ = ferret.Close()
		t.Fatal(err)
	}
	user := servicetest.User(t)
	connectPG(t, b, user, "pw")
	_ = ferret.Close()
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/databases?user_id=" + user, nil},
		{"GET", "/api/tools?user_id=" + user, nil},
		{"POST", "/api/databases/connect", pgConnectBody(t, user, "pw")},
		{"POST", "/api/tools/execute", map[string]any{"user_id": user, "action": "DB_QUERY_db_notcached00", "params": map[string]any{"query": "SELECT 1"}}},
	} {
		start := time.Now()
		r := b.Do(t, c.method, c.path, c.body).Expect(t, http.StatusServiceUnavailable)
		if took := time.Since(start); took > 15*time.Second {
			t.Fatalf("%s %s took %s", c.method, c.path, took)
		}
		if r.Str("code") != "storage_unavailable" || !strings.Contains(r.Str("error"), "storage") {
			t.Fatalf("%s %s: %s", c.method, c.path, r.Body)
		}
	}
	h := b.Do(t, "GET", "/api/tools/health", nil).Expect(t, http.StatusServiceUnavailable)
	if h.Str("storage") != "unavailable" || h.Str("nats") != "ok" {
		t.Fatalf("health: %s", h.Body)
	}
}

// kill -9 one of two workers during a burst: every request gets its result,
// or a 504 with a job id whose result appears later. No job is lost.
func TestWorkerKilledDuringBurst(t *testing.T) {
	t.Parallel()
	ns, err := embedded.StartNATS(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	ferret, err := embedded.StartFerret(context.Background(), t.TempDir(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ferret.Close() })
	key, _ := keyring.Generate()
	env := servicetest.Env{"NATS_URL": ns.URL(), "MONGODB_URI": ferret.URI(), "DB_ENCRYPTION_KEY": key,
		"MCP_ALLOW_PRIVATE_HOSTS": "true", "MCP_ACK_WAIT": "2s", "MCP_JOB_TIMEOUT": "6s", "MCP_WORKERS": "4",
		"MCP_METRICS_ADDR": "127.0.0.1:0", "MCP_LOG_LEVEL": "debug"}
	b, err := servicetest.Start(t, service.ModeAPI, env, service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wenv := map[string]string{"AGENT_API_KEY": b.Key}
	for k, v := range env {
		wenv[k] = v
	}
	w1 := startProc(t, wenv, "worker")
	w2 := startProc(t, wenv, "worker")
	user := servicetest.User(t)
	dbID := connectPG(t, b, user, "pw")
	b.Do(t, "POST", "/api/tools/execute", map[string]any{"user_id": user, "action": "DB_QUERY_" + dbID,
		"params": map[string]any{"query": "SELECT 1"}}).Expect(t, 200)

	const n = 120
	type answer struct {
		i      int
		status int
		jobID  string
		body   string
	}
	answers := make(chan answer, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 12)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := b.Do(t, "POST", "/api/tools/execute", map[string]any{"user_id": user, "action": "DB_QUERY_" + dbID,
				"params": map[string]any{"query": fmt.Sprintf("SELECT %d AS i FROM pg_sleep(0.05)", i)}})
			answers <- answer{i, r.Status, r.Str("job_id"), string(r.Body)}
		}(i)
		if i == 40 {
			w1.waitLog(t, `"msg":"job done"`, 10*time.Second)
			w1.kill() // SIGKILL, mid-burst
		}
	}
	wg.Wait()
	close(answers)
	ok, late := 0, 0
	for a := range answers {
		switch {
		case a.status == 200 && strings.Contains(a.body, fmt.Sprintf(`"i":%d`, a.i)):
			ok++
		case a.status == 504 && a.jobID != "":
			late++
			deadline := time.Now().Add(20 * time.Second)
			for {
				j := b.Do(t, "GET", "/api/jobs/"+a.jobID+"?user_id="+user, nil)
				if j.Str("status") == "succeeded" && strings.Contains(string(j.Body), fmt.Sprintf(`"i":%d`, a.i)) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("job %s of request %d never finished: %s", a.jobID, a.i, j.Body)
				}
				time.Sleep(200 * time.Millisecond)
			}
		default:
			t.Fatalf("request %d: %d %s", a.i, a.status, a.body)
		}
	}
	killedRan := strings.Count(w1.Logs(), `"msg":"job done"`)
	t.Logf("%d answered at once, %d answered 504 and finished later; the killed worker had finished %d, the survivor %d",
		ok, late, killedRan, strings.Count(w2.Logs(), `"msg":"job done"`))
	if ok+late != n {
		t.Fatalf("%d answers for %d requests", ok+late, n)
	}
}
