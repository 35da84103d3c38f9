package postgres

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// flushCounter dials PostgreSQL and counts the writes the client makes on
// every connection: each is one flush of the client's buffer, so a call
// that waits for a reply between two writes shows up as two.
type flushCounter struct{ n atomic.Int64 }

func (f *flushCounter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, n: &f.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(b)
}

func openCounted(t *testing.T, writes bool, stmtTimeout time.Duration) (*Source, *flushCounter) {
	t.Helper()
	_, p := internalAdmin(t)
	p.AllowWrites = writes
	f := &flushCounter{}
	src, err := Driver{}.Open(context.Background(), p, connectors.Options{
		MaxOpen: 1, StatementTimeout: stmtTimeout, ConnectTimeout: 5 * time.Second, Dial: f.dial})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	return src.(*Source), f
}

// withConn runs f on a connection of the pool, behind the Source's back.
func withConn(t *testing.T, s *Source, f func(ctx context.Context, pc *pgconn.PgConn)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	f(ctx, conn.Conn().PgConn())
}

// idlePid checks that the pool's connection is idle (TxStatus 'I') and
// usable, and returns its backend pid.
func idlePid(t *testing.T, s *Source) (pid string) {
	t.Helper()
	withConn(t, s, func(ctx context.Context, pc *pgconn.PgConn) {
		if st := pc.TxStatus(); st != 'I' {
			t.Fatalf("pooled connection has TxStatus %q, want 'I'", st)
		}
		res := pc.ExecParams(ctx, "SELECT pg_backend_pid()", nil, nil, nil, nil).Read()
		if res.Err != nil || len(res.Rows) != 1 {
			t.Fatalf("pooled connection unusable: %v", res.Err)
		}
		pid = string(res.Rows[0][0])
	})
	return pid
}

// TestOneRoundTrip counts the client's flushes per call on a warm pool: a
// read is one round trip, and a failed one a second for its cleanup (the
// error skipped it); a write is two, failed or not (its statement_timeout
// first, then the statement with its cleanup).
func TestOneRoundTrip(t *testing.T) {
	t.Parallel()
	for _, writes := range []bool{false, true} {
		s, f := openCounted(t, writes, 2*time.Second)
		pid := idlePid(t, s)
		cases := []struct {
			query string
			kind  connectors.Kind
		}{
			{"SELECT 1 AS one", 0},
			{"SELECT g, repeat('x', 100) FROM generate_series(1, 500) g", 0},
			{"SELECT 1 FROM", connectors.KindQuery},                                   // syntax error: fails at Parse
			{"SELECT 1 / (g - 3) FROM generate_series(1, 5) g", connectors.KindQuery}, // fails after rows
			{"SELECT pg_sleep(5)", connectors.KindTimeout},                            // statement_timeout (57014)
		}
		for _, c := range cases {
			before := f.n.Load()
			res, err := s.Run(context.Background(), "DB_QUERY", mustJSON(t, map[string]string{"query": c.query}),
				connectors.Limits{MaxRows: 1000, Timeout: 30 * time.Second})
			flushes := f.n.Load() - before
			if kind(err) != c.kind || c.kind == 0 && (err != nil || !res.Rows) {
				t.Fatalf("writes=%v %s: got %v, want kind %d", writes, c.query, err, c.kind)
			}
			want := int64(1)
			if writes || c.kind != 0 {
				want = 2
			}
			if flushes != want {
				t.Errorf("writes=%v %s: %d round trips, want %d", writes, c.query, flushes, want)
			}
			if got := idlePid(t, s); got != pid {
				t.Fatalf("writes=%v %s: connection replaced (pid %s, then %s)", writes, c.query, pid, got)
			}
		}
	}
}

// deallocate drops prepared statements of the pool's connection behind the
// Source's back, as a pooler that moved the session would.
func deallocate(t *testing.T, s *Source, what string) {
	t.Helper()
	withConn(t, s, func(ctx context.Context, pc *pgconn.PgConn) {
		if _, err := pc.Exec(ctx, "DEALLOCATE "+what).ReadAll(); err != nil {
			t.Fatal(err)
		}
	})
}

// kind is the error's kind, 0 for no error.
func kind(err error) connectors.Kind {
	if err == nil {
		return 0
	}
	return connectors.KindOf(err)
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPipelineEdgeCases runs failing, truncated and lock-taking reads
// through the engine alone (the keyword allowlist bypassed) and checks after
// each that the connection went back to the pool idle, usable and the same,
// holding no advisory lock.
func TestPipelineEdgeCases(t *testing.T) {
	t.Parallel()
	ad, _ := internalAdmin(t)
	// Long enough that a truncated stream is cut by the client on a loaded
	// machine, short enough for pg_sleep(5) to run past it.
	s, _ := openCounted(t, false, 3*time.Second)
	pid := idlePid(t, s)
	ctx := context.Background()
	key := strconv.FormatInt(time.Now().UnixNano()%1_000_000_000, 10)
	cases := []struct {
		query     string
		kind      connectors.Kind
		truncated bool
	}{
		{"SELECT 1 FROM", connectors.KindQuery, false},
		{"CREATE TEMP TABLE pipeline_edge (a int)", connectors.KindQuery, false}, // 25006
		{"SELECT pg_sleep(5)", connectors.KindTimeout, false},
		{"SELECT pg_advisory_lock(" + key + ")", 0, false},
		{"SELECT pg_advisory_lock(" + key + "), 1 / 0", connectors.KindQuery, false},
		{"SELECT generate_series(1, 100000000) AS g", 0, true}, // streams: the SRF is in the target list
		// The statement ends about when the cancel of the truncation is
		// sent, so the cancel may reach the cleanup instead: the advisory
		// lock must still be released and the transaction ended.
		{"SELECT pg_advisory_lock(" + key + "), g FROM generate_series(1, 11) g", 0, true},
	}
	for round := range 5 {
		for _, c := range cases {
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			res, err := s.query(cctx, c.query, 10)
			cancel()
			if kind(err) != c.kind {
				t.Fatalf("%s: got %v, want kind %d", c.query, err, c.kind)
			}
			if c.kind == 0 && (res.Truncated != c.truncated || c.truncated && res.RowCount != 10) {
				t.Fatalf("%s: truncated=%v rows=%d", c.query, res.Truncated, res.RowCount)
			}
			if got := idlePid(t, s); got != pid {
				t.Fatalf("round %d, %s: connection replaced (pid %s, then %s)", round, c.query, pid, got)
			}
			var locks int
			if err := ad.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1::int", pid).Scan(&locks); err != nil || locks != 0 {
				t.Fatalf("round %d, %s: %d advisory locks left (%v)", round, c.query, locks, err)
			}
		}
	}
}

