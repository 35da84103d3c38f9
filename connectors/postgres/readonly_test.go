package postgres_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// fixture is a table with three rows, a sequence, a procedure and a function
// that write, for write attempts to aim at.
type fixture struct {
	tbl, seq, proc, fn, marker string
	lockKey                    int
	ad                         *pgx.Conn // checks run over this separate connection
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	f := fixture{tbl: uniq("ro"), seq: uniq("seq"), proc: uniq("proc"), fn: uniq("fn")}
	f.marker = filepath.Join(os.TempDir(), uniq("mcp_copy_marker"))
	f.lockKey = 700000 + int(uniqNum())
	ad := admin(t)
	f.ad = ad
	exec(t, ad, "CREATE TABLE "+f.tbl+" (v int)")
	exec(t, ad, "INSERT INTO "+f.tbl+" VALUES (1), (2), (3)")
	exec(t, ad, "CREATE SEQUENCE "+f.seq)
	exec(t, ad, "SELECT nextval('"+f.seq+"')")
	exec(t, ad, "CREATE PROCEDURE "+f.proc+"() LANGUAGE sql AS $$ INSERT INTO "+f.tbl+" VALUES (100) $$")
	exec(t, ad, "CREATE FUNCTION "+f.fn+"() RETURNS int LANGUAGE plpgsql AS $$ BEGIN INSERT INTO "+f.tbl+" VALUES (200); RETURN 1; END $$")
	t.Cleanup(func() {
		ad := admin(t)
		for _, s := range []string{"DROP FUNCTION IF EXISTS " + f.fn, "DROP PROCEDURE IF EXISTS " + f.proc,
			"DROP SEQUENCE IF EXISTS " + f.seq, "DROP TABLE IF EXISTS " + f.tbl, "DROP TABLE IF EXISTS " + f.tbl + "_new",
			"DROP TABLE IF EXISTS " + f.tbl + "_x"} {
			exec(t, ad, s)
		}
		_ = os.Remove(f.marker)
	})
	return f
}

func uniqNum() int64 {
	n, _ := strconv.ParseInt(uniq("")[1:7], 16, 64)
	return n
}

// unchanged checks, over a separate connection, that nothing was written.
func (f fixture) unchanged(t *testing.T, attempt string) {
	t.Helper()
	ad := f.ad
	ctx := context.Background()
	var n, sum int
	if err := ad.QueryRow(ctx, "SELECT count(*), sum(v) FROM "+f.tbl).Scan(&n, &sum); err != nil {
		t.Fatalf("%s: table gone? %v", attempt, err)
	}
	if n != 3 || sum != 6 {
		t.Fatalf("%s: table changed: %d rows, sum %d", attempt, n, sum)
	}
	var last int64
	var called bool
	if err := ad.QueryRow(ctx, "SELECT last_value, is_called FROM "+f.seq).Scan(&last, &called); err != nil || last != 1 || !called {
		t.Fatalf("%s: sequence advanced: %d %v %v", attempt, last, called, err)
	}
	var others int
	if err := ad.QueryRow(ctx, `SELECT count(*) FROM pg_class WHERE relname IN ($1, $2)`, f.tbl+"_new", f.tbl+"_x").Scan(&others); err != nil || others != 0 {
		t.Fatalf("%s: a table was created (%d) %v", attempt, others, err)
	}
	var acl *string
	if err := ad.QueryRow(ctx, "SELECT relacl::text FROM pg_class WHERE relname = $1", f.tbl).Scan(&acl); err != nil || acl != nil {
		t.Fatalf("%s: privileges changed: %v %v", attempt, acl, err)
	}
	var locks int
	if err := ad.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1", f.lockKey).Scan(&locks); err != nil || locks != 0 {
		t.Fatalf("%s: advisory lock still held (%d) %v", attempt, locks, err)
	}
	if _, err := os.Stat(f.marker); err == nil {
		t.Fatalf("%s: the server ran a program", attempt)
	}
}

