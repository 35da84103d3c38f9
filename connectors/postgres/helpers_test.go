package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openanalyst/mcp-integration-service/connectors"
	_ "github.com/openanalyst/mcp-integration-service/connectors/postgres"
	"github.com/openanalyst/mcp-integration-service/internal/testservices"
)

func driver(t testing.TB) connectors.Driver {
	t.Helper()
	d, ok := connectors.Lookup("postgres")
	if !ok {
		t.Fatal("postgres driver not registered")
	}
	return d
}

func params(t testing.TB) connectors.Params {
	t.Helper()
	host, port := testservices.Need(t, testservices.Postgres)
	return connectors.Params{Host: host, Port: port, Database: "test", Username: "postgres"}
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

// admin is a direct connection, outside any Source, for setup and checks.
func admin(t testing.TB) *pgx.Conn {
	t.Helper()
	p := params(t)
	cfg, err := pgx.ParseConfig("sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host, cfg.Port, cfg.Database, cfg.User = p.Host, uint16(p.Port), p.Database, p.Username
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("admin connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func exec(t testing.TB, c *pgx.Conn, sql string) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
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

func query(t testing.TB, src connectors.Source, sql string) []map[string]any {
	t.Helper()
	res, err := run(src, "DB_QUERY", map[string]any{"query": sql}, lim)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if !res.Rows {
		t.Fatalf("%s: not a row result: %s", sql, res.Body)
	}
	var rows []map[string]any
	if err := json.Unmarshal(res.Body, &rows); err != nil {
		t.Fatalf("%s: body is not a row array: %v: %s", sql, err, res.Body)
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
