package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/openanalyst/mcp-integration-service/api"
)

// rlEcho answers 200 with the body it was given, to show the limiter put the
// peeked body back.
var rlEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	_, _ = w.Write(b)
})

func rlCall(t *testing.T, h http.Handler, method, target, key, body string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	req.Header.Set("X-API-Key", key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func wantRateLimited(t *testing.T, rec *httptest.ResponseRecorder, what string) {
	t.Helper()
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("%s: status %d, want 429 (%s)", what, rec.Code, rec.Body)
	}
	if ra := rec.Header().Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("%s: Retry-After %q", what, ra)
	}
	var env struct {
		Success *bool  `json:"success"`
		Error   string `json:"error"`
		Code    string `json:"code"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
		t.Fatalf("%s: body %q: %v", what, rec.Body, err)
	}
	if env.Success == nil || *env.Success || env.Code != "rate_limited" || !strings.HasPrefix(env.Error, "rate limit exceeded") {
		t.Fatalf("%s: envelope %s", what, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q", what, ct)
	}
}

func TestRateLimitPerUser(t *testing.T) {
	h := api.RateLimit(0, 3)(rlEcho)
	// Query string and JSON body count against the same user.
	for i, c := range []struct{ method, target, body string }{
		{http.MethodGet, "/api/tools?user_id=alice", ""},
		{http.MethodPost, "/api/tools/execute", `{"action":"DB_QUERY_db_x","user_id":"alice","params":{"query":"SELECT 1"}}`},
		{http.MethodGet, "/api/databases?user_id=alice", ""},
	} {
		rec := rlCall(t, h, c.method, c.target, "k", c.body)
		if rec.Code != http.StatusOK {
			t.Fatalf("call %d: status %d", i, rec.Code)
		}
		if rec.Body.String() != c.body {
			t.Fatalf("call %d: handler saw body %q, want %q", i, rec.Body, c.body)
		}
	}
	wantRateLimited(t, rlCall(t, h, http.MethodPost, "/api/tools/execute", "k", `{"user_id":"alice","action":"X"}`), "alice's 4th call")
	wantRateLimited(t, rlCall(t, h, http.MethodGet, "/api/tools?user_id=alice", "k", ""), "alice's 5th call")

	// Another user, and calls without a user, still pass.
	for i := 0; i < 3; i++ {
		if rec := rlCall(t, h, http.MethodPost, "/api/databases/connect", "k", `{"user_id":"bob"}`); rec.Code != http.StatusOK {
			t.Fatalf("bob call %d: status %d", i, rec.Code)
		}
	}
	for i := 0; i < 5; i++ {
		if rec := rlCall(t, h, http.MethodGet, "/api/databases/types", "k", ""); rec.Code != http.StatusOK {
			t.Fatalf("call without user_id %d: status %d", i, rec.Code)
		}
		// A body that is not JSON, or a user_id that is not a string, is left to the handler.
		if rec := rlCall(t, h, http.MethodPost, "/api/tools/execute", "k", `{"user_id":42}`); rec.Code != http.StatusOK {
			t.Fatalf("numeric user_id %d: status %d", i, rec.Code)
		}
		if rec := rlCall(t, h, http.MethodPost, "/api/tools/execute", "k", `not json`); rec.Code != http.StatusOK {
			t.Fatalf("malformed body %d: status %d", i, rec.Code)
		}
	}
}

func TestRateLimitKeepsLargeBodiesWhole(t *testing.T) {
	h := api.RateLimit(0, 100)(rlEcho)
	big := `{"user_id":"carol","params":{"query":"` + strings.Repeat("x", 1<<20+10) + `"}}`
	rec := rlCall(t, h, http.MethodPost, "/api/tools/execute", "k", big)
	if rec.Code != http.StatusOK || rec.Body.Len() != len(big) {
		t.Fatalf("status %d, handler saw %d of %d bytes", rec.Code, rec.Body.Len(), len(big))
	}
}

func TestRateLimitPerKey(t *testing.T) {
	h := api.RateLimit(4, 0)(rlEcho)
	users := []string{"u1", "u2", "u3", "u4"}
	for _, u := range users {
		if rec := rlCall(t, h, http.MethodGet, "/api/tools?user_id="+u, "oa-key", ""); rec.Code != http.StatusOK {
			t.Fatalf("user %s: status %d", u, rec.Code)
		}
	}
	// The key's budget is shared by every user of it.
	wantRateLimited(t, rlCall(t, h, http.MethodGet, "/api/tools?user_id=u5", "oa-key", ""), "5th call on the key")
	wantRateLimited(t, rlCall(t, h, http.MethodGet, "/api/databases/types", "oa-key", ""), "6th call on the key")
	// Another key has its own budget.
	if rec := rlCall(t, h, http.MethodGet, "/api/tools?user_id=u1", "other-key", ""); rec.Code != http.StatusOK {
		t.Fatalf("other key: status %d", rec.Code)
	}
}

func TestRateLimitBoth(t *testing.T) {
	h := api.RateLimit(5, 2)(rlEcho)
	for i := 0; i < 2; i++ {
		if rec := rlCall(t, h, http.MethodGet, "/api/tools?user_id=dave", "k", ""); rec.Code != http.StatusOK {
			t.Fatalf("dave %d: status %d", i, rec.Code)
		}
	}
	wantRateLimited(t, rlCall(t, h, http.MethodGet, "/api/tools?user_id=dave", "k", ""), "dave over the user limit")
	// dave's refused calls did not spend the key's budget: 3 left of 5.
	for _, u := range []string{"erin", "erin", "frank"} {
		if rec := rlCall(t, h, http.MethodGet, "/api/tools?user_id="+u, "k", ""); rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d", u, rec.Code)
		}
	}
	wantRateLimited(t, rlCall(t, h, http.MethodGet, "/api/tools?user_id=grace", "k", ""), "grace over the key limit")
}

func TestRateLimitDisabled(t *testing.T) {
	h := api.RateLimit(0, 0)(rlEcho)
	for i := 0; i < 200; i++ {
		if rec := rlCall(t, h, http.MethodPost, "/api/tools/execute", "k", `{"user_id":"alice"}`); rec.Code != http.StatusOK {
			t.Fatalf("call %d: status %d", i, rec.Code)
		}
	}
}

// Behind the real router: the limiter runs after the key check, as
// Deps.Middleware, and answers 429 in the API's envelope.
func TestRateLimitInRouter(t *testing.T) {
	srv := api.New(api.Deps{APIKey: "test-key", RateLimitPerUser: 1})
	if rec := rlCall(t, srv, http.MethodGet, "/api/databases/types", "wrong", ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("bad key: status %d", rec.Code)
	}
	if rec := rlCall(t, srv, http.MethodGet, "/api/databases/schema?db_type=nope&user_id=zed", "test-key", ""); rec.Code != http.StatusBadRequest {
		t.Fatalf("first call: status %d (%s)", rec.Code, rec.Body)
	}
	wantRateLimited(t, rlCall(t, srv, http.MethodGet, "/api/databases/schema?db_type=nope&user_id=zed", "test-key", ""), "second call")
}

// The per-user limit counts the user_id the handler acts on: for a POST,
// the body's, whatever the query string says; for a GET, the query's. A
// caller cannot dodge it by varying ?user_id= on a POST.
func TestRateLimitKeysOnTheHandlersUser(t *testing.T) {
	t.Parallel()
	decoded := 0
	h := api.RateLimit(0, 2)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			UserID string `json:"user_id"`
		}
		if r.Method == http.MethodPost {
			if err := api.Decode(r, &v, false); err != nil || v.UserID != "alice" {
				t.Errorf("handler decoded %+v, %v", v, err)
			}
			decoded++
		}
		w.WriteHeader(http.StatusOK)
	}))
	body := `{"user_id":"alice","action":"DB_QUERY_db_x"}`
	for i := 0; i < 2; i++ {
		if rec := rlCall(t, h, http.MethodPost, "/api/tools/execute?user_id=decoy"+strconv.Itoa(i), "k", body); rec.Code != http.StatusOK {
			t.Fatalf("call %d: status %d", i, rec.Code)
		}
	}
	wantRateLimited(t, rlCall(t, h, http.MethodPost, "/api/tools/execute?user_id=decoy9", "k", body), "alice behind a decoy query")
	if decoded != 2 {
		t.Fatalf("the handler decoded %d bodies, want 2", decoded)
	}
	// The decoys were not counted: a GET as decoy0 still passes twice.
	for i := 0; i < 2; i++ {
		if rec := rlCall(t, h, http.MethodGet, "/api/tools?user_id=decoy0", "k", ""); rec.Code != http.StatusOK {
			t.Fatalf("decoy0 GET %d: status %d", i, rec.Code)
		}
	}
	// A DELETE acts on the query's user, else the body's.
	for i := 0; i < 2; i++ {
		if rec := rlCall(t, h, http.MethodDelete, "/api/mcp/tokens/tok_x", "k", `{"user_id":"bob"}`); rec.Code != http.StatusOK {
			t.Fatalf("bob DELETE %d: status %d", i, rec.Code)
		}
	}
	wantRateLimited(t, rlCall(t, h, http.MethodDelete, "/api/mcp/tokens/tok_x", "k", `{"user_id":"bob"}`), "bob's 3rd DELETE")
	if rec := rlCall(t, h, http.MethodDelete, "/api/mcp/tokens/tok_x?user_id=carol", "k", `{"user_id":"bob"}`); rec.Code != http.StatusOK {
		t.Fatalf("carol's DELETE: status %d", rec.Code)
	}
}
