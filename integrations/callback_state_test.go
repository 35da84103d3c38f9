package integrations

import (
	"context"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/storage"
)

// The API asks CallbackTarget before it queues a callback job: a state
// already used, or expired, comes back Closed, so nothing is queued. An
// expired flow still pending is closed as failed and its Composio account
// deleted; after that its state counts as used.
func TestCallbackTargetRefusesUsedAndExpiredState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, store, double := testService(t)

	q, id := consentQuery(t, svc, "alice")
	if tg, err := svc.CallbackTarget(ctx, q["state"]); err != nil || tg.Closed != "" || tg.UserID != "alice" {
		t.Fatalf("fresh state: %+v %v", tg, err)
	}
	if r := runCallback(t, svc, "job-1", "alice", q); r.Status != "success" || r.IntegrationID != id {
		t.Fatalf("callback: %+v", r)
	}
	tg, err := svc.CallbackTarget(ctx, q["state"])
	if err != nil || tg.Closed != reasonStateUsed || tg.RedirectURL != "https://app.openanalyst.com/c" || tg.Provider != "gmail" {
		t.Fatalf("replayed state: %+v %v, want Closed %s", tg, err, reasonStateUsed)
	}

	q2, id2 := consentQuery(t, svc, "bob")
	rec, _ := store.Get(ctx, "bob", id2)
	deletes := double.Requests("DELETE", "/connected_accounts/"+rec.ComposioConnectionID)
	svc.c.Now = func() time.Time { return time.Now().Add(16 * time.Minute) } // past the 15-minute TTL
	if tg, err := svc.CallbackTarget(ctx, q2["state"]); err != nil || tg.Closed != reasonStateExpired {
		t.Fatalf("expired state: %+v %v, want Closed %s", tg, err, reasonStateExpired)
	}
	after, _ := store.Get(ctx, "bob", id2)
	if after.Status != storage.StatusFailed || after.StateNonce != "" {
		t.Fatalf("expired flow left %+v", after)
	}
	if got := double.Requests("DELETE", "/connected_accounts/"+rec.ComposioConnectionID) - deletes; got != 1 {
		t.Fatalf("the expired flow's Composio account was deleted %d times, want 1", got)
	}
	if tg, err := svc.CallbackTarget(ctx, q2["state"]); err != nil || tg.Closed != reasonStateUsed {
		t.Fatalf("expired state again: %+v %v", tg, err)
	}

	// Forged: an error, no target.
	if tg, err := svc.CallbackTarget(ctx, q["state"]+"x"); err == nil || tg != nil {
		t.Fatalf("forged state: %+v %v", tg, err)
	}
}
