package mysql_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/openanalyst/mcp-integration-service/connectors"
	_ "github.com/openanalyst/mcp-integration-service/connectors/mysql"
	"github.com/openanalyst/mcp-integration-service/internal/testservices"
)

func driver(t testing.TB) connectors.Driver {
	t.Helper()
	d, ok := connectors.Lookup("mysql")
	if !ok {
		t.Fatal("mysql driver not registered")
	}
	return d
}

func params(t testing.TB) connectors.Params {
	t.Helper()
	host, port := testservices.Need(t, testservices.MySQL)
	return connectors.Params{Host: host, Port: port, Database: "test", Username: "root"}
}

func opts() connectors.Options {
	return connectors.Options{MaxOpen: 3, IdleTimeout: time.Minute, StatementTimeout: 10 * time.Second, ConnectTimeout: 5 * time.Second}
}

func open(t testing.TB, p connectors.Params, o connectors.Options) connectors.Source {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	src, err := driver(t).Open(ctx, p, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(src.Close)
	return src
}

// admin is a direct connection pool, outside any Source, for setup and checks.
func admin(t testing.TB) *sql.DB {
	t.Helper()
	p := params(t)
	cfg := gomysql.NewConfig()
	cfg.User, cfg.Net, cfg.DBName = p.Username, "tcp", p.Database
	cfg.Addr = net.JoinHostPort(p.Host, strconv.Itoa(p.Port))
	c, err := gomysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func exec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func uniq(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

func run(src connectors.Source, tool string, params any, lim connectors.Limits) (*connectors.Result, error) {
	raw, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return src.Run(ctx, tool, raw, lim)
}

var lim = connectors.Limits{MaxRows: 1000, Timeout: 10 * time.Second}

func query(t testing.TB, src connectors.Source, q string) []map[string]any {
	t.Helper()
	res, err := run(src, "DB_QUERY", map[string]any{"query": q}, lim)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if !res.Rows {
		t.Fatalf("%s: not a row result: %s", q, res.Body)
	}
	var rows []map[string]any
	if err := json.Unmarshal(res.Body, &rows); err != nil {
		t.Fatalf("%s: body is not a row array: %v: %s", q, err, res.Body)
	}
	return rows
}

func kindOf(err error) connectors.Kind {
	var e *connectors.Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// user creates a throwaway account with a password and rights on the test
// database, so a test can count exactly its own connections.
func user(t *testing.T, password string, grants string) connectors.Params {
	t.Helper()
	name := uniq("mcp_t")
	ad := admin(t)
	exec(t, ad, "CREATE USER '"+name+"'@'%' IDENTIFIED BY '"+password+"'")
	exec(t, ad, "GRANT "+grants+" ON test.* TO '"+name+"'@'%'")
	t.Cleanup(func() {
		ad := admin(t)
		rows, err := ad.Query("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?", name)
		if err == nil {
			var ids []int64
			for rows.Next() {
				var id int64
				if rows.Scan(&id) == nil {
					ids = append(ids, id)
				}
			}
			_ = rows.Close()
			for _, id := range ids {
				_, _ = ad.Exec("KILL " + strconv.FormatInt(id, 10))
			}
		}
		exec(t, ad, "DROP USER '"+name+"'@'%'")
	})
	p := params(t)
	p.Username, p.Password = name, password
	return p
}

func connections(t *testing.T, user string) int {
	t.Helper()
	var n int
	if err := admin(t).QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?", user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
