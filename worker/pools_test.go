package worker

import (
	"context"
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
	src, err := p.get(ctx, rec, func(ctx context.Context) (connectors.Source, error) {
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
