package composio_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors/composio"
	"github.com/openanalyst/mcp-integration-service/connectors/composio/composiotest"
)

// consent opens a link's redirect URL as the user's browser would and returns
// the callback URL Composio redirected to.
func consent(t *testing.T, redirectURL string, extra string) *url.URL {
	t.Helper()
	target := redirectURL
	if extra != "" {
		target += "?" + extra
	}
	resp, err := noRedirect.Get(target)
	if err != nil {
		t.Fatalf("open consent page: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("consent page status = %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("bad Location: %v", err)
	}
	return loc
}

func TestLinkConsentRedirectFlow(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	c, _ := newClient(t, s)
	ctx := context.Background()

	link, err := c.CreateLink(ctx, composio.LinkRequest{
		AuthConfigID: "ac_gmail",
		UserID:       "user_42",
		CallbackURL:  "https://oa.example.com/api/integrations/callback?state=signed.state&x=1",
		Alias:        "work",
	})
	if err != nil {
		t.Fatalf("CreateLink: %v", err)
	}
	if !strings.HasPrefix(link.ConnectedAccountID, "ca_") || link.LinkToken == "" {
		t.Errorf("link = %+v", link)
	}
	if !strings.HasPrefix(link.RedirectURL, s.URL()+"/consent/") {
		t.Errorf("redirect_url = %q", link.RedirectURL)
	}
	if until := time.Until(link.ExpiresAt); until <= 0 || until > 11*time.Minute {
		t.Errorf("expires_at = %v", link.ExpiresAt)
	}
	var body map[string]any
	if err := json.Unmarshal(s.RequestLog()[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body["auth_config_id"] != "ac_gmail" || body["user_id"] != "user_42" || body["alias"] != "work" ||
		!strings.Contains(body["callback_url"].(string), "state=signed.state") {
		t.Errorf("request body = %v", body)
	}

	acct, err := c.GetConnectedAccount(ctx, link.ConnectedAccountID)
	if err != nil {
		t.Fatalf("GetConnectedAccount: %v", err)
	}
	if acct.Status != composio.StatusInitiated || acct.IsActive() || acct.Email() != "" {
		t.Errorf("before consent: status %s, email %q", acct.Status, acct.Email())
	}

	loc := consent(t, link.RedirectURL, "")
	if loc.Host != "oa.example.com" || loc.Path != "/api/integrations/callback" {
		t.Errorf("redirected to %s", loc)
	}
	q := loc.Query()
	if q.Get("state") != "signed.state" || q.Get("x") != "1" {
		t.Errorf("callback query lost: %v", q)
	}
	if q.Get("status") != "success" || q.Get("connected_account_id") != link.ConnectedAccountID {
		t.Errorf("callback query = %v", q)
	}
	if q.Has("connectedAccountId") || q.Has("appName") {
		t.Errorf("link flow used camel case: %v", q)
	}

	acct, err = c.GetConnectedAccount(ctx, link.ConnectedAccountID)
	if err != nil {
		t.Fatalf("GetConnectedAccount: %v", err)
	}
	if !acct.IsActive() || acct.UserID != "user_42" || acct.Toolkit.Slug != "gmail" || acct.AuthConfig.ID != "ac_gmail" {
		t.Errorf("after consent: %+v", acct)
	}
	if acct.Email() != "user_42@example.com" {
		t.Errorf("Email() = %q", acct.Email())
	}
	if acct.CreatedAt.IsZero() || acct.UpdatedAt.Before(acct.CreatedAt) {
		t.Errorf("times: created %v updated %v", acct.CreatedAt, acct.UpdatedAt)
	}

	// The link works once.
	resp, err := noRedirect.Get(link.RedirectURL)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("second consent status = %d, want 409", resp.StatusCode)
	}
}

func TestLinkConsentLegacyCamelCase(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, s *composiotest.Server, extra string) {
		t.Helper()
		c, _ := newClient(t, s)
		link, err := c.CreateLink(context.Background(), composio.LinkRequest{
			AuthConfigID: "ac_slack", UserID: "user_7", CallbackURL: "http://localhost:3000/cb?state=s1",
		})
		if err != nil {
			t.Fatal(err)
		}
		q := consent(t, link.RedirectURL, extra).Query()
		if q.Get("status") != "success" || q.Get("connectedAccountId") != link.ConnectedAccountID ||
			q.Get("appName") != "slack" || q.Get("state") != "s1" {
			t.Errorf("legacy callback query = %v", q)
		}
		if q.Has("connected_account_id") {
			t.Errorf("legacy flow used snake case: %v", q)
		}
	}
	t.Run("server option", func(t *testing.T) {
		t.Parallel()
		check(t, composiotest.Start(t, composiotest.WithLegacyCallback()), "")
	})
	t.Run("per consent", func(t *testing.T) {
		t.Parallel()
		check(t, composiotest.Start(t), "legacy=1")
	})
}

func TestLinkConsentDenied(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	c, _ := newClient(t, s)
	link, err := c.CreateLink(context.Background(), composio.LinkRequest{
		AuthConfigID: "ac_gmail", UserID: "user_9", CallbackURL: "https://oa.example.com/cb?state=zz",
	})
	if err != nil {
		t.Fatal(err)
	}
	q := consent(t, link.RedirectURL, "deny=1").Query()
	if q.Get("status") != "failed" || q.Get("connected_account_id") != link.ConnectedAccountID || q.Get("state") != "zz" {
		t.Errorf("denied callback query = %v", q)
	}
	acct, err := c.GetConnectedAccount(context.Background(), link.ConnectedAccountID)
	if err != nil {
		t.Fatal(err)
	}
	if acct.Status != composio.StatusFailed || acct.StatusReason == "" || acct.IsActive() {
		t.Errorf("denied account = %+v", acct)
	}
}

func TestConsentOutcomesFailedAndExpired(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	c, _ := newClient(t, s)
	ctx := context.Background()
	newLink := func() *composio.Link {
		l, err := c.CreateLink(ctx, composio.LinkRequest{AuthConfigID: "ac_gmail", UserID: "user_1", CallbackURL: "https://oa.example.com/cb"})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	s.SetNextOutcome(composio.StatusExpired)
	expired := newLink()
	failed := newLink()
	s.SetOutcome(failed.ConnectedAccountID, composio.StatusFailed)
	active := newLink()

	for _, tc := range []struct {
		link *composio.Link
		want string
	}{{expired, composio.StatusExpired}, {failed, composio.StatusFailed}, {active, composio.StatusActive}} {
		q := consent(t, tc.link.RedirectURL, "").Query()
		if q.Get("status") != "success" {
			t.Errorf("callback status = %q, want success even for %s", q.Get("status"), tc.want)
		}
		acct, err := c.GetConnectedAccount(ctx, tc.link.ConnectedAccountID)
		if err != nil {
			t.Fatal(err)
		}
		if acct.Status != tc.want {
			t.Errorf("account status = %s, want %s", acct.Status, tc.want)
		}
		if tc.want != composio.StatusActive && acct.StatusReason == "" {
			t.Errorf("%s account has no status_reason", tc.want)
		}
	}

	// Tools do not run on the expired account.
	_, err := c.ExecuteTool(ctx, "GMAIL_SEND_EMAIL", composio.ExecuteRequest{
		UserID: "user_1", ConnectedAccountID: expired.ConnectedAccountID,
		Arguments: map[string]any{"recipient_email": "a@example.com", "body": "hi"},
	})
	apiErr := asAPIError(t, err)
	if apiErr.StatusCode != 400 || !strings.Contains(apiErr.Message, "not active") {
		t.Errorf("execute on expired account: %+v", apiErr)
	}
}

func TestCreateLinkValidatesLocally(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	c, _ := newClient(t, s)
	if _, err := c.CreateLink(context.Background(), composio.LinkRequest{UserID: "u"}); err == nil {
		t.Error("CreateLink without an auth config succeeded")
	}
	if _, err := c.CreateLink(context.Background(), composio.LinkRequest{AuthConfigID: "ac_gmail"}); err == nil {
		t.Error("CreateLink without a user succeeded")
	}
	if s.TotalRequests() != 0 {
		t.Error("invalid requests reached Composio")
	}
}

func TestCustomAuthConfig(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t, composiotest.WithAuthConfig("googlebigquery", "ac_bq_prod"))
	c, _ := newClient(t, s)
	link, err := c.CreateLink(context.Background(), composio.LinkRequest{AuthConfigID: "ac_bq_prod", UserID: "u"})
	if err != nil {
		t.Fatalf("CreateLink: %v", err)
	}
	a, ok := s.Account(link.ConnectedAccountID)
	if !ok || a.Toolkit != "googlebigquery" || a.Status != composiotest.StatusInitiated {
		t.Errorf("account = %+v", a)
	}
}

func TestListConnectedAccountsFilters(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t, composiotest.WithPageSize(2))
	a1 := s.AddAccount(composiotest.Account{UserID: "u1", Toolkit: "gmail"})
	a2 := s.AddAccount(composiotest.Account{UserID: "u2", Toolkit: "gmail"})
	a3 := s.AddAccount(composiotest.Account{UserID: "u1", Toolkit: "slack"})
	s.AddAccount(composiotest.Account{UserID: "u1", Toolkit: "gmail", Status: composio.StatusExpired})
	s.AddAccount(composiotest.Account{UserID: "u3", Toolkit: "gmail"})
	c, _ := newClient(t, s)

	got, err := c.ListConnectedAccounts(context.Background(), composio.ListAccountsOptions{
		UserIDs:      []string{"u1", "u2"},
		ToolkitSlugs: []string{"gmail", "slack"},
		Statuses:     []string{composio.StatusActive},
	})
	if err != nil {
		t.Fatalf("ListConnectedAccounts: %v", err)
	}
	var ids []string
	for _, a := range got {
		ids = append(ids, a.ID)
	}
	slices.Sort(ids)
	want := []string{a1.ID, a2.ID, a3.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("ids = %v, want %v", ids, want)
	}
	if n := s.Requests("GET", "/connected_accounts"); n != 2 {
		t.Errorf("requests = %d, want 2 pages", n)
	}
	q := s.RequestLog()[0].Query
	if q["user_ids"][0] != "u1,u2" || len(q["user_ids"]) != 1 || q.Get("toolkit_slugs") != "gmail,slack" || q.Get("statuses") != "ACTIVE" {
		t.Errorf("query arrays not comma-separated: %v", q)
	}

	all, err := c.ListConnectedAccounts(context.Background(), composio.ListAccountsOptions{})
	if err != nil || len(all) != 5 {
		t.Errorf("unfiltered list: %d accounts, err %v", len(all), err)
	}
}

