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

// Forget takes a database's Source out of the cache at once, so that the next
// job of it reads its record again, and closes the Source without making its
// caller wait.
func TestPoolsForget(t *testing.T) {
	t.Parallel()
	host, port := testservices.Need(t, testservices.Postgres)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := NewPools(connectors.Options{MaxOpen: 2}, time.Hour, time.Hour, slog.Default())
	rec := &storage.Database{ID: "db_forget", UserID: "alice", DBType: "postgres", UpdatedAt: time.Now()}
	src, err := p.get(ctx, rec, p.generation(), func(ctx context.Context) (connectors.Source, error) {
		return postgres.Driver{}.Open(ctx, connectors.Params{Host: host, Port: port, Database: "test", Username: "postgres"},
			connectors.Options{MaxOpen: 2})
	})
	if err != nil {
		t.Fatal(err)
	}
	if cached, _ := p.cached("alice", "db_forget"); cached != src {
		t.Fatal("the Source just opened is not cached")
	}
	p.Forget("db_forget")
	if cached, _ := p.cached("alice", "db_forget"); cached != nil {
		t.Fatal("the Source is still cached after Forget")
	}
	if n := p.Stats()["postgres"]; n[0] != 0 {
		t.Fatalf("open Sources after Forget: %v", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for src.OpenConns() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the forgotten Source still holds %d connections", src.OpenConns())
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.Forget("db_forget") // twice: nothing left to do
}

// A record read before a database was edited or removed is not cached: get
// answers errStale, whether the change came before it or while it opened the
// Source (which is then closed), and the next job reads the record again.
func TestPoolsRefuseStaleRecords(t *testing.T) {
	t.Parallel()
	host, port := testservices.Need(t, testservices.Postgres)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := NewPools(connectors.Options{MaxOpen: 2}, time.Hour, time.Hour, slog.Default())
	rec := &storage.Database{ID: "db_stale", UserID: "alice", DBType: "postgres", UpdatedAt: time.Now()}
	opened := 0
	var src connectors.Source
	open := func(during func()) func(context.Context) (connectors.Source, error) {
		return func(ctx context.Context) (connectors.Source, error) {
			opened++
			s, err := postgres.Driver{}.Open(ctx, connectors.Params{Host: host, Port: port, Database: "test", Username: "postgres"},
				connectors.Options{MaxOpen: 2})
			src = s
			during()
			return s, err
		}
	}

	gen := p.generation()
	p.Forget("db_stale") // removed after its record was read
	if _, err := p.get(ctx, rec, gen, open(func() {})); !errors.Is(err, errStale) || opened != 0 {
		t.Fatalf("change before get: err %v, %d Sources opened; want errStale and none", err, opened)
	}

	gen = p.generation()
	if _, err := p.get(ctx, rec, gen, open(func() { p.Forget("db_stale") })); !errors.Is(err, errStale) {
		t.Fatalf("change while opening: err %v, want errStale", err)
	}
	if cached, _ := p.cached("alice", "db_stale"); cached != nil {
		t.Fatal("a Source of a stale record was cached")
	}
	deadline := time.Now().Add(5 * time.Second)
	for src.OpenConns() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the Source opened for a stale record still holds %d connections", src.OpenConns())
		}
		time.Sleep(10 * time.Millisecond)
	}

	got, err := p.get(ctx, rec, p.generation(), open(func() {}))
	if err != nil || got == nil {
		t.Fatalf("a fresh read: %v", err)
	}
	if cached, _ := p.cached("alice", "db_stale"); cached != got {
		t.Fatal("a fresh record's Source is not cached")
	}
	p.CloseAll()
}
