package mysql_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

func TestTimeout(t *testing.T) {
	t.Parallel()
	p := user(t, "pw-timeout", "SELECT")
	src := open(t, p, opts())
	short := connectors.Limits{MaxRows: 10, Timeout: 300 * time.Millisecond}
	for _, q := range []string{"SELECT SLEEP(5)", "SELECT COUNT(*) FROM information_schema.COLLATIONS a, information_schema.COLLATIONS b, information_schema.COLLATIONS c, information_schema.COLLATIONS d"} {
		_, err := run(src, "DB_QUERY", map[string]any{"query": q}, short)
		if kindOf(err) != connectors.KindTimeout {
			t.Fatalf("%s: got %v (kind %d), want KindTimeout", q, err, kindOf(err))
		}
		if n := src.OpenConns(); n > 3 {
			t.Fatalf("OpenConns = %d > MaxOpen", n)
		}
		if got := query(t, src, "SELECT 1 AS ok"); len(got) != 1 {
			t.Fatalf("after timeout: %v", got)
		}
	}
	// The server stopped the statements: no thread of this user still runs one.
	waitFor(t, func() bool {
		var n int
		_ = admin(t).QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ? AND COMMAND = 'Query'", p.Username).Scan(&n)
		return n == 0
	})
}

// A call cancelled by its caller mid-statement gets KindTimeout, and its
// connection is discarded rather than returned to the pool.
func TestCancelDestroysConnection(t *testing.T) {
	t.Parallel()
	p := user(t, "pw-cancel", "SELECT")
	o := opts()
	o.MaxOpen = 1
	o.StatementTimeout = 0
	src := open(t, p, o)
	id := query(t, src, "SELECT CONNECTION_ID() AS id")[0]["id"]

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	_, err := src.Run(ctx, "DB_QUERY", json.RawMessage(`{"query": "SELECT SLEEP(2)"}`), connectors.Limits{MaxRows: 10})
	if kindOf(err) != connectors.KindTimeout {
		t.Fatalf("got %v (kind %d), want KindTimeout", err, kindOf(err))
	}
	if n := src.OpenConns(); n != 0 {
		t.Fatalf("OpenConns = %d after the cancelled call, want 0 (connection discarded)", n)
	}
	got := query(t, src, "SELECT CONNECTION_ID() AS id")[0]["id"]
	if got == id {
		t.Fatalf("the cancelled connection (id %v) was reused", id)
	}
}

func TestPoolCap(t *testing.T) {
	t.Parallel()
	p := user(t, "pw-pool", "SELECT")
	o := opts()
	o.MaxOpen = 3
	src := open(t, p, o)
	var maxSeen, maxOpen atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for range 200 {
		wg.Go(func() {
			// Each statement counts, from inside the server, this user's
			// connections while the load runs (an account without PROCESS
			// sees only its own threads).
			res, err := run(src, "DB_QUERY", map[string]any{"query": "SELECT CAST(COUNT(*) AS SIGNED) + 0 AS n, SLEEP(0.005) AS s FROM information_schema.PROCESSLIST WHERE USER = SUBSTRING_INDEX(USER(), '@', 1)"},
				connectors.Limits{MaxRows: 1, Timeout: 30 * time.Second})
			if err != nil {
				errs <- err
				return
			}
			var rows []struct {
				N json.Number
			}
			if err := json.Unmarshal(res.Body, &rows); err != nil {
				errs <- err
				return
			}
			n, _ := rows[0].N.Int64()
			setMax(&maxSeen, n)
			setMax(&maxOpen, int64(src.OpenConns()))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if maxSeen.Load() > 3 || maxOpen.Load() > 3 {
		t.Fatalf("saw %d server connections / %d open conns, MaxOpen is 3", maxSeen.Load(), maxOpen.Load())
	}
	if maxSeen.Load() < 2 {
		t.Fatalf("saw at most %d connection: the load never ran concurrently", maxSeen.Load())
	}
	if n := connections(t, p.Username); n > 3 {
		t.Fatalf("%d connections after the load", n)
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
