package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors/composio/composiotest"
	"github.com/openanalyst/mcp-integration-service/service"
	"github.com/openanalyst/mcp-integration-service/service/servicetest"
)

// oaRedirect is where OA asks to be sent back after consent.
const oaRedirect = "https://app.openanalyst.com/connectors?callback=true"

// composioEnv configures a service against a composiotest double.
func composioEnv(double *composiotest.Server, authConfigs string) servicetest.Env {
	return servicetest.Env{
		"COMPOSIO_API_KEY":        double.APIKey(),
		"COMPOSIO_BASE_URL":       double.URL(),
		"COMPOSIO_AUTH_CONFIGS":   authConfigs,
		"OAUTH_ALLOWED_REDIRECTS": "https://app.openanalyst.com",
		// OAUTH_REDIRECT_BASE is left unset: the callback base is then the
		// API's own URL, known only once it listens (port 0).
	}
}

// startComposio runs a service wired to a fresh Composio double.
func startComposio(t *testing.T, authConfigs string, o service.Options) (*servicetest.Bundle, *composiotest.Server) {
	t.Helper()
	double := composiotest.Start(t)
	b, err := servicetest.Start(t, service.ModeServe, composioEnv(double, authConfigs), o)
	if err != nil {
		t.Fatal(err)
	}
	return b, double
}

const allAuthConfigs = "gmail:ac_gmail,slack:ac_slack,bigquery:ac_bigquery"