func TestDeleteConnectedAccount(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	acct := s.AddAccount(composiotest.Account{UserID: "u1", Toolkit: "gmail"})
	s.FailNextPath("DELETE", "", 1, http.StatusBadGateway, "")
	c, _ := newClient(t, s)
	ctx := context.Background()

	if err := c.DeleteConnectedAccount(ctx, acct.ID); err != nil {
		t.Fatalf("DeleteConnectedAccount after a 502: %v", err)
	}
	if d := s.Deleted(); !slices.Equal(d, []string{acct.ID}) {
		t.Errorf("deleted = %v", d)
	}
	if n := s.Requests("DELETE", "/connected_accounts/"+acct.ID); n != 2 {
		t.Errorf("requests = %d, want 2 (one retry)", n)
	}
	err := c.DeleteConnectedAccount(ctx, acct.ID)
	if !errors.Is(err, composio.ErrNotFound) || composio.Retryable(err) {
		t.Errorf("second delete err = %v, want ErrNotFound", err)
	}
	if _, err := c.GetConnectedAccount(ctx, acct.ID); !errors.Is(err, composio.ErrNotFound) {
		t.Errorf("get after delete err = %v", err)
	}
	if err := c.DeleteConnectedAccount(ctx, ""); err == nil {
		t.Error("delete with an empty id succeeded")
	}
}

