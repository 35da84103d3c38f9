package integrations

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/api"
	"github.com/openanalyst/mcp-integration-service/config"
	"github.com/openanalyst/mcp-integration-service/connectors/composio"
	"github.com/openanalyst/mcp-integration-service/connectors/composio/composiotest"
	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/service"
	"github.com/openanalyst/mcp-integration-service/worker"
)

// CallsBucket is the JetStream KV bucket of Composio executions in
// progress (see HandleExecute).
const CallsBucket = "MCP_COMPOSIO_CALLS"

// sandboxAuthConfigs are the auth configs the sandbox knows.
var sandboxAuthConfigs = map[string]string{"gmail": "ac_gmail", "slack": "ac_slack", "bigquery": "ac_bigquery"}

// Options adjust Hook. The zero value is production.
type Options struct {
	// Out receives start-up notes (the sandbox banner); default stderr.
	Out io.Writer
	// Sandbox runs a local Composio test double (composiotest) on loopback
	// and points the service at it. It is refused when COMPOSIO_API_KEY is
	// set and outside serve mode.
	Sandbox bool
	// SandboxAddr is where the sandbox listens; default 127.0.0.1:0.
	SandboxAddr string
	// Now is the clock of OAuth state; default time.Now. For tests.
	Now func() time.Time
	// HTTPClient calls Composio; default a new client.
	HTTPClient *http.Client
}

// CheckSandbox refuses --composio-sandbox where it does not belong: when a
// real COMPOSIO_API_KEY is configured (the sandbox is never the default
// then), and outside serve mode (API nodes and workers in other processes
// would each get a sandbox of their own).
func CheckSandbox(cfg *config.Config, mode service.Mode, sandbox bool) error {
	if !sandbox {
		return nil
	}
	if cfg.ComposioAPIKey != "" {
		return errors.New("--composio-sandbox refused: COMPOSIO_API_KEY is set, so real Composio is configured; " +
			"unset COMPOSIO_API_KEY to use the sandbox, or drop the flag")
	}
	if mode != service.ModeServe {
		return fmt.Errorf("--composio-sandbox works with serve only (API and workers in one process), not %s", mode)
	}
	return nil
}

// Hook returns the service.Options.Integrations function: once storage and
// NATS are up, it builds the Composio client and the Service, and hooks the
// OAuth-callback handler and the Composio execute fallback into the worker.
// Without COMPOSIO_API_KEY (and without the sandbox) it leaves the
// integrations unconfigured: /api/integrations answers 503.
func Hook(o Options) func(in *service.Instance) (api.Integrations, []func(*worker.Worker), error) {
	return func(in *service.Instance) (api.Integrations, []func(*worker.Worker), error) {
		svc, err := build(in, o)
		if err != nil || svc == nil {
			return nil, nil, err
		}
		register := func(w *worker.Worker) {
			w.Register(messages.KindOAuth, worker.HandlerFunc(svc.HandleCallback))
			w.SetFallback(worker.HandlerFunc(svc.HandleExecute))
		}
		return svc, []func(*worker.Worker){register}, nil
	}
}

