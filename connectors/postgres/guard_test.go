package postgres

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// attackCorpus are statements a read-only connection must refuse for the
// function they call. Each one starts with a read keyword, so only the
// blocklist stops it.
var attackCorpus = []string{
	`SELECT lo_export(16384, '/tmp/x')`,
	`SELECT U&"\006Co_export"(16384, '/tmp/x')`,
	`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app'`,
	`SELECT U&"\0070g_terminate_backend"(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()`,
	`SELECT U&"!0070g_terminate_backend" UESCAPE '!' (1)`,
	`SELECT pg_cancel_backend(1)`,
	`SELECT lo_import('/etc/passwd')`,
	`SELECT lo_unlink(16384)`,
	`SELECT lo_from_bytea(0, '\x00')`,
	`SELECT lo_put(16384, 0, 'x')`,
	`SELECT lowrite(lo_open(16384, 131072), 'x')`,
	`SELECT * FROM dblink('dbname=test', 'DELETE FROM t') AS t(x int)`,
	`SELECT dblink_exec('dbname=test', 'DROP TABLE t')`,
	`SELECT pg_create_logical_replication_slot('s', 'pgoutput')`,
	`SELECT pg_create_physical_replication_slot('s')`,
	`SELECT pg_drop_replication_slot('s')`,
	`SELECT pg_stat_reset()`,
	`SELECT pg_stat_reset_shared('bgwriter')`,
	`SELECT pg_reload_conf()`,
	`SELECT pg_rotate_logfile()`,
	`SELECT set_config('default_transaction_read_only', 'off', false)`,
	`SELECT set_config('search_path', 'evil', true)`,
	`SELECT pg_notify('c', 'x')`,
	`SELECT pg_read_file('/etc/passwd')`,
	`SELECT pg_read_binary_file('/etc/passwd')`,
	`SELECT pg_ls_dir('.')`,
	`SELECT pg_stat_file('postgresql.conf')`,
	`SELECT pg_file_write('x', 'y', false)`,
	`SELECT pg_switch_wal()`,
	`SELECT pg_promote()`,
	`SELECT pg_backup_start('x')`,
	`SELECT pg_advisory_lock(1)`,
	`SELECT pg_try_advisory_lock_shared(1)`,
	`SELECT nextval('s')`,
	`SELECT setval('s', 99)`,
	`SELECT query_to_xml('COPY (SELECT 1) TO PROGRAM ''touch /tmp/x''', true, false, '')`,
	`SELECT query_to_xml_and_xmlschema('SELECT 1', true, false, '')`,
	`SELECT cursor_to_xml('c', 1, true, false, '')`,
	`SELECT ts_stat('SELECT to_tsvector(lo_export(1, ''/tmp/x'')::text)')`,
	`SELECT * FROM crosstab('SELECT 1, 2, 3') AS t(a int, b int)`,
	`SELECT pg_logical_emit_message(false, 'p', 'x')`,
	`SELECT pg_replication_origin_create('o')`,
	`SELECT brin_summarize_new_values('i')`,
	`SELECT gin_clean_pending_list('i')`,
	`SELECT http_get('http://169.254.169.254/')`,
	`SELECT pg_background_launch('DELETE FROM t')`,
	`WITH x AS (SELECT pg_terminate_backend(1)) SELECT * FROM x`,
	`EXPLAIN ANALYZE SELECT lo_export(1, '/tmp/x')`,
	`VALUES (pg_cancel_backend(1))`,
	`TABLE pg_catalog.lo_export`,
	`(SELECT pg_catalog.pg_terminate_backend(1))`,
	`SELECT "pg_catalog"."lo_export"(1, '/tmp/x')`,
	`SELECT $$ quoted $$, lo_export(1, E'/tmp/\x78')`,
	`SELECT $q$ it's $q$, pg_terminate_backend(1)`,
	`SELECT 'it''s', pg_terminate_backend(1) /* c /* nested */ c */`,
	// string ends that only a real lexer finds
	`SELECT E'\'', pg_terminate_backend(1) -- '`,
	`SELECT 'a\', pg_terminate_backend(1) --'`,
	"SELECT E'a'\n'\\'', pg_terminate_backend(1) --'",
	"SELECT 1 --x\r, pg_terminate_backend(1)",
	"SELECT 1 /* a /* b */ */ , pg_terminate_backend(1)",
}

