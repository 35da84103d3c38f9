package e2e

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/queue"
	"github.com/openanalyst/mcp-integration-service/service"
	"github.com/openanalyst/mcp-integration-service/service/servicetest"
)

// A worker process killed (SIGKILL) in the middle of an async job: JetStream
// redelivers the job to another worker, and the caller sees the job end once:
// one published result and one "succeeded" status.
//
// The API runs in-process (api mode), the workers are `mcp-service worker`
// processes, all on a NATS and a FerretDB of this test's own, so that no other
// process can take the job.
func TestAsyncWorkerKilledMidJob(t *testing.T) {
	t.Parallel()
	pgAdmin(t)
	binary(t) // build first: a failed build fails here, before anything runs

	dir := t.TempDir()
	ns, err := embedded.StartNATS(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	ferret, err := embedded.StartFerret(context.Background(), filepath.Join(dir, "ferretdb"), 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ferret.Close() })
	// The redelivery wait is the consumers' AckWait, MCP_QUERY_TIMEOUT + 15s:
	// every process must agree on it, since each one sets up the consumers.
	common := servicetest.Env{"NATS_URL": ns.URL(), "MONGODB_URI": ferret.URI(), "MCP_ALLOW_PRIVATE_HOSTS": "true",
		"MCP_QUERY_TIMEOUT": "4s"}
	b, err := servicetest.Start(t, service.ModeAPI, common, service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	workerEnv := map[string]string{"AGENT_API_KEY": b.Key, "DB_ENCRYPTION_KEY": b.In.Config.EncryptionKeys,
		"MCP_DATA_DIR": t.TempDir(), "MCP_LOG_LEVEL": "debug", "MCP_WORKERS": "2", "MCP_METRICS_ADDR": "127.0.0.1:0"}
	for k, v := range common {
		workerEnv[k] = v
	}

	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	w1 := startProc(t, workerEnv, "worker")
	waitPulling(t, js, w1)

	user := servicetest.User(t)
	db := b.Do(t, "POST", "/api/databases/connect", pgConnectBody(t, user, "pw")).Expect(t, http.StatusOK).Str("db_id")
	sub := userResults(t, nc, user)
	statuses := watchStatuses(t, js)

	jobID := submitAsync(t, b, user, "DB_QUERY_"+db, map[string]any{"query": "SELECT pg_sleep(3), 7 AS n"})
	// Worker 1, the only one, holds the job once it shows "running".
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := b.Do(t, "GET", jobPath(jobID, user), nil).Expect(t, http.StatusOK).Str("status")
		if st == "running" {
			break
		}
		if st != "queued" || time.Now().After(deadline) {
			t.Fatalf("job is %q, want running, before the kill; worker logs:\n%s", st, w1.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	killedAt := time.Now()
	w1.kill()
	if strings.Contains(w1.Logs(), `"msg":"job done"`) {
		t.Fatalf("worker 1 finished the job before it was killed:\n%s", w1.Logs())
	}
	if m, err := sub.NextMsg(100 * time.Millisecond); err == nil {
		t.Fatalf("a result was published before any worker finished: %v", m.Header)
	}

	w2 := startProc(t, workerEnv, "worker")
	m, err := sub.NextMsg(90 * time.Second)
	if err != nil {
		t.Fatalf("no result after the redelivery: %v\nworker 2 logs:\n%s", err, w2.Logs())
	}
	if m.Header.Get(messages.HeaderJobID) != jobID || m.Header.Get(messages.HeaderOutcome) != messages.OutcomeOK ||
		!strings.Contains(string(m.Data), `"n":7`) {
		t.Fatalf("result: %v %s", m.Header, m.Data)
	}
	r := waitJob(t, b, jobID, user, 30*time.Second)
	if r.Str("status") != "succeeded" {
		t.Fatalf("job: %s", r.Body)
	}
	if _, finished := checkTimes(t, r); !finished.After(killedAt) {
		t.Fatalf("the job finished at %s, before worker 1 was killed at %s", finished, killedAt)
	}
	if !strings.Contains(w2.Logs(), `"msg":"job done"`) {
		t.Fatalf("worker 2 did not run the job:\n%s", w2.Logs())
	}

	// Once: no second result, and the status became "succeeded" once.
	if extra, err := sub.NextMsg(3 * time.Second); err == nil {
		t.Fatalf("a second result was published: %v %s", extra.Header, extra.Data)
	}
	seen := statuses.of(jobID)
	succeeded := 0
	for _, st := range seen {
		switch st {
		case queue.StatusSucceeded:
			succeeded++
		case queue.StatusFailed:
			t.Fatalf("the job was recorded as failed: %v", seen)
		}
	}
	if succeeded != 1 || seen[len(seen)-1] != queue.StatusSucceeded {
		t.Fatalf("status history %v, want exactly one succeeded, last", seen)
	}
	t.Logf("status history %v; redelivered %s after the kill", seen, time.Since(killedAt).Round(time.Second))
}

// waitPulling waits until a worker pulls execute jobs.
func waitPulling(t *testing.T, js jetstream.JetStream, w *proc) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := js.Consumer(ctx, messages.JobStream, messages.KindExecute.Durable())
		if err == nil {
			if info, err := c.Info(ctx); err == nil && info.NumWaiting > 0 {
				cancel()
				return
			}
		}
		cancel()
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the worker never pulled jobs:\n%s", w.Logs())
}

// statusLog records every write to the job-status bucket.
type statusLog struct {
	mu  sync.Mutex
	got map[string][]string
}

func watchStatuses(t *testing.T, js jetstream.JetStream) *statusLog {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	kv, err := js.KeyValue(ctx, messages.JobStatusBucket)
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	l := &statusLog{got: map[string][]string{}}
	go func() {
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			var st queue.Status
			if json.Unmarshal(e.Value(), &st) != nil {
				continue // not a status (the result-published marker)
			}
			l.mu.Lock()
			l.got[e.Key()] = append(l.got[e.Key()], st.Status)
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *statusLog) of(key string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got[key]...)
}
