package composio_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors/composio"
	"github.com/openanalyst/mcp-integration-service/connectors/composio/composiotest"
)

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	if _, err := composio.New(composio.Config{}); err == nil {
		t.Error("New without an API key succeeded")
	}
	if _, err := composio.New(composio.Config{APIKey: "k", BaseURL: "backend.composio.dev"}); err == nil {
		t.Error("New with a relative base URL succeeded")
	}
	if _, err := composio.New(composio.Config{APIKey: "k", BaseURL: "ftp://backend.composio.dev"}); err == nil {
		t.Error("New with an ftp base URL succeeded")
	}
	if _, err := composio.New(composio.Config{APIKey: "k"}); err != nil {
		t.Errorf("New with defaults: %v", err)
	}
}

func TestListToolkitsFollowsPagination(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t, composiotest.WithPageSize(2))
	c, _ := newClient(t, s)

	got, err := c.ListToolkits(context.Background(), "")
	if err != nil {
		t.Fatalf("ListToolkits: %v", err)
	}
	var slugs []string
	for _, tk := range got {
		slugs = append(slugs, tk.Slug)
	}
	if want := []string{"gmail", "slack", "googlebigquery"}; !slices.Equal(slugs, want) {
		t.Fatalf("slugs = %v, want %v", slugs, want)
	}
	if n := s.Requests("GET", "/toolkits"); n != 2 {
		t.Errorf("GET /toolkits requests = %d, want 2 (two pages)", n)
	}
	log := s.RequestLog()
	if log[0].Query.Get("cursor") != "" || log[1].Query.Get("cursor") == "" {
		t.Errorf("cursor not sent on the second page only: %v / %v", log[0].Query, log[1].Query)
	}
	gmail := got[0]
	if gmail.Name != "Gmail" || gmail.Meta.Logo == "" || gmail.Meta.Description == "" {
		t.Errorf("gmail toolkit lacks name/logo/description: %+v", gmail)
	}
	if gmail.Meta.ToolsCount != 6 {
		t.Errorf("gmail tools_count = %d, want 6", gmail.Meta.ToolsCount)
	}
	if len(gmail.Meta.Categories) == 0 || gmail.Meta.Categories[0].ID == "" || gmail.Meta.Categories[0].Name == "" {
		t.Errorf("gmail categories = %+v", gmail.Meta.Categories)
	}
	if gmail.NoAuth || !slices.Contains(gmail.AuthSchemes, "OAUTH2") {
		t.Errorf("gmail auth: no_auth=%v schemes=%v", gmail.NoAuth, gmail.AuthSchemes)
	}
}

func TestListToolkitsSearch(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	c, _ := newClient(t, s)
	got, err := c.ListToolkits(context.Background(), "slack")
	if err != nil {
		t.Fatalf("ListToolkits: %v", err)
	}
	if len(got) != 1 || got[0].Slug != "slack" {
		t.Fatalf("search slack = %+v", got)
	}
	if q := s.RequestLog()[0].Query.Get("search"); q != "slack" {
		t.Errorf("search query = %q", q)
	}
}

func TestGetToolkit(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	c, _ := newClient(t, s)
	tk, err := c.GetToolkit(context.Background(), "googlebigquery")
	if err != nil {
		t.Fatalf("GetToolkit: %v", err)
	}
	if tk.Slug != "googlebigquery" || tk.Name != "Google BigQuery" || tk.Meta.ToolsCount != 4 {
		t.Errorf("toolkit = %+v", tk)
	}
	_, err = c.GetToolkit(context.Background(), "nope")
	if !errors.Is(err, composio.ErrNotFound) {
		t.Fatalf("unknown toolkit error = %v, want ErrNotFound", err)
	}
	apiErr := asAPIError(t, err)
	if apiErr.Op != "GetToolkit" || apiErr.StatusCode != 404 || !strings.Contains(apiErr.Message, "Toolkit nope not found") {
		t.Errorf("APIError = %+v", apiErr)
	}
	if composio.Retryable(err) {
		t.Error("404 reported as retryable")
	}
	if s.Requests("GET", "/toolkits/nope") != 1 {
		t.Error("404 was retried")
	}
}

