package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/openanalyst/mcp-integration-service/service"
	"github.com/openanalyst/mcp-integration-service/service/servicetest"
	"github.com/openanalyst/mcp-integration-service/storage"
)

// startMCP runs a service wired the way cmd/mcp-service wires it.
func startMCP(t *testing.T, env servicetest.Env) *servicetest.Bundle {
	t.Helper()
	b, err := servicetest.Start(t, service.ModeServe, env, service.Options{})
	if err != nil {
		t.Fatalf("start service: %v", err)
	}
	return b
}

// mintToken is POST /api/mcp/tokens.
func mcpMint(t *testing.T, b *servicetest.Bundle, user string, ttlSeconds int) (id, token string) {
	t.Helper()
	body := map[string]any{"user_id": user, "label": "e2e"}
	if ttlSeconds != 0 {
		body["ttl_seconds"] = ttlSeconds
	}
	r := b.Do(t, "POST", "/api/mcp/tokens", body).Expect(t, http.StatusCreated)
	return r.Str("token_id"), r.Str("token")
}

// connectPG connects the local PostgreSQL for a user and returns its db_id.
func mcpConnectDB(t *testing.T, b *servicetest.Bundle, user string) string {
	t.Helper()
	return connectPG(t, b, user, "unused")
}

// mcpBearer adds the token to every request of the MCP client and reports when
// its event stream (subscriptions/listen, or a session's GET) is open, so
// that a test triggers a change only once a notification can be delivered.
type mcpBearer struct {
	token    string
	streamUp chan struct{}
	once     sync.Once
}

func (b *mcpBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && (r.Method == http.MethodGet || r.Header.Get("Mcp-Method") == "subscriptions/listen") &&
		resp.StatusCode == http.StatusOK {
		b.once.Do(func() { close(b.streamUp) })
	}
	return resp, err
}

// mcpSession opens an MCP session with the Go SDK's client over real HTTP.
func mcpSession(t *testing.T, b *servicetest.Bundle, token string, opts *mcp.ClientOptions) (*mcp.ClientSession, *mcpBearer) {
	t.Helper()
	rt := &mcpBearer{token: token, streamUp: make(chan struct{})}
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: b.URL + "/mcp",
		HTTPClient: &http.Client{Transport: rt}, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("MCP connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs, rt
}

func mcpListTools(t *testing.T, cs *mcp.ClientSession) map[string]*mcp.Tool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	out := map[string]*mcp.Tool{}
	for _, tool := range res.Tools {
		out[tool.Name] = tool
	}
	return out
}

func mcpCallTool(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) (*mcp.CallToolResult, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("tools/call %s: protocol error %v (tool failures must be isError results)", name, err)
	}
	if len(res.Content) != 1 {
		t.Fatalf("tools/call %s: %d content blocks, want 1", name, len(res.Content))
	}
	text, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("tools/call %s: content is %T, want text", name, res.Content[0])
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(text.Text), &body); err != nil {
		t.Fatalf("tools/call %s: text is not a JSON object: %q", name, text.Text)
	}
	return res, body
}

// rawMCP posts one JSON-RPC message to /mcp with the given Authorization.
func mcpRaw(t *testing.T, b *servicetest.Bundle, authz, sessionID, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), "POST", b.URL+"/mcp", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if sessionID != "" {
		req.Header.Set("Mcp-Session-Id", sessionID)
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	}
	resp, err := b.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

const mcpInitializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",` +
	`"capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

// expect401 checks that /mcp refuses a request before any MCP traffic.
func mcpExpect401(t *testing.T, b *servicetest.Bundle, authz, wantCode string) {
	t.Helper()
	resp, data := mcpRaw(t, b, authz, "", mcpInitializeBody)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("Authorization %q: status %d, want 401; body %s", authz, resp.StatusCode, data)
	}
	if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("Authorization %q: WWW-Authenticate = %q", authz, resp.Header.Get("WWW-Authenticate"))
	}
	var e struct {
		Success *bool  `json:"success"`
		Error   string `json:"error"`
		Code    string `json:"code"`
	}
	if err := json.Unmarshal(data, &e); err != nil || e.Success == nil || *e.Success || e.Error == "" || e.Code != wantCode {
		t.Fatalf("Authorization %q: body %s, want the error envelope with code %q", authz, data, wantCode)
	}
	if strings.Contains(string(data), "jsonrpc") {
		t.Fatalf("Authorization %q: MCP traffic in a refused request: %s", authz, data)
	}
}

// notFoundCode: the worker's answer for a tool (or its database) that is not
// this user's.
func notFoundCode(code any) bool { return code == "tool_not_found" || code == "database_not_found" }

func TestMCPTokens(t *testing.T) {
	t.Parallel()
	b := startMCP(t, nil)
	user, other := servicetest.User(t), servicetest.User(t)

	r := b.Do(t, "POST", "/api/mcp/tokens", map[string]any{"user_id": user, "ttl_seconds": 3600, "label": "Claude"}).
		Expect(t, http.StatusCreated)
	id, token := r.Str("token_id"), r.Str("token")
	if !strings.HasPrefix(id, "tok_") || !strings.HasPrefix(token, "mcp_") || len(token) != 4+43 {
		t.Fatalf("mint: %s", r.Body)
	}
	if r.Str("mcp_url") != b.URL+"/mcp" {
		t.Fatalf("mcp_url = %q, want %q", r.Str("mcp_url"), b.URL+"/mcp")
	}
	exp, err := time.Parse(time.RFC3339, r.Str("expires_at"))
	if err != nil || exp.Before(time.Now().Add(59*time.Minute)) || exp.After(time.Now().Add(61*time.Minute)) {
		t.Fatalf("expires_at %q (err %v), want about an hour from now", r.Str("expires_at"), err)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("a minted token may be cached: Cache-Control %q", r.Header.Get("Cache-Control"))
	}

	// The default lifetime is 30 days; two tokens are two different secrets.
	d := b.Do(t, "POST", "/api/mcp/tokens", map[string]any{"user_id": user}).Expect(t, http.StatusCreated)
	if exp, _ := time.Parse(time.RFC3339, d.Str("expires_at")); exp.Before(time.Now().Add(29*24*time.Hour)) ||
		exp.After(time.Now().Add(31*24*time.Hour)) {
		t.Fatalf("default expires_at %q, want 30 days from now", d.Str("expires_at"))
	}
	if d.Str("token") == token || d.Str("token_id") == id {
		t.Fatalf("two mints gave the same token: %s", d.Body)
	}

	// Only the hash is stored.
	var docs []bson.M
	cur, err := b.Collection(t, storage.CollTokens).Find(context.Background(), bson.D{{Key: "user_id", Value: user}})
	if err != nil || cur.All(context.Background(), &docs) != nil || len(docs) != 2 {
		t.Fatalf("stored tokens: %v (err %v)", docs, err)
	}
	sum := sha256.Sum256([]byte(token))
	hashed := false
	for _, doc := range docs {
		raw, _ := bson.MarshalExtJSON(doc, false, false)
		if strings.Contains(string(raw), token) || strings.Contains(string(raw), strings.TrimPrefix(token, "mcp_")) {
			t.Fatalf("the token itself is stored: %s", raw)
		}
		if doc["hash"] == hex.EncodeToString(sum[:]) {
			hashed = true
		}
	}
	if !hashed {
		t.Fatalf("no stored token has the SHA-256 of the minted one: %v", docs)
	}

	// Listing shows the tokens, never the secret or its hash.
	l := b.Do(t, "GET", "/api/mcp/tokens?user_id="+user, nil).Expect(t, http.StatusOK)
	if strings.Contains(string(l.Body), token) || strings.Contains(string(l.Body), hex.EncodeToString(sum[:])) ||
		strings.Contains(string(l.Body), `"token"`) || strings.Contains(string(l.Body), "hash") {
		t.Fatalf("list leaks the token: %s", l.Body)
	}
	var list struct {
		Tokens []struct {
			TokenID   string `json:"token_id"`
			Label     string `json:"label"`
			CreatedAt string `json:"created_at"`
			ExpiresAt string `json:"expires_at"`
			Revoked   *bool  `json:"revoked"`
		} `json:"tokens"`
	}
	if err := json.Unmarshal(l.Body, &list); err != nil || len(list.Tokens) != 2 {
		t.Fatalf("list: %s", l.Body)
	}
	mine := -1
	for i, tk := range list.Tokens {
		if tk.TokenID == id {
			mine = i
		}
		if tk.Revoked == nil || *tk.Revoked || tk.CreatedAt == "" || tk.ExpiresAt == "" {
			t.Fatalf("list entry: %+v", tk)
		}
	}
	if mine < 0 || list.Tokens[mine].Label != "Claude" {
		t.Fatalf("list lacks %s with its label: %s", id, l.Body)
	}
	if n := len(b.Do(t, "GET", "/api/mcp/tokens?user_id="+other, nil).Expect(t, http.StatusOK).JSON["tokens"].([]any)); n != 0 {
		t.Fatalf("another user sees %d tokens", n)
	}

	// Another user cannot revoke it; its owner can, with user_id in the query
	// or in the body.
	if e := b.Do(t, "DELETE", "/api/mcp/tokens/"+id+"?user_id="+other, nil).Expect(t, http.StatusNotFound); e.Str("code") != "token_not_found" || e.JSON["success"] != false {
		t.Fatalf("revoke by another user: %s", e.Body)
	}
	b.Do(t, "DELETE", "/api/mcp/tokens/tok_nosuchtoken?user_id="+user, nil).Expect(t, http.StatusNotFound)
	if ok := b.Do(t, "DELETE", "/api/mcp/tokens/"+id, map[string]any{"user_id": user}).Expect(t, http.StatusOK); ok.JSON["success"] != true {
		t.Fatalf("revoke: %s", ok.Body)
	}
	b.Do(t, "DELETE", "/api/mcp/tokens/"+d.Str("token_id")+"?user_id="+user, nil).Expect(t, http.StatusOK)
	l = b.Do(t, "GET", "/api/mcp/tokens?user_id="+user, nil).Expect(t, http.StatusOK)
	if err := json.Unmarshal(l.Body, &list); err != nil || len(list.Tokens) != 2 || !*list.Tokens[0].Revoked || !*list.Tokens[1].Revoked {
		t.Fatalf("after revoking both: %s", l.Body)
	}

	// Validation, and the API key.
	for _, c := range []struct {
		body any
		code string
	}{
		{map[string]any{"ttl_seconds": 60}, "missing_field"},
		{map[string]any{"user_id": "  "}, "missing_field"},
		{map[string]any{"user_id": user, "ttl_seconds": 0}, "invalid_field"},
		{map[string]any{"user_id": user, "ttl_seconds": -5}, "invalid_field"},
		{map[string]any{"user_id": user, "ttl_seconds": 366 * 24 * 3600}, "invalid_field"},
		{map[string]any{"user_id": user, "ttl_seconds": "soon"}, "invalid_field"},
		{map[string]any{"user_id": user, "label": strings.Repeat("x", 201)}, "invalid_field"},
		{"{not json", "invalid_json"},
	} {
		if e := b.Do(t, "POST", "/api/mcp/tokens", c.body).Expect(t, http.StatusBadRequest); e.Str("code") != c.code || e.JSON["success"] != false {
			t.Fatalf("%v: %s, want code %s", c.body, e.Body, c.code)
		}
	}
	b.Do(t, "GET", "/api/mcp/tokens", nil).Expect(t, http.StatusBadRequest)
	b.DoKey(t, "", "POST", "/api/mcp/tokens", map[string]any{"user_id": user}).Expect(t, http.StatusUnauthorized)
	b.DoKey(t, "wrong", "GET", "/api/mcp/tokens?user_id="+user, nil).Expect(t, http.StatusUnauthorized)
	b.DoKey(t, "", "DELETE", "/api/mcp/tokens/"+id+"?user_id="+user, nil).Expect(t, http.StatusUnauthorized)
}

func TestMCPPublicBaseURL(t *testing.T) {
	t.Parallel()
	b := startMCP(t, servicetest.Env{"OAUTH_REDIRECT_BASE": "https://mcp.example.com/"})
	r := b.Do(t, "POST", "/api/mcp/tokens", map[string]any{"user_id": servicetest.User(t)}).Expect(t, http.StatusCreated)
	if r.Str("mcp_url") != "https://mcp.example.com/mcp" {
		t.Fatalf("mcp_url = %q with OAUTH_REDIRECT_BASE set", r.Str("mcp_url"))
	}
}

func TestMCP(t *testing.T) {
	t.Parallel()
	pgAdmin(t) // skips loudly without PostgreSQL
	b := startMCP(t, nil)

	userA := servicetest.User(t)
	dbA := mcpConnectDB(t, b, userA)
	tokenAID, tokenA := mcpMint(t, b, userA, 0)

	t.Run("ToolsAndCalls", func(t *testing.T) {
		t.Parallel()
		cs, _ := mcpSession(t, b, tokenA, nil)
		init := cs.InitializeResult()
		if init == nil || init.ServerInfo == nil || init.ServerInfo.Name == "" || init.Capabilities == nil ||
			init.Capabilities.Tools == nil || !init.Capabilities.Tools.ListChanged {
			t.Fatalf("initialize: %+v", init)
		}
		t.Logf("negotiated MCP protocol %s", init.ProtocolVersion)

		// tools/list is GET /api/tools.
		rest := b.Do(t, "GET", "/api/tools?user_id="+userA, nil).Expect(t, http.StatusOK)
		tools := mcpListTools(t, cs)
		if want := len(rest.JSON["tools"].([]any)); len(tools) != want || want < 3 {
			t.Fatalf("tools/list has %d tools, GET /api/tools %d", len(tools), want)
		}
		q := tools["DB_QUERY_"+dbA]
		if q == nil {
			t.Fatalf("tools/list lacks DB_QUERY_%s: %v", dbA, tools)
		}
		schema, ok := q.InputSchema.(map[string]any)
		if !ok || schema["type"] != "object" {
			t.Fatalf("DB_QUERY input schema: %#v", q.InputSchema)
		}
		if props, _ := schema["properties"].(map[string]any); props["query"] == nil {
			t.Fatalf("DB_QUERY input schema lacks query: %#v", schema)
		}
		if !strings.Contains(q.Description, "SQL") || !strings.Contains(q.Description, "My Analytics DB") {
			t.Fatalf("DB_QUERY description: %q", q.Description)
		}

		// A real query on PostgreSQL: text and structured content.
		res, body := mcpCallTool(t, cs, "DB_QUERY_"+dbA, map[string]any{"query": "SELECT 1 AS one, 'x' AS two"})
		if res.IsError || body["success"] != true || fmt.Sprint(body["result"]) != "[map[one:1 two:x]]" || body["row_count"] != 1.0 {
			t.Fatalf("query: isError=%v %v", res.IsError, body)
		}
		sc, ok := res.StructuredContent.(map[string]any)
		if !ok || fmt.Sprint(sc["result"]) != "[map[one:1 two:x]]" || sc["success"] != true {
			t.Fatalf("structured content: %#v", res.StructuredContent)
		}

		// The other tools work too, through the same path.
		res, body = mcpCallTool(t, cs, "DB_LIST_TABLES_"+dbA, map[string]any{})
		if res.IsError || body["success"] != true {
			t.Fatalf("list tables: %v", body)
		}

		// A failing query is an isError result, not a protocol error.
		res, body = mcpCallTool(t, cs, "DB_QUERY_"+dbA, map[string]any{"query": "SELEC 1"})
		if !res.IsError || body["success"] != false || body["error"] == "" || body["code"] == "" {
			t.Fatalf("syntax error: isError=%v %v", res.IsError, body)
		}
		if sc, _ := res.StructuredContent.(map[string]any); sc["success"] != false {
			t.Fatalf("syntax error structured content: %#v", res.StructuredContent)
		}
		// So is an unknown tool.
		res, body = mcpCallTool(t, cs, "DB_QUERY_db_doesnotexist", map[string]any{"query": "SELECT 1"})
		if !res.IsError || !notFoundCode(body["code"]) {
			t.Fatalf("unknown tool: isError=%v %v", res.IsError, body)
		}

		// The calls are audited as the token's.
		var mine []storage.AuditEntry
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && len(mine) < 4; time.Sleep(100 * time.Millisecond) {
			entries, err := b.In.Store.AuditLog(context.Background(), userA, 50)
			if err != nil {
				t.Fatal(err)
			}
			mine = mine[:0]
			for _, e := range entries {
				if e.Action == "tool.execute" && e.Actor == "mcp_token:"+tokenAID {
					mine = append(mine, e)
				}
			}
		}
		if len(mine) != 4 || mine[0].Outcome != "error" || mine[len(mine)-1].Outcome != "ok" || mine[len(mine)-1].Target != "DB_QUERY_"+dbA {
			t.Fatalf("audit entries of the MCP calls: %+v", mine)
		}
	})

	t.Run("OtherUser", func(t *testing.T) {
		t.Parallel()
		userB := servicetest.User(t)
		dbB := mcpConnectDB(t, b, userB)
		_, tokenB := mcpMint(t, b, userB, 0)
		csB, _ := mcpSession(t, b, tokenB, nil)
		tools := mcpListTools(t, csB)
		if tools["DB_QUERY_"+dbB] == nil {
			t.Fatalf("B lacks its own tool: %v", tools)
		}
		for name := range tools {
			if strings.Contains(name, dbA) {
				t.Fatalf("B sees A's tool %s", name)
			}
		}
		res, body := mcpCallTool(t, csB, "DB_QUERY_"+dbA, map[string]any{"query": "SELECT 'secret-of-a' AS s"})
		if !res.IsError || !notFoundCode(body["code"]) || strings.Contains(fmt.Sprint(body), "secret-of-a") {
			t.Fatalf("B calling A's tool: isError=%v %v", res.IsError, body)
		}

		// A's session id gets B's token nothing of A's: it is served as B's
		// own request, and A's session goes on.
		csA := lbConnect(t, newRoundRobin(t, tokenA, b.URL), b.URL, "2025-11-25", nil)
		resp, data := mcpRaw(t, b, "Bearer "+tokenB, csA.ID(), `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
		if csA.ID() == "" || resp.StatusCode != http.StatusOK || strings.Contains(string(data), dbA) ||
			!strings.Contains(string(data), "DB_QUERY_"+dbB) {
			t.Fatalf("B's token on A's session %q: %d %s", csA.ID(), resp.StatusCode, data)
		}
		if mcpListTools(t, csA)["DB_QUERY_"+dbA] == nil {
			t.Fatal("A's session lost its tools after B used its id")
		}
	})

	t.Run("Unauthorized", func(t *testing.T) {
		t.Parallel()
		mcpExpect401(t, b, "", "missing_token")
		mcpExpect401(t, b, "Basic dXNlcjpwYXNz", "missing_token")
		mcpExpect401(t, b, "Bearer", "missing_token")
		mcpExpect401(t, b, "Bearer garbage", "invalid_token")
		mcpExpect401(t, b, "Bearer mcp_"+strings.Repeat("A", 43), "invalid_token")
		mcpExpect401(t, b, "Bearer "+tokenA+"x", "invalid_token")

		user := servicetest.User(t)
		_, short := mcpMint(t, b, user, 1)
		time.Sleep(1500 * time.Millisecond)
		mcpExpect401(t, b, "Bearer "+short, "token_expired")

		id, revoked := mcpMint(t, b, user, 0)
		cs, _ := mcpSession(t, b, revoked, nil)
		mcpListTools(t, cs) // works while the token is live
		b.Do(t, "DELETE", "/api/mcp/tokens/"+id+"?user_id="+user, nil).Expect(t, http.StatusOK)
		mcpExpect401(t, b, "Bearer "+revoked, "token_revoked")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := cs.ListTools(ctx, nil); err == nil {
			t.Fatal("an open session kept working after its token was revoked")
		}

		// The SDK client gets an error, not a session.
		client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
		if cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: b.URL + "/mcp",
			HTTPClient: &http.Client{Transport: &mcpBearer{token: revoked, streamUp: make(chan struct{})}}, MaxRetries: -1}, nil); err == nil {
			_ = cs.Close()
			t.Fatal("connected with a revoked token")
		}
	})

	t.Run("ListChanged", func(t *testing.T) {
		t.Parallel()
		user, bystander := servicetest.User(t), servicetest.User(t)
		_, token := mcpMint(t, b, user, 0)
		_, tokenBy := mcpMint(t, b, bystander, 0)
		changed := make(chan struct{}, 16)
		cs, rt := mcpSession(t, b, token, &mcp.ClientOptions{
			ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed <- struct{}{} }})
		byChanged := make(chan struct{}, 16)
		_, rtBy := mcpSession(t, b, tokenBy, &mcp.ClientOptions{
			ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { byChanged <- struct{}{} }})
		if n := len(mcpListTools(t, cs)); n != 0 {
			t.Fatalf("a user without databases has %d tools", n)
		}
		for _, up := range []chan struct{}{rt.streamUp, rtBy.streamUp} {
			select {
			case <-up:
			case <-time.After(15 * time.Second):
				t.Fatal("!!! the MCP client never opened its event stream (GET /mcp): list_changed cannot be observed")
			}
		}

		db := mcpConnectDB(t, b, user)
		select {
		case <-changed:
		case <-time.After(20 * time.Second):
			t.Fatal("no notifications/tools/list_changed after connecting a database")
		}
		if mcpListTools(t, cs)["DB_QUERY_"+db] == nil {
			t.Fatal("the new database's tools are not listed after list_changed")
		}
		for len(changed) > 0 {
			<-changed
		}

		b.Do(t, "POST", "/api/databases/disconnect", map[string]any{"user_id": user, "db_id": db}).Expect(t, http.StatusOK)
		select {
		case <-changed:
		case <-time.After(20 * time.Second):
			t.Fatal("no notifications/tools/list_changed after disconnecting a database")
		}
		if n := len(mcpListTools(t, cs)); n != 0 {
			t.Fatalf("%d tools left after disconnecting the only database", n)
		}
		time.Sleep(500 * time.Millisecond)
		if len(byChanged) != 0 {
			t.Fatal("another user's session was told about this user's tools")
		}
	})
}

