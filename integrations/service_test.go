package integrations

import (
	"context"
	"encoding/json"
	"errors"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/api"
	"github.com/openanalyst/mcp-integration-service/config"
	"github.com/openanalyst/mcp-integration-service/connectors/composio"
	"github.com/openanalyst/mcp-integration-service/connectors/composio/composiotest"
	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/storage"
)

// ferretURI is an embedded FerretDB the tests keep their records in: the
// store's conditional updates are the real ones.
var ferretURI string

func TestMain(m *testing.M) {
	dir, _ := os.MkdirTemp("", "integrations-test-")
	f, err := embedded.StartFerret(context.Background(), dir, 0, nil)
	if err != nil {
		panic(err)
	}
	ferretURI = f.URI()
	code := m.Run()
	_ = f.Close()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// testStore is an integration store in a database of the test's own.
func testStore(t *testing.T) storage.IntegrationStore {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	name := "it_" + strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	m, err := storage.Open(ctx, ferretURI, name[:min(len(name), 60)])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = m.Close(context.Background())
		if c, err := mongo.Connect(options.Client().ApplyURI(ferretURI)); err == nil {
			_ = c.Database(name[:min(len(name), 60)]).Drop(context.Background())
			_ = c.Disconnect(context.Background())
		}
	})
	return m.Integrations()
}

func testService(t *testing.T) (*Service, storage.IntegrationStore, *composiotest.Server) {
	t.Helper()
	return testServiceWith(t, map[string]string{"gmail": "ac_gmail"})
}

// testServiceWith is testService with the given provider → auth config map.
func testServiceWith(t *testing.T, authConfigs map[string]string) (*Service, storage.IntegrationStore, *composiotest.Server) {
	t.Helper()
	double := composiotest.Start(t)
	client, err := composio.New(composio.Config{APIKey: double.APIKey(), BaseURL: double.URL()})
	if err != nil {
		t.Fatal(err)
	}
	store := testStore(t)
	svc, err := New(Config{Client: client, Store: store, Signer: testSigner(t, strings.Repeat("s", 32)),
		AuthConfigs:  authConfigs,
		Allowed:      func() []string { return []string{"https://app.openanalyst.com"} },
		CallbackBase: func() string { return "https://mcp.example" }})
	if err != nil {
		t.Fatal(err)
	}
	return svc, store, double
}

// consentQuery connects and consents, returning the callback's query.
func consentQuery(t *testing.T, svc *Service, user string) (map[string]string, string) {
	t.Helper()
	return consentQueryFor(t, svc, user, "gmail")
}

// consentQueryFor is consentQuery for a provider.
func consentQueryFor(t *testing.T, svc *Service, user, provider string) (map[string]string, string) {
	t.Helper()
	started, err := svc.Connect(context.Background(), user, provider, "https://app.openanalyst.com/c")
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, started.AuthURL, nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), "https://mcp.example/api/integrations/callback?") {
		t.Fatalf("consent redirected to %q", resp.Header.Get("Location"))
	}
	q := map[string]string{}
	for k, v := range loc.Query() {
		q[k] = v[0]
	}
	return q, started.IntegrationID
}

func runCallback(t *testing.T, svc *Service, jobID, user string, q map[string]string) api.CallbackResult {
	t.Helper()
	payload, _ := json.Marshal(messages.OAuthPayload{Query: q})
	out := svc.HandleCallback(context.Background(), &messages.Job{V: 1, Kind: messages.KindOAuth, JobID: jobID,
		UserID: user, CreatedAt: time.Now(), Payload: payload}, 1)
	if out.Err != nil {
		t.Fatalf("callback job failed: %+v", out.Err)
	}
	var res api.CallbackResult
	if err := json.Unmarshal(out.Body, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// A redelivered callback job answers as its first run did; a replay (a new
// job with the same query) is refused and changes nothing.
func TestCallbackIdempotentPerJob(t *testing.T) {
	t.Parallel()
	svc, store, _ := testService(t)
	q, id := consentQuery(t, svc, "alice")
	if r := runCallback(t, svc, "job-1", "alice", q); r.Status != "success" || r.IntegrationID != id {
		t.Fatalf("first run: %+v", r)
	}
	rec, _ := store.Get(context.Background(), "alice", id)
	if rec.Status != storage.StatusActive || rec.StateNonce != "" || rec.CallbackJobID != "job-1" ||
		rec.ConnectedEmail != "user_alice@example.com" {
		t.Fatalf("record after the callback: %+v", rec)
	}
	if r := runCallback(t, svc, "job-1", "alice", q); r.Status != "success" {
		t.Fatalf("redelivery of the same job: %+v", r)
	}
	if r := runCallback(t, svc, "job-2", "alice", q); r.Status != "failed" || r.Reason != reasonStateUsed {
		t.Fatalf("replay as a new job: %+v", r)
	}
	after, _ := store.Get(context.Background(), "alice", id)
	if *after != *rec {
		t.Fatalf("a replay changed the record: %+v → %+v", rec, after)
	}
}

// Connect refuses before any call to Composio.
func TestConnectRefusals(t *testing.T) {
	t.Parallel()
	svc, _, double := testService(t)
	cases := map[string][3]string{
		"unknown provider":        {"dropbox", "https://app.openanalyst.com/", "unknown_provider"},
		"unconfigured provider":   {"slack", "https://app.openanalyst.com/", "provider_not_configured"},
		"redirect elsewhere":      {"gmail", "https://evil.example/", "redirect_not_allowed"},
		"javascript redirect":     {"gmail", "javascript:alert(1)", "redirect_not_allowed"},
		"redirect to a lookalike": {"gmail", "https://app.openanalyst.com.evil.example/", "redirect_not_allowed"},
	}
	for name, c := range cases {
		_, err := svc.Connect(context.Background(), "alice", c[0], c[1])
		var ie *api.IntegrationError
		if !errors.As(err, &ie) || ie.Code != c[2] {
			t.Errorf("%s: %v, want 400 %s", name, err, c[2])
		}
	}
	if n := double.TotalRequests(); n != 0 {
		t.Fatalf("refused connects made %d Composio calls", n)
	}
}

func TestCheckSandbox(t *testing.T) {
	t.Parallel()
	if err := CheckSandbox(&config.Config{ComposioAPIKey: "real"}, true, true, "serve"); err == nil ||
		!strings.Contains(err.Error(), "COMPOSIO_API_KEY is set") {
		t.Fatalf("sandbox with a real key: %v", err)
	}
	if err := CheckSandbox(&config.Config{}, false, true, "worker"); err == nil {
		t.Fatal("sandbox in worker mode was accepted")
	}
	if err := CheckSandbox(&config.Config{}, true, true, "serve"); err != nil {
		t.Fatal(err)
	}
	if err := CheckSandbox(&config.Config{ComposioAPIKey: "real"}, false, false, "api"); err != nil {
		t.Fatal(err)
	}
}
