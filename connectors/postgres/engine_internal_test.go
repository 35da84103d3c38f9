package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/internal/testservices"
)

func internalAdmin(t *testing.T) (*pgx.Conn, connectors.Params) {
	t.Helper()
	host, port := testservices.Need(t, testservices.Postgres)
	p := connectors.Params{Host: host, Port: port, Database: "test", Username: "postgres"}
	cfg, err := pgx.ParseConfig("sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host, cfg.Port, cfg.Database, cfg.User = host, uint16(port), p.Database, p.Username
	c, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c, p
}

// TestSetLocalTakesNoSnapshot shows why a read-only call starts with a
// SELECT: after only SET LOCAL, PostgreSQL still lets SET TRANSACTION READ
// WRITE turn the read-only transaction into a writing one.
func TestSetLocalTakesNoSnapshot(t *testing.T) {
	t.Parallel()
	c, _ := internalAdmin(t)
	ctx := context.Background()
	for _, s := range []string{"BEGIN READ ONLY", "SET LOCAL statement_timeout = 1000", "SET TRANSACTION READ WRITE"} {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	var ro string
	if err := c.QueryRow(ctx, "SHOW transaction_read_only").Scan(&ro); err != nil || ro != "off" {
		t.Fatalf("transaction_read_only = %q %v; PostgreSQL no longer behaves as this guard assumes", ro, err)
	}
	if _, err := c.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
}

// TestEngineGuard runs write attempts through the engine path alone, with
// the keyword allowlist bypassed, to prove the read-only transaction and the
// one-statement protocol stop them by themselves.
func TestEngineGuard(t *testing.T) {
	t.Parallel()
	ad, p := internalAdmin(t)
	ctx := context.Background()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	tbl := "eng_" + hex.EncodeToString(b)
	for _, s := range []string{
		"CREATE TABLE " + tbl + " (v int)", "INSERT INTO " + tbl + " VALUES (1), (2), (3)",
		"CREATE SEQUENCE " + tbl + "_seq",
		"CREATE PROCEDURE " + tbl + "_p() LANGUAGE sql AS $$ INSERT INTO " + tbl + " VALUES (9) $$",
	} {
		if _, err := ad.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		c, _ := internalAdmin(t)
		_, _ = c.Exec(context.Background(), "DROP PROCEDURE "+tbl+"_p; DROP SEQUENCE "+tbl+"_seq; DROP TABLE IF EXISTS "+tbl+"; DROP TABLE IF EXISTS "+tbl+"_x")
	})
	d := Driver{}
	src, err := d.Open(ctx, p, connectors.Options{MaxOpen: 1, StatementTimeout: 5 * time.Second, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	s := src.(*Source)
	engine := func(sql string) error {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := s.query(cctx, sql, 10)
		return err
	}
	attempts := [][]string{
		{"INSERT INTO " + tbl + " VALUES (4)"},
		{"UPDATE " + tbl + " SET v = 0"},
		{"DELETE FROM " + tbl},
		{"DROP TABLE " + tbl},
		{"CREATE TABLE " + tbl + "_x (a int)"},
		{"CREATE TEMP TABLE " + tbl + "_x (a int)"},
		{"TRUNCATE " + tbl},
		{"COMMIT; DROP TABLE " + tbl},
		{"SET TRANSACTION READ WRITE; INSERT INTO " + tbl + " VALUES (5)"},
		{"SET TRANSACTION READ WRITE", "INSERT INTO " + tbl + " VALUES (5)"},
		{"SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "INSERT INTO " + tbl + " VALUES (5)"},
		{"BEGIN; INSERT INTO " + tbl + " VALUES (6)"},
		{"BEGIN", "INSERT INTO " + tbl + " VALUES (6)"},
		{"COMMIT", "DELETE FROM " + tbl},
		{"ROLLBACK", "DELETE FROM " + tbl},
		{"SELECT nextval('" + tbl + "_seq')"},
		{"DO $$ BEGIN INSERT INTO " + tbl + " VALUES (7); END $$"},
		{"WITH d AS (DELETE FROM " + tbl + " RETURNING *) SELECT * FROM d"},
		{"GRANT SELECT ON " + tbl + " TO PUBLIC"},
		{"CALL " + tbl + "_p()"},
		{"VACUUM " + tbl},
	}
	for _, calls := range attempts {
		var last error
		for _, sql := range calls {
			last = engine(sql)
		}
		name := strings.Join(calls, " | ")
		if last == nil {
			t.Errorf("%s: the last statement succeeded", name)
		} else if connectors.KindOf(last) != connectors.KindQuery {
			t.Errorf("%s: %v is not KindQuery", name, last)
		}
		var n, sum, seqCalled int
		if err := ad.QueryRow(ctx, "SELECT count(*), sum(v), (SELECT last_value FROM "+tbl+"_seq) FROM "+tbl).Scan(&n, &sum, &seqCalled); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var extra int
		_ = ad.QueryRow(ctx, "SELECT count(*) FROM pg_class WHERE relname = $1", tbl+"_x").Scan(&extra)
		if n != 3 || sum != 6 || extra != 0 {
			t.Fatalf("%s: wrote: %d rows, sum %d, extra tables %d", name, n, sum, extra)
		}
		var called bool
		if err := ad.QueryRow(ctx, "SELECT is_called FROM "+tbl+"_seq").Scan(&called); err != nil || called {
			t.Fatalf("%s: sequence advanced", name)
		}
	}
	// SET TRANSACTION READ WRITE fails outright, because the transaction
	// already took its snapshot.
	err = engine("SET TRANSACTION READ WRITE")
	if err == nil || !strings.Contains(err.Error(), "must be set before any query") {
		t.Fatalf("SET TRANSACTION READ WRITE: %v", err)
	}
	err = engine("DROP TABLE " + tbl)
	if err == nil || err.Error() != "ERROR: cannot execute DROP TABLE in a read-only transaction (SQLSTATE 25006)" {
		t.Fatalf("DROP TABLE: %v", err)
	}
}
