package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/openanalyst/mcp-integration-service/internal/testservices"
	"github.com/openanalyst/mcp-integration-service/service"
	"github.com/openanalyst/mcp-integration-service/service/servicetest"
)

// shared is one service for the tests that only need isolation by user id.
var shared *servicetest.Bundle

func TestMain(m *testing.M) {
	b, err := servicetest.Start(nil, service.ModeServe, nil, service.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start service:", err)
		os.Exit(1)
	}
	shared = b
	code := m.Run()
	b.Close()
	os.Exit(code)
}

// pgAdmin is a direct connection for setting up and checking tables.
func pgAdmin(t *testing.T) *pgx.Conn {
	t.Helper()
	host, port := testservices.Need(t, testservices.Postgres)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d dbname=test user=postgres sslmode=disable", host, port))
	if err != nil {
		t.Fatalf("postgres admin connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func pgExec(t *testing.T, c *pgx.Conn, q string) {
	t.Helper()
	if _, err := c.Exec(context.Background(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func myAdmin(t *testing.T) *sql.DB {
	t.Helper()
	host, port := testservices.Need(t, testservices.MySQL)
	db, err := sql.Open("mysql", fmt.Sprintf("root@tcp(%s:%d)/test", host, port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func table(prefix string) string {
	return prefix + "_" + strings.ReplaceAll(fmt.Sprint(time.Now().UnixNano()), "-", "")
}

// pgConnectBody is a connect request for the local PostgreSQL.
func pgConnectBody(t *testing.T, user, password string) map[string]any {
	host, port := testservices.Need(t, testservices.Postgres)
	return map[string]any{"user_id": user, "db_type": "postgres", "name": "My Analytics DB", "host": host,
		"port": port, "database": "test", "username": "postgres", "password": password, "ssl": false}
}
