package mysql

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/internal/testservices"
)

// attacks are statements a read-only connection must refuse. Most write a
// file or a variable through INTO in a place a word scanner misses.
var attacks = []string{
	"SELECT 1e0INTO OUTFILE '/tmp/x'",
	"SELECT 1.INTO OUTFILE '/tmp/x'",
	"SELECT 0x1INTO OUTFILE '/tmp/x'",
	"SELECT .1e1INTO DUMPFILE '/tmp/x'",
	"SELECT 1e+0INTO OUTFILE '/tmp/x'",
	"SELECT 1 INTO @x",
	"SELECT 1 INTO @x, @y FROM dual",
	"SELECT * FROM t INTO OUTFILE '/tmp/x'",
	"SELECT 1 UNION SELECT 2 INTO OUTFILE '/tmp/x'",
	"SELECT 1 INTO OUTFILE '/tmp/x' UNION SELECT 2",
	"SELECT (SELECT 1 INTO @x)",
	"SELECT 1 FROM (SELECT 1 INTO @x) t",
	"SELECT 1 WHERE 1 IN (SELECT 1 INTO @y)",
	"(SELECT 1 INTO @x)",
	"EXPLAIN SELECT 1 INTO OUTFILE '/tmp/x'",
	"SELECT /*!50000 INTO OUTFILE '/tmp/x'*/ 1",
	"SELECT 1 /*!INTO OUTFILE '/tmp/x' */",
	"SELECT 1 /*M!100000 INTO OUTFILE '/tmp/x' */",
	"SELECT 1 /*m! INTO @x */",
	"SeLeCt 1/**/InTo/**/OuTfIlE '/tmp/x'",
	"SELECT 1\nINTO\nOUTFILE\n'/tmp/x'",
	"SELECT `a` INTO @x FROM `t`",
	`SELECT "a\" INTO OUTFILE '/tmp/x' -- "`,
	`SELECT 'a\' INTO OUTFILE '/tmp/x' -- '`,
	`SELECT "a" INTO OUTFILE "/tmp/x"`,
	"SELECT 1 # \nINTO OUTFILE '/tmp/x'",
	"SELECT 1 -- \nINTO OUTFILE '/tmp/x'",
	"SELECT /*+ MAX_EXECUTION_TIME(100000) */ SLEEP(1)",
	"SELECT /*+ SET_VAR(max_execution_time = 0) */ 1",
	"SELECT GET_LOCK('l', 0)",
	"SELECT RELEASE_LOCK('l')",
	"SELECT RELEASE_ALL_LOCKS()",
	"SELECT LOAD_FILE('/etc/passwd')",
	"SELECT BENCHMARK(100000000, MD5('a'))",
	"SELECT MASTER_POS_WAIT('f', 4)",
	"SELECT SOURCE_POS_WAIT('f', 4)",
	"SELECT WAIT_FOR_EXECUTED_GTID_SET('x', 1)",
	"SELECT sys_exec('touch /tmp/x')",
	"SELECT sys_eval('id')",
	"SELECT 1 FROM t WHERE (SELECT LOAD_FILE('/etc/passwd')) IS NOT NULL",
	"SELECT NEXTVAL(s)",
	"DELETE FROM t",
	"SELECT 1; DELETE FROM t",
	"WITH d AS (SELECT 1) DELETE FROM t",
	"EXPLAIN DELETE FROM t",
	"EXPLAIN ANALYZE DELETE FROM t",
	"SET @a = 1",
	"SET SESSION TRANSACTION READ WRITE",
	"DO SLEEP(1)",
	"CALL p()",
	"HANDLER t OPEN",
	"LOCK TABLES t WRITE",
	"SELECT 'unterminated",
	"SELECT 1 /* unterminated",
	"",
}