func TestExecuteToolSuccess(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	acct := s.AddAccount(composiotest.Account{UserID: "user_1", Toolkit: "gmail"})
	c, _ := newClient(t, s)

	res, err := c.ExecuteTool(context.Background(), "GMAIL_SEND_EMAIL", composio.ExecuteRequest{
		UserID:             "user_1",
		ConnectedAccountID: acct.ID,
		Arguments:          json.RawMessage(`{"recipient_email":"bob@example.com","subject":"Hi","body":"Hello"}`),
		Version:            "latest",
	})
	if err != nil {
		t.Fatalf("ExecuteTool: %v", err)
	}
	if !res.Successful || res.Error != "" || res.LogID == "" {
		t.Errorf("result = %+v", res)
	}
	var data struct {
		MessageID string `json:"messageId"`
		Status    string `json:"status"`
	}
	if err := json.Unmarshal(res.Data, &data); err != nil || data.MessageID == "" || data.Status != "sent" {
		t.Errorf("data = %s (%v)", res.Data, err)
	}
	ex := s.Executions()
	if len(ex) != 1 || ex[0].Tool != "GMAIL_SEND_EMAIL" || ex[0].ConnectedAccountID != acct.ID ||
		ex[0].UserID != "user_1" || ex[0].Arguments["recipient_email"] != "bob@example.com" || ex[0].Version != "latest" {
		t.Errorf("executions = %+v", ex)
	}
}

