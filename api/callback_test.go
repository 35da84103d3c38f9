package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/openanalyst/mcp-integration-service/api"
	"github.com/openanalyst/mcp-integration-service/storage"
)

// closedFlows answers CallbackTarget with a closed flow for state "used"
// and "expired"; everything else it must never be asked.
type closedFlows struct {
	panicky
	asked atomic.Int32
}

func (c *closedFlows) CallbackTarget(_ context.Context, state string) (*api.CallbackTarget, error) {
	c.asked.Add(1)
	return &api.CallbackTarget{UserID: "alice", Provider: "gmail", RedirectURL: "https://app.example/c?x=1",
		Closed: "state_" + state}, nil
}

// A replayed or expired state sends the browser back as failed and queues
// nothing: the server has no dispatcher here, so a job would be a panic
// (500), and the audit entry carries no job id.
func TestCallbackClosedFlowQueuesNothing(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var audited []storage.AuditEntry
	flows := &closedFlows{}
	srv := api.New(api.Deps{APIKey: "k", Integrations: flows, CallbackPerIPPerMin: -1, Audit: func(e storage.AuditEntry) {
		mu.Lock()
		defer mu.Unlock()
		audited = append(audited, e)
	}})
	for _, state := range []string{"used", "expired"} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/integrations/callback?state="+state+"&status=success", nil))
		if rec.Code != http.StatusFound || rec.Header().Get("Location") != "https://app.example/c?x=1&status=failed&provider=gmail" {
			t.Fatalf("%s state: %d, Location %q: %s", state, rec.Code, rec.Header().Get("Location"), rec.Body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if flows.asked.Load() != 2 || len(audited) != 2 {
		t.Fatalf("asked %d times, audited %+v", flows.asked.Load(), audited)
	}
	for _, e := range audited {
		if e.JobID != "" || e.Status != http.StatusConflict || e.Outcome != "error" || e.Action != "integration.callback" {
			t.Fatalf("audit entry %+v", e)
		}
	}
}

// The callback, which needs no key, is limited per client IP. X-Real-IP
// counts only from a proxy on a loopback or private address.
func TestCallbackRateLimitedPerIP(t *testing.T) {
	t.Parallel()
	srv := api.New(api.Deps{APIKey: "k", Integrations: &closedFlows{}, CallbackPerIPPerMin: 2})
	call := func(peer, realIP string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/api/integrations/callback?state=used", nil)
		req.RemoteAddr = peer
		if realIP != "" {
			req.Header.Set("X-Real-IP", realIP)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec
	}
	for i := 0; i < 2; i++ {
		if rec := call("203.0.113.7:4000", ""); rec.Code != http.StatusFound {
			t.Fatalf("call %d: %d", i, rec.Code)
		}
	}
	wantRateLimited(t, call("203.0.113.7:4001", ""), "third callback from one address")
	// A public client cannot pick its key with X-Real-IP.
	wantRateLimited(t, call("203.0.113.7:4002", "198.51.100.1"), "spoofed X-Real-IP")
	// Another address has its own budget; behind the proxy, X-Real-IP is the client.
	if rec := call("203.0.113.8:4000", ""); rec.Code != http.StatusFound {
		t.Fatalf("another address: %d", rec.Code)
	}
	for i := 0; i < 2; i++ {
		if rec := call("10.0.0.5:5000", "198.51.100.2"); rec.Code != http.StatusFound {
			t.Fatalf("via the proxy %d: %d", i, rec.Code)
		}
	}
	wantRateLimited(t, call("10.0.0.5:5001", "198.51.100.2"), "third from one client via the proxy")
	if rec := call("10.0.0.5:5002", "198.51.100.3"); rec.Code != http.StatusFound {
		t.Fatalf("another client via the proxy: %d", rec.Code)
	}
}
