package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/storage"
)

// An edit replaces the user's record only; another user's id is ErrNotFound
// and changes nothing.
func TestUpdateDatabase(t *testing.T) {
	t.Parallel()
	m := open(t)
	ctx := context.Background()
	created := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	d := &storage.Database{ID: "db_e", UserID: "alice", DBType: "postgres", Name: "Old", Host: "a.example",
		Port: 5432, Password: "tok1", Status: storage.StatusConnected, CreatedAt: created, UpdatedAt: created}
	if err := m.InsertDatabase(ctx, d); err != nil {
		t.Fatal(err)
	}
	edited := *d
	edited.Name, edited.Host, edited.Password, edited.UpdatedAt = "New", "b.example", "", time.Now().UTC().Truncate(time.Millisecond)
	stranger := edited
	stranger.UserID = "bob"
	if err := m.UpdateDatabase(ctx, &stranger); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("bob edits alice's database: %v", err)
	}
	if got, _ := m.GetDatabase(ctx, "alice", "db_e"); got == nil || got.Name != "Old" {
		t.Fatalf("a refused edit changed the record: %+v", got)
	}
	if err := m.UpdateDatabase(ctx, &edited); err != nil {
		t.Fatal(err)
	}
	got, err := m.GetDatabase(ctx, "alice", "db_e")
	if err != nil || got.Name != "New" || got.Host != "b.example" || got.Password != "" || !got.CreatedAt.Equal(created) ||
		!got.UpdatedAt.Equal(edited.UpdatedAt) {
		t.Fatalf("after the edit: %+v %v", got, err)
	}
	missing := edited
	missing.ID = "db_missing"
	if err := m.UpdateDatabase(ctx, &missing); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("edit of a missing record: %v", err)
	}
}

// A check records status, time and error; a success clears the error; a
// check that started before the last edit, or of another user, is dropped.
func TestRecordCheck(t *testing.T) {
	t.Parallel()
	m := open(t)
	ctx := context.Background()
	edited := time.Now().UTC().Truncate(time.Millisecond)
	d := &storage.Database{ID: "db_c", UserID: "alice", DBType: "postgres", Name: "C", Status: storage.StatusConnected,
		CreatedAt: edited, UpdatedAt: edited}
	if err := m.InsertDatabase(ctx, d); err != nil {
		t.Fatal(err)
	}
	failedAt := edited.Add(time.Second)
	if err := m.RecordCheck(ctx, "alice", "db_c", false, "Connection failed: refused", failedAt); err != nil {
		t.Fatal(err)
	}
	got, _ := m.GetDatabase(ctx, "alice", "db_c")
	if got.Status != storage.StatusError || got.LastError != "Connection failed: refused" || got.LastCheckedAt == nil ||
		!got.LastCheckedAt.Equal(failedAt) || !got.UpdatedAt.Equal(edited) {
		t.Fatalf("after a failed check: %+v", got)
	}
	if err := m.RecordCheck(ctx, "bob", "db_c", true, "", failedAt.Add(time.Second)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("bob records a check on alice's database: %v", err)
	}
	if err := m.RecordCheck(ctx, "alice", "db_c", true, "", edited.Add(-time.Second)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a check older than the last edit was recorded: %v", err)
	}
	okAt := edited.Add(2 * time.Second)
	if err := m.RecordCheck(ctx, "alice", "db_c", true, "", okAt); err != nil {
		t.Fatal(err)
	}
	got, _ = m.GetDatabase(ctx, "alice", "db_c")
	if got.Status != storage.StatusConnected || got.LastError != "" || !got.LastCheckedAt.Equal(okAt) {
		t.Fatalf("after a good check: %+v", got)
	}
}