// browser follows nothing: each hop of the OAuth dance is checked.
var browser = &http.Client{Timeout: 60 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

type hop struct {
	Status   int
	Location string
	Body     []byte
}

func visit(t *testing.T, u string) hop {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return hop{Status: resp.StatusCode, Location: resp.Header.Get("Location"), Body: body}
}

// connect starts a flow and returns auth_url and the integration id.
func connect(t *testing.T, b *servicetest.Bundle, user, provider string) (authURL, integrationID string) {
	t.Helper()
	r := b.Do(t, "POST", "/api/integrations/connect",
		map[string]any{"user_id": user, "provider": provider, "redirect_url": oaRedirect}).Expect(t, 200)
	authURL, integrationID = r.Str("auth_url"), r.Str("integration_id")
	if authURL == "" || !strings.HasPrefix(integrationID, "int_") {
		t.Fatalf("connect: %s", r.Body)
	}
	return authURL, integrationID
}

// consent opens auth_url as the browser would (query added, e.g. deny=1),
// and returns the callback URL Composio redirects to.
func consent(t *testing.T, b *servicetest.Bundle, authURL, extra string) string {
	t.Helper()
	if extra != "" {
		authURL += "?" + extra
	}
	h := visit(t, authURL)
	if h.Status != http.StatusFound || !strings.HasPrefix(h.Location, b.URL+"/api/integrations/callback?") {
		t.Fatalf("consent: %d to %q: %s", h.Status, h.Location, h.Body)
	}
	return h.Location
}

// back opens the callback and returns where we send the browser.
func back(t *testing.T, callbackURL string) string {
	t.Helper()
	h := visit(t, callbackURL)
	if h.Status != http.StatusFound {
		t.Fatalf("callback: %d: %s", h.Status, h.Body)
	}
	return h.Location
}

func wantBack(status, provider string) string {
	return oaRedirect + "&status=" + status + "&provider=" + provider
}

// connectFully runs connect → consent → callback and checks the success.
func connectFully(t *testing.T, b *servicetest.Bundle, user, provider string) string {
	t.Helper()
	authURL, id := connect(t, b, user, provider)
	if got := back(t, consent(t, b, authURL, "")); got != wantBack("success", provider) {
		t.Fatalf("back to %q, want %q", got, wantBack("success", provider))
	}
	return id
}

type connectedEntry struct {
	IntegrationID        string `json:"integration_id"`
	Provider             string `json:"provider"`
	Status               string `json:"status"`
	ConnectedEmail       string `json:"connected_email"`
	ComposioEntityID     string `json:"composio_entity_id"`
	ComposioConnectionID string `json:"composio_connection_id"`
	CreatedAt            string `json:"created_at"`
	StateNonce           any    `json:"state_nonce"`
	RedirectURL          any    `json:"redirect_url"`
}

func connected(t *testing.T, b *servicetest.Bundle, user string) []connectedEntry {
	t.Helper()
	r := b.Do(t, "GET", "/api/integrations/connected?user_id="+url.QueryEscape(user), nil).Expect(t, 200)
	var out struct {
		Integrations []connectedEntry `json:"integrations"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil || out.Integrations == nil {
		t.Fatalf("connected: %s", r.Body)
	}
	for _, e := range out.Integrations {
		if e.StateNonce != nil || e.RedirectURL != nil {
			t.Fatalf("connected leaks OAuth internals: %s", r.Body)
		}
	}
	return out.Integrations
}

type toolEntry struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Provider    string            `json:"provider"`
	Parameters  map[string]string `json:"parameters"`
	InputSchema struct {
		Type       string                    `json:"type"`
		Properties map[string]map[string]any `json:"properties"`
		Required   []string                  `json:"required"`
	} `json:"input_schema"`
}

func toolsOf(t *testing.T, b *servicetest.Bundle, user string) map[string]toolEntry {
	t.Helper()
	r := b.Do(t, "GET", "/api/tools?user_id="+url.QueryEscape(user), nil).Expect(t, 200)
	var out struct {
		Tools []toolEntry `json:"tools"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("tools: %v: %s", err, r.Body)
	}
	m := map[string]toolEntry{}
	for _, tool := range out.Tools {
		m[tool.Name] = tool
	}
	return m
}

// execute runs a tool through POST /api/tools/execute.
func execute(t *testing.T, b *servicetest.Bundle, user, action string, params any) *servicetest.Response {
	t.Helper()
	return b.Do(t, "POST", "/api/tools/execute", map[string]any{"user_id": user, "action": action, "params": params})
}

// accountOf returns the double's account of a user and Composio toolkit
// (googlebigquery for the provider bigquery).
func accountOf(t *testing.T, double *composiotest.Server, user, toolkit string) composiotest.Account {
	t.Helper()
	var found []composiotest.Account
	for _, a := range double.Accounts() {
		if a.UserID == "user_"+user && a.Toolkit == toolkit {
			found = append(found, a)
		}
	}
	if len(found) == 0 {
		t.Fatalf("no %s account of %s at the double", toolkit, user)
	}
	return found[len(found)-1]
}

// setState replaces one query parameter of a URL.
func setParam(t *testing.T, raw, key, value string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func param(t *testing.T, raw, key string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get(key)
}

func wantError(t *testing.T, r *servicetest.Response, status int, code string) {
	t.Helper()
	r.Expect(t, status)
	if r.JSON["success"] != false || r.Str("code") != code || r.Str("error") == "" {
		t.Fatalf("want %d %s, got: %s", status, code, r.Body)
	}
}

// TestComposio runs the OAuth journeys and refusals against one service and
// one Composio double; every subtest has users of its own.
func TestComposio(t *testing.T) {
	t.Parallel()
	b, double := startComposio(t, allAuthConfigs, service.Options{})

	t.Run("Providers", func(t *testing.T) {
		t.Parallel()
		r := b.Do(t, "GET", "/api/integrations", nil).Expect(t, 200)
		var out struct {
			Integrations []struct {
				Provider    string `json:"provider"`
				Name        string `json:"name"`
				Description string `json:"description"`
				Logo        string `json:"logo"`
				Configured  bool   `json:"configured"`
			} `json:"integrations"`
		}
		if err := json.Unmarshal(r.Body, &out); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range out.Integrations {
			names = append(names, p.Provider)
			if !p.Configured || p.Logo == "" || p.Name == "" {
				t.Errorf("provider %+v", p)
			}
		}
		if !reflect.DeepEqual(names, []string{"gmail", "slack", "bigquery"}) {
			t.Fatalf("providers %v", names)
		}
		// Described by Composio, not by the built-in fallback; BigQuery by
		// its toolkit googlebigquery.
		if g := out.Integrations[0]; g.Name != "Gmail" || !strings.HasPrefix(g.Description, "Gmail is Google's email service") {
			t.Fatalf("gmail: %+v", g)
		}
		if bq := out.Integrations[2]; bq.Name != "Google BigQuery" || !strings.HasPrefix(bq.Description, "Google BigQuery is") {
			t.Fatalf("bigquery: %+v", bq)
		}
		if b.DoKey(t, "", "GET", "/api/integrations", nil).Status != http.StatusUnauthorized {
			t.Fatal("GET /api/integrations without a key was not refused")
		}
	})

	journeys := []struct {
		provider, toolkit, tool string // toolkit: Composio's slug
		params                  map[string]any
		param                   string // a parameter the tool's schema declares
		email                   bool
		check                   func(result map[string]any) bool
	}{
		{"gmail", "gmail", "GMAIL_SEND_EMAIL", map[string]any{"recipient_email": "marketing@company.com",
			"subject": "Weekly Ad Campaign Summary", "body": "Black Friday: $5,000 spent"}, "recipient_email", true,
			func(r map[string]any) bool { return r["status"] == "sent" && r["messageId"] != "" }},
		{"slack", "slack", "SLACK_SEND_MESSAGE", map[string]any{"channel": "#general", "text": "Campaign summary is out"}, "channel", false,
			func(r map[string]any) bool { return r["ok"] == true && r["channel"] == "#general" }},
		{"bigquery", "googlebigquery", "GOOGLEBIGQUERY_QUERY", map[string]any{"query": "SELECT day, events FROM analytics.daily"},
			"query", false, func(r map[string]any) bool { rows, _ := r["rows"].([]any); return len(rows) > 0 }},
	}
	for _, j := range journeys {
		t.Run("Journey/"+j.provider, func(t *testing.T) {
			t.Parallel()
			user := servicetest.User(t)
			authURL, id := connect(t, b, user, j.provider)
			if !strings.HasPrefix(authURL, double.URL()+"/consent/") {
				t.Fatalf("auth_url %q is not the double's consent page", authURL)
			}
			if got := connected(t, b, user); len(got) != 0 {
				t.Fatalf("a pending flow is listed as connected: %+v", got)
			}
			cb := consent(t, b, authURL, "")
			if param(t, cb, "state") == "" || param(t, cb, "status") != "success" || param(t, cb, "connected_account_id") == "" {
				t.Fatalf("callback URL %q", cb)
			}
			if got := back(t, cb); got != wantBack("success", j.provider) {
				t.Fatalf("back to %q, want %q", got, wantBack("success", j.provider))
			}

			acct := accountOf(t, double, user, j.toolkit)
			list := connected(t, b, user)
			if len(list) != 1 {
				t.Fatalf("connected: %+v", list)
			}
			c := list[0]
			if c.IntegrationID != id || c.Provider != j.provider || c.Status != "active" ||
				c.ComposioEntityID != "user_"+user || c.ComposioConnectionID != acct.ID || c.CreatedAt == "" {
				t.Fatalf("connected entry %+v (account %s)", c, acct.ID)
			}
			if j.email && c.ConnectedEmail != acct.Data["email"] || j.email && !strings.Contains(c.ConnectedEmail, "@") {
				t.Fatalf("connected_email %q, account data %v", c.ConnectedEmail, acct.Data)
			}

			tools := toolsOf(t, b, user)
			tool, ok := tools[j.tool]
			if !ok {
				t.Fatalf("%s missing from the tools: %v", j.tool, slices.Collect(maps.Keys(tools)))
			}
			if tool.Provider != j.provider || tool.Description == "" || tool.InputSchema.Type != "object" ||
				tool.InputSchema.Properties[j.param]["type"] != "string" || tool.Parameters[j.param] != "string" ||
				!slices.Contains(tool.InputSchema.Required, j.param) {
				t.Fatalf("tool %+v", tool)
			}
			for name, tl := range tools {
				if tl.Provider != j.provider || !strings.HasPrefix(name, strings.ToUpper(j.toolkit)+"_") {
					t.Fatalf("tool %s of %s listed for a user who connected %s only", name, tl.Provider, j.provider)
				}
			}

			before := len(double.Executions())
			r := execute(t, b, user, j.tool, j.params).Expect(t, 200)
			var res struct {
				Success bool           `json:"success"`
				Result  map[string]any `json:"result"`
			}
			if err := json.Unmarshal(r.Body, &res); err != nil || !res.Success || !j.check(res.Result) {
				t.Fatalf("execute: %s", r.Body)
			}
			var mine []composiotest.Execution
			for _, e := range double.Executions()[before:] {
				if e.UserID == "user_"+user {
					mine = append(mine, e)
				}
			}
			if len(mine) != 1 || mine[0].Tool != j.tool || mine[0].ConnectedAccountID != acct.ID || !mine[0].Successful ||
				fmt.Sprint(mine[0].Arguments) != fmt.Sprint(j.params) {
				t.Fatalf("executions at the double: %+v", mine)
			}

			d := b.Do(t, "POST", "/api/integrations/disconnect", map[string]any{"user_id": user, "integration_id": id}).Expect(t, 200)
			if d.JSON["success"] != true || d.Str("integration_id") != id || d.Str("status") != "removed" {
				t.Fatalf("disconnect: %s", d.Body)
			}
			if !slices.Contains(double.Deleted(), acct.ID) {
				t.Fatalf("account %s not deleted at Composio (deleted: %v)", acct.ID, double.Deleted())
			}
			if got := connected(t, b, user); len(got) != 0 {
				t.Fatalf("still connected after disconnect: %+v", got)
			}
			if _, ok := toolsOf(t, b, user)[j.tool]; ok {
				t.Fatalf("%s still listed after disconnect", j.tool)
			}
			wantError(t, execute(t, b, user, j.tool, j.params), 404, "integration_not_found")
			wantError(t, b.Do(t, "POST", "/api/integrations/disconnect", map[string]any{"user_id": user, "integration_id": id}),
				404, "integration_not_found")
		})
	}

	t.Run("LegacyCallbackAndDisconnectByProvider", func(t *testing.T) {
		t.Parallel()
		user := servicetest.User(t)
		authURL, id := connect(t, b, user, "gmail")
		// The older flow's camel case callback: connectedAccountId & appName.
		cb := consent(t, b, authURL, "legacy=1")
		if param(t, cb, "connectedAccountId") == "" || param(t, cb, "connected_account_id") != "" {
			t.Fatalf("legacy callback URL %q", cb)
		}
		if got := back(t, cb); got != wantBack("success", "gmail") {
			t.Fatalf("back to %q", got)
		}
		acct := accountOf(t, double, user, "gmail")
		d := b.Do(t, "POST", "/api/integrations/disconnect", map[string]any{"user_id": user, "provider": "gmail"}).Expect(t, 200)
		if d.Str("integration_id") != id || !slices.Contains(double.Deleted(), acct.ID) || len(connected(t, b, user)) != 0 {
			t.Fatalf("disconnect by provider: %s", d.Body)
		}
		wantError(t, b.Do(t, "POST", "/api/integrations/disconnect", map[string]any{"user_id": user, "provider": "gmail"}),
			404, "integration_not_found")
	})

	t.Run("ReconnectReplacesTheOldConnection", func(t *testing.T) {
		t.Parallel()
		user := servicetest.User(t)
		first := connectFully(t, b, user, "gmail")
		old := accountOf(t, double, user, "gmail")
		second := connectFully(t, b, user, "gmail")
		list := connected(t, b, user)
		if len(list) != 1 || list[0].IntegrationID != second || second == first {
			t.Fatalf("after reconnecting: %+v (first %s, second %s)", list, first, second)
		}
		if !slices.Contains(double.Deleted(), old.ID) || list[0].ComposioConnectionID == old.ID {
			t.Fatalf("the replaced account %s was not deleted at Composio", old.ID)
		}
		execute(t, b, user, "GMAIL_SEND_EMAIL", map[string]any{"recipient_email": "a@b.co", "body": "hi"}).Expect(t, 200)
	})

	t.Run("ForgedState", func(t *testing.T) {
		t.Parallel()
		user := servicetest.User(t)
		authURL, _ := connect(t, b, user, "gmail")
		cb := consent(t, b, authURL, "")
		state := param(t, cb, "state")
		payload, sig, _ := strings.Cut(state, ".")
		raw, _ := base64.RawURLEncoding.DecodeString(sig)
		raw[len(raw)-1] ^= 0x01
		// A payload that sends the browser elsewhere, under the real signature.
		var claims map[string]any
		pb, _ := base64.RawURLEncoding.DecodeString(payload)
		if err := json.Unmarshal(pb, &claims); err != nil {
			t.Fatalf("state payload: %v", err)
		}
		claims["r"] = "https://evil.example/steal"
		evil, _ := json.Marshal(claims)
		for name, forged := range map[string]string{
			"tampered signature": payload + "." + base64.RawURLEncoding.EncodeToString(raw),
			"tampered payload":   base64.RawURLEncoding.EncodeToString(evil) + "." + sig,
			"garbage":            "not-a-state",
			"empty":              "",
		} {
			h := visit(t, setParam(t, cb, "state", forged))
			var body map[string]any
			_ = json.Unmarshal(h.Body, &body)
			if h.Status != http.StatusBadRequest || h.Location != "" || body["code"] != "invalid_state" {
				t.Fatalf("%s: %d, Location %q, body %s", name, h.Status, h.Location, h.Body)
			}
		}
		if len(connected(t, b, user)) != 0 {
			t.Fatal("a forged state connected something")
		}
		// The real callback still works: forgeries consumed nothing.
		if got := back(t, cb); got != wantBack("success", "gmail") {
			t.Fatalf("back to %q", got)
		}
	})

	t.Run("ReplayedState", func(t *testing.T) {
		t.Parallel()
		user := servicetest.User(t)
		authURL, id := connect(t, b, user, "gmail")
		cb := consent(t, b, authURL, "")
		if got := back(t, cb); got != wantBack("success", "gmail") {
			t.Fatalf("first callback: %q", got)
		}
		before := connected(t, b, user)
		if got := back(t, cb); got != wantBack("failed", "gmail") {
			t.Fatalf("replayed callback: back to %q, want failed", got)
		}
		after := connected(t, b, user)
		if !reflect.DeepEqual(before, after) || len(after) != 1 || after[0].IntegrationID != id {
			t.Fatalf("a replay changed the integration: %+v → %+v", before, after)
		}
	})

	t.Run("ConsentDenied", func(t *testing.T) {
		t.Parallel()
		user := servicetest.User(t)
		authURL, _ := connect(t, b, user, "slack")
		cb := consent(t, b, authURL, "deny=1")
		if param(t, cb, "status") != "failed" {
			t.Fatalf("callback URL %q", cb)
		}
		if got := back(t, cb); got != wantBack("failed", "slack") {
			t.Fatalf("back to %q", got)
		}
		if len(connected(t, b, user)) != 0 {
			t.Fatal("a denied consent was stored as active")
		}
		wantError(t, execute(t, b, user, "SLACK_SEND_MESSAGE", map[string]any{"channel": "#x", "text": "y"}), 404, "integration_not_found")
	})

	t.Run("StatusSuccessForgedOnAFailedAccount", func(t *testing.T) {
		t.Parallel()
		user := servicetest.User(t)
		authURL, _ := connect(t, b, user, "gmail")
		cb := consent(t, b, authURL, "deny=1")
		// The query says success, but Composio says FAILED: the account wins.
		if got := back(t, setParam(t, cb, "status", "success")); got != wantBack("failed", "gmail") {
			t.Fatalf("back to %q", got)
		}
		if len(connected(t, b, user)) != 0 {
			t.Fatal("a FAILED account was stored as active")
		}
	})

	for _, outcome := range []string{composiotest.StatusExpired, composiotest.StatusFailed} {
		t.Run("AccountNot_"+outcome, func(t *testing.T) {
			t.Parallel()
			user := servicetest.User(t)
			authURL, _ := connect(t, b, user, "gmail")
			acct := accountOf(t, double, user, "gmail")
			double.SetOutcome(acct.ID, outcome)
			cb := consent(t, b, authURL, "")
			if param(t, cb, "status") != "success" {
				t.Fatalf("callback URL %q", cb)
			}
			if got := back(t, cb); got != wantBack("failed", "gmail") {
				t.Fatalf("back to %q", got)
			}
			if len(connected(t, b, user)) != 0 {
				t.Fatalf("a %s account was stored as active", outcome)
			}
		})
	}

	t.Run("AccountOfAnotherUser", func(t *testing.T) {
		t.Parallel()
		alice, mallory := servicetest.User(t), servicetest.User(t)
		connectFully(t, b, alice, "gmail")
		aliceAcct := accountOf(t, double, alice, "gmail")
		// Mallory starts her own flow, then swaps in Alice's account id.
		authURL, _ := connect(t, b, mallory, "gmail")
		cb := consent(t, b, authURL, "")
		if got := back(t, setParam(t, cb, "connected_account_id", aliceAcct.ID)); got != wantBack("failed", "gmail") {
			t.Fatalf("back to %q", got)
		}
		if len(connected(t, b, mallory)) != 0 {
			t.Fatal("another user's account was accepted")
		}
		if len(connected(t, b, alice)) != 1 || slices.Contains(double.Deleted(), aliceAcct.ID) {
			t.Fatal("Alice's connection was touched")
		}
	})

	t.Run("ConnectRefusals", func(t *testing.T) {
		t.Parallel()
		user := servicetest.User(t)
		n := double.Requests("POST", "/connected_accounts/link")
		for _, redirect := range []string{"https://evil.example/connectors", "javascript:alert(1)",
			"https://app.openanalyst.com.evil.example/", "https://user@app.openanalyst.com/", "http://app.openanalyst.com/",
			"//app.openanalyst.com/"} {
			wantError(t, b.Do(t, "POST", "/api/integrations/connect",
				map[string]any{"user_id": user, "provider": "gmail", "redirect_url": redirect}), 400, "redirect_not_allowed")
		}
		wantError(t, b.Do(t, "POST", "/api/integrations/connect",
			map[string]any{"user_id": user, "provider": "dropbox", "redirect_url": oaRedirect}), 400, "unknown_provider")
		wantError(t, b.Do(t, "POST", "/api/integrations/connect",
			map[string]any{"user_id": user, "provider": "gmail"}), 400, "missing_field")
		wantError(t, b.Do(t, "POST", "/api/integrations/connect",
			map[string]any{"provider": "gmail", "redirect_url": oaRedirect}), 400, "missing_field")
		if got := double.Requests("POST", "/connected_accounts/link"); got != n {
			t.Fatalf("refused connects still created %d links at Composio", got-n)
		}
		if b.DoKey(t, "wrong", "POST", "/api/integrations/connect",
			map[string]any{"user_id": user, "provider": "gmail", "redirect_url": oaRedirect}).Status != http.StatusUnauthorized {
			t.Fatal("connect with a wrong key was not refused")
		}
	})

	t.Run("Isolation", func(t *testing.T) {
		t.Parallel()
		alice, bob := servicetest.User(t), servicetest.User(t)
		id := connectFully(t, b, alice, "gmail")
		acct := accountOf(t, double, alice, "gmail")
		if got := connected(t, b, bob); len(got) != 0 {
			t.Fatalf("Bob sees %+v", got)
		}
		if _, ok := toolsOf(t, b, bob)["GMAIL_SEND_EMAIL"]; ok {
			t.Fatal("Bob lists Alice's Gmail tools")
		}
		before := len(double.Executions())
		wantError(t, execute(t, b, bob, "GMAIL_SEND_EMAIL", map[string]any{"recipient_email": "x@y.z", "body": "hi"}),
			404, "integration_not_found")
		wantError(t, b.Do(t, "POST", "/api/integrations/disconnect", map[string]any{"user_id": bob, "integration_id": id}),
			404, "integration_not_found")
		wantError(t, b.Do(t, "POST", "/api/integrations/disconnect", map[string]any{"user_id": bob, "provider": "gmail"}),
			404, "integration_not_found")
		for _, e := range double.Executions()[before:] {
			if e.ConnectedAccountID == acct.ID {
				t.Fatalf("Bob's call ran on Alice's account: %+v", e)
			}
		}
		if slices.Contains(double.Deleted(), acct.ID) || len(connected(t, b, alice)) != 1 {
			t.Fatal("Bob's disconnect reached Alice's account")
		}
	})

	t.Run("ToolRefusals", func(t *testing.T) {
		t.Parallel()
		user := servicetest.User(t)
		connectFully(t, b, user, "gmail")
		r := execute(t, b, user, "SLACK_SEND_MESSAGE", map[string]any{"channel": "#general", "text": "hi"})
		wantError(t, r, 404, "integration_not_found")
		if !strings.Contains(r.Str("error"), "connect slack first") {
			t.Fatalf("message %q does not say what to do", r.Str("error"))
		}
		r = execute(t, b, user, "GOOGLEBIGQUERY_QUERY", map[string]any{"query": "SELECT 1"})
		wantError(t, r, 404, "integration_not_found")
		if !strings.Contains(r.Str("error"), "connect bigquery first") {
			t.Fatalf("message %q does not name the provider bigquery", r.Str("error"))
		}
		wantError(t, execute(t, b, user, "GMAIL_DOES_NOT_EXIST", nil), 404, "tool_not_found")
		wantError(t, execute(t, b, user, "NOPE_TOOL", nil), 404, "tool_not_found")

		// The tool ran and failed: 422 with Composio's message.
		r = execute(t, b, user, "GMAIL_SEND_EMAIL", map[string]any{"recipient_email": "not-an-address", "body": "hi"})
		wantError(t, r, 422, "tool_failed")
		if !strings.Contains(r.Str("error"), "invalid recipient email address") {
			t.Fatalf("error %q lacks Composio's message", r.Str("error"))
		}
		r = execute(t, b, user, "GMAIL_SEND_EMAIL", map[string]any{"subject": "no recipient"})
		wantError(t, r, 422, "tool_failed")
		if !strings.Contains(r.Str("error"), "recipient_email") {
			t.Fatalf("error %q does not name the missing field", r.Str("error"))
		}
	})
}

// clock is an adjustable clock for OAuth state.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.offset) }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// TestComposioFaults injects faults into a double of its own; its subtests
// run one at a time, as a fault hits whichever request comes next.
func TestComposioFaults(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	b, double := startComposio(t, "gmail:ac_gmail,slack:ac_slack", service.Options{ComposioNow: clk.now})

	t.Run("ProviderNotConfigured", func(t *testing.T) {
		r := b.Do(t, "GET", "/api/integrations", nil).Expect(t, 200)
		list := r.JSON["integrations"].([]any)
		bq := list[2].(map[string]any)
		if bq["provider"] != "bigquery" || bq["configured"] != false || list[0].(map[string]any)["configured"] != true {
			t.Fatalf("integrations: %s", r.Body)
		}
		wantError(t, b.Do(t, "POST", "/api/integrations/connect",
			map[string]any{"user_id": servicetest.User(t), "provider": "bigquery", "redirect_url": oaRedirect}),
			400, "provider_not_configured")
	})

	t.Run("ExpiredState", func(t *testing.T) {
		user := servicetest.User(t)
		authURL, _ := connect(t, b, user, "gmail")
		cb := consent(t, b, authURL, "")
		clk.add(16 * time.Minute) // past OAUTH_STATE_TTL (15m)
		defer clk.add(-16 * time.Minute)
		if got := back(t, cb); got != wantBack("failed", "gmail") {
			t.Fatalf("back to %q", got)
		}
		if len(connected(t, b, user)) != 0 {
			t.Fatal("an expired flow was stored as active")
		}
	})

	t.Run("ConnectRateLimited", func(t *testing.T) {
		n := double.Requests("POST", "/connected_accounts/link")
		double.FailNextPath("POST", "/connected_accounts/link", 1, http.StatusTooManyRequests, "7")
		r := b.Do(t, "POST", "/api/integrations/connect",
			map[string]any{"user_id": servicetest.User(t), "provider": "gmail", "redirect_url": oaRedirect})
		wantError(t, r, 429, "rate_limited")
		if r.Header.Get("Retry-After") != "7" {
			t.Fatalf("Retry-After %q, want Composio's 7", r.Header.Get("Retry-After"))
		}
		if got := double.Requests("POST", "/connected_accounts/link") - n; got != 1 {
			t.Fatalf("link creation (not idempotent) was sent %d times", got)
		}
	})

	t.Run("ConnectComposioDown", func(t *testing.T) {
		n := double.Requests("POST", "/connected_accounts/link")
		double.FailNextPath("POST", "/connected_accounts/link", 1, http.StatusServiceUnavailable, "")
		wantError(t, b.Do(t, "POST", "/api/integrations/connect",
			map[string]any{"user_id": servicetest.User(t), "provider": "gmail", "redirect_url": oaRedirect}),
			503, "composio_unavailable")
		if got := double.Requests("POST", "/connected_accounts/link") - n; got != 1 {
			t.Fatalf("link creation (not idempotent) was sent %d times", got)
		}
	})

	t.Run("CallbackRetriesAfterRetryAfter", func(t *testing.T) {
		user := servicetest.User(t)
		authURL, _ := connect(t, b, user, "gmail")
		cb := consent(t, b, authURL, "")
		path := "/connected_accounts/" + param(t, cb, "connected_account_id")
		n := double.Requests("GET", path)
		double.FailNextPath("GET", path, 1, http.StatusTooManyRequests, "1")
		start := time.Now()
		if got := back(t, cb); got != wantBack("success", "gmail") {
			t.Fatalf("back to %q", got)
		}
		if waited := time.Since(start); waited < 900*time.Millisecond {
			t.Fatalf("the account was fetched again after %s, before Retry-After (1s)", waited)
		}
		if got := double.Requests("GET", path) - n; got != 2 {
			t.Fatalf("account fetched %d times, want 2 (one 429, one retry)", got)
		}
	})

	t.Run("ExecuteRetriesAfterRateLimit", func(t *testing.T) {
		user := servicetest.User(t)
		connectFully(t, b, user, "gmail")
		path := "/tools/execute/GMAIL_SEND_EMAIL"
		n, e := double.Requests("POST", path), len(double.Executions())
		double.FailNextPath("POST", path, 1, http.StatusTooManyRequests, "1")
		execute(t, b, user, "GMAIL_SEND_EMAIL", map[string]any{"recipient_email": "a@b.co", "body": "hi"}).Expect(t, 200)
		if got := double.Requests("POST", path) - n; got != 2 {
			t.Fatalf("execute sent %d times, want 2 (a 429 is certainly not run)", got)
		}
		if got := len(double.Executions()) - e; got != 1 {
			t.Fatalf("%d executions reached the tool, want 1", got)
		}
	})

	t.Run("ExecuteNotRetriedWhenItMayHaveRun", func(t *testing.T) {
		user := servicetest.User(t)
		connectFully(t, b, user, "gmail")
		path := "/tools/execute/GMAIL_SEND_EMAIL"
		n := double.Requests("POST", path)
		double.FailNextPath("POST", path, 1, http.StatusInternalServerError, "")
		wantError(t, execute(t, b, user, "GMAIL_SEND_EMAIL", map[string]any{"recipient_email": "a@b.co", "body": "hi"}),
			502, "composio_error")
		if got := double.Requests("POST", path) - n; got != 1 {
			t.Fatalf("a possibly-run execution was sent %d times", got)
		}
	})

	t.Run("ProvidersFallBackWhenComposioRefuses", func(t *testing.T) {
		// A fresh service: nothing cached yet.
		b2, d2 := startComposio(t, "gmail:ac_gmail", service.Options{})
		d2.FailNextPath("GET", "/toolkits/gmail", 1, http.StatusUnauthorized, "")
		r := b2.Do(t, "GET", "/api/integrations", nil).Expect(t, 200)
		list := r.JSON["integrations"].([]any)
		g, s := list[0].(map[string]any), list[1].(map[string]any)
		if g["name"] != "Gmail" || strings.HasPrefix(g["description"].(string), "Gmail is Google's") || g["logo"] == "" {
			t.Fatalf("gmail without Composio: %v", g)
		}
		if !strings.HasPrefix(s["description"].(string), "Slack is a channel-based") {
			t.Fatalf("slack from Composio: %v", s)
		}
	})
}

// TestComposioSandbox runs `serve --composio-sandbox` as a process and
// clicks through the OAuth journey against its sandbox.
func TestComposioSandbox(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	p := startProc(t, map[string]string{
		"MCP_DATA_DIR": t.TempDir(), "MCP_SERVICE_HOST": "127.0.0.1", "MCP_SERVICE_PORT": fmt.Sprint(port),
		"MCP_EMBEDDED_NATS_PORT": fmt.Sprint(freePort(t)), "MCP_EMBEDDED_MONGO_PORT": fmt.Sprint(freePort(t)),
		"AGENT_API_KEY": "proc-key", "MCP_LOG_LEVEL": "info",
	}, "serve", "--composio-sandbox")
	b := &servicetest.Bundle{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Key: "proc-key", HTTP: shared.HTTP}
	waitHTTP(t, b.URL+"/api/tools/health", 30*time.Second)
	p.waitLog(t, "Composio SANDBOX is on", 10*time.Second)
	if !strings.Contains(p.Logs(), "no real OAuth") {
		t.Fatalf("the sandbox banner does not say there is no real OAuth:\n%s", p.Logs())
	}
	user := servicetest.User(t)
	own := b.URL + "/ui/"
	wantError(t, b.Do(t, "POST", "/api/integrations/connect",
		map[string]any{"user_id": user, "provider": "gmail", "redirect_url": oaRedirect}), 400, "redirect_not_allowed")
	r := b.Do(t, "POST", "/api/integrations/connect",
		map[string]any{"user_id": user, "provider": "gmail", "redirect_url": own}).Expect(t, 200)
	cb := consent(t, b, r.Str("auth_url"), "")
	if got := back(t, cb); got != own+"?status=success&provider=gmail" {
		t.Fatalf("back to %q", got)
	}
	if list := connected(t, b, user); len(list) != 1 || list[0].ConnectedEmail == "" {
		t.Fatalf("connected: %+v", list)
	}
	execute(t, b, user, "GMAIL_SEND_EMAIL", map[string]any{"recipient_email": "a@b.co", "body": "hi"}).Expect(t, 200)
}

// The sandbox is never used when a real COMPOSIO_API_KEY is set.
func TestComposioSandboxRefusedWithAPIKey(t *testing.T) {
	t.Parallel()
	env := map[string]string{"MCP_DATA_DIR": t.TempDir(), "MCP_SERVICE_PORT": "0", "AGENT_API_KEY": "k",
		"COMPOSIO_API_KEY": "real-key", "MCP_EMBEDDED_NATS_PORT": "0", "MCP_EMBEDDED_MONGO_PORT": "0"}
	p := startProc(t, env, "serve", "--composio-sandbox")
	if code := p.exited(t, 30*time.Second); code == 0 {
		t.Fatalf("serve --composio-sandbox with COMPOSIO_API_KEY exited 0:\n%s", p.Logs())
	}
	if !strings.Contains(p.Logs(), "COMPOSIO_API_KEY is set") || strings.Contains(p.Logs(), "SANDBOX is on") {
		t.Fatalf("logs:\n%s", p.Logs())
	}
}

// Without COMPOSIO_API_KEY the routes answer 503 composio_not_configured.
func TestComposioNotConfigured(t *testing.T) {
	t.Parallel()
	for _, rq := range []struct{ method, path string }{{"GET", "/api/integrations"},
		{"GET", "/api/integrations/connected?user_id=u"}} {
		wantError(t, shared.Do(t, rq.method, rq.path, nil), 503, "composio_not_configured")
	}
	wantError(t, shared.Do(t, "POST", "/api/integrations/connect",
		map[string]any{"user_id": "u", "provider": "gmail", "redirect_url": oaRedirect}), 503, "composio_not_configured")
	h := visit(t, shared.URL+"/api/integrations/callback?state=x&status=success")
	if h.Status != http.StatusServiceUnavailable || h.Location != "" {
		t.Fatalf("callback: %d %q", h.Status, h.Location)
	}
}
