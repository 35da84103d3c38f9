package storage_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/keyring"
	"github.com/openanalyst/mcp-integration-service/storage"
)

// The storage code runs against the embedded FerretDB, so nothing that only
// real MongoDB supports creeps in.
var uri string

func TestMain(m *testing.M) {
	dir, _ := os.MkdirTemp("", "storage-test-")
	f, err := embedded.StartFerret(context.Background(), dir, 0, nil)
	if err != nil {
		panic(err)
	}
	uri = f.URI()
	code := m.Run()
	_ = f.Close()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func open(t *testing.T) *storage.Mongo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := storage.Open(ctx, uri, "st_"+t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.RawDB().Drop(context.Background()); _ = m.Close(context.Background()) })
	return m
}

func TestDatabasesAreScopedByUser(t *testing.T) {
	t.Parallel()
	m := open(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	d := &storage.Database{ID: "db_1", UserID: "alice", DBType: "postgres", Name: "A", Password: "tok", Status: "connected", CreatedAt: now, UpdatedAt: now}
	if err := m.InsertDatabase(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := m.GetDatabase(ctx, "bob", "db_1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("bob reads alice's database: %v", err)
	}
	if err := m.DeleteDatabase(ctx, "bob", "db_1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("bob deletes alice's database: %v", err)
	}
	if l, _ := m.ListDatabases(ctx, "bob"); len(l) != 0 {
		t.Fatalf("bob lists %d", len(l))
	}
	got, err := m.GetDatabase(ctx, "alice", "db_1")
	if err != nil || got.Name != "A" || !got.CreatedAt.Equal(now) {
		t.Fatalf("alice: %+v %v", got, err)
	}
	if err := m.DeleteDatabase(ctx, "alice", "db_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.GetDatabase(ctx, "alice", "db_1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleted database still there: %v", err)
	}
}

func TestAuditorAfterCloseDoesNotPanic(t *testing.T) {
	t.Parallel()
	m := open(t)
	a, err := m.NewAuditor(context.Background(), storage.Retention{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	a.Record(storage.AuditEntry{UserID: "u", Action: "tool.execute", Target: "DB_QUERY_db_1", Outcome: "ok", Status: 200})
	a.Close()
	a.Record(storage.AuditEntry{UserID: "u", Action: "late"}) // a request that outlived the shutdown
	entries, err := m.AuditLog(context.Background(), "u", 10)
	if err != nil || len(entries) != 1 || entries[0].Action != "tool.execute" {
		t.Fatalf("audit log after close: %+v %v", entries, err)
	}
}

func TestRotateCredentials(t *testing.T) {
	t.Parallel()
	m := open(t)
	ctx := context.Background()
	oldKey, _ := keyring.Generate()
	newKey, _ := keyring.Generate()
	oldRing, _ := keyring.Parse(oldKey)
	tok, _ := oldRing.Seal([]byte("pw"))
	if err := m.InsertDatabase(ctx, &storage.Database{ID: "db_r", UserID: "u", DBType: "postgres", Password: tok}); err != nil {
		t.Fatal(err)
	}
	ring, _ := keyring.Parse(newKey + "," + oldKey)
	res, err := m.RotateCredentials(ctx, ring, nil)
	if err != nil || res.Rotated != 1 || res.Failed != 0 {
		t.Fatalf("first run: %+v %v", res, err)
	}
	res, err = m.RotateCredentials(ctx, ring, nil)
	if err != nil || res.Rotated != 0 || res.Current != 1 {
		t.Fatalf("second run is not a no-op: %+v %v", res, err)
	}
	var raw bson.M
	_ = m.RawDB().Collection(storage.CollDatabases).FindOne(ctx, bson.M{"_id": "db_r"}).Decode(&raw)
	tok = raw["password"].(string)
	rec := &storage.Database{ID: "db_r", UserID: "u"}
	if !ring.IsCurrent(storage.CredentialBinding(rec, storage.FieldPassword), tok) {
		t.Fatal("not re-encrypted with the first key, bound to its record")
	}
	// The rotated token opens for its own record only: copied to another
	// record, or with the record moved to another user, it does not.
	if pw, err := ring.OpenBound(storage.CredentialBinding(rec, storage.FieldPassword), tok); err != nil || string(pw) != "pw" {
		t.Fatalf("own record: %q %v", pw, err)
	}
	for _, other := range []*storage.Database{{ID: "db_other", UserID: "u"}, {ID: "db_r", UserID: "attacker"}} {
		if _, err := ring.OpenBound(storage.CredentialBinding(other, storage.FieldPassword), tok); !errors.Is(err, keyring.ErrBinding) {
			t.Fatalf("token opened for %+v: %v", other, err)
		}
	}
}

// A server that is gone is ErrUnavailable (503), within the operation
// timeout; a decode problem is not.
func TestUnavailableIsClassified(t *testing.T) {
	t.Parallel()
	f, err := embedded.StartFerret(context.Background(), t.TempDir(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m, err := storage.Open(ctx, f.URI(), "gone")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	m.Timeout = 2 * time.Second
	_ = f.Close()
	start := time.Now()
	if _, err := m.ListDatabases(ctx, "u"); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("want ErrUnavailable, got %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("took %s", took)
	}
}

// The service enforces the audit log's retention itself, by count and by
// age, whatever the backend (FerretDB ignores capped collections).
func TestAuditRetention(t *testing.T) {
	t.Parallel()
	m := open(t)
	ctx := context.Background()
	a, err := m.NewAuditor(ctx, storage.Retention{MaxEntries: 50, MaxAge: time.Hour, Every: time.Hour},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	user := "retention-" + t.Name()
	base := time.Now().UTC().Add(-30 * time.Minute).Truncate(time.Millisecond)
	for i := range 120 {
		a.Record(storage.AuditEntry{UserID: user, Action: "tool.execute", Target: "t", Outcome: "ok", At: base.Add(time.Duration(i) * time.Second)})
	}
	a.Record(storage.AuditEntry{UserID: user, Action: "ancient", At: time.Now().Add(-2 * time.Hour)})
	a.Close() // writes everything queued: none is lost on a clean shutdown
	all, err := m.AuditLog(ctx, user, 1000)
	if err != nil || len(all) != 121 {
		t.Fatalf("before pruning: %d entries, %v", len(all), err)
	}
	n, err := a.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kept, _ := m.AuditLog(ctx, user, 1000)
	if len(kept) != 50 || n != 71 || !kept[0].At.Equal(base.Add(119*time.Second)) || !kept[49].At.Equal(base.Add(70*time.Second)) {
		t.Fatalf("pruned %d, kept %d (newest %v, oldest %v)", n, len(kept), kept[0].At, kept[len(kept)-1].At)
	}
	for _, e := range kept {
		if e.Action == "ancient" {
			t.Fatal("an entry past MaxAge survived")
		}
	}
}
