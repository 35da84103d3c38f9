package mysql

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/internal/testservices"
)

// TestEngineGuard runs statements through the engine path alone, with the
// keyword allowlist bypassed. The READ ONLY transaction stops DML by itself;
// DDL commits implicitly and escapes it, which is why CheckReadOnly refuses
// everything but reads on MySQL.
func TestEngineGuard(t *testing.T) {
	t.Parallel()
	host, port := testservices.Need(t, testservices.MySQL)
	p := connectors.Params{Host: host, Port: port, Database: "test", Username: "root"}
	cfg := gomysql.NewConfig()
	cfg.User, cfg.Net, cfg.DBName, cfg.Addr = "root", "tcp", "test", net.JoinHostPort(host, strconv.Itoa(port))
	c, err := gomysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ad := sql.OpenDB(c)
	t.Cleanup(func() { _ = ad.Close() })
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	tbl := "eng_" + hex.EncodeToString(b)
	for _, q := range []string{"CREATE TABLE " + tbl + " (v INT) ENGINE=InnoDB", "INSERT INTO " + tbl + " VALUES (1), (2), (3)"} {
		if _, err := ad.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _, _ = ad.Exec("DROP TABLE IF EXISTS " + tbl) })

	src, err := Driver{}.Open(context.Background(), p, connectors.Options{MaxOpen: 1, StatementTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	s := src.(*Source)
	engine := func(q string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return s.withConn(ctx, true, func(conn *sql.Conn) (bool, error) {
			_, bad, err := s.runStatement(ctx, conn, q, 10)
			return bad, err
		})
	}
	for _, q := range []string{
		"INSERT INTO " + tbl + " VALUES (4)",
		"UPDATE " + tbl + " SET v = 0",
		"DELETE FROM " + tbl,
		"REPLACE INTO " + tbl + " VALUES (9)",
		"COMMIT; DELETE FROM " + tbl,
	} {
		err := engine(q)
		if err == nil || connectors.KindOf(err) != connectors.KindQuery {
			t.Errorf("%s: got %v, want a KindQuery refusal", q, err)
		}
		var n, sum int
		if err := ad.QueryRow("SELECT COUNT(*), SUM(v) FROM "+tbl).Scan(&n, &sum); err != nil || n != 3 || sum != 6 {
			t.Fatalf("%s: wrote: %d rows, sum %d, %v", q, n, sum, err)
		}
	}
	err = engine("DELETE FROM " + tbl)
	if err == nil || !strings.Contains(err.Error(), "Error 1792") || !strings.Contains(err.Error(), "READ ONLY transaction") {
		t.Fatalf("DELETE: %v", err)
	}
	// DDL is not stopped by the transaction on MariaDB 10.11 and MySQL 8: it
	// commits implicitly. This is shown, not required.
	if err := engine("CREATE TABLE " + tbl + "_ddl (a INT)"); err != nil {
		t.Logf("DDL in a READ ONLY transaction was refused by this server: %v", err)
	} else if _, err := ad.Exec("DROP TABLE " + tbl + "_ddl"); err == nil {
		t.Logf("DDL escaped the READ ONLY transaction, as expected: the allowlist is what stops it")
	}
}
