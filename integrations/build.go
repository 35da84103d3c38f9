package integrations

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/config"
	"github.com/openanalyst/mcp-integration-service/connectors/composio"
	"github.com/openanalyst/mcp-integration-service/keyring"
	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/storage"
)

// CallsBucket is the JetStream KV bucket of Composio executions in
// progress (see HandleExecute).
const CallsBucket = "MCP_COMPOSIO_CALLS"

// Sandbox is a local Composio test double the process talks to instead of
// Composio (serve --composio-sandbox). The command wires it; this package
// never imports the double.
type Sandbox struct {
	URL         string
	APIKey      string
	AuthConfigs map[string]string // provider → auth config id the double knows
}

// Deps are what the OAuth side is built from.
type Deps struct {
	Config *config.Config
	Store  *storage.Mongo
	JS     jetstream.JetStream
	Ring   *keyring.Keyring
	// Worker is set in processes that run jobs (they need the calls bucket).
	Worker bool
	// API is set in processes that serve the API (the start-up notes).
	API bool
	// APIURL is the API's own base URL, once it listens.
	APIURL func() string
	// Sandbox, when set, replaces Composio. Refused with COMPOSIO_API_KEY.
	Sandbox *Sandbox
	// Out receives start-up notes (the sandbox banner); default stderr.
	Out io.Writer
	// Now is the clock of OAuth state; default time.Now. For tests.
	Now func() time.Time
	// HTTPClient calls Composio; default a new client.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// CheckSandbox refuses --composio-sandbox where it does not belong: when a
// real COMPOSIO_API_KEY is configured (the sandbox is never the default
// then), and outside serve mode (API nodes and workers in other processes
// would each get a sandbox of their own).
func CheckSandbox(cfg *config.Config, serveMode, sandbox bool, mode string) error {
	if !sandbox {
		return nil
	}
	if cfg.ComposioAPIKey != "" {
		return errors.New("--composio-sandbox refused: COMPOSIO_API_KEY is set, so real Composio is configured; " +
			"unset COMPOSIO_API_KEY to use the sandbox, or drop the flag")
	}
	if !serveMode {
		return fmt.Errorf("--composio-sandbox works with serve only (API and workers in one process), not %s", mode)
	}
	return nil
}

// Build makes the OAuth side from its dependencies. Without
// COMPOSIO_API_KEY (and without the sandbox) it returns nil: the
// integrations are unconfigured and /api/integrations answers 503.
func Build(d Deps) (*Service, error) {
	cfg := d.Config
	out := d.Out
	if out == nil {
		out = os.Stderr
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.APIURL == nil {
		d.APIURL = func() string { return "" }
	}
	apiKey, baseURL, prefix := cfg.ComposioAPIKey, cfg.ComposioBaseURL, cfg.ComposioAPIPrefix
	authConfigs := map[string]string{}
	for k, v := range cfg.ComposioAuthConfigs {
		authConfigs[strings.ToLower(k)] = v
	}
	var sandboxURL string
	if d.Sandbox != nil {
		apiKey = d.Sandbox.APIKey
		sandboxURL, baseURL, prefix = d.Sandbox.URL, d.Sandbox.URL, composio.DefaultAPIPrefix
		for p, ac := range d.Sandbox.AuthConfigs {
			if _, ok := authConfigs[p]; !ok {
				authConfigs[p] = ac
			}
		}
	}
	if apiKey == "" {
		return nil, nil
	}
	client, err := composio.New(composio.Config{APIKey: apiKey, BaseURL: baseURL, APIPrefix: prefix, HTTPClient: d.HTTPClient})
	if err != nil {
		return nil, fmt.Errorf("COMPOSIO_BASE_URL / COMPOSIO_API_PREFIX: %w", err)
	}

	key := []byte(cfg.OAuthStateKey)
	if len(key) == 0 {
		key = DeriveStateKey(d.Ring.Primary())
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
	if d.Sandbox != nil && len(allowed) == 0 {
		// The API's own origin, known once it listens.
		allowedFn = func() []string { return ownOrigins(d.APIURL()) }
	}
	callbackBase := func() string {
		if cfg.OAuthRedirectBase != "" {
			return cfg.OAuthRedirectBase
		}
		return d.APIURL()
	}

	var calls, refreshLock jetstream.KeyValue
	if d.Worker {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		calls, err = d.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: CallsBucket,
			Description: "Composio tool executions in progress, so a redelivered job never runs a tool twice",
			TTL:         callsTTL(cfg.JobStatusTTL), Replicas: max(cfg.StreamReplicas, 1), Storage: jetstream.FileStorage})
		if err != nil {
			return nil, fmt.Errorf("create the %s bucket: %w", CallsBucket, err)
		}
		if cfg.ComposioStatusRefresh > 0 {
			refreshLock, err = d.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: RefreshBucket,
				Description: "elects the worker that runs a Composio status refresh tick",
				TTL:         refreshLockTTL(cfg.ComposioStatusRefresh), Replicas: max(cfg.StreamReplicas, 1)})
			if err != nil {
				return nil, fmt.Errorf("create the %s bucket: %w", RefreshBucket, err)
			}
		}
	}
	notify := func(userID string) {
		if d.JS != nil {
			_ = d.JS.Conn().Publish(messages.EventToolsChanged, []byte(userID))
		}
	}

	svc, err := New(Config{Client: client, Store: d.Store.Integrations(), Signer: signer, AuthConfigs: authConfigs,
		Allowed: allowedFn, CallbackBase: callbackBase, StateTTL: cfg.OAuthStateTTL, ToolsTTL: cfg.ComposioToolsTTL,
		MaxDeliver: cfg.MaxDeliver, Calls: calls, RefreshEvery: cfg.ComposioStatusRefresh, RefreshLock: refreshLock,
		Notify: notify, Now: d.Now, Logger: d.Logger.With("component", "integrations")})
	if err != nil {
		return nil, err
	}

	switch {
	case d.Sandbox != nil:
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
	case cfg.OAuthRedirectBase == "" && d.API:
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
