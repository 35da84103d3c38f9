package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/storage"
)

func putIntegration(t *testing.T, s storage.IntegrationStore, id, user, status, nonce string) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	err := s.Put(context.Background(), &storage.Integration{ID: id, UserID: user, Provider: "gmail", Status: status,
		ComposioEntityID: "user_" + user, ComposioConnectionID: "ca_" + id, StateNonce: nonce, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
}

func mustGet(t *testing.T, s storage.IntegrationStore, user, id string) *storage.Integration {
	t.Helper()
	in, err := s.Get(context.Background(), user, id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return in
}

// Every change is conditional on the state it names, and scoped by user.
func TestIntegrationTransitions(t *testing.T) {
	t.Parallel()
	s := open(t).Integrations()
	ctx := context.Background()
	putIntegration(t, s, "int_a", "alice", storage.StatusPending, "n1")

	act := storage.Activation{AccountID: "ca_new", Email: "a@example.com", JobID: "job-1"}
	if err := s.Activate(ctx, "bob", "int_a", "n1", act); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("bob activated alice's flow: %v", err)
	}
	if err := s.Activate(ctx, "alice", "int_a", "wrong", act); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("activated with another nonce: %v", err)
	}
	if err := s.Activate(ctx, "alice", "int_a", "n1", act); err != nil {
		t.Fatal(err)
	}
	got := mustGet(t, s, "alice", "int_a")
	if got.Status != storage.StatusActive || got.StateNonce != "" || got.ComposioConnectionID != "ca_new" ||
		got.ConnectedEmail != "a@example.com" || got.CallbackJobID != "job-1" || !got.WasConnected() {
		t.Fatalf("after Activate: %+v", got)
	}
	if err := s.Activate(ctx, "alice", "int_a", "n1", act); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a replayed activation matched: %v", err)
	}
	if err := s.MarkFailed(ctx, "alice", "int_a", "n1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("an active record was marked failed: %v", err)
	}

	// Composio's word: only from the status named; updated_at moves only
	// when the status changes, checked_at always.
	checked := time.Now().UTC().Truncate(time.Millisecond)
	same := storage.AccountStatus{Status: storage.StatusActive, ComposioStatus: "ACTIVE", CheckedAt: checked}
	if err := s.SetStatus(ctx, "alice", "int_a", storage.StatusActive, same); err != nil {
		t.Fatal(err)
	}
	if after := mustGet(t, s, "alice", "int_a"); !after.UpdatedAt.Equal(got.UpdatedAt) || !after.CheckedAt.Equal(checked) {
		t.Fatalf("an unchanged status moved updated_at or not checked_at: %+v", after)
	}
	expired := storage.AccountStatus{Status: storage.StatusExpired, ComposioStatus: "EXPIRED", Reason: "token expired", CheckedAt: checked}
	if err := s.SetStatus(ctx, "alice", "int_a", storage.StatusPending, expired); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("SetStatus from a stale status matched: %v", err)
	}
	if err := s.SetStatus(ctx, "alice", "int_a", storage.StatusActive, expired); err != nil {
		t.Fatal(err)
	}
	if after := mustGet(t, s, "alice", "int_a"); after.Status != storage.StatusExpired || after.StatusReason != "token expired" ||
		after.ComposioStatus != "EXPIRED" || !after.WasConnected() || !after.UpdatedAt.After(got.UpdatedAt) {
		t.Fatalf("after SetStatus: %+v", after)
	}

	if err := s.Remove(ctx, "bob", "int_a"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("bob removed alice's integration: %v", err)
	}
	if err := s.Remove(ctx, "alice", "int_a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "alice", "int_a"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("removed twice: %v", err)
	}
	if after := mustGet(t, s, "alice", "int_a"); after.Status != storage.StatusRemoved || after.WasConnected() {
		t.Fatalf("after Remove: %+v", after)
	}

	// A flow that fails is not a connection.
	putIntegration(t, s, "int_b", "alice", storage.StatusPending, "n2")
	if err := s.MarkFailed(ctx, "alice", "int_b", "n2"); err != nil {
		t.Fatal(err)
	}
	if after := mustGet(t, s, "alice", "int_b"); after.Status != storage.StatusFailed || after.StateNonce != "" || after.WasConnected() {
		t.Fatalf("after MarkFailed: %+v", after)
	}
}

// DueForRefresh walks connections only, across users, least recently
// checked first, bounded.
func TestDueForRefresh(t *testing.T) {
	t.Parallel()
	s := open(t).Integrations()
	ctx := context.Background()
	putIntegration(t, s, "int_pending", "u1", storage.StatusPending, "n")
	putIntegration(t, s, "int_flowfailed", "u1", storage.StatusFailed, "")
	putIntegration(t, s, "int_removed", "u1", storage.StatusRemoved, "")
	for _, id := range []string{"int_1", "int_2", "int_3"} {
		putIntegration(t, s, id, "u_"+id, storage.StatusActive, "")
	}
	// int_1 was checked just now, int_2 an hour ago (and failed at
	// Composio since), int_3 never.
	now := time.Now().UTC()
	_ = s.SetStatus(ctx, "u_int_1", "int_1", storage.StatusActive, storage.AccountStatus{Status: storage.StatusActive, ComposioStatus: "ACTIVE", CheckedAt: now})
	_ = s.SetStatus(ctx, "u_int_2", "int_2", storage.StatusActive, storage.AccountStatus{Status: storage.StatusFailed, ComposioStatus: "FAILED", CheckedAt: now.Add(-time.Hour)})

	due, err := s.DueForRefresh(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, in := range due {
		ids = append(ids, in.ID)
	}
	if len(ids) != 3 || ids[0] != "int_3" || ids[1] != "int_2" || ids[2] != "int_1" {
		t.Fatalf("due %v, want [int_3 int_2 int_1]", ids)
	}
	if due, _ = s.DueForRefresh(ctx, 2); len(due) != 2 || due[0].ID != "int_3" {
		t.Fatalf("bounded: %+v", due)
	}
}