func TestListToolsFollowsPagination(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t) // page size 5, gmail has 6 tools
	c, _ := newClient(t, s)
	tools, err := c.ListTools(context.Background(), "gmail")
	if err != nil {
		t.Fatalf("ListTools: %v", err)
	}
	if len(tools) != 6 {
		t.Fatalf("got %d tools, want 6", len(tools))
	}
	if n := s.Requests("GET", "/tools"); n != 2 {
		t.Errorf("GET /tools requests = %d, want 2", n)
	}
	if q := s.RequestLog()[0].Query.Get("toolkit_slug"); q != "gmail" {
		t.Errorf("toolkit_slug = %q", q)
	}
	i := slices.IndexFunc(tools, func(tl composio.Tool) bool { return tl.Slug == "GMAIL_SEND_EMAIL" })
	if i < 0 {
		t.Fatal("GMAIL_SEND_EMAIL missing")
	}
	send := tools[i]
	if send.Toolkit.Slug != "gmail" || send.Version == "" || send.Description == "" || send.IsDeprecated {
		t.Errorf("tool = %+v", send)
	}
	var schema struct {
		Type       string                     `json:"type"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(send.InputParameters, &schema); err != nil {
		t.Fatalf("input_parameters is not JSON: %v", err)
	}
	if schema.Type != "object" || schema.Properties["recipient_email"] == nil || schema.Properties["subject"] == nil {
		t.Errorf("input schema = %s", send.InputParameters)
	}
	if req := send.RequiredArguments(); !slices.Contains(req, "recipient_email") {
		t.Errorf("required = %v", req)
	}
	if len(send.OutputParameters) == 0 {
		t.Error("output_parameters missing")
	}
	for _, tl := range tools {
		if tl.Toolkit.Slug != "gmail" {
			t.Errorf("tool %s of toolkit %s in gmail list", tl.Slug, tl.Toolkit.Slug)
		}
	}
}

func TestGetToolEscapesPath(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	c, _ := newClient(t, s)
	tool, err := c.GetTool(context.Background(), "SLACK_SEND_MESSAGE")
	if err != nil {
		t.Fatalf("GetTool: %v", err)
	}
	if tool.Slug != "SLACK_SEND_MESSAGE" || !slices.Contains(tool.RequiredArguments(), "channel") {
		t.Errorf("tool = %+v", tool)
	}
	_, err = c.GetTool(context.Background(), "a b?c#d")
	if !errors.Is(err, composio.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if n := s.Requests("GET", "/tools/a%20b%3Fc%23d"); n != 1 {
		t.Errorf("escaped path not requested; log: %+v", s.RequestLog())
	}
	if _, err := c.GetTool(context.Background(), " "); err == nil {
		t.Error("GetTool with an empty slug succeeded")
	}
}

func TestRequestHeaders(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	c, _ := newClient(t, s)
	if _, err := c.GetToolkit(context.Background(), "gmail"); err != nil {
		t.Fatal(err)
	}
	h := s.RequestLog()[0].Header
	if h.Get("x-api-key") != s.APIKey() {
		t.Errorf("x-api-key = %q", h.Get("x-api-key"))
	}
	if h.Get("Accept") != "application/json" {
		t.Errorf("Accept = %q", h.Get("Accept"))
	}
	if h.Get("User-Agent") == "" || strings.HasPrefix(h.Get("User-Agent"), "Go-http-client") {
		t.Errorf("User-Agent = %q", h.Get("User-Agent"))
	}
}

func TestAPIPrefixV31(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	c, _ := newClient(t, s, func(cfg *composio.Config) { cfg.APIPrefix = "api/v3.1/" })
	if _, err := c.GetToolkit(context.Background(), "gmail"); err != nil {
		t.Fatalf("GetToolkit under v3.1: %v", err)
	}
	if p := s.RequestLog()[0].Path; p != "/api/v3.1/toolkits/gmail" {
		t.Errorf("path = %q", p)
	}
}

func TestRateLimitHonoursRetryAfterSeconds(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	acct := s.AddAccount(composiotest.Account{UserID: "user_1", Toolkit: "gmail"})
	s.FailNext(1, http.StatusTooManyRequests, "7")
	c, sl := newClient(t, s)

	got, err := c.GetConnectedAccount(context.Background(), acct.ID)
	if err != nil {
		t.Fatalf("GetConnectedAccount after a 429: %v", err)
	}
	if got.ID != acct.ID {
		t.Errorf("id = %q", got.ID)
	}
	if w := sl.got(); !slices.Equal(w, []time.Duration{7 * time.Second}) {
		t.Errorf("waits = %v, want [7s] from Retry-After", w)
	}
	if n := s.Requests("GET", "/connected_accounts/"+acct.ID); n != 2 {
		t.Errorf("requests = %d, want 2", n)
	}
}

func TestRateLimitRetryAfterDateAndCap(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	date := time.Now().Add(20 * time.Second).UTC().Format(http.TimeFormat)
	s.FailNext(1, http.StatusTooManyRequests, date)
	s.FailNext(1, http.StatusTooManyRequests, "120")
	c, sl := newClient(t, s, func(cfg *composio.Config) { cfg.MaxRetryWait = 45 * time.Second })

	if _, err := c.GetToolkit(context.Background(), "gmail"); err != nil {
		t.Fatalf("GetToolkit: %v", err)
	}
	w := sl.got()
	if len(w) != 2 {
		t.Fatalf("waits = %v, want 2", w)
	}
	// An HTTP date has one-second resolution and the clock moves on.
	if w[0] < 15*time.Second || w[0] > 21*time.Second {
		t.Errorf("wait for an HTTP date 20s ahead = %v", w[0])
	}
	if w[1] != 45*time.Second {
		t.Errorf("wait for Retry-After 120 = %v, want the 45s cap", w[1])
	}
}

func TestRateLimitGivesUpAfterMaxRetries(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	s.FailNext(100, http.StatusTooManyRequests, "2")
	c, sl := newClient(t, s, func(cfg *composio.Config) { cfg.MaxRetries = 2 })

	_, err := c.ListTools(context.Background(), "slack")
	if !errors.Is(err, composio.ErrRateLimited) || !composio.Retryable(err) {
		t.Fatalf("err = %v, want a retryable ErrRateLimited", err)
	}
	apiErr := asAPIError(t, err)
	if apiErr.RetryAfter != 2*time.Second || apiErr.Attempts != 3 {
		t.Errorf("RetryAfter = %v, Attempts = %d", apiErr.RetryAfter, apiErr.Attempts)
	}
	if n := s.Requests("GET", "/tools"); n != 3 {
		t.Errorf("requests = %d, want 1 + 2 retries", n)
	}
	if len(sl.got()) != 2 {
		t.Errorf("waits = %v", sl.got())
	}
}

func TestServerErrorsRetriedWithBackoff(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	s.FailNext(2, http.StatusBadGateway, "")
	c, sl := newClient(t, s)
	composio.SetJitter(c, func(d time.Duration) time.Duration { return d }) // no randomness

	if _, err := c.GetTool(context.Background(), "GOOGLEBIGQUERY_QUERY"); err != nil {
		t.Fatalf("GetTool after two 502s: %v", err)
	}
	if w := sl.got(); len(w) != 2 || w[1] != 2*w[0] || w[0] <= 0 {
		t.Errorf("waits = %v, want exponential growth", w)
	}
	if n := s.Requests("GET", "/tools/GOOGLEBIGQUERY_QUERY"); n != 3 {
		t.Errorf("requests = %d, want 3", n)
	}
}

func TestServerErrorsRetryBound(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	s.FailNext(100, http.StatusServiceUnavailable, "")
	c, sl := newClient(t, s, func(cfg *composio.Config) {
		cfg.MaxRetries = 4
		cfg.MaxRetryWait = 3 * time.Second
	})
	err := c.DeleteConnectedAccount(context.Background(), "ca_whatever")
	if !errors.Is(err, composio.ErrUnavailable) || !composio.Retryable(err) {
		t.Fatalf("err = %v, want retryable ErrUnavailable", err)
	}
	if n := s.Requests("DELETE", "/connected_accounts/ca_whatever"); n != 5 {
		t.Errorf("requests = %d, want 1 + 4 retries", n)
	}
	w := sl.got()
	if len(w) != 4 {
		t.Fatalf("waits = %v", w)
	}
	for _, d := range w {
		if d < 0 || d > 3*time.Second {
			t.Errorf("wait %v outside [0, MaxRetryWait]", d)
		}
	}
	if apiErr := asAPIError(t, err); apiErr.Attempts != 5 || apiErr.StatusCode != 503 {
		t.Errorf("APIError = %+v", apiErr)
	}
}

func TestRetriesDisabled(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	s.FailNext(1, http.StatusInternalServerError, "")
	c, _ := newClient(t, s, func(cfg *composio.Config) { cfg.MaxRetries = -1 })
	if _, err := c.GetToolkit(context.Background(), "gmail"); !errors.Is(err, composio.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if n := s.TotalRequests(); n != 1 {
		t.Errorf("requests = %d, want 1", n)
	}
}

func TestCreateLinkIsNeverRetried(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusServiceUnavailable} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			s := composiotest.Start(t)
			s.FailNextPath("POST", "/connected_accounts/link", 1, status, "1")
			c, sl := newClient(t, s)
			_, err := c.CreateLink(context.Background(), composio.LinkRequest{AuthConfigID: "ac_gmail", UserID: "user_1"})
			if apiErr := asAPIError(t, err); apiErr.StatusCode != status || apiErr.Op != "CreateLink" {
				t.Errorf("APIError = %+v", apiErr)
			}
			if !composio.Retryable(err) {
				t.Errorf("%d should be reported retryable to the caller", status)
			}
			if n := s.Requests("POST", "/connected_accounts/link"); n != 1 {
				t.Errorf("requests = %d, want 1 (never retried)", n)
			}
			if len(sl.got()) != 0 {
				t.Errorf("client waited: %v", sl.got())
			}
			if len(s.Accounts()) != 0 {
				t.Error("an account was created by a failed request")
			}
		})
	}
}

func TestExecuteToolIsNeverRetried(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusTooManyRequests, http.StatusBadGateway} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			s := composiotest.Start(t)
			acct := s.AddAccount(composiotest.Account{UserID: "user_1", Toolkit: "slack"})
			s.FailNext(1, status, "")
			c, sl := newClient(t, s)
			_, err := c.ExecuteTool(context.Background(), "SLACK_SEND_MESSAGE", composio.ExecuteRequest{
				UserID: "user_1", ConnectedAccountID: acct.ID,
				Arguments: map[string]any{"channel": "#general", "text": "hi"},
			})
			if apiErr := asAPIError(t, err); apiErr.StatusCode != status || apiErr.Op != "ExecuteTool" {
				t.Errorf("APIError = %+v", apiErr)
			}
			if n := s.Requests("POST", "/tools/execute/SLACK_SEND_MESSAGE"); n != 1 {
				t.Errorf("requests = %d, want 1 (never retried)", n)
			}
			if len(s.Executions()) != 0 || len(sl.got()) != 0 {
				t.Errorf("executions = %v, waits = %v", s.Executions(), sl.got())
			}
		})
	}
}

func TestContextCancelledDuringRequest(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	s.SetLatency(time.Hour)
	c, _ := newClient(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.ListToolkits(ctx, "")
		done <- err
	}()
	// Cancel once the request is in flight.
	for s.TotalRequests() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	err := waitResult(t, done)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if errors.Is(err, composio.ErrUnavailable) || composio.Retryable(err) {
		t.Errorf("cancellation classified as unavailable/retryable: %v", err)
	}
	if !strings.Contains(err.Error(), "ListToolkits") {
		t.Errorf("error does not name the call: %v", err)
	}
}

func TestContextCancelledDuringBackoff(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	s.FailNext(10, http.StatusServiceUnavailable, "30")
	c, sl := newClient(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sl.hook = cancel // the caller gives up while the client waits

	_, err := c.GetToolkit(ctx, "gmail")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := s.TotalRequests(); n != 1 {
		t.Errorf("requests = %d, want 1 (no attempt after cancellation)", n)
	}
	if !strings.Contains(err.Error(), "503") {
		t.Errorf("error hides the last answer: %v", err)
	}
}

func TestContextAlreadyDone(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	c, _ := newClient(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.GetToolkit(ctx, "gmail"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if s.TotalRequests() != 0 {
		t.Error("a request was sent with a cancelled context")
	}
}

func TestPerAttemptTimeout(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	s.SetLatency(time.Hour)
	c, sl := newClient(t, s, func(cfg *composio.Config) {
		cfg.Timeout = 50 * time.Millisecond
		cfg.MaxRetries = 1
	})
	done := make(chan error, 1)
	go func() {
		_, err := c.GetToolkit(context.Background(), "gmail")
		done <- err
	}()
	err := waitResult(t, done)
	if !errors.Is(err, composio.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) || !composio.Retryable(err) {
		t.Fatalf("err = %v, want a retryable timeout", err)
	}
	if !strings.Contains(err.Error(), "timed out") || !strings.Contains(err.Error(), "GetToolkit") {
		t.Errorf("message = %q", err.Error())
	}
	if apiErr := asAPIError(t, err); apiErr.Attempts != 2 {
		t.Errorf("attempts = %d, want 2 (one retry)", apiErr.Attempts)
	}
	if len(sl.got()) != 1 {
		t.Errorf("waits = %v", sl.got())
	}
}

func TestCallerDeadline(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	s.SetLatency(time.Hour)
	c, _ := newClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.GetConnectedAccount(ctx, "ca_1")
		done <- err
	}()
	err := waitResult(t, done)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	// Under load the deadline may pass before the request even arrives;
	// what matters is that nothing is retried after it.
	if s.TotalRequests() > 1 {
		t.Errorf("requests = %d, want at most 1", s.TotalRequests())
	}
}

func TestRetryAfterBeyondDeadlineGivesUp(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	s.FailNext(1, http.StatusTooManyRequests, "20")
	c, sl := newClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.GetToolkit(ctx, "gmail")
	if !errors.Is(err, composio.ErrRateLimited) {
		t.Fatalf("err = %v, want the 429 rather than a deadline error", err)
	}
	if len(sl.got()) != 0 || s.TotalRequests() != 1 {
		t.Errorf("waits = %v, requests = %d", sl.got(), s.TotalRequests())
	}
}

func TestErrorsNameCallCarryMessageAndHideKey(t *testing.T) {
	t.Parallel()
	s := composiotest.Start(t)
	const wrongKey = "sk_live_super_secret_value"
	c, _ := newClient(t, s, func(cfg *composio.Config) { cfg.APIKey = wrongKey })

	_, err := c.GetConnectedAccount(context.Background(), "ca_123")
	if !errors.Is(err, composio.ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	msg := err.Error()
	for _, want := range []string{"GetConnectedAccount", "GET /api/v3/connected_accounts/ca_123", "401", "Invalid or missing API key"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, wrongKey) || strings.Contains(fmt.Sprintf("%+v", err), wrongKey) {
		t.Errorf("message leaks the API key: %q", msg)
	}
	if composio.Retryable(err) {
		t.Error("401 reported as retryable")
	}
	if s.TotalRequests() != 1 {
		t.Error("401 was retried")
	}

	// Composio's message for a refused link is carried through.
	good, _ := newClient(t, s)
	_, err = good.CreateLink(context.Background(), composio.LinkRequest{AuthConfigID: "ac_nope", UserID: "u"})
	apiErr := asAPIError(t, err)
	if apiErr.StatusCode != 400 || apiErr.Message != "Auth config ac_nope not found" || apiErr.RequestID == "" {
		t.Errorf("APIError = %+v", apiErr)
	}
	if strings.Contains(err.Error(), s.APIKey()) {
		t.Errorf("message leaks the API key: %q", err.Error())
	}
}

func TestErrorBodyShapes(t *testing.T) {
	t.Parallel()
	const key = "key-that-must-not-leak"
	cases := []struct {
		name, ctype, body string
		wantMsg, wantCode string
	}{
		{"nested", "application/json", `{"error":{"message":"No connected account found","status":400,"request_id":"req_1","suggested_fix":"Connect first","slug":"NoAccount"}}`, "No connected account found", "NoAccount"},
		{"flat message", "application/json", `{"message":"Validation failed","code":1234}`, "Validation failed", "1234"},
		{"error string", "application/json", `{"error":"bad things"}`, "bad things", ""},
		{"detail list", "application/json", `{"detail":[{"msg":"field required"},{"msg":"too long"}]}`, "field required; too long", ""},
		{"plain text", "text/plain", "upstream\nexploded", "upstream exploded", ""},
		{"html", "text/html", "<html><body>Bad gateway</body></html>", "", ""},
		{"echoed key", "application/json", `{"message":"invalid key ` + key + `"}`, "invalid key [redacted]", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(tc.body))
			}))
			t.Cleanup(hs.Close)
			c, err := composio.New(composio.Config{APIKey: key, BaseURL: hs.URL})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.GetTool(context.Background(), "X")
			apiErr := asAPIError(t, err)
			if apiErr.Message != tc.wantMsg || apiErr.Code != tc.wantCode {
				t.Errorf("Message = %q, Code = %q; want %q, %q", apiErr.Message, apiErr.Code, tc.wantMsg, tc.wantCode)
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("error leaks the key: %v", err)
			}
			if !strings.Contains(err.Error(), "GetTool") || !strings.Contains(err.Error(), "400") {
				t.Errorf("error = %v", err)
			}
		})
	}
}

func TestMalformedAnswerIsNotRetried(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(`{"slug": 12`))
	}))
	t.Cleanup(hs.Close)
	c, err := composio.New(composio.Config{APIKey: "k", BaseURL: hs.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetToolkit(context.Background(), "gmail")
	if err == nil || composio.Retryable(err) || !strings.Contains(err.Error(), "decode") {
		t.Fatalf("err = %v", err)
	}
	if hits.Load() != 1 {
		t.Errorf("hits = %d", hits.Load())
	}
}

func TestPaginationLoopsAreCut(t *testing.T) {
	t.Parallel()
	t.Run("repeated cursor", func(t *testing.T) {
		t.Parallel()
		var hits atomic.Int32
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			hits.Add(1)
			_, _ = w.Write([]byte(`{"items":[{"slug":"a"}],"next_cursor":"same"}`))
		}))
		t.Cleanup(hs.Close)
		c, err := composio.New(composio.Config{APIKey: "k", BaseURL: hs.URL})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ListToolkits(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "repeated") {
			t.Fatalf("err = %v", err)
		}
		if hits.Load() != 2 {
			t.Errorf("hits = %d, want 2", hits.Load())
		}
	})
	t.Run("endless", func(t *testing.T) {
		t.Parallel()
		var hits atomic.Int32
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			n := hits.Add(1)
			// A numeric cursor, as older answers had.
			fmt.Fprintf(w, `{"items":[{"slug":"t%d"}],"next_cursor":%d}`, n, n)
		}))
		t.Cleanup(hs.Close)
		c, err := composio.New(composio.Config{APIKey: "k", BaseURL: hs.URL})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ListTools(context.Background(), "x"); err == nil {
			t.Fatal("endless pagination succeeded")
		}
		if hits.Load() != 50 {
			t.Errorf("hits = %d, want the 50-page cap", hits.Load())
		}
	})
}

func TestRetryable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&composio.APIError{StatusCode: 429}, true},
		{&composio.APIError{StatusCode: 500}, true},
		{&composio.APIError{StatusCode: 503}, true},
		{&composio.APIError{StatusCode: 400}, false},
		{&composio.APIError{StatusCode: 404}, false},
		{&composio.APIError{StatusCode: 401}, false},
		{&composio.APIError{Err: errors.New("connection refused")}, true},
		{&composio.APIError{Err: context.Canceled}, false},
		{fmt.Errorf("wrapped: %w", &composio.APIError{StatusCode: 502}), true},
		{context.DeadlineExceeded, true},
		{errors.New("other"), false},
	}
	for _, tc := range cases {
		if got := composio.Retryable(tc.err); got != tc.want {
			t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := map[string]time.Duration{
		"":    0,
		"3":   3 * time.Second,
		"1.5": 1500 * time.Millisecond,
		"-1":  0,
		"abc": 0,
		now.Add(42 * time.Second).Format(http.TimeFormat): 42 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
	}
	for in, want := range cases {
		if got := composio.ParseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestNetworkErrorsRetried(t *testing.T) {
	t.Parallel()
	s := composiotest.New()
	c, sl := newClient(t, s, func(cfg *composio.Config) { cfg.MaxRetries = 2 })
	s.Close() // nothing listens any more

	_, err := c.GetToolkit(context.Background(), "gmail")
	if !errors.Is(err, composio.ErrUnavailable) || !composio.Retryable(err) {
		t.Fatalf("err = %v, want retryable ErrUnavailable", err)
	}
	apiErr := asAPIError(t, err)
	if apiErr.StatusCode != 0 || apiErr.Attempts != 3 || len(sl.got()) != 2 {
		t.Errorf("APIError = %+v, waits = %v", apiErr, sl.got())
	}
	if strings.Contains(err.Error(), s.APIKey()) {
		t.Errorf("error leaks the API key: %v", err)
	}
}
