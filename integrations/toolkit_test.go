package integrations

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/storage"
	"github.com/openanalyst/mcp-integration-service/worker"
)

// runExecute runs an execute job of a Composio tool for user.
func runExecute(svc *Service, jobID, user, action string, params any) worker.Outcome {
	raw, _ := json.Marshal(params)
	payload, _ := json.Marshal(messages.ExecutePayload{Action: action, Params: raw})
	return svc.HandleExecute(context.Background(), &messages.Job{V: 1, Kind: messages.KindExecute, JobID: jobID,
		UserID: user, CreatedAt: time.Now(), Payload: payload}, 1)
}

// BigQuery is the provider bigquery in our API and the toolkit
// googlebigquery at Composio (and at the double, which knows no toolkit
// "bigquery"): connect, list tools, execute and describe all work through
// the mapping.
func TestBigQueryUsesComposioToolkitSlug(t *testing.T) {
	t.Parallel()
	svc, store, double := testServiceWith(t, map[string]string{"bigquery": "ac_bigquery"})
	ctx := context.Background()

	q, id := consentQueryFor(t, svc, "bob", "bigquery")
	if r := runCallback(t, svc, "job-bq", "bob", q); r.Status != "success" || r.Provider != "bigquery" {
		t.Fatalf("callback: %+v, want success (the account's toolkit is googlebigquery)", r)
	}
	if rec, _ := store.Get(ctx, "bob", id); rec.Status != storage.StatusActive || rec.Provider != "bigquery" {
		t.Fatalf("record: %+v", rec)
	}

	tools, err := svc.Tools(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools {
		names = append(names, tl.Name)
		if tl.Provider != "bigquery" || !strings.HasPrefix(tl.Name, "GOOGLEBIGQUERY_") {
			t.Errorf("tool %s of provider %q", tl.Name, tl.Provider)
		}
	}
	if len(tools) == 0 || !strings.Contains(strings.Join(names, ","), "GOOGLEBIGQUERY_QUERY") {
		t.Fatalf("tools %v, want the GOOGLEBIGQUERY_* tools", names)
	}

	out := runExecute(svc, "job-x", "bob", "googlebigquery_query", map[string]any{"query": "SELECT 1"})
	if out.Err != nil || !strings.Contains(string(out.Body), `"rows"`) {
		t.Fatalf("execute: %+v %s", out.Err, out.Body)
	}
	ex := double.Executions()
	if len(ex) != 1 || ex[0].Tool != "GOOGLEBIGQUERY_QUERY" || ex[0].UserID != "user_bob" {
		t.Fatalf("executions at the double: %+v", ex)
	}

	providers, _ := svc.Providers(ctx)
	for _, p := range providers {
		if p.Provider == "bigquery" && (!p.Configured || p.Name != "Google BigQuery") {
			t.Errorf("bigquery not described by Composio's googlebigquery toolkit: %+v", p)
		}
	}
	for _, r := range double.RequestLog() {
		if strings.Contains(strings.ToLower(r.Path), "/bigquery") || r.Query.Get("toolkit_slug") == "bigquery" {
			t.Errorf("sent the provider name as a toolkit slug: %s %s?%s", r.Method, r.Path, r.Query.Encode())
		}
	}
}

// An account of another toolkit is refused: here bigquery was configured
// with Gmail's auth config, so the link makes a gmail account.
func TestCallbackRefusesAnotherToolkit(t *testing.T) {
	t.Parallel()
	svc, _, _ := testServiceWith(t, map[string]string{"bigquery": "ac_gmail"})
	q, _ := consentQueryFor(t, svc, "eve", "bigquery")
	if r := runCallback(t, svc, "job-eve", "eve", q); r.Status != "failed" || r.Reason != reasonAccountToolkit {
		t.Fatalf("callback: %+v, want failed %s", r, reasonAccountToolkit)
	}
}

func TestProviderOfTool(t *testing.T) {
	t.Parallel()
	svc, _, _ := testServiceWith(t, map[string]string{"gmail": "ac_gmail", "googlebigquery": "ac_bq", "github": "ac_gh"})
	for slug, want := range map[string]string{
		"GOOGLEBIGQUERY_QUERY":     "bigquery",
		"GOOGLEBIGQUERY_RUN_QUERY": "bigquery",
		"googlebigquery_query":     "bigquery",
		"GMAIL_SEND_EMAIL":         "gmail",
		"SLACK_SEND_MESSAGE":       "slack",
		"GITHUB_STAR_REPO":         "github",
		"BIGQUERY_QUERY":           "",
		"GOOGLEBIGQUERYQUERY":      "",
		"NOPE_TOOL":                "",
	} {
		if got := svc.providerOfTool(slug); got != want {
			t.Errorf("providerOfTool(%s) = %q, want %q", slug, got, want)
		}
	}
	// googlebigquery in COMPOSIO_AUTH_CONFIGS configures bigquery; it is no
	// provider of its own.
	if svc.c.AuthConfigs["bigquery"] != "ac_bq" || svc.known("googlebigquery") {
		t.Fatalf("auth configs %v, providers %s", svc.c.AuthConfigs, svc.providerNames())
	}
}

// A BigQuery tool for a user without BigQuery says to connect bigquery.
func TestExecuteBigQueryNotConnected(t *testing.T) {
	t.Parallel()
	svc, _, double := testServiceWith(t, map[string]string{"bigquery": "ac_bigquery"})
	out := runExecute(svc, "job-n", "nobody", "GOOGLEBIGQUERY_QUERY", map[string]any{"query": "SELECT 1"})
	if out.Err == nil || out.Err.Code != "integration_not_found" ||
		!strings.Contains(out.Err.Msg, "connect bigquery first") {
		t.Fatalf("outcome %+v", out.Err)
	}
	if n := len(double.Executions()); n != 0 {
		t.Fatalf("%d executions reached Composio", n)
	}
}