// reads are statements a read-only connection must run.
var reads = []string{
	"SELECT 1",
	"select * from t where a = 'INTO OUTFILE' and b = \"x\"",
	"SELECT 'it''s', \"say \"\"hi\"\"\"",
	"SELECT `into` FROM t",
	"SELECT intonation, x_into FROM t",
	"SELECT 1e0, 1.5e-3, .5, 0x1F, b'01', x'41', _utf8mb4'x', N'y'",
	"SELECT a FROM t WHERE b LIKE 'C:\\\\%' ESCAPE '|'",
	"SELECT COUNT(*), SUM(v) FROM t GROUP BY a HAVING COUNT(*) > 1 ORDER BY 1 LIMIT 10",
	"WITH c AS (SELECT 1 AS n) SELECT n FROM c",
	"SELECT 1 UNION ALL SELECT 2",
	"SELECT * FROM t FOR UPDATE",
	"SELECT * FROM t LOCK IN SHARE MODE",
	"SELECT SLEEP(0)",
	"SELECT IS_FREE_LOCK('x') IS NULL",
	"SELECT JSON_EXTRACT('{\"a\":1}', '$.a')",
	"SELECT /*+ JOIN_ORDER(a, b) */ 1",
	"SELECT 1 -- trailing comment",
	"SELECT 1 # trailing comment",
	"SELECT 1--1",
	"SHOW TABLES",
	"SHOW FULL PROCESSLIST",
	"SHOW CREATE TABLE t",
	"SHOW VARIABLES LIKE 'max%'",
	"DESCRIBE t",
	"DESC t",
	"EXPLAIN SELECT * FROM t",
	"EXPLAIN FORMAT=JSON SELECT 1",
	"VALUES ROW(1, 2)",
	"SELECT @@version, @a",
}

func TestCheckReadOnlyCorpus(t *testing.T) {
	t.Parallel()
	for _, q := range attacks {
		err := checkReadOnly(q)
		var ce *connectors.Error
		if err == nil || !errors.As(err, &ce) || ce.Kind != connectors.KindQuery {
			t.Errorf("attack %q: got %v, want a KindQuery refusal", q, err)
		}
	}
	for _, q := range reads {
		if err := checkReadOnly(q); err != nil {
			t.Errorf("read %q refused: %v", q, err)
		}
	}
}

// Ambiguous quoting is refused with advice, not a parser message.
func TestCheckReadOnlyAmbiguousQuotes(t *testing.T) {
	t.Parallel()
	err := checkReadOnly(`SELECT 'O\'Brien'`)
	if err == nil || !strings.Contains(err.Error(), "NO_BACKSLASH_ESCAPES") {
		t.Fatalf("got %v", err)
	}
}

// intoAttacks are the templates the property test rewrites; each holds the
// gaps (" ") the rewrites fill.
var intoAttacks = []string{
	"SELECT 1e0 INTO OUTFILE '/tmp/x'",
	"SELECT 1. INTO OUTFILE '/tmp/x'",
	"SELECT 0x1 INTO DUMPFILE '/tmp/x'",
	"SELECT .1e1 INTO DUMPFILE '/tmp/x'",
	"SELECT a FROM t INTO @x",
	"SELECT 1 UNION SELECT 2 INTO OUTFILE '/tmp/x'",
	"SELECT ( SELECT 1 INTO @x )",
	"SELECT 1 FROM ( SELECT 2 INTO @y ) d",
	"SELECT GET_LOCK( 'l' , 0 )",
	"SELECT LOAD_FILE( '/etc/passwd' )",
	"SELECT /*!50000 1 */",
}

// gaps are what may stand between two tokens.
var gaps = []string{" ", "", "/**/", "/* x */", "-- \n", "#\n", "\n", "\t", "\r\n", " -- c\n ", "# c\r\n"}

