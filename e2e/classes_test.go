package e2e

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/service"
	"github.com/openanalyst/mcp-integration-service/service/servicetest"
)

// lastSeqs reads the last sequence of each job stream.
func lastSeqs(t *testing.T, b *servicetest.Bundle) (durable, fast uint64) {
	t.Helper()
	nc, err := b.In.ConnectNATS()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, name := range []string{messages.JobStream, messages.FastStream} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if name == messages.JobStream {
			durable = info.State.LastSeq
		} else {
			fast = info.State.LastSeq
		}
	}
	return durable, fast
}

// Each call takes the class its guarantee needs, seen on the streams
// themselves: a synchronous read on a read-only connection and a connection
// test go to the memory stream; a write on an allow_writes connection, a
// read on such a connection, and an async read go to the fsynced stream.
func TestJobClassRouting(t *testing.T) {
	b, err := servicetest.Start(t, service.ModeServe, servicetest.Env{"MCP_ALLOW_PRIVATE_HOSTS": "true"}, service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	user := servicetest.User(t)
	readOnly := b.Do(t, "POST", "/api/databases/connect", pgConnectBody(t, user, "")).Expect(t, 200).Str("db_id")
	wbody := pgConnectBody(t, user, "")
	wbody["allow_writes"] = true
	writable := b.Do(t, "POST", "/api/databases/connect", wbody).Expect(t, 200).Str("db_id")
	tbl := table("routing")
	pgExec(t, pgAdmin(t), "CREATE TABLE "+tbl+" (id int)")
	t.Cleanup(func() { pgExec(t, pgAdmin(t), "DROP TABLE IF EXISTS "+tbl) })

	step := func(name string, wantDurable, wantFast uint64, call func()) {
		t.Helper()
		d0, f0 := lastSeqs(t, b)
		call()
		d1, f1 := lastSeqs(t, b)
		if d1-d0 != wantDurable || f1-f0 != wantFast {
			t.Fatalf("%s: durable stream +%d, fast stream +%d; want +%d, +%d", name, d1-d0, f1-f0, wantDurable, wantFast)
		}
	}
	step("sync read, read-only connection", 0, 1, func() {
		execute(t, b, user, "DB_QUERY_"+readOnly, map[string]any{"query": "SELECT 1"}).Expect(t, 200)
	})
	step("connection test", 0, 1, func() {
		b.Do(t, "POST", "/api/databases/test", pgConnectBody(t, user, "")).Expect(t, 200)
	})
	step("write, allow_writes connection", 1, 0, func() {
		execute(t, b, user, "DB_QUERY_"+writable, map[string]any{"query": "INSERT INTO " + tbl + " VALUES (1)"}).Expect(t, 200)
	})
	step("read, allow_writes connection", 1, 0, func() {
		execute(t, b, user, "DB_QUERY_"+writable, map[string]any{"query": "SELECT count(*) FROM " + tbl}).Expect(t, 200)
	})
	step("async read", 1, 0, func() {
		id := submitAsync(t, b, user, "DB_QUERY_"+readOnly, map[string]any{"query": "SELECT 1"})
		if r := waitJob(t, b, id, user, 20*time.Second); r.Str("status") != "succeeded" {
			t.Fatalf("async read: %s", r.Body)
		}
	})
}

// NATS dies under synchronous reads in flight: every caller gets a 503 or
// 504 (or its answer) within the deadline, none hangs, and the service
// recovers on its own once NATS is back, fast stream included.
func TestNATSKilledDuringSyncReads(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	ns, err := embedded.StartNATS(dir, port)
	if err != nil {
		t.Fatal(err)
	}
	b, err := servicetest.Start(t, service.ModeServe, servicetest.Env{"NATS_URL": ns.URL(),
		"MCP_ALLOW_PRIVATE_HOSTS": "true", "MCP_JOB_TIMEOUT": "5s"}, service.Options{})
	if err != nil {
		ns.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	user := servicetest.User(t)
	dbID := connectPG(t, b, user, "")
	read := func() *servicetest.Response {
		return execute(t, b, user, "DB_QUERY_"+dbID, map[string]any{"query": "SELECT pg_sleep(0.05), 1 AS one"})
	}
	read().Expect(t, 200)

	const callers = 8
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	bodies := map[int]string{} // one body per status, for the failure message
	var slowest time.Duration
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				r := read()
				took := time.Since(start)
				mu.Lock()
				statuses[r.Status]++
				bodies[r.Status] = string(r.Body)
				slowest = max(slowest, took)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	ns.Close() // in-flight reads lose their broker
	time.Sleep(2 * time.Second)
	if ns, err = embedded.StartNATS(dir, port); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	for status := range statuses {
		if status != http.StatusOK && status != http.StatusServiceUnavailable && status != http.StatusGatewayTimeout {
			t.Fatalf("a caller got %d: %v (%.300s)", status, statuses, bodies[status])
		}
	}
	if slowest > 5*time.Second+2*time.Second {
		t.Fatalf("a caller waited %s, past its 5s deadline", slowest)
	}
	if statuses[http.StatusServiceUnavailable]+statuses[http.StatusGatewayTimeout] == 0 {
		t.Fatalf("no caller noticed NATS going away: %v", statuses)
	}
	deadline := time.Now().Add(20 * time.Second)
	for read().Status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("no recovery after NATS came back")
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("statuses while NATS restarted: %v, slowest answer %s", statuses, slowest)
}