func build(in *service.Instance, o Options) (*Service, error) {
	cfg := in.Config
	out := o.Out
	if out == nil {
		out = os.Stderr
	}
	if err := CheckSandbox(cfg, in.Mode, o.Sandbox); err != nil {
		return nil, err
	}
	apiKey, baseURL, prefix := cfg.ComposioAPIKey, cfg.ComposioBaseURL, cfg.ComposioAPIPrefix
	authConfigs := map[string]string{}
	for k, v := range cfg.ComposioAuthConfigs {
		authConfigs[strings.ToLower(k)] = v
	}
	var sandboxURL string
	if o.Sandbox {
		addr := o.SandboxAddr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		apiKey = "sandbox_" + rand.Text()
		sb, err := composiotest.NewServer(addr, composiotest.WithAPIKey(apiKey))
		if err != nil {
			return nil, fmt.Errorf("composio sandbox: %w", err)
		}
		in.OnClose(sb.Close)
		sandboxURL, baseURL, prefix = sb.URL(), sb.URL(), composio.DefaultAPIPrefix
		for p, ac := range sandboxAuthConfigs {
			if _, ok := authConfigs[p]; !ok {
				authConfigs[p] = ac
			}
		}
	}
	if apiKey == "" {
		return nil, nil
	}
	client, err := composio.New(composio.Config{APIKey: apiKey, BaseURL: baseURL, APIPrefix: prefix, HTTPClient: o.HTTPClient})
	if err != nil {
		return nil, fmt.Errorf("COMPOSIO_BASE_URL / COMPOSIO_API_PREFIX: %w", err)
	}

	key := []byte(cfg.OAuthStateKey)
	if len(key) == 0 {
		key = DeriveStateKey(in.Ring.Primary())
	}
	signer, err := NewSigner(key)
	if err != nil {
		return nil, errors.New("OAUTH_STATE_KEY must be at least 32 characters (or unset, to derive it from DB_ENCRYPTION_KEY)")
	}

	var allowed []string
	for _, a := range cfg.OAuthAllowed {
		norm, err := ParseOrigin(a)
		if err != nil {
			return nil, fmt.Errorf("OAUTH_ALLOWED_REDIRECTS: %w", err)
		}
		allowed = append(allowed, norm)
	}
	if cfg.OAuthRedirectBase != "" {
		if u, err := url.Parse(cfg.OAuthRedirectBase); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("OAUTH_REDIRECT_BASE %q must be an absolute http(s) URL", cfg.OAuthRedirectBase)
		}
	}
	allowedFn := func() []string { return allowed }
	if o.Sandbox && len(allowed) == 0 {
		// The API's own origin, known once it listens.
		allowedFn = func() []string { return ownOrigins(in.URL) }
	}
	callbackBase := func() string {
		if cfg.OAuthRedirectBase != "" {
			return cfg.OAuthRedirectBase
		}
		return in.URL
	}

	var calls jetstream.KeyValue
	if in.Mode != service.ModeAPI {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		calls, err = in.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: CallsBucket,
			Description: "Composio tool executions in progress, so a redelivered job never runs a tool twice",
			TTL:         callsTTL(cfg.JobStatusTTL), Replicas: max(cfg.StreamReplicas, 1), Storage: jetstream.FileStorage})
		if err != nil {
			return nil, fmt.Errorf("create the %s bucket: %w", CallsBucket, err)
		}
	}

	svc, err := New(Config{Client: client, Store: in.Store.Integrations(), Signer: signer, AuthConfigs: authConfigs,
		Allowed: allowedFn, CallbackBase: callbackBase, StateTTL: cfg.OAuthStateTTL, ToolsTTL: cfg.ComposioToolsTTL,
		MaxDeliver: cfg.MaxDeliver, Calls: calls, Now: o.Now, Logger: in.Logger.With("component", "integrations")})
	if err != nil {
		return nil, err
	}

	switch {
	case o.Sandbox:
		origins := "this API's own origin"
		if len(allowed) > 0 {
			origins = strings.Join(allowed, ", ")
		}
		var acs []string
		for p, ac := range authConfigs {
			acs = append(acs, p+":"+ac)
		}
		slices.Sort(acs)
		bar := strings.Repeat("=", 78)
		fmt.Fprintf(out, "%s\nComposio SANDBOX is on: a local fake of Composio at %s (no real OAuth:\n"+
			"consent is simulated, no Google or Slack account is touched, tools answer canned data).\n"+
			"Auth configs: %s. Allowed redirects: %s.\nNever use it in production; set COMPOSIO_API_KEY for real Composio.\n%s\n",
			bar, sandboxURL, strings.Join(acs, ", "), origins, bar)
	case cfg.OAuthRedirectBase == "" && in.Mode != service.ModeWorker:
		fmt.Fprintln(out, "OAUTH_REDIRECT_BASE is unset: the OAuth callback uses this API's own URL, "+
			"which only a browser on this machine can reach")
	}
	return svc, nil
}

// ownOrigins are the origins of the API itself (and its localhost alias),
// allowed as redirect targets in sandbox mode when none are configured.
func ownOrigins(apiURL string) []string {
	if apiURL == "" {
		return nil
	}
	o, err := ParseOrigin(apiURL)
	if err != nil {
		return nil
	}
	out := []string{o}
	if u, err := url.Parse(o); err == nil {
		if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() {
			alias := u.Scheme + "://localhost"
			if u.Port() != "" {
				alias += ":" + u.Port()
			}
			out = append(out, alias)
		}
	}
	return out
}
