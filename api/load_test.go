package api_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/openanalyst/mcp-integration-service/api"
)

// countingLoad records what Deps.Load is told.
type countingLoad struct{ in, peak, begun atomic.Int64 }

func (c *countingLoad) Begin() {
	c.begun.Add(1)
	if v := c.in.Add(1); v > c.peak.Load() {
		c.peak.Store(v)
	}
}
func (c *countingLoad) End() { c.in.Add(-1) }

// Every request is counted while it is served, refused ones too, and is
// counted out when it ends.
func TestRequestsCountedInFlight(t *testing.T) {
	t.Parallel()
	load := &countingLoad{}
	srv := api.New(api.Deps{APIKey: "test-key", Load: load})
	for _, target := range []string{"/healthz", "/api/databases/types", "/nowhere"} {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.Header.Set("X-API-Key", "wrong")
		srv.ServeHTTP(httptest.NewRecorder(), req)
	}
	if b, in, peak := load.begun.Load(), load.in.Load(), load.peak.Load(); b != 3 || in != 0 || peak != 1 {
		t.Fatalf("3 requests one after another: begun %d, in flight %d, peak %d; want 3, 0, 1", b, in, peak)
	}
}
