package integrations

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/api"
	"github.com/openanalyst/mcp-integration-service/connectors/composio"
	"github.com/openanalyst/mcp-integration-service/connectors/composio/composiotest"
	"github.com/openanalyst/mcp-integration-service/internal/testservices"
	"github.com/openanalyst/mcp-integration-service/storage"
	"github.com/openanalyst/mcp-integration-service/tools"
)

func TestAccountStatus(t *testing.T) {
	t.Parallel()
	rec := &storage.Integration{Provider: "bigquery", ComposioEntityID: "user_u"}
	acct := func(status string, disabled bool, reason string) *composio.ConnectedAccount {
		return &composio.ConnectedAccount{UserID: "user_u", Status: status, IsDisabled: disabled, StatusReason: reason,
			Toolkit: composio.ToolkitRef{Slug: "googlebigquery"}}
	}
	for _, c := range []struct {
		acct         *composio.ConnectedAccount
		want, reason string
	}{
		{acct(composio.StatusActive, false, ""), storage.StatusActive, ""},
		{acct(composio.StatusActive, true, ""), storage.StatusDisabled, "Composio reports the connected account ACTIVE"},
		{acct(composio.StatusExpired, false, "refresh token expired"), storage.StatusExpired, "refresh token expired"},
		{acct(composio.StatusRevoked, false, ""), storage.StatusRevoked, "Composio reports the connected account REVOKED"},
		{acct(composio.StatusInactive, false, "disabled by admin"), storage.StatusDisabled, "disabled by admin"},
		{acct(composio.StatusFailed, false, "invalid_grant"), storage.StatusFailed, "invalid_grant"},
		{acct(composio.StatusInitiated, false, "re-auth\nrequested"), storage.StatusExpired, "re-auth requested"},
		{acct("SOMETHING_NEW", false, ""), storage.StatusFailed, "Composio reports the connected account SOMETHING_NEW"},
		{&composio.ConnectedAccount{UserID: "user_other", Status: composio.StatusActive,
			Toolkit: composio.ToolkitRef{Slug: "googlebigquery"}}, storage.StatusFailed, "the connected account now belongs to another Composio user"},
		{&composio.ConnectedAccount{UserID: "user_u", Status: composio.StatusActive,
			Toolkit: composio.ToolkitRef{Slug: "gmail"}}, storage.StatusFailed, "the connected account is of another toolkit"},
	} {
		got, reason := accountStatus(c.acct, rec)
		if got != c.want || reason != c.reason {
			t.Errorf("%s (disabled %v): %s %q, want %s %q", c.acct.Status, c.acct.IsDisabled, got, reason, c.want, c.reason)
		}
	}
	long := acct(composio.StatusExpired, false, strings.Repeat("x", 1000))
	if _, reason := accountStatus(long, rec); len([]rune(reason)) > 301 {
		t.Fatalf("a long reason is kept whole: %d runes", len([]rune(reason)))
	}
}

// connectGmail runs a whole flow for user and returns the record.
func connectGmail(t *testing.T, svc *Service, store storage.IntegrationStore, user string) *storage.Integration {
	t.Helper()
	q, id := consentQuery(t, svc, user)
	if r := runCallback(t, svc, "job-"+user, user, q); r.Status != "success" {
		t.Fatalf("callback: %+v", r)
	}
	rec, err := store.Get(context.Background(), user, id)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var ie *api.IntegrationError
	if !errors.As(err, &ie) || ie.Code != code {
		t.Fatalf("got %v, want %s", err, code)
	}
}