// legitReads must pass the guard.
var legitReads = []string{
	"SELECT 1",
	"select 'lo_export' AS s",
	"SELECT 'pg_terminate_backend(1)', $$lo_export(1, '/tmp/x')$$",
	"SELECT 1 -- pg_terminate_backend(1)",
	"SELECT 'x' /* lo_export /* nested */ dblink */",
	"WITH x AS (SELECT 1 AS a) SELECT a FROM x",
	"(SELECT 1) UNION (SELECT 2)",
	"VALUES (1), (2)",
	"TABLE pg_class",
	"SHOW search_path",
	"EXPLAIN SELECT * FROM pg_class",
	"SELECT pg_advisory_xact_lock(1), pg_try_advisory_xact_lock_shared(2)",
	"SELECT current_setting('search_path'), pg_sleep(0), pg_backend_pid()",
	"SELECT count(*) FROM pg_stat_activity",
	"SELECT lo_get(16384), pg_export_snapshot(), txid_current()",
	"SELECT pg_backend_pid();",
	"SELECT 1;\n-- done\n",
	`SELECT 'a\', 'b'`,
	`SELECT E'it\'s', U&"d\0061t\+000061" FROM t`,
	`SELECT "Lo_Export_Count", my_dblink_col, lo_exporter FROM t`,
	"SELECT x.lo FROM t x WHERE x.v ~ '^pg_terminate_backend'",
	// a bit string ends at its first quote: the rest is one more string
	"SELECT B'1'\n'0'', pg_terminate_backend(1) --'",
}

func isBlocklistRefusal(err error) bool {
	return err != nil && connectors.KindOf(err) == connectors.KindQuery &&
		strings.Contains(err.Error(), "is not allowed, as it can act outside the read-only transaction")
}

func TestGuardCorpus(t *testing.T) {
	t.Parallel()
	for _, s := range attackCorpus {
		if err := checkReadOnly(s); !isBlocklistRefusal(err) {
			t.Errorf("%q: got %v, want a blocklist refusal", s, err)
		}
	}
	for _, s := range legitReads {
		if err := checkReadOnly(s); err != nil {
			t.Errorf("%q refused: %v", s, err)
		}
	}
}

func TestGuardStatementRules(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"DELETE FROM t":                        "only SELECT, WITH, VALUES, TABLE, SHOW, EXPLAIN statements are allowed, got DELETE",
		"/* SELECT */ DELETE FROM t":           "got DELETE",
		`"SELECT" 1`:                           "got a statement that does not start with a keyword",
		"COPY t TO PROGRAM 'x'":                "got COPY",
		"DO $$ BEGIN END $$":                   "got DO",
		"":                                     "got a statement that does not start with a keyword",
		"SELECT 1; DELETE FROM t":              "multiple commands in one call are not allowed",
		"SELECT 1;;":                           "multiple commands",
		"SELECT 'unterminated":                 "could not be read: unterminated quoted string",
		"SELECT 1 /* open":                     "could not be read: unterminated /* comment",
		`SELECT U&"\006Co_export" UESCAPE 'a'`: "could not be read: invalid Unicode escape character",
		strings.Repeat("x", 100):               "got XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX…",
		`SELECT "dblink` + strings.Repeat("\n", 50) + `"`: "dblink??????????????????????????????????…",
	}
	for sql, want := range cases {
		err := checkReadOnly(sql)
		if connectors.KindOf(err) != connectors.KindQuery || err == nil || !strings.Contains(err.Error(), want) ||
			!strings.HasPrefix(err.Error(), "this connection is read-only") {
			t.Errorf("%q: got %v, want KindQuery containing %q", sql, err, want)
		}
	}
}

// The statement is also read as a server with standard_conforming_strings
// off would read it, where a backslash escapes a quote.
func TestGuardBothStringSettings(t *testing.T) {
	t.Parallel()
	sql := `SELECT 'a\', pg_terminate_backend(1), '\' --'`
	if toks, err := lex(sql, true); err != nil || !strings.Contains(render(toks), "w:pg_terminate_backend") {
		t.Fatalf("setting on: %v %s", err, render(toks))
	}
	hidden := `SELECT 'a\'' , pg_terminate_backend(1) -- '`
	toks, err := lex(hidden, true)
	if err != nil || strings.Contains(render(toks), "w:pg_terminate_backend") {
		t.Fatalf("setting on should read one string: %v %s", err, render(toks))
	}
	if err := checkReadOnly(hidden); !isBlocklistRefusal(err) {
		t.Fatalf("%q: the setting-off reading was not checked: %v", hidden, err)
	}
}

