package composiotest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors/composio/composiotest"
)

var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

// call sends one API request and decodes the JSON answer.
func call(t *testing.T, s *composiotest.Server, method, path, key string, body any) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: invalid JSON %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, resp.Header, out
}

func errorMessage(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

func TestAPIKeyRequired(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t, composiotest.WithAPIKey("right"))
	if s.APIKey() != "right" {
		t.Fatalf("APIKey() = %q", s.APIKey())
	}
	for _, key := range []string{"", "wrong"} {
		status, _, body := call(t, s, "GET", "/api/v3/toolkits", key, nil)
		if status != http.StatusUnauthorized || errorMessage(body) == "" {
			t.Errorf("key %q: status %d body %v", key, status, body)
		}
	}
	if status, _, _ := call(t, s, "GET", "/api/v3/toolkits", "right", nil); status != http.StatusOK {
		t.Errorf("right key: status %d", status)
	}
	// The consent page is for browsers: no key.
	if status, _, _ := call(t, s, "GET", "/consent/lt_unknown", "", nil); status != http.StatusNotFound {
		t.Errorf("unknown consent token: status %d, want 404", status)
	}
}

func TestBothPrefixesAndUnknownRoutes(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	for _, p := range composiotest.Prefixes {
		status, _, body := call(t, s, "GET", p+"/tools/GMAIL_SEND_EMAIL", s.APIKey(), nil)
		if status != http.StatusOK || body["slug"] != "GMAIL_SEND_EMAIL" {
			t.Errorf("%s: status %d body %v", p, status, body)
		}
	}
	if n := s.Requests("GET", "/tools/GMAIL_SEND_EMAIL"); n != 2 {
		t.Errorf("Requests relative = %d, want 2", n)
	}
	if n := s.Requests("GET", "/api/v3.1/tools/GMAIL_SEND_EMAIL"); n != 1 {
		t.Errorf("Requests full = %d, want 1", n)
	}
	status, _, body := call(t, s, "GET", "/api/v3/nothing_here", s.APIKey(), nil)
	if status != http.StatusNotFound || errorMessage(body) == "" {
		t.Errorf("unknown route: %d %v", status, body)
	}
}

func TestListEnvelopeAndCursor(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	status, _, body := call(t, s, "GET", "/api/v3/tools?toolkit_slug=slack&limit=2", s.APIKey(), nil)
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	items, _ := body["items"].([]any)
	cursor, _ := body["next_cursor"].(string)
	if len(items) != 2 || cursor == "" || body["total_pages"] != float64(3) || body["total_items"] != float64(5) || body["current_page"] != float64(1) {
		t.Fatalf("envelope = %v", body)
	}
	seen := map[string]bool{}
	for page := 0; cursor != ""; page++ {
		if page > 5 {
			t.Fatal("pagination does not end")
		}
		for _, it := range items {
			seen[it.(map[string]any)["slug"].(string)] = true
		}
		_, _, body = call(t, s, "GET", "/api/v3/tools?toolkit_slug=slack&limit=2&cursor="+cursor, s.APIKey(), nil)
		items, _ = body["items"].([]any)
		cursor, _ = body["next_cursor"].(string)
	}
	for _, it := range items {
		seen[it.(map[string]any)["slug"].(string)] = true
	}
	if len(seen) != 5 || !seen["SLACK_SEND_MESSAGE"] || !seen["SLACK_LIST_CHANNELS"] {
		t.Errorf("slack tools seen = %v", seen)
	}
	if body["next_cursor"] != nil {
		t.Errorf("last page next_cursor = %v, want null", body["next_cursor"])
	}
	if status, _, _ := call(t, s, "GET", "/api/v3/tools?cursor=garbage", s.APIKey(), nil); status != http.StatusBadRequest {
		t.Errorf("bad cursor status = %d", status)
	}
}