func hasTool(t *testing.T, svc *Service, user, name string) bool {
	t.Helper()
	list, err := svc.Tools(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(list, func(tl tools.Tool) bool { return tl.Name == name })
}

// Refresh follows Composio both ways, for the user's own integrations only.
func TestRefreshFollowsComposio(t *testing.T) {
	t.Parallel()
	svc, store, double := testService(t)
	ctx := context.Background()
	rec := connectGmail(t, svc, store, "alice")

	_, _, err := svc.Refresh(ctx, "bob", rec.ID)
	wantCode(t, err, "integration_not_found")
	_, _, err = svc.Refresh(ctx, "alice", "int_missing")
	wantCode(t, err, "integration_not_found")
	_, pending := consentQuery(t, svc, "alice")
	_, _, err = svc.Refresh(ctx, "alice", pending)
	wantCode(t, err, "integration_not_connected")

	out, changed, err := svc.Refresh(ctx, "alice", rec.ID)
	if err != nil || changed || out.Status != storage.StatusActive || out.CheckedAt == nil {
		t.Fatalf("refresh of an active account: %+v %v %v", out, changed, err)
	}

	double.SetAccountStatus(rec.ComposioConnectionID, composiotest.StatusExpired, "Access token expired and could not be refreshed")
	out, changed, err = svc.Refresh(ctx, "alice", rec.ID)
	if err != nil || !changed || out.Status != storage.StatusExpired || !strings.Contains(out.StatusReason, "expired") {
		t.Fatalf("refresh of an expired account: %+v %v %v", out, changed, err)
	}
	list, _ := svc.Connected(ctx, "alice")
	if len(list) != 1 || list[0].Status != storage.StatusExpired || list[0].StatusReason == "" {
		t.Fatalf("connected after expiry: %+v", list)
	}
	if hasTool(t, svc, "alice", "GMAIL_SEND_EMAIL") {
		t.Fatal("an expired connection still lists its tools")
	}
	o := runExecute(svc, "job-x1", "alice", "GMAIL_SEND_EMAIL", map[string]any{"recipient_email": "a@b.c", "subject": "s", "body": "b"})
	if o.Err == nil || o.Err.Code != "integration_inactive" || !strings.Contains(o.Err.Msg, "Reconnect gmail") ||
		!strings.Contains(o.Err.Msg, "expired") {
		t.Fatalf("execute on an expired connection: %+v", o.Err)
	}
	if n := len(double.Executions()); n != 0 {
		t.Fatalf("%d executions reached Composio", n)
	}

	// Composio refreshed the token: active again, tools back.
	double.SetAccountStatus(rec.ComposioConnectionID, composiotest.StatusActive, "")
	if out, changed, err = svc.Refresh(ctx, "alice", rec.ID); err != nil || !changed || out.Status != storage.StatusActive || out.StatusReason != "" {
		t.Fatalf("refresh of a reactivated account: %+v %v %v", out, changed, err)
	}
	if !hasTool(t, svc, "alice", "GMAIL_SEND_EMAIL") {
		t.Fatal("a reactivated connection lists no tools")
	}

	// Gone at Composio: revoked.
	if err := svc.c.Client.DeleteConnectedAccount(ctx, rec.ComposioConnectionID); err != nil {
		t.Fatal(err)
	}
	if out, _, err = svc.Refresh(ctx, "alice", rec.ID); err != nil || out.Status != storage.StatusRevoked {
		t.Fatalf("refresh of a deleted account: %+v %v", out, err)
	}

	// Composio rate limiting: 429 with its Retry-After, not retried.
	before := double.TotalRequests()
	double.FailNext(1, http.StatusTooManyRequests, "7")
	_, _, err = svc.Refresh(ctx, "alice", rec.ID)
	var ie *api.IntegrationError
	if !errors.As(err, &ie) || ie.Code != "rate_limited" || ie.RetryAfter != 7*time.Second {
		t.Fatalf("refresh when rate limited: %v", err)
	}
	if n := double.TotalRequests() - before; n != 1 {
		t.Fatalf("a rate limited refresh made %d requests", n)
	}
}

// A tool that Composio refuses because its account stopped being active
// since the last check answers integration_inactive, and the record follows.
func TestExecuteNoticesInactiveAccount(t *testing.T) {
	t.Parallel()
	svc, store, double := testService(t)
	var notified []string
	var mu sync.Mutex
	svc.c.Notify = func(u string) { mu.Lock(); defer mu.Unlock(); notified = append(notified, u) }
	rec := connectGmail(t, svc, store, "carol")
	double.SetAccountStatus(rec.ComposioConnectionID, composiotest.StatusRevoked, "")
	o := runExecute(svc, "job-c1", "carol", "GMAIL_SEND_EMAIL", map[string]any{"recipient_email": "a@b.c", "subject": "s", "body": "b"})
	if o.Err == nil || o.Err.Code != "integration_inactive" || !strings.Contains(o.Err.Msg, "revoked") {
		t.Fatalf("execute on a revoked account: %+v %s", o.Err, o.Body)
	}
	if cur, _ := store.Get(context.Background(), "carol", rec.ID); cur.Status != storage.StatusRevoked {
		t.Fatalf("record after the refused execute: %+v", cur)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(notified, []string{"carol"}) {
		t.Fatalf("notified %v", notified)
	}
}

// statusGets counts the account reads the double received.
func statusGets(double *composiotest.Server) int {
	n := 0
	for _, r := range double.RequestLog() {
		if r.Method == http.MethodGet && strings.HasPrefix(r.RelPath, "/connected_accounts/") {
			n++
		}
	}
	return n
}

// A tick checks a bounded batch, least recently checked first, tells who
// changed, and stops at a 429 with its Retry-After.
func TestRefreshBatch(t *testing.T) {
	t.Parallel()
	svc, store, double := testService(t)
	svc.c.RefreshEvery, svc.c.RefreshBatch = time.Minute, 2
	var notified []string
	svc.c.Notify = func(u string) { notified = append(notified, u) }
	recs := map[string]*storage.Integration{}
	for _, u := range []string{"u1", "u2", "u3"} {
		recs[u] = connectGmail(t, svc, store, u)
	}
	double.SetAccountStatus(recs["u2"].ComposioConnectionID, composiotest.StatusExpired, "")
	ctx := context.Background()

	g := statusGets(double)
	if wait := svc.refreshBatch(ctx); wait != 0 || statusGets(double)-g != 2 {
		t.Fatalf("first tick: wait %s, %d reads", wait, statusGets(double)-g)
	}
	if wait := svc.refreshBatch(ctx); wait != 0 || statusGets(double)-g != 4 {
		t.Fatalf("second tick: wait %s, %d reads", wait, statusGets(double)-g)
	}
	checked := 0
	for u, r := range recs {
		cur, _ := store.Get(ctx, u, r.ID)
		if !cur.CheckedAt.IsZero() {
			checked++
		}
		want := storage.StatusActive
		if u == "u2" {
			want = storage.StatusExpired
		}
		if cur.Status != want {
			t.Errorf("%s: %s, want %s", u, cur.Status, want)
		}
	}
	if checked != 3 || !slices.Equal(notified, []string{"u2"}) {
		t.Fatalf("checked %d of 3 in two ticks of 2; notified %v", checked, notified)
	}

	g = statusGets(double)
	double.FailNext(1, http.StatusTooManyRequests, "42")
	if wait := svc.refreshBatch(ctx); wait != 42*time.Second || statusGets(double)-g != 1 {
		t.Fatalf("rate limited tick: wait %s after %d reads, want 42s after 1", wait, statusGets(double)-g)
	}
	g = statusGets(double)
	double.FailNext(1, http.StatusServiceUnavailable, "")
	if wait := svc.refreshBatch(ctx); wait != 0 || statusGets(double)-g != 1 {
		t.Fatalf("Composio down: wait %s after %d reads, want the batch stopped after 1", wait, statusGets(double)-g)
	}
}

// The fleet runs one tick at a time: the first worker to create the tick
// key runs it, the others skip until it expires.
func TestClaimTickElectsOneWorker(t *testing.T) {
	t.Parallel()
	host, port := testservices.Need(t, testservices.NATS)
	nc, err := nats.Connect(fmt.Sprintf("nats://%s:%d", host, port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	bucket := fmt.Sprintf("T_REFRESH_%d", time.Now().UnixNano())
	every := 500 * time.Millisecond
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, TTL: refreshLockTTL(every)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteKeyValue(context.Background(), bucket) })
	a, _, _ := testService(t)
	b, _, _ := testService(t)
	for _, s := range []*Service{a, b} {
		s.c.RefreshLock, s.c.RefreshEvery = kv, every
	}
	if !a.claimTick(ctx) {
		t.Fatal("the first worker did not get the tick")
	}
	if b.claimTick(ctx) || a.claimTick(ctx) {
		t.Fatal("a second claim of the same tick succeeded")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !b.claimTick(ctx) {
		if time.Now().After(deadline) {
			t.Fatal("the tick key never expired")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