// TestGuardRewrites rewrites every attack many ways (letter case, comments
// and whitespace between tokens, quoting, U& escapes with every escape
// form, schema qualification, other string spellings) and checks that each
// variant is still refused for its function.
func TestGuardRewrites(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewSource(1))
	n := 0
	for _, s := range attackCorpus {
		for range 300 {
			v, err := rewrite(s, rng)
			if err != nil {
				t.Fatalf("%q: %v", s, err)
			}
			n++
			if err := checkReadOnly(v); !isBlocklistRefusal(err) {
				t.Fatalf("variant of %q allowed or refused for another reason: %v\nvariant: %q", s, err, v)
			}
		}
	}
	if n < len(attackCorpus)*300 {
		t.Fatalf("only %d variants", n)
	}
}

// separators may go between two tokens; the first one only where the
// original had nothing between them.
var separators = []string{"", " ", "\n", "\t", "\r\n", "\f", "/**/", "/* c /* nested */ c */", "-- c\n", "--c\r", " \n\t ", "/*\n*/"}

// rewrite returns a random spelling of stmt that means the same to the
// server.
func rewrite(stmt string, rng *rand.Rand) (string, error) {
	toks, err := lex(stmt, true)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for i, t := range toks {
		if i > 0 {
			seps := separators
			if t.pos > toks[i-1].end {
				seps = seps[1:]
			}
			b.WriteString(seps[rng.Intn(len(seps))])
		}
		raw := stmt[t.pos:t.end]
		afterDot := i > 0 && toks[i-1].kind == tokOp && toks[i-1].text == "."
		switch {
		case (t.kind == tokWord || t.kind == tokQuoted) && (isBlocked(t.text) || t.text == "pg_catalog"):
			if !afterDot && t.text != "pg_catalog" && rng.Intn(3) == 0 {
				b.WriteString(spellIdent("pg_catalog", rng))
				b.WriteString(separators[1+rng.Intn(len(separators)-1)] + ".")
			}
			b.WriteString(spellIdent(t.text, rng))
		case t.kind == tokWord:
			b.WriteString(randomCase(raw, rng))
		case t.kind == tokString && t.sconst && raw[0] == '\'':
			b.WriteString(spellString(t.text, rng))
		default:
			b.WriteString(raw)
		}
	}
	return b.String(), nil
}

func randomCase(s string, rng *rand.Rand) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' && rng.Intn(2) == 0 {
			b[i] = c - 'a' + 'A'
		} else if c >= 'A' && c <= 'Z' && rng.Intn(2) == 0 {
			b[i] = c - 'A' + 'a'
		}
	}
	return string(b)
}

// spellIdent spells a lower-case identifier: bare in any case, quoted, or
// U& with random escapes in both forms and a random escape character.
func spellIdent(name string, rng *rand.Rand) string {
	switch rng.Intn(4) {
	case 0:
		return randomCase(name, rng)
	case 1:
		return `"` + name + `"`
	}
	esc := byte('\\')
	clause := ""
	if rng.Intn(2) == 0 {
		esc = "!#%&*:=?@^_~|"[rng.Intn(13)]
		clause = separators[1+rng.Intn(len(separators)-1)] + randomCase("uescape", rng) +
			separators[1+rng.Intn(len(separators)-1)] + "'" + string(esc) + "'"
	}
	var b strings.Builder
	b.WriteString([]string{`U&"`, `u&"`}[rng.Intn(2)])
	for _, r := range name {
		switch {
		case rng.Intn(2) == 0:
			fmt.Fprintf(&b, "%c%04X", esc, r)
		case rng.Intn(2) == 0:
			fmt.Fprintf(&b, "%c+%06x", esc, r)
		case byte(r) == esc:
			b.WriteString(string(esc) + string(esc))
		default:
			b.WriteRune(r)
		}
	}
	return b.String() + `"` + clause
}

// spellString spells a string constant: '…', E'…' with escapes, $tag$…$tag$,
// or split in two segments across a newline.
func spellString(v string, rng *rand.Rand) string {
	switch rng.Intn(4) {
	case 0:
		var b strings.Builder
		b.WriteString("E'")
		for i := 0; i < len(v); i++ {
			switch c := v[i]; {
			case c == '\'' || c == '\\':
				b.WriteString(`\` + string(c))
			case c < utf8.RuneSelf && rng.Intn(3) == 0:
				fmt.Fprintf(&b, `\x%02x`, c)
			case c < utf8.RuneSelf && rng.Intn(3) == 0:
				fmt.Fprintf(&b, `\%03o`, c)
			default:
				b.WriteByte(c)
			}
		}
		return b.String() + "'"
	case 1:
		if !strings.Contains(v, "$t$") {
			return "$t$" + v + "$t$"
		}
	case 2:
		h := len(v) / 2
		return sq(v[:h]) + "\n" + sq(v[h:])
	}
	return sq(v)
}

func sq(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }
