package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors/composio/composiotest"
	"github.com/openanalyst/mcp-integration-service/service"
	"github.com/openanalyst/mcp-integration-service/service/servicetest"
)

// appJourneys are the three apps with Composio's real toolkit slugs, and
// one tool of each with arguments the double accepts.
var appJourneys = []struct {
	provider, toolkit, tool string
	params                  map[string]any
}{
	{"gmail", "gmail", "GMAIL_SEND_EMAIL", map[string]any{"recipient_email": "marketing@company.com", "subject": "Weekly", "body": "Summary"}},
	{"slack", "slack", "SLACK_SEND_MESSAGE", map[string]any{"channel": "#general", "text": "Campaign summary is out"}},
	{"bigquery", "googlebigquery", "GOOGLEBIGQUERY_QUERY", map[string]any{"query": "SELECT day, events FROM analytics.daily"}},
}

// refresh asks for a connection's status now.
func refresh(t *testing.T, b *servicetest.Bundle, user, id string) *servicetest.Response {
	t.Helper()
	return b.Do(t, "POST", "/api/integrations/"+url.PathEscape(id)+"/refresh", map[string]any{"user_id": user})
}

// refreshed decodes a 200 refresh answer.
func refreshed(t *testing.T, r *servicetest.Response) (changed bool, status, reason string) {
	t.Helper()
	r.Expect(t, 200)
	var out struct {
		Success     bool `json:"success"`
		Changed     bool `json:"changed"`
		Integration struct {
			Status       string `json:"status"`
			StatusReason string `json:"status_reason"`
			CheckedAt    string `json:"checked_at"`
		} `json:"integration"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil || !out.Success || out.Integration.CheckedAt == "" {
		t.Fatalf("refresh: %s", r.Body)
	}
	return out.Changed, out.Integration.Status, out.Integration.StatusReason
}

// statusOf is the status GET /api/integrations/connected shows for id, with
// its reason ("" and "" when it is not listed).
func statusOf(t *testing.T, b *servicetest.Bundle, user, id string) (status, reason string) {
	t.Helper()
	r := b.Do(t, "GET", "/api/integrations/connected?user_id="+url.QueryEscape(user), nil).Expect(t, 200)
	var out struct {
		Integrations []struct {
			IntegrationID string `json:"integration_id"`
			Status        string `json:"status"`
			StatusReason  string `json:"status_reason"`
		} `json:"integrations"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatal(err)
	}
	for _, e := range out.Integrations {
		if e.IntegrationID == id {
			return e.Status, e.StatusReason
		}
	}
	return "", ""
}

// toolkitTools lists the names of a user's tools of one Composio toolkit.
func toolkitTools(tools map[string]toolEntry, toolkit string) []string {
	var out []string
	for name := range tools {
		if strings.HasPrefix(name, strings.ToUpper(toolkit)+"_") {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// TestComposioStatusJourney connects Gmail, Slack and BigQuery through the
// double, runs a tool of each, then lets Composio expire and revoke two of
// the accounts: after a refresh their tools leave the list and running one
// answers 409 integration_inactive, until the user reconnects.
func TestComposioStatusJourney(t *testing.T) {
	t.Parallel()
	double := composiotest.Start(t)
	env := composioEnv(double, allAuthConfigs)
	env["COMPOSIO_STATUS_REFRESH"] = "0" // on demand only, so every change below is the test's
	b, err := servicetest.Start(t, service.ModeServe, env, service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	user, other := servicetest.User(t), servicetest.User(t)

	ids := map[string]string{}
	for _, j := range appJourneys {
		ids[j.provider] = connectFully(t, b, user, j.provider)
	}
	tools := toolsOf(t, b, user)
	for _, j := range appJourneys {
		if _, ok := tools[j.tool]; !ok || len(toolkitTools(tools, j.toolkit)) == 0 {
			t.Fatalf("%s is not listed: %v", j.tool, toolkitTools(tools, j.toolkit))
		}
		execute(t, b, user, j.tool, j.params).Expect(t, 200)
	}
	for _, j := range appJourneys {
		if changed, status, _ := refreshed(t, refresh(t, b, user, ids[j.provider])); changed || status != "active" {
			t.Fatalf("%s refreshed while active: changed %v, %s", j.provider, changed, status)
		}
	}

	// Composio: Gmail's token expires, Slack's access is revoked.
	gmail, slack := accountOf(t, double, user, "gmail"), accountOf(t, double, user, "slack")
	double.SetAccountStatus(gmail.ID, composiotest.StatusExpired, "Access token expired and could not be refreshed")
	double.SetAccountStatus(slack.ID, composiotest.StatusRevoked, "")

	// Another user's id is not found, like a missing one, and changes nothing.
	wantError(t, refresh(t, b, other, ids["gmail"]), 404, "integration_not_found")
	wantError(t, refresh(t, b, user, "int_doesnotexist"), 404, "integration_not_found")
	if status, _ := statusOf(t, b, user, ids["gmail"]); status != "active" {
		t.Fatalf("another user's refresh changed the status to %q", status)
	}

	for provider, want := range map[string]string{"gmail": "expired", "slack": "revoked", "bigquery": "active"} {
		changed, status, reason := refreshed(t, refresh(t, b, user, ids[provider]))
		if status != want || changed != (want != "active") || (want != "active") != (reason != "") {
			t.Fatalf("%s: changed %v, %s (%q), want %s", provider, changed, status, reason, want)
		}
		if got, gotReason := statusOf(t, b, user, ids[provider]); got != want || gotReason != reason {
			t.Fatalf("connected shows %s %s (%q), want %s (%q)", provider, got, gotReason, want, reason)
		}
	}
	tools = toolsOf(t, b, user)
	if g, s, bq := toolkitTools(tools, "gmail"), toolkitTools(tools, "slack"), toolkitTools(tools, "googlebigquery"); len(g)+len(s) != 0 || len(bq) == 0 {
		t.Fatalf("tools after expiry: gmail %v, slack %v, bigquery %v", g, s, bq)
	}
	ran := len(double.Executions())
	for _, j := range appJourneys[:2] {
		r := execute(t, b, user, j.tool, j.params)
		wantError(t, r, http.StatusConflict, "integration_inactive")
		if msg := r.Str("error"); !strings.Contains(msg, "Reconnect "+j.provider) || !strings.Contains(msg, "POST /api/integrations/connect") {
			t.Fatalf("409 does not say to reconnect: %s", msg)
		}
	}
	execute(t, b, user, "GOOGLEBIGQUERY_QUERY", appJourneys[2].params).Expect(t, 200)
	if n := len(double.Executions()) - ran; n != 1 {
		t.Fatalf("%d executions reached Composio, want BigQuery's only", n)
	}

	// Reconnecting Gmail replaces the expired connection: tools are back.
	newGmail := connectFully(t, b, user, "gmail")
	if status, _ := statusOf(t, b, user, ids["gmail"]); status != "" {
		t.Fatalf("the expired connection is still listed as %s after reconnecting", status)
	}
	if status, _ := statusOf(t, b, user, newGmail); status != "active" {
		t.Fatalf("the new connection is %q", status)
	}
	if !slices.Contains(double.Deleted(), gmail.ID) {
		t.Fatal("the expired account was not deleted at Composio on reconnect")
	}
	wantError(t, refresh(t, b, user, ids["gmail"]), 404, "integration_not_found")
	if _, ok := toolsOf(t, b, user)["GMAIL_SEND_EMAIL"]; !ok {
		t.Fatal("Gmail's tools are not back after reconnecting")
	}
	execute(t, b, user, "GMAIL_SEND_EMAIL", appJourneys[0].params).Expect(t, 200)
	if status, _ := statusOf(t, b, user, ids["slack"]); status != "revoked" {
		t.Fatalf("slack is %q, want still revoked", status)
	}
}

// A connection Composio stops accepting between two checks: the execute
// itself notices (Composio refuses the account), answers 409 and records
// the status, without a refresh.
func TestComposioExecuteNoticesExpiry(t *testing.T) {
	t.Parallel()
	double := composiotest.Start(t)
	env := composioEnv(double, allAuthConfigs)
	env["COMPOSIO_STATUS_REFRESH"] = "0"
	b, err := servicetest.Start(t, service.ModeServe, env, service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	user := servicetest.User(t)
	id := connectFully(t, b, user, "slack")
	double.SetAccountStatus(accountOf(t, double, user, "slack").ID, composiotest.StatusExpired, "")
	wantError(t, execute(t, b, user, "SLACK_SEND_MESSAGE", appJourneys[1].params), http.StatusConflict, "integration_inactive")
	if status, _ := statusOf(t, b, user, id); status != "expired" {
		t.Fatalf("status after the refused execute: %q", status)
	}
	if len(toolkitTools(toolsOf(t, b, user), "slack")) != 0 {
		t.Fatal("slack's tools are still listed")
	}
}

// The worker refreshes statuses by itself every COMPOSIO_STATUS_REFRESH,
// both ways, and a 429 pauses it for Composio's Retry-After.
func TestComposioStatusRefreshWorker(t *testing.T) {
	t.Parallel()
	double := composiotest.Start(t)
	env := composioEnv(double, allAuthConfigs)
	env["COMPOSIO_STATUS_REFRESH"] = "300ms"
	b, err := servicetest.Start(t, service.ModeServe, env, service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	user := servicetest.User(t)
	id := connectFully(t, b, user, "bigquery")
	acct := accountOf(t, double, user, "googlebigquery")
	waitStatusOf := func(want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			status, _ := statusOf(t, b, user, id)
			if status == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("status stayed %q, want %q", status, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	double.SetAccountStatus(acct.ID, composiotest.StatusFailed, "OAuth token exchange failed: invalid_grant")
	waitStatusOf("failed")
	if len(toolkitTools(toolsOf(t, b, user), "googlebigquery")) != 0 {
		t.Fatal("a failed connection's tools are listed")
	}
	wantError(t, execute(t, b, user, "GOOGLEBIGQUERY_QUERY", appJourneys[2].params), http.StatusConflict, "integration_inactive")
	double.SetAccountStatus(acct.ID, composiotest.StatusActive, "")
	waitStatusOf("active")
	if len(toolkitTools(toolsOf(t, b, user), "googlebigquery")) == 0 {
		t.Fatal("the reactivated connection lists no tools")
	}

	// Rate limited: the refresher stops and waits out Retry-After (an
	// hour), so no further account read comes, and the expiry below stays
	// unseen.
	reads := func() int {
		n := 0
		for _, r := range double.RequestLog() {
			if r.Method == http.MethodGet && r.RelPath == "/connected_accounts/"+acct.ID {
				n++
			}
		}
		return n
	}
	double.FailNextPath("GET", "/connected_accounts/"+acct.ID, 1, http.StatusTooManyRequests, "3600")
	start := reads()
	deadline := time.Now().Add(10 * time.Second)
	for reads() == start {
		if time.Now().After(deadline) {
			t.Fatal("the refresher never read the account again")
		}
		time.Sleep(50 * time.Millisecond)
	}
	double.SetAccountStatus(acct.ID, composiotest.StatusExpired, "")
	time.Sleep(2 * time.Second) // more than six intervals
	if n := reads() - start; n != 1 {
		t.Fatalf("%d account reads after a 429 with Retry-After: 3600, want the one refused", n)
	}
	if status, _ := statusOf(t, b, user, id); status != "active" {
		t.Fatalf("status %q while the refresher should be paused", status)
	}
}

// GET /api/tools?provider= narrows the list to those providers (repeatable);
// without a filter the list is unchanged: every provider's tools.
func TestToolsProviderFilter(t *testing.T) {
	t.Parallel()
	double := composiotest.Start(t)
	env := composioEnv(double, allAuthConfigs)
	env["COMPOSIO_STATUS_REFRESH"] = "0"
	b, err := servicetest.Start(t, service.ModeServe, env, service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	user := servicetest.User(t)
	for _, j := range appJourneys {
		connectFully(t, b, user, j.provider)
	}
	list := func(query string) []string {
		r := b.Do(t, "GET", "/api/tools?user_id="+url.QueryEscape(user)+query, nil).Expect(t, 200)
		var out struct {
			Tools []toolEntry `json:"tools"`
		}
		if err := json.Unmarshal(r.Body, &out); err != nil {
			t.Fatal(err)
		}
		names := make([]string, 0, len(out.Tools))
		for _, tl := range out.Tools {
			names = append(names, tl.Provider+":"+tl.Name)
		}
		return names
	}
	all := list("")
	gmail := list("&provider=gmail")
	both := list("&provider=gmail&provider=slack")
	if len(gmail) == 0 || slices.ContainsFunc(gmail, func(n string) bool { return !strings.HasPrefix(n, "gmail:GMAIL_") }) {
		t.Fatalf("provider=gmail: %v", gmail)
	}
	var slack, bq []string
	for _, n := range all {
		switch {
		case strings.HasPrefix(n, "slack:SLACK_"):
			slack = append(slack, n)
		case strings.HasPrefix(n, "bigquery:GOOGLEBIGQUERY_"):
			bq = append(bq, n)
		}
	}
	if len(slack) == 0 || len(bq) == 0 || len(all) != len(gmail)+len(slack)+len(bq) {
		t.Fatalf("unfiltered list: %v", all)
	}
	if !slices.Equal(both, append(slices.Clone(gmail), slack...)) {
		t.Fatalf("provider=gmail&provider=slack: %v", both)
	}
	if got := list("&provider=dropbox"); len(got) != 0 {
		t.Fatalf("provider=dropbox: %v", got)
	}
	if again := list(""); !slices.Equal(again, all) {
		t.Fatalf("the unfiltered list changed after filtered ones: %v, then %v", all, again)
	}
}