func TestToolSchemas(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	for slug, required := range map[string]string{
		"GMAIL_SEND_EMAIL":     "recipient_email",
		"SLACK_SEND_MESSAGE":   "channel",
		"GOOGLEBIGQUERY_QUERY": "query",
	} {
		status, _, body := call(t, s, "GET", "/api/v3/tools/"+slug, s.APIKey(), nil)
		if status != http.StatusOK {
			t.Fatalf("%s: status %d", slug, status)
		}
		in, _ := body["input_parameters"].(map[string]any)
		props, _ := in["properties"].(map[string]any)
		req, _ := in["required"].([]any)
		if in["type"] != "object" || props[required] == nil || len(req) == 0 {
			t.Errorf("%s input_parameters = %v", slug, in)
		}
		found := false
		for _, r := range req {
			found = found || r == required
		}
		if !found {
			t.Errorf("%s: %s not required: %v", slug, required, req)
		}
	}
}

func TestFaultInjection(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	s.FailNextPath("GET", "/tools", 1, http.StatusInternalServerError, "")
	s.FailNext(1, http.StatusTooManyRequests, "3")

	// The path-specific fault does not hit other paths; the global one does.
	status, hdr, body := call(t, s, "GET", "/api/v3/toolkits", s.APIKey(), nil)
	if status != http.StatusTooManyRequests || hdr.Get("Retry-After") != "3" || errorMessage(body) == "" {
		t.Errorf("global fault: %d %v %v", status, hdr.Get("Retry-After"), body)
	}
	if status, _, _ := call(t, s, "GET", "/api/v3/toolkits", s.APIKey(), nil); status != http.StatusOK {
		t.Errorf("fault outlived its count: %d", status)
	}
	if status, _, _ := call(t, s, "GET", "/api/v3/tools", s.APIKey(), nil); status != http.StatusInternalServerError {
		t.Errorf("path fault: %d", status)
	}
	if status, _, _ := call(t, s, "GET", "/api/v3/tools", s.APIKey(), nil); status != http.StatusOK {
		t.Errorf("after path fault: %d", status)
	}
	s.FailNext(5, http.StatusBadGateway, "")
	s.ClearFaults()
	if status, _, _ := call(t, s, "GET", "/api/v3/tools", s.APIKey(), nil); status != http.StatusOK {
		t.Errorf("after ClearFaults: %d", status)
	}
	if n := s.TotalRequests(); n != 5 {
		t.Errorf("TotalRequests = %d, want 5", n)
	}
}

func TestLatencyHonoursClientCancellation(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	s.SetLatency(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", s.URL()+"/api/v3/toolkits", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-api-key", s.APIKey())
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_ = resp.Body.Close()
		t.Fatal("slow answer arrived before the client's deadline")
	}
	s.SetLatency(0)
	if status, _, _ := call(t, s, "GET", "/api/v3/toolkits", s.APIKey(), nil); status != http.StatusOK {
		t.Errorf("after SetLatency(0): %d", status)
	}
}

func createLink(t *testing.T, s *composiotest.Server, body map[string]any) map[string]any {
	t.Helper()
	status, _, out := call(t, s, "POST", "/api/v3/connected_accounts/link", s.APIKey(), body)
	if status != http.StatusCreated {
		t.Fatalf("create link: %d %v", status, out)
	}
	return out
}

func TestLinkValidation(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	cases := []map[string]any{
		{"user_id": "u"},
		{"auth_config_id": "ac_gmail"},
		{"auth_config_id": "ac_unknown", "user_id": "u"},
		{"auth_config_id": "ac_gmail", "user_id": "u", "callback_url": "javascript:alert(1)"},
	}
	for _, body := range cases {
		status, _, out := call(t, s, "POST", "/api/v3/connected_accounts/link", s.APIKey(), body)
		if status != http.StatusBadRequest || errorMessage(out) == "" {
			t.Errorf("%v: %d %v", body, status, out)
		}
	}
	if len(s.Accounts()) != 0 {
		t.Error("refused links created accounts")
	}
}