// TestFinishRepairs gives finish a connection whose cleanup did not run (as
// when a late cancel of a truncated read stops the pipeline's ROLLBACK or
// unlock): a read's connection is rolled back, unlocked and kept; a write's
// open transaction loses its connection, uncommitted.
func TestFinishRepairs(t *testing.T) {
	t.Parallel()
	ad, _ := internalAdmin(t)
	ctx := context.Background()
	for _, writes := range []bool{false, true} {
		s, _ := openCounted(t, writes, 5*time.Second)
		pid := idlePid(t, s)
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pc := conn.Conn().PgConn()
		if _, err := pc.Exec(ctx, "BEGIN; SELECT pg_advisory_lock(7)").ReadAll(); err != nil || pc.TxStatus() != 'T' {
			t.Fatalf("setup: %v", err)
		}
		s.finish(ctx, pc, !writes, false)
		if pc.IsClosed() != writes {
			t.Fatalf("writes=%v: closed=%v", writes, pc.IsClosed())
		}
		conn.Release()
		var locks int
		if err := ad.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1::int", pid).Scan(&locks); err != nil || !writes && locks != 0 {
			t.Fatalf("writes=%v: %d advisory locks left (%v)", writes, locks, err)
		}
		if got := idlePid(t, s); (got == pid) == writes {
			t.Fatalf("writes=%v: pid %s, then %s", writes, pid, got)
		}
	}
}

// TestPreparedSetup checks that a read-only connection prepares its setup
// and cleanup as it opens, that a call whose prepared statements went
// missing (as behind a pooler that moves sessions) still answers, once, on
// the same connection, and that the connection then sends them in full.
// A connection that allows writes prepares nothing.
func TestPreparedSetup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	names := func(s *Source) (list string, flag bool) {
		t.Helper()
		withConn(t, s, func(ctx context.Context, pc *pgconn.PgConn) {
			res := pc.ExecParams(ctx, "SELECT coalesce(string_agg(name, ',' ORDER BY name), '') FROM pg_prepared_statements", nil, nil, nil, nil).Read()
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			list, flag = string(res.Rows[0][0]), isPrepared(pc)
		})
		return list, flag
	}
	read := func(s *Source) {
		t.Helper()
		res, err := s.Run(ctx, "DB_QUERY", mustJSON(t, map[string]string{"query": "SELECT 41 + 1 AS n"}),
			connectors.Limits{MaxRows: 10, Timeout: 10 * time.Second})
		if err != nil || !strings.Contains(string(res.Body), `"n":42`) {
			t.Fatalf("read: %v %v", res, err)
		}
	}

	rw, _ := openCounted(t, true, 2*time.Second)
	idlePid(t, rw)
	if got, flag := names(rw); got != "" || flag {
		t.Fatalf("a connection that allows writes prepared %q (flag %v)", got, flag)
	}

	s, f := openCounted(t, false, 2*time.Second)
	pid := idlePid(t, s)
	want := strings.Join([]string{stmtBegin, stmtRollback, stmtTimeout, stmtUnlock}, ",")
	if got, flag := names(s); got != want || !flag {
		t.Fatalf("prepared %q (flag %v), want %q", got, flag, want)
	}
	before := f.n.Load()
	read(s)
	if n := f.n.Load() - before; n != 1 {
		t.Fatalf("prepared read: %d round trips, want 1", n)
	}

	deallocate(t, s, "ALL")
	read(s) // answers without them
	if got := idlePid(t, s); got != pid {
		t.Fatalf("connection replaced (pid %s, then %s)", pid, got)
	}
	if _, flag := names(s); flag {
		t.Fatal("the connection still counts on statements it lost")
	}
	before = f.n.Load()
	read(s)
	if n := f.n.Load() - before; n != 1 {
		t.Fatalf("unprepared read: %d round trips, want 1", n)
	}

	// Only a cleanup statement gone: the read answers, its cleanup runs in
	// full, and the connection stops counting on the rest.
	s2, _ := openCounted(t, false, 2*time.Second)
	pid2 := idlePid(t, s2)
	deallocate(t, s2, stmtUnlock)
	read(s2)
	if got := idlePid(t, s2); got != pid2 {
		t.Fatalf("connection replaced (pid %s, then %s)", pid2, got)
	}
	if _, flag := names(s2); flag {
		t.Fatal("the connection still counts on a statement it lost")
	}
}
