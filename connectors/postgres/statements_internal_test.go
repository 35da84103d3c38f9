package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// prepared lists the prepared statements of the pool's only connection as
// "name=statement", sorted by name.
func prepared(t *testing.T, s *Source) (out []string) {
	t.Helper()
	withConn(t, s, func(ctx context.Context, pc *pgconn.PgConn) {
		res := pc.ExecParams(ctx,
			"SELECT name || '=' || statement FROM pg_prepared_statements WHERE name LIKE 'mcp_q%' ORDER BY length(name), name",
			nil, nil, nil, nil).Read()
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		for _, r := range res.Rows {
			out = append(out, string(r[0]))
		}
	})
	return out
}

func runQuery(t *testing.T, s *Source, q string) string {
	t.Helper()
	res, err := s.Run(context.Background(), "DB_QUERY", mustJSON(t, map[string]string{"query": q}),
		connectors.Limits{MaxRows: 100, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return string(res.Body)
}

// A read-only connection prepares a caller's statement on its first run
// and reuses it (still one round trip), at most maxStatements of them; a
// table changed under a prepared statement, or a prepared statement gone,
// costs the caller nothing.
func TestCallersStatementsArePrepared(t *testing.T) {
	t.Parallel()
	admin, _ := internalAdmin(t)
	ctx := context.Background()
	table := fmt.Sprintf("prep_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE TABLE "+table+" (a int); INSERT INTO "+table+" VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP TABLE IF EXISTS "+table) })

	s, f := openCounted(t, false, 2*time.Second)
	pid := idlePid(t, s)
	q := "SELECT a FROM " + table
	for range 3 {
		before := f.n.Load()
		if body := runQuery(t, s, q); !strings.Contains(body, `"a":1`) {
			t.Fatalf("%s answered %s", q, body)
		}
		if n := f.n.Load() - before; n != 1 {
			t.Fatalf("%d round trips, want 1", n)
		}
	}
	if got := prepared(t, s); len(got) != 1 || got[0] != "mcp_q1="+q {
		t.Fatalf("prepared %q, want [mcp_q1=%s]", got, q)
	}
	all := "SELECT * FROM " + table
	if body := runQuery(t, s, all); strings.Contains(body, `"b"`) {
		t.Fatalf("before ALTER TABLE: %s", body)
	}

	// The table changes: PostgreSQL refuses the cached plan, the call runs
	// again under a new name and sees the new column.
	if _, err := admin.Exec(ctx, "ALTER TABLE "+table+" ADD COLUMN b int DEFAULT 7"); err != nil {
		t.Fatal(err)
	}
	if body := runQuery(t, s, all); !strings.Contains(body, `"b":7`) {
		t.Fatalf("after ALTER TABLE: %s", body)
	}
	if body := runQuery(t, s, q); !strings.Contains(body, `"a":1`) {
		t.Fatalf("after ALTER TABLE: %s", body)
	}
	if body := runQuery(t, s, all); !strings.Contains(body, `"b":7`) {
		t.Fatalf("after ALTER TABLE, again: %s", body)
	}
	if got := prepared(t, s); len(got) != 3 || got[2] != "mcp_q3="+all {
		t.Fatalf("after ALTER TABLE prepared %q, want the changed statement again as mcp_q3", got)
	}

	// A caller's prepared statement dropped behind the service's back, then
	// all of them: the call answers (unprepared) and the connection stays.
	deallocate(t, s, "mcp_q1")
	if body := runQuery(t, s, q); !strings.Contains(body, `"a":1`) {
		t.Fatalf("after DEALLOCATE mcp_q1: %s", body)
	}
	deallocate(t, s, "ALL")
	if body := runQuery(t, s, all); !strings.Contains(body, `"b":7`) {
		t.Fatalf("after DEALLOCATE ALL: %s", body)
	}
	if got := idlePid(t, s); got != pid {
		t.Fatalf("connection replaced (pid %s, then %s)", pid, got)
	}

	// At most maxStatements per connection; the rest still answer.
	s2, _ := openCounted(t, false, 2*time.Second)
	for i := range maxStatements + 8 {
		want := fmt.Sprintf(`"n":%d`, i)
		if body := runQuery(t, s2, fmt.Sprintf("SELECT %d AS n", i)); !strings.Contains(body, want) {
			t.Fatalf("statement %d answered %s", i, body)
		}
	}
	got := prepared(t, s2)
	if len(got) != maxStatements || got[0] != "mcp_q1=SELECT 0 AS n" {
		t.Fatalf("%d statements prepared (first %q), want %d", len(got), got[:min(1, len(got))], maxStatements)
	}
}