func TestConsentWithoutCallbackAndExpiry(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	link := createLink(t, s, map[string]any{"auth_config_id": "ac_slack", "user_id": "u1"})
	resp, err := noRedirect.Get(link["redirect_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("consent without callback: %d", resp.StatusCode)
	}
	a, ok := s.Account(link["connected_account_id"].(string))
	if !ok || a.Status != composiotest.StatusActive || a.Data["access_token"] == nil || a.Data["email"] != nil {
		t.Errorf("slack account = %+v", a)
	}

	short := composiotest.Start(t, composiotest.WithLinkTTL(time.Nanosecond))
	link = createLink(t, short, map[string]any{"auth_config_id": "ac_gmail", "user_id": "u1", "callback_url": "https://x.example/cb"})
	time.Sleep(time.Millisecond) // let the nanosecond TTL pass on coarse clocks
	resp, err = noRedirect.Get(link["redirect_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusGone {
		t.Errorf("expired link: %d, want 410", resp.StatusCode)
	}
	if a, _ := short.Account(link["connected_account_id"].(string)); a.Status != composiotest.StatusInitiated {
		t.Errorf("expired link changed the account: %s", a.Status)
	}
}

func TestAddAccountDefaultsAndStatusChanges(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	a := s.AddAccount(composiotest.Account{UserID: "user 1", Toolkit: "gmail"})
	if !strings.HasPrefix(a.ID, "ca_") || a.Status != composiotest.StatusActive || a.AuthConfigID != "ac_gmail" ||
		a.Data["email"] != "user_1@example.com" || a.CreatedAt.IsZero() {
		t.Errorf("account = %+v", a)
	}
	status, _, body := call(t, s, "GET", "/api/v3/connected_accounts/"+a.ID, s.APIKey(), nil)
	if status != http.StatusOK || body["status"] != "ACTIVE" || body["user_id"] != "user 1" {
		t.Errorf("GET account: %d %v", status, body)
	}
	if !s.SetAccountStatus(a.ID, composiotest.StatusExpired, "token revoked") {
		t.Fatal("SetAccountStatus on a known account failed")
	}
	_, _, body = call(t, s, "GET", "/api/v3/connected_accounts/"+a.ID, s.APIKey(), nil)
	if body["status"] != "EXPIRED" || body["status_reason"] != "token revoked" {
		t.Errorf("after SetAccountStatus: %v", body)
	}
	if s.SetAccountStatus("ca_nope", composiotest.StatusActive, "") {
		t.Error("SetAccountStatus on an unknown account succeeded")
	}
	// Snapshots are copies.
	a.Data["email"] = "changed@example.com"
	if got, _ := s.Account(a.ID); got.Data["email"] != "user_1@example.com" {
		t.Error("Account returned shared data")
	}
}

func execute(t *testing.T, s *composiotest.Server, slug string, body map[string]any) (int, map[string]any) {
	t.Helper()
	status, _, out := call(t, s, "POST", "/api/v3/tools/execute/"+slug, s.APIKey(), body)
	return status, out
}

func TestExecuteValidation(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	gmail := s.AddAccount(composiotest.Account{UserID: "u1", Toolkit: "gmail"})
	s.AddAccount(composiotest.Account{UserID: "u1", Toolkit: "slack", Status: composiotest.StatusExpired})

	// No account id: the user's active account of the toolkit is used; the
	// deprecated entity_id names the user too.
	status, out := execute(t, s, "GMAIL_GET_PROFILE", map[string]any{"entity_id": "u1", "arguments": map[string]any{}})
	data, _ := out["data"].(map[string]any)
	if status != http.StatusOK || out["successful"] != true || data["emailAddress"] != "u1@example.com" {
		t.Errorf("resolve by user: %d %v", status, out)
	}
	if ex := s.Executions(); len(ex) != 1 || ex[0].ConnectedAccountID != gmail.ID {
		t.Errorf("executions = %+v", ex)
	}

	refusals := []struct {
		slug   string
		body   map[string]any
		status int
		msg    string
	}{
		{"SLACK_SEND_MESSAGE", map[string]any{"user_id": "u1", "arguments": map[string]any{"channel": "c", "text": "t"}}, 400, "No connected account"},
		{"SLACK_SEND_MESSAGE", map[string]any{"connected_account_id": gmail.ID, "arguments": map[string]any{}}, 400, "toolkit"},
		{"GMAIL_SEND_EMAIL", map[string]any{"arguments": map[string]any{}}, 400, "user_id"},
		{"GMAIL_SEND_EMAIL", map[string]any{"user_id": "u1", "arguments": "nope"}, 400, "JSON object"},
		{"GMAIL_SEND_EMAIL", map[string]any{"user_id": "u1", "version": "19990101_00"}, 400, "Version"},
		{"NOT_A_TOOL", map[string]any{"user_id": "u1"}, 404, "not found"},
	}
	for _, r := range refusals {
		status, out := execute(t, s, r.slug, r.body)
		if status != r.status || !strings.Contains(errorMessage(out), r.msg) {
			t.Errorf("%s %v: %d %v, want %d %q", r.slug, r.body, status, out, r.status, r.msg)
		}
	}

	// Wrong argument types fail inside the tool, as Composio reports them.
	status, out = execute(t, s, "GMAIL_FETCH_EMAILS", map[string]any{"user_id": "u1", "arguments": map[string]any{"max_results": "ten"}})
	if status != http.StatusOK || out["successful"] != false || !strings.Contains(fmt.Sprint(out["error"]), "max_results") {
		t.Errorf("type check: %d %v", status, out)
	}
	if n := len(s.Executions()); n != 2 {
		t.Errorf("executions = %d, want 2 (refusals are not executions)", n)
	}
}

func TestSetToolHandler(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	acct := s.AddAccount(composiotest.Account{UserID: "u", Toolkit: "googlebigquery"})
	ok := s.SetToolHandler("GOOGLEBIGQUERY_QUERY", func(c composiotest.ToolCall) (any, error) {
		if c.Account.ID != acct.ID {
			return nil, fmt.Errorf("wrong account %s", c.Account.ID)
		}
		if c.Arguments["query"] == "boom" {
			return nil, fmt.Errorf("table not found: boom")
		}
		return map[string]any{"rows": []any{map[string]any{"x": 1}}}, nil
	})
	if !ok || s.SetToolHandler("NOPE", func(composiotest.ToolCall) (any, error) { return nil, nil }) {
		t.Fatal("SetToolHandler result wrong")
	}
	_, out := execute(t, s, "GOOGLEBIGQUERY_QUERY", map[string]any{"user_id": "u", "connected_account_id": acct.ID, "arguments": map[string]any{"query": "SELECT 1"}})
	if out["successful"] != true || !strings.Contains(fmt.Sprint(out["data"]), "rows") {
		t.Errorf("custom handler success: %v", out)
	}
	_, out = execute(t, s, "GOOGLEBIGQUERY_QUERY", map[string]any{"user_id": "u", "connected_account_id": acct.ID, "arguments": map[string]any{"query": "boom"}})
	if out["successful"] != false || out["error"] != "table not found: boom" || out["log_id"] == "" {
		t.Errorf("custom handler failure: %v", out)
	}
}

func TestDeleteAndListAccounts(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	a := s.AddAccount(composiotest.Account{UserID: "u", Toolkit: "gmail"})
	b := s.AddAccount(composiotest.Account{UserID: "u", Toolkit: "slack"})
	status, _, out := call(t, s, "DELETE", "/api/v3/connected_accounts/"+a.ID, s.APIKey(), nil)
	if status != http.StatusOK || out["success"] != true {
		t.Fatalf("delete: %d %v", status, out)
	}
	if status, _, _ := call(t, s, "DELETE", "/api/v3/connected_accounts/"+a.ID, s.APIKey(), nil); status != http.StatusNotFound {
		t.Errorf("second delete: %d", status)
	}
	_, _, out = call(t, s, "GET", "/api/v3/connected_accounts?user_ids=u", s.APIKey(), nil)
	items, _ := out["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["id"] != b.ID {
		t.Errorf("list after delete = %v", out)
	}
	if got, ok := s.Account(a.ID); !ok || !got.Deleted {
		t.Errorf("deleted account snapshot = %+v", got)
	}
	if d := s.Deleted(); len(d) != 1 || d[0] != a.ID {
		t.Errorf("Deleted() = %v", d)
	}
}

func TestNewServerSandbox(t *testing.T) {
	t.Parallel()
	s, err := composiotest.NewServer("127.0.0.1:0", composiotest.WithAPIKey("sandbox"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Errorf("URL() = %q", s.URL())
	}
	if status, _, _ := call(t, s, "GET", "/api/v3/toolkits/gmail", "sandbox", nil); status != http.StatusOK {
		t.Errorf("sandbox answer: %d", status)
	}
	link := createLink(t, s, map[string]any{"auth_config_id": "ac_gmail", "user_id": "u"})
	if !strings.HasPrefix(link["redirect_url"].(string), s.URL()+"/consent/") {
		t.Errorf("redirect_url = %v", link["redirect_url"])
	}
	s.Close()
	s.Close() // idempotent
	if _, err := http.Get(s.URL() + "/api/v3/toolkits"); err == nil {
		t.Error("server still answers after Close")
	}

	wild, err := composiotest.NewServer(":0", composiotest.WithPublicURL("https://sandbox.example.com/"))
	if err != nil {
		t.Fatal(err)
	}
	defer wild.Close()
	if strings.Contains(wild.URL(), "[::]") || strings.Contains(wild.URL(), "0.0.0.0") {
		t.Errorf("wildcard URL() = %q is not dialable", wild.URL())
	}
	link = createLink(t, wild, map[string]any{"auth_config_id": "ac_gmail", "user_id": "u"})
	if !strings.HasPrefix(link["redirect_url"].(string), "https://sandbox.example.com/consent/") {
		t.Errorf("public redirect_url = %v", link["redirect_url"])
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			user := fmt.Sprintf("user_%d", i)
			b, _ := json.Marshal(map[string]any{"auth_config_id": "ac_gmail", "user_id": user, "callback_url": "https://x.example/cb"})
			req, _ := http.NewRequest("POST", s.URL()+"/api/v3/connected_accounts/link", bytes.NewReader(b))
			req.Header.Set("x-api-key", s.APIKey())
			resp, err := noRedirect.Do(req)
			if err != nil {
				errs <- err
				return
			}
			var link struct {
				RedirectURL string `json:"redirect_url"`
			}
			err = json.NewDecoder(resp.Body).Decode(&link)
			_ = resp.Body.Close()
			if err != nil {
				errs <- err
				return
			}
			resp, err = noRedirect.Get(link.RedirectURL)
			if err != nil {
				errs <- err
				return
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusFound {
				errs <- fmt.Errorf("%s: consent status %d", user, resp.StatusCode)
			}
			_ = s.Accounts()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	active := 0
	for _, a := range s.Accounts() {
		if a.Status == composiotest.StatusActive {
			active++
		}
	}
	if active != 20 {
		t.Errorf("active accounts = %d, want 20", active)
	}
}

// The double knows Composio's real toolkit slugs only: BigQuery is
// googlebigquery, with GOOGLEBIGQUERY_* tools, and "bigquery" is unknown,
// so a service that sends our provider name fails here as it would against
// the real API.
func TestRealToolkitSlugs(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	if status, _, _ := call(t, s, "GET", "/api/v3/toolkits/bigquery", s.APIKey(), nil); status != http.StatusNotFound {
		t.Errorf("toolkit bigquery: status %d, want 404", status)
	}
	status, _, body := call(t, s, "GET", "/api/v3/toolkits/googlebigquery", s.APIKey(), nil)
	if status != http.StatusOK || body["slug"] != "googlebigquery" {
		t.Errorf("toolkit googlebigquery: %d %v", status, body)
	}
	if _, _, body := call(t, s, "GET", "/api/v3/tools?toolkit_slug=bigquery", s.APIKey(), nil); body["total_items"] != float64(0) {
		t.Errorf("tools of toolkit bigquery: %v", body)
	}
	for _, tk := range []string{"gmail", "slack", "googlebigquery"} {
		_, _, body := call(t, s, "GET", "/api/v3/tools?limit=100&toolkit_slug="+tk, s.APIKey(), nil)
		items, _ := body["items"].([]any)
		if len(items) == 0 {
			t.Errorf("toolkit %s has no tools", tk)
		}
		for _, it := range items {
			tool := it.(map[string]any)
			slug, _ := tool["slug"].(string)
			if !strings.HasPrefix(slug, strings.ToUpper(tk)+"_") || tool["toolkit"].(map[string]any)["slug"] != tk {
				t.Errorf("tool %s of toolkit %s: %v", slug, tk, tool["toolkit"])
			}
		}
	}
	if status, _, _ := call(t, s, "GET", "/api/v3/tools/BIGQUERY_QUERY", s.APIKey(), nil); status != http.StatusNotFound {
		t.Errorf("tool BIGQUERY_QUERY: status %d, want 404", status)
	}
	// A link made with the BigQuery auth config is a googlebigquery account.
	status, _, body = call(t, s, "POST", "/api/v3/connected_accounts/link", s.APIKey(),
		map[string]any{"auth_config_id": "ac_bigquery", "user_id": "u"})
	id, _ := body["connected_account_id"].(string)
	if a, ok := s.Account(id); status != http.StatusCreated || !ok || a.Toolkit != "googlebigquery" {
		t.Errorf("link of ac_bigquery: %d %v, account %+v", status, body, a)
	}
	for name, f := range map[string]func(){
		"AddAccount":     func() { s.AddAccount(composiotest.Account{UserID: "u", Toolkit: "bigquery"}) },
		"WithAuthConfig": func() { composiotest.New(composiotest.WithAuthConfig("bigquery", "ac_x")).Close() },
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), `no toolkit "bigquery"`) {
					t.Errorf("%s with toolkit bigquery: recovered %v, want a panic naming it", name, r)
				}
			}()
			f()
		}()
	}
}

// An account Composio stopped accepting (expired, revoked, disabled,
// failed) shows its status, and no tool runs on it.
func TestInactiveAccountsRefuseTools(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	for _, st := range []string{composiotest.StatusExpired, composiotest.StatusRevoked, composiotest.StatusInactive, composiotest.StatusFailed} {
		a := s.AddAccount(composiotest.Account{UserID: "user_" + st, Toolkit: "slack"})
		s.SetAccountStatus(a.ID, st, "")
		_, _, body := call(t, s, "GET", "/api/v3/connected_accounts/"+a.ID, s.APIKey(), nil)
		if body["status"] != st || body["is_disabled"] != (st == composiotest.StatusInactive) {
			t.Errorf("%s: account %v", st, body)
		}
		status, out := execute(t, s, "SLACK_SEND_MESSAGE", map[string]any{"user_id": a.UserID, "connected_account_id": a.ID,
			"arguments": map[string]any{"channel": "#general", "text": "hi"}})
		errObj, _ := out["error"].(map[string]any)
		if status != http.StatusBadRequest || errObj == nil || !strings.Contains(fmt.Sprint(errObj["message"]), st) {
			t.Errorf("%s: execute answered %d %v", st, status, out)
		}
	}
	if n := len(s.Executions()); n != 0 {
		t.Fatalf("%d tools ran on inactive accounts", n)
	}
}
