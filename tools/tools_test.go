package tools

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	_ "github.com/openanalyst/mcp-integration-service/connectors/postgres" // registers the postgres driver
	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/storage"
)

// bundle is a tools service on an embedded NATS and FerretDB.
type bundle struct {
	svc   *Service
	store *storage.Mongo
	nc    *nats.Conn
}

func setup(t *testing.T) *bundle {
	t.Helper()
	ns, err := embedded.StartNATS(t.TempDir(), -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	f, err := embedded.StartFerret(context.Background(), t.TempDir(), -1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := storage.Open(ctx, f.URI(), "tools_test")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns.Server()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	svc, err := New(Config{Store: store, NC: nc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return &bundle{svc: svc, store: store, nc: nc}
}

func (b *bundle) put(t *testing.T, id, user string, writes bool) {
	t.Helper()
	ctx := context.Background()
	_ = b.store.DeleteDatabase(ctx, user, id)
	if err := b.store.InsertDatabase(ctx, &storage.Database{ID: id, UserID: user, DBType: "postgres", Name: "n " + id,
		Host: "127.0.0.1", Port: 5432, AllowWrites: writes}); err != nil {
		t.Fatal(err)
	}
}

// The class follows the database's allow_writes, from a cache that a change
// event clears at once; app tools and unknown databases are routed safely.
func TestClassOf(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.put(t, "db_w", "alice", true)
	b.put(t, "db_r", "alice", false)
	for _, c := range []struct {
		action, user string
		want         messages.Class
	}{
		{"DB_QUERY_db_w", "alice", messages.Durable},
		{"DB_QUERY_db_r", "alice", messages.Fast},
		{"DB_QUERY_db_r", "mallory", messages.Fast}, // not hers: the worker answers 404
		{"DB_QUERY_db_missing", "alice", messages.Fast},
		{"GMAIL_SEND_EMAIL", "alice", messages.Durable},
	} {
		if got := b.svc.classOf(ctx, Request{UserID: c.user, Action: c.action}); got != c.want {
			t.Errorf("%s for %s: %s, want %s", c.action, c.user, got, c.want)
		}
	}
	// An edit that allows writes: the cached "read-only" is dropped by the
	// change event, before the cache would expire.
	b.put(t, "db_r", "alice", true)
	if err := b.nc.Publish(messages.EventDatabaseChanged, []byte("db_r")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.svc.classOf(ctx, Request{UserID: "alice", Action: "DB_QUERY_db_r"}) != messages.Durable {
		if time.Now().After(deadline) {
			t.Fatal("the change event did not reroute writes to the durable class")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// List gives every tool of every saved database, or only those the filter
// keeps; another user's databases never appear.
func TestListFilter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.put(t, "db_a", "bob", false)
	b.put(t, "db_b", "bob", false)
	b.put(t, "db_c", "carol", false)
	all, err := b.svc.List(ctx, "bob", Filter{})
	if err != nil || len(all) != 6 {
		t.Fatalf("all: %d tools, %v", len(all), err)
	}
	one, _ := b.svc.List(ctx, "bob", Filter{DBID: "db_b"})
	if len(one) != 3 {
		t.Fatalf("db_id filter: %+v", one)
	}
	for _, tl := range one {
		if tl.Provider != "postgres" || tl.Name[len(tl.Name)-4:] != "db_b" {
			t.Fatalf("db_id filter kept %s", tl.Name)
		}
	}
	if none, _ := b.svc.List(ctx, "bob", Filter{Providers: []string{"mysql"}}); len(none) != 0 {
		t.Fatalf("provider filter: %+v", none)
	}
	if pg, _ := b.svc.List(ctx, "bob", Filter{Providers: []string{"gmail", "postgres"}}); len(pg) != 6 {
		t.Fatalf("provider filter with two providers: %d", len(pg))
	}
	if other, _ := b.svc.List(ctx, "carol", Filter{DBID: "db_a"}); len(other) != 0 {
		t.Fatalf("another user's database listed: %+v", other)
	}
}
