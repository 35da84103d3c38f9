package postgres

import (
	"context"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// TestLexerAgreesWithServer asks the server what it makes of identifier
// and string spellings (the rewrites' own and hand-written ones) and
// compares with the lexer: the column alias shows the decoded identifier,
// the value the decoded string.
func TestLexerAgreesWithServer(t *testing.T) {
	t.Parallel()
	ad, _ := internalAdmin(t)
	ctx := context.Background()
	rng := rand.New(rand.NewSource(2))
	var idents, strs []string
	for range 200 {
		idents = append(idents, spellIdent("pg_terminate_backend", rng))
		if odd := spellIdent("x_Y!#%&*:=?@^_~|", rng); odd[0] == '"' || odd[1] == '&' { // not bare: no valid bare spelling
			idents = append(idents, odd)
		}
		strs = append(strs, spellString("it's a \\ string ☃", rng))
	}
	idents = append(idents, `U&"d\0061t\+000061"`, `U&"\D83D\DE00"`, `"a""b"`, `U&"a""\0062"`, `U&"!!a" UESCAPE '!'`,
		`U&"#0070g" UESCAPE E'\x23'`, `U&"#0070g" UESCAPE $$#$$`, "U&\"!0070g\" /* c */ uescape -- c\n '!'",
		strings.Repeat("Ab", 40), `"`+strings.Repeat("é", 40)+`"`)
	strs = append(strs, "'a'\n'b'", "'a' -- c\n 'b'", "E'a'\n'\\''", "'a'\r'b\\'", `E'\x41\101\u0042\n\q'`,
		`$a$x$ba$a$`, `U&'d!0061ta' UESCAPE '!'`, `N'x''y'`, `E'\U0001F600'`)
	for _, id := range idents {
		toks, err := lex("SELECT 1 AS "+id, true)
		if err != nil || len(toks) != 4 {
			t.Fatalf("%s: %v %s", id, err, render(toks))
		}
		rows, err := ad.Query(ctx, "SELECT 1 AS "+id, pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		name := rows.FieldDescriptions()[0].Name
		rows.Close()
		if name != toks[3].text {
			t.Errorf("%s: server %q, lexer %q", id, name, toks[3].text)
		}
	}
	for _, s := range strs {
		toks, err := lex("SELECT "+s, true)
		if err != nil || len(toks) != 2 {
			t.Fatalf("%s: %v %s", s, err, render(toks))
		}
		var got string
		if err := ad.QueryRow(ctx, "SELECT "+s+"::text", pgx.QueryExecModeSimpleProtocol).Scan(&got); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if got != toks[1].text {
			t.Errorf("%s: server %q, lexer %q", s, got, toks[1].text)
		}
	}
}

// TestRewritesAreRealAttacks prepares (never runs) rewrites of attacks on
// functions this server has: each one parses and resolves the function, so
// the variants the guard refuses in TestGuardRewrites are real SQL.
func TestRewritesAreRealAttacks(t *testing.T) {
	t.Parallel()
	ad, _ := internalAdmin(t)
	ctx := context.Background()
	attacks := []string{
		`SELECT lo_export(16384, '/tmp/x')`,
		`SELECT U&"\006Co_export"(16384, '/tmp/x')`,
		`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app'`,
		`SELECT U&"!0070g_terminate_backend" UESCAPE '!' (1)`,
		`SELECT "pg_catalog"."lo_export"(1, '/tmp/x')`,
		`SELECT E'\'', pg_terminate_backend(1) -- '`,
		"SELECT E'a'\n'\\'', pg_terminate_backend(1) --'",
		"SELECT 1 --x\r, pg_terminate_backend(1)",
		"SELECT 1 /* a /* b */ */ , pg_terminate_backend(1)",
		`SELECT 'a\', pg_terminate_backend(1) --'`,
		`SELECT set_config('search_path', 'evil', true)`,
		`SELECT pg_read_file('/etc/passwd')`,
		`SELECT query_to_xml('COPY (SELECT 1) TO PROGRAM ''touch /tmp/x''', true, false, '')`,
		`SELECT ts_stat('SELECT 1')`,
		`SELECT pg_advisory_lock(1), pg_notify('c', 'x')`,
	}
	rng := rand.New(rand.NewSource(3))
	for _, a := range attacks {
		for i := range 60 {
			v := a
			if i > 0 {
				var err error
				if v, err = rewrite(a, rng); err != nil {
					t.Fatal(err)
				}
			}
			if err := checkReadOnly(v); !isBlocklistRefusal(err) {
				t.Fatalf("%q: guard: %v", v, err)
			}
			if _, err := ad.Exec(ctx, "PREPARE mcp_guard_check AS "+v, pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatalf("the server does not take the variant %q: %v", v, err)
			}
			if _, err := ad.Exec(ctx, "DEALLOCATE mcp_guard_check", pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// The read-only transaction alone does not stop pg_terminate_backend: run
// through the engine with the guard bypassed, it ends a sentinel session;
// through the Source, the guard refuses it and the sentinel lives.
func TestTerminateBackendNeedsTheGuard(t *testing.T) {
	t.Parallel()
	_, p := internalAdmin(t)
	ctx := context.Background()
	d := Driver{}
	src, err := d.Open(ctx, p, connectors.Options{MaxOpen: 1, StatementTimeout: 5 * time.Second, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	s := src.(*Source)
	sentinel := func() (*pgx.Conn, string) {
		c, _ := internalAdmin(t)
		var pid string
		if err := c.QueryRow(ctx, "SELECT pg_backend_pid()::text").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		return c, pid
	}
	alive := func(c *pgx.Conn) bool {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := c.Exec(cctx, "SELECT 1")
		return err == nil
	}

	guarded, pid := sentinel()
	for _, sql := range []string{
		"SELECT pg_terminate_backend(" + pid + ")",
		`SELECT U&"\0070g_terminate_backend"(` + pid + ")",
		`SELECT U&"!0070g_terminate_backend" UESCAPE '!' (` + pid + ")",
		`SELECT "pg_catalog" . /**/ PG_TERMINATE_BACKEND(` + pid + ")",
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = " + pid,
	} {
		_, err := src.Run(ctx, "DB_QUERY", []byte(`{"query": `+jsonString(sql)+`}`), connectors.Limits{MaxRows: 10, Timeout: 5 * time.Second})
		if !isBlocklistRefusal(err) {
			t.Fatalf("%q: %v", sql, err)
		}
	}
	if !alive(guarded) {
		t.Fatal("the guarded sentinel was terminated")
	}

	// Control: the same statement without the guard, inside READ ONLY.
	bare, pid2 := sentinel()
	_, err = s.query(ctx, `SELECT U&"\0070g_terminate_backend"(`+pid2+")", 10) // the read path, without the guard
	if err != nil {
		t.Fatalf("control: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(bare) {
		if time.Now().After(deadline) {
			t.Fatal("control: the sentinel survived; this test no longer shows the guard is needed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteString(`\` + string(r))
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&15])
		default:
			b.WriteRune(r)
		}
	}
	return b.String() + `"`
}