// Open event streams (a subscriptions/listen, a session's GET) do not hold
// up a graceful shutdown.
func TestMCPShutdownWithOpenSession(t *testing.T) {
	t.Parallel()
	// Not bound to t: this test shuts the instance down itself.
	b, err := servicetest.Start(nil, service.ModeServe, nil, service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.In.Close(); _ = os.RemoveAll(b.In.Config.DataDir) })
	_, token := mcpMint(t, b, servicetest.User(t), 0)
	cs, rt := mcpSession(t, b, token, &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {}})
	rr := newRoundRobin(t, token, b.URL)
	legacy := lbConnect(t, rr, b.URL, "2025-11-25", nil)
	for _, up := range []<-chan struct{}{rt.streamUp, lbUp(rr)} {
		select {
		case <-up:
		case <-time.After(15 * time.Second):
			t.Fatal("the MCP client never opened its event stream")
		}
	}
	mcpListTools(t, cs)
	mcpListTools(t, legacy)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	if err := b.In.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with an open MCP session: %v", err)
	}
}

// A call whose worker does not answer in time is an isError result naming
// the job, whose result GET /api/jobs/{id} returns later.
func TestMCPToolTimeout(t *testing.T) {
	t.Parallel()
	pgAdmin(t)
	b := startMCP(t, servicetest.Env{"MCP_JOB_TIMEOUT": "1s"})
	user := servicetest.User(t)
	db := mcpConnectDB(t, b, user)
	_, token := mcpMint(t, b, user, 0)
	cs, _ := mcpSession(t, b, token, nil)
	res, body := mcpCallTool(t, cs, "DB_QUERY_"+db, map[string]any{"query": "SELECT pg_sleep(3), 5 AS five"})
	jobID, _ := body["job_id"].(string)
	if !res.IsError || body["code"] != "worker_timeout" || jobID == "" || !strings.Contains(fmt.Sprint(body["error"]), jobID) {
		t.Fatalf("timed-out call: isError=%v %v", res.IsError, body)
	}
	j := waitJob(t, b, jobID, user, 30*time.Second)
	if j.Str("status") != "succeeded" || !strings.Contains(string(j.Body), `"five":5`) {
		t.Fatalf("job of the timed-out call: %s", j.Body)
	}
}