func TestExecuteToolFailureIsAResultNotAnError(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	acct := s.AddAccount(composiotest.Account{UserID: "user_1", Toolkit: "gmail"})
	c, _ := newClient(t, s)
	res, err := c.ExecuteTool(context.Background(), "GMAIL_SEND_EMAIL", composio.ExecuteRequest{
		UserID: "user_1", ConnectedAccountID: acct.ID,
		Arguments: map[string]any{"subject": "no recipient"},
	})
	if err != nil {
		t.Fatalf("ExecuteTool: %v", err)
	}
	if res.Successful || !strings.Contains(res.Error, "recipient_email") {
		t.Errorf("result = %+v, want a failure naming recipient_email", res)
	}
}

func TestExecuteToolRefusals(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	acct := s.AddAccount(composiotest.Account{UserID: "user_1", Toolkit: "gmail"})
	c, _ := newClient(t, s)
	ctx := context.Background()
	args := map[string]any{"recipient_email": "a@example.com", "body": "x"}

	_, err := c.ExecuteTool(ctx, "GMAIL_SEND_EMAIL", composio.ExecuteRequest{UserID: "intruder", ConnectedAccountID: acct.ID, Arguments: args})
	if apiErr := asAPIError(t, err); apiErr.StatusCode != 400 || !strings.Contains(apiErr.Message, "does not belong") {
		t.Errorf("other user's account: %+v", apiErr)
	}
	_, err = c.ExecuteTool(ctx, "GMAIL_SEND_EMAIL", composio.ExecuteRequest{UserID: "user_1", ConnectedAccountID: "ca_missing", Arguments: args})
	if !errors.Is(err, composio.ErrNotFound) {
		t.Errorf("unknown account err = %v", err)
	}
	_, err = c.ExecuteTool(ctx, "NOPE_TOOL", composio.ExecuteRequest{UserID: "user_1", ConnectedAccountID: acct.ID})
	if !errors.Is(err, composio.ErrNotFound) {
		t.Errorf("unknown tool err = %v", err)
	}
	if _, err := c.ExecuteTool(ctx, "GMAIL_SEND_EMAIL", composio.ExecuteRequest{UserID: "user_1", Arguments: json.RawMessage(`[1]`)}); err == nil {
		t.Error("non-object arguments accepted")
	}
	if _, err := c.ExecuteTool(ctx, "GMAIL_SEND_EMAIL", composio.ExecuteRequest{Arguments: args}); err == nil {
		t.Error("execute without user or account accepted")
	}
	if len(s.Executions()) != 0 {
		t.Errorf("refused calls were executed: %+v", s.Executions())
	}
}