// TestCheckReadOnlyRewrites rewrites every attack: each gap between tokens
// becomes every separator (an empty one glues a number to INTO), keywords
// change case, and the whole text is wrapped in parentheses or quoted
// strangely; every variant must be refused.
func TestCheckReadOnlyRewrites(t *testing.T) {
	t.Parallel()
	n := 0
	for _, a := range intoAttacks {
		for gi, gap := range gaps {
			for _, cs := range []func(string) string{strings.ToUpper, strings.ToLower, mixCase} {
				toks := strings.Split(a, " ")
				for i := range toks {
					if !strings.HasPrefix(toks[i], "'") {
						toks[i] = cs(toks[i])
					}
				}
				variants := []string{
					strings.Join(toks, gap),
					strings.Join(toks, gaps[(gi+1)%len(gaps)]),
					"(" + strings.Join(toks, gap) + ")",
					strings.Join(toks, gap) + gap,
					"\n" + strings.Join(toks, " "+gap),
					strings.ReplaceAll(strings.Join(toks, gap), "'", `"`),
				}
				for _, v := range variants {
					n++
					if err := checkReadOnly(v); err == nil {
						t.Errorf("variant %q was allowed", v)
					}
				}
			}
		}
	}
	if n < 500 {
		t.Fatalf("only %d variants", n)
	}
}

func mixCase(s string) string {
	b := []byte(s)
	for i := range b {
		if i%2 == 0 {
			b[i] = strings.ToLower(string(b[i]))[0]
		} else {
			b[i] = strings.ToUpper(string(b[i]))[0]
		}
	}
	return string(b)
}

func TestCanonical(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		m    sqlMode
		want string
	}{
		{`SELECT "a" FROM t`, sqlMode{ansiQuotes: true}, "SELECT `a` FROM t"},
		{`SELECT "a" FROM t`, sqlMode{}, "SELECT 'a' FROM t"},
		{`SELECT 'a\', 'b'`, sqlMode{noBackslash: true}, `SELECT 'a\\', 'b'`},
		{`SELECT 'a\'b'`, sqlMode{}, `SELECT 'a''b'`},
		{"SELECT 1 /* c */ # d\n", sqlMode{}, "SELECT 1    "},
	}
	for _, c := range cases {
		got, ok := canonical(c.in, c.m)
		if !ok || got != c.want {
			t.Errorf("canonical(%q, %+v) = %q %v, want %q", c.in, c.m, got, ok, c.want)
		}
	}
}

// FuzzMySQLReadOnly checks the guard never panics and that whatever it
// accepts holds no INTO when parsed again, under any quoting mode.
func FuzzMySQLReadOnly(f *testing.F) {
	for _, q := range append(append([]string{}, attacks...), reads...) {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		if checkReadOnly(q) != nil {
			return
		}
		for _, m := range []sqlMode{{}, {ansiQuotes: true}, {noBackslash: true}, {true, true}} {
			text, ok := canonical(q, m)
			if !ok {
				t.Fatalf("accepted %q, which does not lex under %+v", q, m)
			}
			st, err := parser.Parse(text)
			if err != nil {
				t.Fatalf("accepted %q, which does not parse under %+v: %v", q, m, err)
			}
			_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
				if _, ok := n.(*sqlparser.SelectInto); ok {
					t.Fatalf("accepted %q, which holds INTO under %+v", q, m)
				}
				return true, nil
			}, st)
		}
	})
}

// The pinned sql_mode drops the quoting modes from any server default,
// the ANSI combination included, and keeps the rest.
func TestPinnedSQLMode(t *testing.T) {
	t.Parallel()
	host, port := testservices.Need(t, testservices.MySQL)
	cfg, err := config(connectors.Params{Host: host, Port: port, Database: "test", Username: "root"}, connectors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := gomysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer func() { _ = db.Close() }()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	var mode string
	for _, q := range []string{"SET SESSION sql_mode = 'ANSI,NO_BACKSLASH_ESCAPES,STRICT_ALL_TABLES'",
		"SET SESSION sql_mode = " + pinnedSQLMode} {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	if err := conn.QueryRowContext(context.Background(), "SELECT @@SESSION.sql_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(mode, "ANSI") || strings.Contains(mode, "BACKSLASH") || !strings.Contains(mode, "STRICT_ALL_TABLES") {
		t.Fatalf("pinned sql_mode = %q", mode)
	}
}
