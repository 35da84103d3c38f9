package mysql_test

import (
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// A statement that lifts its own server time limit (an optimizer hint on
// MySQL, SET STATEMENT on MariaDB) is still stopped at the call's deadline:
// the source kills it from a side connection.
func TestDeadlineKillsQuery(t *testing.T) {
	t.Parallel()
	p := user(t, "pw-kill", "ALL")
	p.AllowWrites = true // no read-only guard: the hints reach the server
	src := open(t, p, opts())
	for _, q := range []string{
		"SELECT SLEEP(30)",
		"SELECT /*+ MAX_EXECUTION_TIME(100000) */ SLEEP(30)",
		"SET STATEMENT max_statement_time = 0 FOR SELECT SLEEP(30)",
	} {
		start := time.Now()
		_, err := run(src, "DB_QUERY", map[string]any{"query": q}, connectors.Limits{MaxRows: 10, Timeout: time.Second})
		if kindOf(err) != connectors.KindTimeout {
			t.Fatalf("%s: got %v (kind %d), want KindTimeout", q, err, kindOf(err))
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("%s: took %v", q, d)
		}
		// Within a moment no thread of this user still sleeps.
		deadline := time.Now().Add(2 * time.Second)
		for {
			var n int
			if err := admin(t).QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ? AND INFO LIKE '%SLEEP(30)%'",
				p.Username).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d statements still run on the server", q, n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