func (f fixture) unchangedLocks(t *testing.T) {
	t.Helper()
	var locks int
	if err := f.ad.QueryRow(context.Background(), "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1", f.lockKey).Scan(&locks); err != nil || locks != 0 {
		t.Fatalf("advisory lock still held (%d) %v", locks, err)
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	o := opts()
	o.MaxOpen = 1 // every call reuses the same session, so a leaked state would show
	src := open(t, params(t), o)
	tbl := f.tbl
	copyProgram := "COPY (SELECT 1) TO PROGRAM 'touch " + f.marker + "'"
	cases := []struct {
		name    string
		calls   []string
		mayPass bool // the statement may succeed, as long as nothing is written
	}{
		{"insert", []string{"INSERT INTO " + tbl + " VALUES (4)"}, false},
		{"update", []string{"UPDATE " + tbl + " SET v = 0"}, false},
		{"delete", []string{"DELETE FROM " + tbl}, false},
		{"drop table", []string{"DROP TABLE " + tbl}, false},
		{"create table", []string{"CREATE TABLE " + tbl + "_x (a int)"}, false},
		{"create temp table", []string{"CREATE TEMP TABLE " + tbl + "_x (a int)"}, false},
		{"truncate", []string{"TRUNCATE " + tbl}, false},
		{"commit then drop", []string{"COMMIT; DROP TABLE " + tbl}, false},
		{"commit alone then delete", []string{"COMMIT", "DELETE FROM " + tbl}, false},
		{"set transaction read write then insert", []string{"SET TRANSACTION READ WRITE; INSERT INTO " + tbl + " VALUES (5)"}, false},
		{"set transaction read write, next call inserts", []string{"SET TRANSACTION READ WRITE", "INSERT INTO " + tbl + " VALUES (5)"}, false},
		{"session characteristics read write, next call inserts", []string{"SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "INSERT INTO " + tbl + " VALUES (5)"}, false},
		{"set_config default_transaction_read_only, next call inserts", []string{"SELECT set_config('default_transaction_read_only', 'off', false)", "INSERT INTO " + tbl + " VALUES (5)"}, true},
		{"begin then insert", []string{"BEGIN; INSERT INTO " + tbl + " VALUES (6)"}, false},
		{"begin, next call inserts", []string{"BEGIN", "INSERT INTO " + tbl + " VALUES (6)"}, false},
		{"nextval", []string{"SELECT nextval('" + f.seq + "')"}, false},
		{"setval", []string{"SELECT setval('" + f.seq + "', 99)"}, false},
		{"do block", []string{"DO $$ BEGIN INSERT INTO " + tbl + " VALUES (7); END $$"}, false},
		{"writable cte", []string{"WITH d AS (DELETE FROM " + tbl + " RETURNING *) SELECT * FROM d"}, false},
		{"explain analyze delete", []string{"EXPLAIN ANALYZE DELETE FROM " + tbl}, false},
		{"select into", []string{"SELECT * INTO " + tbl + "_new FROM " + tbl}, false},
		{"select for update", []string{"SELECT * FROM " + tbl + " FOR UPDATE"}, true},
		{"writing function", []string{"SELECT " + f.fn + "()"}, false},
		{"call procedure", []string{"CALL " + f.proc + "()"}, false},
		{"grant", []string{"GRANT SELECT ON " + tbl + " TO PUBLIC"}, false},
		{"lock table", []string{"LOCK TABLE " + tbl}, false},
		{"advisory lock", []string{"SELECT pg_advisory_lock(" + strconv.Itoa(f.lockKey) + ")"}, true},
		{"copy to program", []string{copyProgram}, false},
		{"do copy to program", []string{"DO $$ BEGIN EXECUTE '" + copyProgram + "'; END $$"}, false},
		{"copy via query_to_xml", []string{"SELECT query_to_xml('" + copyProgram + "', true, false, '')"}, false},
		{"lo_export", []string{"SELECT lo_export(lo_from_bytea(0, 'x'), '" + f.marker + "')"}, false},
		{"dblink", []string{"SELECT * FROM dblink_exec('dbname=test', 'DELETE FROM " + tbl + "')"}, false},
		{"comment hides delete", []string{"/* SELECT */ DELETE FROM " + tbl}, false},
		{"select then delete", []string{"SELECT 1; DELETE FROM " + tbl}, false},
		{"vacuum", []string{"VACUUM " + tbl}, false},
	}
	for _, c := range cases {
		for i, sql := range c.calls {
			_, err := run(src, "DB_QUERY", map[string]any{"query": sql}, lim)
			last := i == len(c.calls)-1
			if err == nil && last && !c.mayPass {
				t.Errorf("%s: %q succeeded on a read-only connection", c.name, sql)
			}
			if err != nil && kindOf(err) != connectors.KindQuery {
				t.Errorf("%s: %q: got %v (kind %d), want KindQuery", c.name, sql, err, kindOf(err))
			}
		}
		f.unchanged(t, c.name)
	}
	// The session is still healthy and still read-only.
	if got := query(t, src, "SELECT current_setting('transaction_read_only') AS ro"); got[0]["ro"] != "on" {
		t.Fatalf("after the attempts: %v", got)
	}
}

func TestReadOnlyEngineMessage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	src := open(t, params(t), opts())
	_, err := run(src, "DB_QUERY", map[string]any{"query": "EXPLAIN ANALYZE DELETE FROM " + f.tbl}, lim)
	if kindOf(err) != connectors.KindQuery || err.Error() != "ERROR: cannot execute DELETE in a read-only transaction (SQLSTATE 25006)" {
		t.Fatalf("got %v", err)
	}
}

func TestAllowWrites(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := params(t)
	p.AllowWrites = true
	o := opts()
	o.MaxOpen = 1
	src := open(t, p, o)
	res, err := run(src, "DB_QUERY", map[string]any{"query": "INSERT INTO " + f.tbl + " VALUES (10), (20)"}, lim)
	if err != nil || res.Rows || string(res.Body) != `{"rows_affected":2}` {
		t.Fatalf("insert: %v %+v", err, res)
	}
	rows := query(t, src, "INSERT INTO "+f.tbl+" VALUES (30) RETURNING v")
	if len(rows) != 1 || rows[0]["v"] != float64(30) {
		t.Fatalf("insert returning: %v", rows)
	}
	var n int
	if err := admin(t).QueryRow(context.Background(), "SELECT count(*) FROM "+f.tbl).Scan(&n); err != nil || n != 6 {
		t.Fatalf("rows after inserts = %d %v, want 6 (committed)", n, err)
	}
	// Still one statement per call.
	if _, err := run(src, "DB_QUERY", map[string]any{"query": "INSERT INTO " + f.tbl + " VALUES (1); INSERT INTO " + f.tbl + " VALUES (1)"}, lim); kindOf(err) != connectors.KindQuery {
		t.Fatalf("multi-statement write: %v", err)
	}
	// A session setting does not outlive its call: the next call's timeout holds.
	if _, err := run(src, "DB_QUERY", map[string]any{"query": "SET statement_timeout = 0"}, lim); err != nil {
		t.Fatal(err)
	}
	_, err = run(src, "DB_QUERY", map[string]any{"query": "SELECT pg_sleep(5)"}, connectors.Limits{MaxRows: 1, Timeout: 300 * 1e6})
	if kindOf(err) != connectors.KindTimeout {
		t.Fatalf("after SET statement_timeout = 0: %v", err)
	}
	// Nor does the time zone, or a session-level advisory lock.
	if _, err := run(src, "DB_QUERY", map[string]any{"query": "SET TIME ZONE 'Asia/Kolkata'"}, lim); err != nil {
		t.Fatal(err)
	}
	if _, err := run(src, "DB_QUERY", map[string]any{"query": "SELECT pg_advisory_lock(" + strconv.Itoa(f.lockKey) + ")"}, lim); err != nil {
		t.Fatal(err)
	}
	if got := query(t, src, "SELECT '2024-01-02 03:04:05+00'::timestamptz::text AS ts"); got[0]["ts"] != "2024-01-02 03:04:05+00" {
		t.Fatalf("time zone leaked into the next call: %v", got)
	}
	f.unchangedLocks(t)
	// An open transaction is not carried into the next call: BEGIN's
	// connection is discarded, so its insert is never committed.
	if _, err := run(src, "DB_QUERY", map[string]any{"query": "BEGIN"}, lim); err != nil {
		t.Fatal(err)
	}
	if got := query(t, src, "SELECT count(*)::int AS n, current_setting('transaction_read_only') AS ro FROM "+f.tbl); got[0]["n"] != float64(6) || got[0]["ro"] != "off" {
		t.Fatalf("after BEGIN: %v", got)
	}
}

// The file-writing attack of the security review: a Unicode-escaped
// lo_export is refused before it runs, and no file appears.
func TestReadOnlyRefusesEscapedLoExport(t *testing.T) {
	t.Parallel()
	ad := admin(t)
	ctx := context.Background()
	var oid uint32
	if err := ad.QueryRow(ctx, "SELECT lo_from_bytea(0, 'mcp guard')").Scan(&oid); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin(t).Exec(context.Background(), "SELECT lo_unlink($1)", oid) })
	marker := filepath.Join(os.TempDir(), uniq("mcp_lo_marker"))
	t.Cleanup(func() { _ = os.Remove(marker) })
	src := open(t, params(t), opts())
	o := strconv.FormatUint(uint64(oid), 10)
	for _, sql := range []string{
		`SELECT U&"\006Co_export"(` + o + `, '` + marker + `')`,
		`SELECT U&"!006C!+00006F_export" UESCAPE '!' (` + o + `, '` + marker + `')`,
		"SELECT \"pg_catalog\"\n.--c\n\"lo_export\"(" + o + ", $$" + marker + "$$)",
		`TABLE lo_export`,
	} {
		_, err := run(src, "DB_QUERY", map[string]any{"query": sql}, lim)
		if kindOf(err) != connectors.KindQuery || !strings.Contains(err.Error(), "lo_export is not allowed") {
			t.Errorf("%q: got %v", sql, err)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("lo_export wrote the file")
	}
}
