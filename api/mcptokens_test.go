package api_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/openanalyst/mcp-integration-service/api"
)

// A node built without a token store answers valid token calls 503, in the
// error envelope, instead of failing on a nil store.
func TestMCPTokensWithoutStore(t *testing.T) {
	t.Parallel()
	srv := api.New(api.Deps{APIKey: "k"})
	for _, c := range []struct{ method, target, body string }{
		{http.MethodPost, "/api/mcp/tokens", `{"user_id":"u1","ttl_seconds":60}`},
		{http.MethodGet, "/api/mcp/tokens?user_id=u1", ""},
		{http.MethodDelete, "/api/mcp/tokens/tok_abc?user_id=u1", ""},
	} {
		rec := rlCall(t, srv, c.method, c.target, "k", c.body)
		var env struct {
			Success *bool  `json:"success"`
			Code    string `json:"code"`
		}
		if rec.Code != http.StatusServiceUnavailable || json.Unmarshal(rec.Body.Bytes(), &env) != nil ||
			env.Success == nil || *env.Success || env.Code != "mcp_tokens_unavailable" {
			t.Errorf("%s %s: %d %s", c.method, c.target, rec.Code, rec.Body)
		}
		if rec := rlCall(t, srv, c.method, c.target, "wrong", c.body); rec.Code != http.StatusUnauthorized {
			t.Errorf("%s %s with a wrong key: %d", c.method, c.target, rec.Code)
		}
	}
}
