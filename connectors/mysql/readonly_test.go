package mysql_test

import (
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

type fixture struct {
	tbl, proc, outfile string
	ad                 *sql.DB // checks run over this separate pool
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	f := fixture{tbl: uniq("ro"), proc: uniq("proc"), outfile: uniq("mcp_outfile")}
	ad := admin(t)
	f.ad = ad
	exec(t, ad, "CREATE TABLE "+f.tbl+" (v INT) ENGINE=InnoDB")
	exec(t, ad, "INSERT INTO "+f.tbl+" VALUES (1), (2), (3)")
	exec(t, ad, "CREATE PROCEDURE "+f.proc+"() INSERT INTO "+f.tbl+" VALUES (100)")
	t.Cleanup(func() {
		ad := admin(t)
		exec(t, ad, "DROP PROCEDURE IF EXISTS "+f.proc)
		exec(t, ad, "DROP TABLE IF EXISTS "+f.tbl)
		exec(t, ad, "DROP TABLE IF EXISTS "+f.tbl+"_x")
		exec(t, ad, "DROP TABLE IF EXISTS "+f.tbl+"_renamed")
	})
	return f
}

// unchanged checks, over a separate connection, that nothing was written.
func (f fixture) unchanged(t *testing.T, attempt string) {
	t.Helper()
	ad := f.ad
	var n, sum int
	if err := ad.QueryRow("SELECT COUNT(*), SUM(v) FROM "+f.tbl).Scan(&n, &sum); err != nil {
		t.Fatalf("%s: table gone? %v", attempt, err)
	}
	if n != 3 || sum != 6 {
		t.Fatalf("%s: table changed: %d rows, sum %d", attempt, n, sum)
	}
	var cols, others int
	if err := ad.QueryRow("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'test' AND TABLE_NAME = ?", f.tbl).Scan(&cols); err != nil || cols != 1 {
		t.Fatalf("%s: table altered (%d columns) %v", attempt, cols, err)
	}
	if err := ad.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'test' AND TABLE_NAME IN (?, ?)", f.tbl+"_x", f.tbl+"_renamed").Scan(&others); err != nil || others != 0 {
		t.Fatalf("%s: a table was created (%d) %v", attempt, others, err)
	}
	var written bool
	if err := ad.QueryRow("SELECT LOAD_FILE(CONCAT(@@datadir, 'test/', ?)) IS NOT NULL", f.outfile).Scan(&written); err != nil || written {
		t.Fatalf("%s: the server wrote a file (%v) %v", attempt, written, err)
	}
	var locks int
	if err := ad.QueryRow("SELECT COUNT(*) FROM (SELECT IS_USED_LOCK(?) AS l) x WHERE l IS NOT NULL", f.tbl).Scan(&locks); err != nil || locks != 0 {
		t.Fatalf("%s: a named lock is still held (%d) %v", attempt, locks, err)
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	o := opts()
	o.MaxOpen = 1 // every call reuses one session, so leaked state would show
	src := open(t, params(t), o)
	tbl := f.tbl
	cases := []struct {
		name    string
		calls   []string
		mayPass bool
	}{
		{"insert", []string{"INSERT INTO " + tbl + " VALUES (4)"}, false},
		{"update", []string{"UPDATE " + tbl + " SET v = 0"}, false},
		{"delete", []string{"DELETE FROM " + tbl}, false},
		{"replace", []string{"REPLACE INTO " + tbl + " VALUES (9)"}, false},
		{"drop table", []string{"DROP TABLE " + tbl}, false},
		{"create table", []string{"CREATE TABLE " + tbl + "_x (a INT)"}, false},
		{"create temporary table", []string{"CREATE TEMPORARY TABLE " + tbl + "_x (a INT)"}, false},
		{"truncate", []string{"TRUNCATE " + tbl}, false},
		{"alter", []string{"ALTER TABLE " + tbl + " ADD COLUMN w INT"}, false},
		{"rename", []string{"RENAME TABLE " + tbl + " TO " + tbl + "_renamed"}, false},
		{"commit then drop", []string{"COMMIT; DROP TABLE " + tbl}, false},
		{"commit, next call deletes", []string{"COMMIT", "DELETE FROM " + tbl}, false},
		{"set transaction read write then insert", []string{"SET TRANSACTION READ WRITE; INSERT INTO " + tbl + " VALUES (5)"}, false},
		{"set transaction read write, next call inserts", []string{"SET TRANSACTION READ WRITE", "INSERT INTO " + tbl + " VALUES (5)"}, false},
		{"set session transaction read write, next call inserts", []string{"SET SESSION TRANSACTION READ WRITE", "INSERT INTO " + tbl + " VALUES (5)"}, false},
		{"begin then insert", []string{"BEGIN; INSERT INTO " + tbl + " VALUES (6)"}, false},
		{"begin, next call inserts", []string{"BEGIN", "INSERT INTO " + tbl + " VALUES (6)"}, false},
		{"start transaction, next call deletes", []string{"START TRANSACTION", "DELETE FROM " + tbl}, false},
		{"versioned comment", []string{"/*!50000 DROP TABLE " + tbl + " */"}, false},
		{"versioned comment after select", []string{"SELECT 1 /*!50000 ; DROP TABLE " + tbl + " */"}, false},
		{"mariadb executable comment", []string{"SELECT 1 /*M! , (DELETE FROM " + tbl + ") */"}, false},
		{"into outfile", []string{"SELECT * FROM " + tbl + " INTO OUTFILE '" + f.outfile + "'"}, false},
		{"into dumpfile", []string{"SELECT 'x' INTO DUMPFILE '" + f.outfile + "'"}, false},
		{"into variable", []string{"SELECT v INTO @x FROM " + tbl + " LIMIT 1"}, false},
		{"lock tables", []string{"LOCK TABLES " + tbl + " WRITE"}, false},
		{"set autocommit then delete", []string{"SET autocommit = 1; DELETE FROM " + tbl}, false},
		{"set autocommit, next call deletes", []string{"SET autocommit = 1", "DELETE FROM " + tbl}, false},
		{"grant", []string{"GRANT SELECT ON test." + tbl + " TO 'root'@'127.0.0.1'"}, false},
		{"call procedure", []string{"CALL " + f.proc + "()"}, false},
		{"handler", []string{"HANDLER " + tbl + " OPEN"}, false},
		{"load data", []string{"LOAD DATA INFILE '/etc/hostname' INTO TABLE " + tbl}, false},
		{"analyze delete", []string{"ANALYZE DELETE FROM " + tbl}, false},
		{"cte delete", []string{"WITH d AS (SELECT 1) DELETE FROM " + tbl}, false},
		{"comment hides delete", []string{"/* SELECT */ DELETE FROM " + tbl}, false},
		{"hash comment hides delete", []string{"# SELECT\nDELETE FROM " + tbl}, false},
		{"select then delete", []string{"SELECT 1; DELETE FROM " + tbl}, false},
		{"select for update", []string{"SELECT * FROM " + tbl + " FOR UPDATE"}, true},
		{"named lock", []string{"SELECT GET_LOCK('" + tbl + "', 0)"}, false},
	}
	for _, c := range cases {
		for i, q := range c.calls {
			_, err := run(src, "DB_QUERY", map[string]any{"query": q}, lim)
			if err == nil && i == len(c.calls)-1 && !c.mayPass {
				t.Errorf("%s: %q succeeded on a read-only connection", c.name, q)
			}
			if err != nil && kindOf(err) != connectors.KindQuery {
				t.Errorf("%s: %q: got %v (kind %d), want KindQuery", c.name, q, err, kindOf(err))
			}
		}
		f.unchanged(t, c.name)
	}
	if got := query(t, src, "SELECT COUNT(*) AS n FROM "+tbl); got[0]["n"] != "3" {
		t.Fatalf("after the attempts: %v", got)
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
	res, err = run(src, "DB_QUERY", map[string]any{"query": "UPDATE " + f.tbl + " SET v = v + 1 WHERE v >= 10"}, lim)
	if err != nil || string(res.Body) != `{"rows_affected":2}` {
		t.Fatalf("update: %v %+v", err, res)
	}
	var n int
	if err := f.ad.QueryRow("SELECT COUNT(*) FROM " + f.tbl).Scan(&n); err != nil || n != 5 {
		t.Fatalf("rows = %d %v, want 5 (committed)", n, err)
	}
	if _, err := run(src, "DB_QUERY", map[string]any{"query": "INSERT INTO " + f.tbl + " VALUES (1); INSERT INTO " + f.tbl + " VALUES (1)"}, lim); kindOf(err) != connectors.KindQuery {
		t.Fatalf("multi-statement write: %v", err)
	}
	// Session changes do not outlive their call: autocommit and the time
	// zone are restored, and an open transaction is rolled back.
	for _, q := range []string{"SET autocommit = 0", "SET time_zone = '+05:00'", "START TRANSACTION"} {
		if _, err := run(src, "DB_QUERY", map[string]any{"query": q}, lim); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := run(src, "DB_QUERY", map[string]any{"query": "INSERT INTO " + f.tbl + " VALUES (30)"}, lim); err != nil {
		t.Fatal(err)
	}
	if err := f.ad.QueryRow("SELECT COUNT(*) FROM " + f.tbl).Scan(&n); err != nil || n != 6 {
		t.Fatalf("rows = %d %v, want 6: the insert after SET autocommit = 0 was not committed", n, err)
	}
	if got := query(t, src, "SELECT @@session.time_zone AS tz, @@session.autocommit AS ac"); got[0]["tz"] != "+00:00" {
		t.Fatalf("session after changes: %v", got)
	}
}

// The statement that slipped past the old word scanner: MySQL reads 1e0INTO
// as a number then INTO and would write the file.
func TestGluedIntoRefusedOnServer(t *testing.T) {
	t.Parallel()
	src := open(t, params(t), opts())
	path := filepath.Join(os.TempDir(), uniq("mcp-outfile"))
	for _, q := range []string{
		"SELECT 1e0INTO OUTFILE '" + path + "'",
		"SELECT .1e1INTO DUMPFILE '" + path + "'",
		`SELECT "a\" INTO OUTFILE '` + path + `' -- "`,
	} {
		_, err := run(src, "DB_QUERY", map[string]any{"query": q}, lim)
		if kindOf(err) != connectors.KindQuery {
			t.Errorf("%s: got %v, want a KindQuery refusal", q, err)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s exists or cannot be checked: %v", path, err)
	}
}