func TestExecuteToolLegacySpelling(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t, composiotest.WithLegacySuccessSpelling())
	acct := s.AddAccount(composiotest.Account{UserID: "u", Toolkit: "googlebigquery"})
	c, _ := newClient(t, s)
	ctx := context.Background()

	ok, err := c.ExecuteTool(ctx, "GOOGLEBIGQUERY_QUERY", composio.ExecuteRequest{UserID: "u", ConnectedAccountID: acct.ID,
		Arguments: map[string]any{"query": "SELECT 1"}})
	if err != nil || !ok.Successful {
		t.Fatalf("legacy success=true not understood: %+v, %v", ok, err)
	}
	bad, err := c.ExecuteTool(ctx, "GOOGLEBIGQUERY_QUERY", composio.ExecuteRequest{UserID: "u", ConnectedAccountID: acct.ID,
		Arguments: map[string]any{"query": "DROP TABLE x"}})
	if err != nil || bad.Successful || !strings.Contains(bad.Error, "syntax error") {
		t.Fatalf("legacy success=false not understood: %+v, %v", bad, err)
	}
	if !strings.Contains(string(s.RequestLog()[0].Body), `"query":"SELECT 1"`) {
		t.Errorf("body = %s", s.RequestLog()[0].Body)
	}
}

func TestExecuteResultDecoding(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in      string
		ok      bool
		errText string
	}{
		{`{"data":{"a":1},"successful":true,"error":null,"log_id":"l1"}`, true, ""},
		{`{"data":{},"successfull":true}`, true, ""},                      //nolint:misspell // Composio's old field name
		{`{"data":{},"successfull":false,"error":"boom"}`, false, "boom"}, //nolint:misspell // Composio's old field name
		{`{"data":{},"successful":false,"error":{"message":"nested boom"}}`, false, "nested boom"},
		{`{"data":{}}`, false, "Composio did not report whether the tool succeeded"},
	}
	for _, tc := range cases {
		var r composio.ExecuteResult
		if err := json.Unmarshal([]byte(tc.in), &r); err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if r.Successful != tc.ok || r.Error != tc.errText {
			t.Errorf("%s → %+v", tc.in, r)
		}
	}
}

func TestConnectedAccountEmail(t *testing.T) {
	t.Parallel()
	jwt := func(claims string) string {
		return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".sig"
	}
	cases := []struct {
		name, body, want string
	}{
		{"email", `{"data":{"email":"a@example.com"}}`, "a@example.com"},
		{"user_email", `{"data":{"user_email":"b@example.com"}}`, "b@example.com"},
		{"emailAddress", `{"data":{"emailAddress":"c@example.com"}}`, "c@example.com"},
		{"profile", `{"data":{"profile":{"email":"d@example.com"}}}`, "d@example.com"},
		{"id_token", `{"data":{"id_token":"` + jwt(`{"email":"e@example.com"}`) + `"}}`, "e@example.com"},
		{"state", `{"state":{"authScheme":"OAUTH2","val":{"email":"f@example.com"}}}`, "f@example.com"},
		{"params", `{"params":{"email":"g@example.com"}}`, "g@example.com"},
		{"not an email", `{"data":{"email":"nobody"}}`, ""},
		{"none", `{"data":{"access_token":"x"}}`, ""},
	}
	for _, tc := range cases {
		var a composio.ConnectedAccount
		if err := json.Unmarshal([]byte(tc.body), &a); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := a.Email(); got != tc.want {
			t.Errorf("%s: Email() = %q, want %q", tc.name, got, tc.want)
		}
	}
	var nilAcct *composio.ConnectedAccount
	if nilAcct.Email() != "" {
		t.Error("nil account has an email")
	}
}

func TestConnectedAccountDecodingIsLenient(t *testing.T) {
	t.Parallel()
	var a composio.ConnectedAccount
	body := `{"id":"ca_1","entity_id":"u9","status":"ACTIVE","toolkit":{"slug":"gmail"},"auth_config":{"id":"ac_1"},
		"created_at":1767312000,"updated_at":"2026-01-02T00:00:00Z"}`
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatal(err)
	}
	if a.UserID != "u9" || !a.CreatedAt.Equal(time.Unix(1767312000, 0)) || a.UpdatedAt.Year() != 2026 || !a.IsActive() {
		t.Errorf("account = %+v", a)
	}
}
