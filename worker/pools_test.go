package worker

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/connectors/postgres"
	"github.com/openanalyst/mcp-integration-service/internal/testservices"
	"github.com/openanalyst/mcp-integration-service/storage"
)

// poolsOnPostgres is an empty Pools, a record of alice's for dbID, and a
// function that opens a Source on the machine's PostgreSQL.
func poolsOnPostgres(t *testing.T, dbID string) (*Pools, *storage.Database, func(context.Context) (connectors.Source, error)) {
	t.Helper()
	host, port := testservices.Need(t, testservices.Postgres)
	p := NewPools(connectors.Options{MaxOpen: 2}, time.Hour, time.Hour, slog.Default())
	rec := &storage.Database{ID: dbID, UserID: "alice", DBType: "postgres", UpdatedAt: time.Now()}
	return p, rec, func(ctx context.Context) (connectors.Source, error) {
		return postgres.Driver{}.Open(ctx, connectors.Params{Host: host, Port: port, Database: "test", Username: "postgres"},
			connectors.Options{MaxOpen: 2})
	}
}

// waitClosed waits until src holds no connection.
func waitClosed(t *testing.T, src connectors.Source) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for src.OpenConns() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the dropped Source still holds %d connections", src.OpenConns())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Close takes a database's Source out of the cache at once, so that the next
// job of it reads its record again, and closes the Source without making its
// caller wait.
func TestPoolsClose(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, rec, open := poolsOnPostgres(t, "db_close")
	src, err := p.get(ctx, rec, p.generation(), open)
	if err != nil {
		t.Fatal(err)
	}
	if cached, _ := p.cached("alice", "db_close"); cached != src {
		t.Fatal("the Source just opened is not cached")
	}
	p.Close("db_close")
	if cached, _ := p.cached("alice", "db_close"); cached != nil {
		t.Fatal("the Source is still cached after Close")
	}
	if n := p.Stats()["postgres"]; n[0] != 0 {
		t.Fatalf("open Sources after Close: %v", n)
	}
	waitClosed(t, src)
	p.Close("db_close") // twice: nothing left to do
}

// A record read before a database was edited or removed is not cached: get
// answers errStale, whether the change came before it or while it opened the
// Source (which is then closed), and the next job reads the record again.
func TestPoolsRefuseStaleRecords(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, rec, openPG := poolsOnPostgres(t, "db_stale")
	opened := 0
	var src connectors.Source
	open := func(during func()) func(context.Context) (connectors.Source, error) {
		return func(ctx context.Context) (connectors.Source, error) {
			opened++
			s, err := openPG(ctx)
			src = s
			during()
			return s, err
		}
	}

	gen := p.generation()
	p.Close("db_stale") // removed after its record was read
	if _, err := p.get(ctx, rec, gen, open(func() {})); !errors.Is(err, errStale) || opened != 0 {
		t.Fatalf("change before get: err %v, %d Sources opened; want errStale and none", err, opened)
	}

	gen = p.generation()
	if _, err := p.get(ctx, rec, gen, open(func() { p.Close("db_stale") })); !errors.Is(err, errStale) {
		t.Fatalf("change while opening: err %v, want errStale", err)
	}
	if cached, _ := p.cached("alice", "db_stale"); cached != nil {
		t.Fatal("a Source of a stale record was cached")
	}
	waitClosed(t, src)

	got, err := p.get(ctx, rec, p.generation(), open(func() {}))
	if err != nil || got == nil {
		t.Fatalf("a fresh read: %v", err)
	}
	if cached, _ := p.cached("alice", "db_stale"); cached != got {
		t.Fatal("a fresh record's Source is not cached")
	}
	p.CloseAll()
}
