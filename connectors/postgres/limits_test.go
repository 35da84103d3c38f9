package postgres_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// role creates a throwaway login role (trust authentication lets it in
// without a password), so a test can count exactly its own backends in
// pg_stat_activity.
func role(t *testing.T) connectors.Params {
	t.Helper()
	name := uniq("mcp_t")
	ad := admin(t)
	exec(t, ad, "CREATE ROLE "+name+" LOGIN")
	t.Cleanup(func() {
		ad := admin(t)
		exec(t, ad, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '"+name+"'")
		exec(t, ad, "DROP ROLE "+name)
	})
	p := params(t)
	p.Username = name
	return p
}

func backends(t *testing.T, user string) int {
	t.Helper()
	var n int
	err := admin(t).QueryRow(context.Background(),
		"SELECT count(*) FROM pg_stat_activity WHERE usename = $1", user).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	p := role(t)
	src := open(t, p, opts())
	short := connectors.Limits{MaxRows: 10, Timeout: 300 * time.Millisecond}
	for _, sql := range []string{"SELECT pg_sleep(10)", "SELECT count(*) FROM generate_series(1, 10000000000)"} {
		_, err := run(src, "DB_QUERY", map[string]any{"query": sql}, short)
		if kindOf(err) != connectors.KindTimeout {
			t.Fatalf("%s: got %v (kind %d), want KindTimeout", sql, err, kindOf(err))
		}
		if n := src.OpenConns(); n > 3 {
			t.Fatalf("OpenConns = %d > MaxOpen", n)
		}
		if got := query(t, src, "SELECT 1 AS ok"); got[0]["ok"] != float64(1) {
			t.Fatalf("after timeout: %v", got)
		}
	}
	// The server stopped the statements: no backend of this role is still busy.
	waitFor(t, func() bool {
		var n int
		_ = admin(t).QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND state = 'active'", p.Username).Scan(&n)
		return n == 0
	})
}

// A call cancelled by its caller mid-statement gets KindTimeout; its
// connection is destroyed rather than returned to the pool, and the server
// stops the statement.
func TestCancelDestroysConnection(t *testing.T) {
	t.Parallel()
	p := role(t)
	o := opts()
	o.MaxOpen = 1
	o.StatementTimeout = 0
	src := open(t, p, o)
	pid := query(t, src, "SELECT pg_backend_pid() AS pid")[0]["pid"]

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	_, err := src.Run(ctx, "DB_QUERY", json.RawMessage(`{"query": "SELECT pg_sleep(30)"}`), connectors.Limits{MaxRows: 10})
	if kindOf(err) != connectors.KindTimeout {
		t.Fatalf("got %v (kind %d), want KindTimeout", err, kindOf(err))
	}
	waitFor(t, func() bool { return src.OpenConns() == 0 && backends(t, p.Username) == 0 })
	got := query(t, src, "SELECT pg_backend_pid() AS pid")[0]["pid"]
	if got == pid {
		t.Fatalf("the cancelled connection (pid %v) was reused", pid)
	}
	if n := src.OpenConns(); n != 1 {
		t.Fatalf("OpenConns = %d, want 1", n)
	}
}

func TestPoolCap(t *testing.T) {
	t.Parallel()
	p := role(t)
	o := opts()
	o.MaxOpen = 3
	src := open(t, p, o)
	var maxSeen, maxOpen atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for range 200 {
		wg.Go(func() {
			// Each statement counts, from inside the server, the backends of
			// this Source's role while the load runs.
			res, err := run(src, "DB_QUERY", map[string]any{"query": "SELECT (SELECT count(*) FROM pg_stat_activity WHERE usename = current_user)::int AS n, pg_sleep(0.005) AS s"},
				connectors.Limits{MaxRows: 1, Timeout: 30 * time.Second})
			if err != nil {
				errs <- err
				return
			}
			var rows []struct{ N int64 }
			if err := json.Unmarshal(res.Body, &rows); err != nil {
				errs <- err
				return
			}
			setMax(&maxSeen, rows[0].N)
			setMax(&maxOpen, int64(src.OpenConns()))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if maxSeen.Load() > 3 || maxOpen.Load() > 3 {
		t.Fatalf("saw %d backends / %d open conns, MaxOpen is 3", maxSeen.Load(), maxOpen.Load())
	}
	if maxSeen.Load() < 2 {
		t.Fatalf("saw at most %d backend: the load never ran concurrently", maxSeen.Load())
	}
	if n := backends(t, p.Username); n > 3 {
		t.Fatalf("%d backends after the load", n)
	}
}

func setMax(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
