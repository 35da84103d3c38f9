package integrations

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/api"
	"github.com/openanalyst/mcp-integration-service/connectors/composio"
	"github.com/openanalyst/mcp-integration-service/storage"
	"github.com/openanalyst/mcp-integration-service/tools"
)

// builtin are the providers offered out of the box, with the names,
// descriptions and logos shown when Composio cannot be asked for them.
var builtin = []api.Provider{
	{Provider: "gmail", Name: "Gmail", Description: "Read, search, draft and send email from the user's Gmail account.",
		Logo: "https://logos.composio.dev/api/gmail"},
	{Provider: "slack", Name: "Slack", Description: "Read channels and post messages in the user's Slack workspace.",
		Logo: "https://logos.composio.dev/api/slack"},
	{Provider: "bigquery", Name: "BigQuery", Description: "Run SQL queries and browse datasets in Google BigQuery.",
		Logo: "https://logos.composio.dev/api/googlebigquery"},
}

// toolkitSlugs maps our provider names, which the API keeps, to Composio's
// toolkit slugs. It is the one place they differ: every toolkit slug sent to
// Composio or read from it (toolkit lookups, tool lists, a connected
// account's toolkit, a tool slug's prefix) goes through toolkitOf. A
// provider not listed (one added by COMPOSIO_AUTH_CONFIGS) is its own slug.
var toolkitSlugs = map[string]string{"gmail": "gmail", "slack": "slack", "bigquery": "googlebigquery"}

// toolkitOf is the Composio toolkit slug of a provider.
func toolkitOf(provider string) string {
	if tk, ok := toolkitSlugs[provider]; ok {
		return tk
	}
	return provider
}

// providerOfToolkit is the provider whose toolkit slug is tk (any case), for
// the built-in providers whose slug differs from their name.
func providerOfToolkit(tk string) (string, bool) {
	for p, slug := range toolkitSlugs {
		if strings.EqualFold(slug, tk) && p != slug {
			return p, true
		}
	}
	return "", false
}

// EntityID is the Composio user id of one of our users: "user_<user_id>",
// as the design document stores it in composio_entity_id.
func EntityID(userID string) string { return "user_" + userID }

// Config is what a Service runs on.
type Config struct {
	// Client calls Composio. Required.
	Client *composio.Client
	// Store keeps integration records. Required.
	Store storage.IntegrationStore
	// Signer signs and checks OAuth state. Required.
	Signer *Signer
	// AuthConfigs maps a provider to its Composio auth config id. A provider
	// without one is listed as not configured. A key may also be a
	// provider's Composio toolkit slug (googlebigquery for bigquery).
	AuthConfigs map[string]string
	// Allowed returns the origins redirect_url may point to (normalised by
	// ParseOrigin). It is called on every connect, so it may be lazy.
	Allowed func() []string
	// CallbackBase returns the public base URL of this service; the
	// callback is CallbackBase()+"/api/integrations/callback".
	CallbackBase func() string
	// StateTTL is how long a connect flow may take; default 15 minutes.
	StateTTL time.Duration
	// ToolsTTL is how long a toolkit's tools (and description) are cached;
	// default 10 minutes.
	ToolsTTL time.Duration
	// MaxDeliver is the OAuth consumer's MaxDeliver: on the last try a
	// callback that Composio could not confirm is closed as failed.
	MaxDeliver int
	// Calls records Composio executions in progress, so a redelivered
	// execute job never runs a tool twice. Nil disables the guard.
	Calls jetstream.KeyValue
	// RefreshEvery is how often a worker's RunStatusRefresh checks
	// connections with Composio; 0 turns it off.
	RefreshEvery time.Duration
	// RefreshBatch is how many connections one tick checks; default
	// DefaultRefreshBatch.
	RefreshBatch int
	// RefreshLock, when set, elects one worker of the fleet per tick (a
	// bucket whose keys live about an interval). Nil: every worker ticks.
	RefreshLock jetstream.KeyValue
	// Notify is told of a user whose tools changed outside a request (a
	// status refresh); default a no-op.
	Notify func(userID string)
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Service is the OAuth side of the API (api.Integrations) and the worker
// handlers of OAuth callbacks and Composio tool executions.
type Service struct {
	c         Config
	providers []api.Provider
	tools     *cache[*toolkitTools]
	kits      *cache[*composio.Toolkit]
	// checker asks for account statuses without retrying, so a 429 stops
	// a refresh at once.
	checker *composio.Client
}

// toolkitTools is one toolkit's tools, as listed and by slug.
type toolkitTools struct {
	list   []tools.Tool
	bySlug map[string]string // slug → version
}

var _ api.Integrations = (*Service)(nil)

// New checks c and returns a Service.
func New(c Config) (*Service, error) {
	if c.Client == nil || c.Store == nil || c.Signer == nil {
		return nil, errors.New("integrations: Client, Store and Signer are required")
	}
	if c.Allowed == nil {
		c.Allowed = func() []string { return nil }
	}
	if c.CallbackBase == nil {
		c.CallbackBase = func() string { return "" }
	}
	if c.StateTTL <= 0 {
		c.StateTTL = 15 * time.Minute
	}
	if c.ToolsTTL <= 0 {
		c.ToolsTTL = 10 * time.Minute
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 5
	}
	if c.RefreshBatch <= 0 {
		c.RefreshBatch = DefaultRefreshBatch
	}
	if c.Notify == nil {
		c.Notify = func(string) {}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	auth := make(map[string]string, len(c.AuthConfigs))
	for p, id := range c.AuthConfigs {
		if name, ok := providerOfToolkit(p); ok {
			if _, named := c.AuthConfigs[name]; named {
				continue // the provider's own name wins
			}
			p = name
		}
		auth[p] = id
	}
	c.AuthConfigs = auth
	s := &Service{c: c, providers: slices.Clone(builtin), checker: c.Client.WithoutRetries()}
	var extra []string
	for p := range c.AuthConfigs {
		if !slices.ContainsFunc(builtin, func(b api.Provider) bool { return b.Provider == p }) {
			extra = append(extra, p)
		}
	}
	slices.Sort(extra)
	for _, p := range extra {
		s.providers = append(s.providers, api.Provider{Provider: p, Name: strings.ToUpper(p[:1]) + p[1:],
			Description: "Connect " + p + " through Composio."})
	}
	s.tools = newCache(c.ToolsTTL, c.Now, s.fetchTools)
	s.kits = newCache(c.ToolsTTL, c.Now, func(ctx context.Context, provider string) (*composio.Toolkit, error) {
		return c.Client.GetToolkit(ctx, toolkitOf(provider))
	})
	return s, nil
}

func (s *Service) known(provider string) bool {
	return slices.ContainsFunc(s.providers, func(p api.Provider) bool { return p.Provider == provider })
}

// providerOfTool is the provider a tool slug belongs to: the known provider
// whose toolkit slug, upper-cased, is the longest prefix of the slug before
// an underscore (GOOGLEBIGQUERY_QUERY is bigquery's). "" when none is.
func (s *Service) providerOfTool(slug string) string {
	best, bestLen := "", 0
	for _, p := range s.providers {
		prefix := strings.ToUpper(toolkitOf(p.Provider)) + "_"
		if len(prefix) > bestLen && strings.HasPrefix(strings.ToUpper(slug), prefix) {
			best, bestLen = p.Provider, len(prefix)
		}
	}
	return best
}

func (s *Service) providerNames() string {
	names := make([]string, len(s.providers))
	for i, p := range s.providers {
		names[i] = p.Provider
	}
	return strings.Join(names, ", ")
}

// Providers lists the offered apps, described by Composio when it answers
// (cached like tools) and by built-in text when it does not.
func (s *Service) Providers(ctx context.Context) ([]api.Provider, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out := slices.Clone(s.providers)
	var wg sync.WaitGroup
	for i := range out {
		out[i].Configured = s.c.AuthConfigs[out[i].Provider] != ""
		wg.Go(func() {
			tk, err := s.kits.get(ctx, out[i].Provider)
			if err != nil {
				s.c.Logger.Debug("composio toolkit unavailable; using the built-in description",
					"provider", out[i].Provider, "err", err)
				return
			}
			if tk.Name != "" {
				out[i].Name = tk.Name
			}
			if d := strings.TrimSpace(tk.Meta.Description); d != "" {
				out[i].Description = d
			}
			if tk.Meta.Logo != "" {
				out[i].Logo = tk.Meta.Logo
			}
		})
	}
	wg.Wait()
	return out, nil
}

// Connect starts an OAuth flow. It asks Composio for a hosted link whose
// callback carries a signed state, and records a pending integration that
// only that state can complete.
func (s *Service) Connect(ctx context.Context, userID, provider, redirectURL string) (*api.ConnectStarted, error) {
	if !s.known(provider) {
		return nil, bad("unknown_provider", "unknown provider %s; one of: %s", api.Clip(provider), s.providerNames())
	}
	authConfig := s.c.AuthConfigs[provider]
	if authConfig == "" {
		return nil, bad("provider_not_configured",
			"%s is not configured on this server: add %s:<auth_config_id> to COMPOSIO_AUTH_CONFIGS", provider, provider)
	}
	redirect, err := CheckRedirect(redirectURL, s.c.Allowed())
	if err != nil {
		return nil, bad("redirect_not_allowed", "%s", err.Error())
	}
	base := strings.TrimRight(s.c.CallbackBase(), "/")
	if base == "" {
		return nil, &api.IntegrationError{Code: "oauth_not_configured",
			Msg: "the OAuth callback URL is unknown: set OAUTH_REDIRECT_BASE"}
	}
	now := s.c.Now().UTC()
	rec := &storage.Integration{ID: newID("int_"), UserID: userID, Provider: provider, Status: storage.StatusPending,
		ComposioEntityID: EntityID(userID), RedirectURL: redirect, StateNonce: randomToken(),
		CreatedAt: now.Truncate(time.Millisecond), UpdatedAt: now.Truncate(time.Millisecond)}
	state, err := s.c.Signer.Sign(State{UserID: userID, Provider: provider, RedirectURL: redirect,
		Nonce: rec.StateNonce, IntegrationID: rec.ID, Expires: now.Add(s.c.StateTTL)})
	if err != nil {
		return nil, err
	}
	callback := base + "/api/integrations/callback?state=" + url.QueryEscape(state)
	link, err := s.c.Client.CreateLink(ctx, composio.LinkRequest{AuthConfigID: authConfig, UserID: rec.ComposioEntityID,
		CallbackURL: callback})
	if err != nil {
		return nil, composioError("create the connect link", err)
	}
	if u, err := url.Parse(link.RedirectURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, &api.IntegrationError{Code: "composio_error",
			Msg: "Composio answered with a connect link that is not an http(s) URL"}
	}
	rec.ComposioConnectionID = link.ConnectedAccountID
	if err := s.c.Store.Put(ctx, rec); err != nil {
		s.deleteAccount(rec.ComposioConnectionID)
		return nil, storageError(err)
	}
	return &api.ConnectStarted{AuthURL: link.RedirectURL, IntegrationID: rec.ID}, nil
}

// Connected lists the user's connections: the active ones, and those that
// Composio reported expired, revoked, disabled or failed since, with why.
func (s *Service) Connected(ctx context.Context, userID string) ([]api.ConnectedIntegration, error) {
	recs, err := s.c.Store.List(ctx, userID)
	if err != nil {
		return nil, storageError(err)
	}
	out := []api.ConnectedIntegration{}
	for i := range recs {
		if recs[i].WasConnected() {
			out = append(out, connectedView(&recs[i]))
		}
	}
	return out, nil
}

// Disconnect deletes the connected account at Composio (one already gone
// counts as deleted), then marks ours removed. By provider, every record of
// that provider that is not removed yet goes.
func (s *Service) Disconnect(ctx context.Context, userID, integrationID, provider string) ([]string, error) {
	var targets []storage.Integration
	if integrationID != "" {
		rec, err := s.c.Store.Get(ctx, userID, integrationID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return nil, notFound("integration_not_found", "integration %s not found", api.Clip(integrationID))
		case err != nil:
			return nil, storageError(err)
		case rec.Status == storage.StatusRemoved || provider != "" && rec.Provider != provider:
			// Already removed, or not of the provider named as well.
			return nil, notFound("integration_not_found", "integration %s not found", api.Clip(integrationID))
		}
		targets = append(targets, *rec)
	} else {
		recs, err := s.c.Store.List(ctx, userID)
		if err != nil {
			return nil, storageError(err)
		}
		for _, r := range recs {
			if r.Provider == provider && r.Status != storage.StatusRemoved {
				targets = append(targets, r)
			}
		}
		if len(targets) == 0 {
			return nil, notFound("integration_not_found", "no %s integration found for this user", provider)
		}
		// Newest first, so integration_id names the one the user saw.
		slices.Reverse(targets)
	}
	ids := make([]string, 0, len(targets))
	for _, r := range targets {
		if r.ComposioConnectionID != "" {
			err := s.c.Client.DeleteConnectedAccount(ctx, r.ComposioConnectionID)
			if err != nil && !errors.Is(err, composio.ErrNotFound) {
				return nil, composioError("delete the connected account", err)
			}
		}
		err := s.c.Store.Remove(ctx, userID, r.ID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, storageError(err)
		}
		ids = append(ids, r.ID)
	}
	return ids, nil
}

// Tools lists the tools of the user's active integrations. A toolkit whose
// tools Composio cannot list right now (and that has no cached list) is
// left out, so database tools still work while Composio is down.
func (s *Service) Tools(ctx context.Context, userID string) ([]tools.Tool, error) {
	recs, err := s.c.Store.List(ctx, userID)
	if err != nil {
		return nil, storageError(err)
	}
	var providers []string
	for _, r := range recs {
		if r.Status == storage.StatusActive && !slices.Contains(providers, r.Provider) {
			providers = append(providers, r.Provider)
		}
	}
	out := []tools.Tool{}
	for _, p := range providers {
		tt, err := s.tools.get(ctx, p)
		if err != nil {
			s.c.Logger.Warn("composio tools unavailable; leaving them out", "provider", p, "err", err)
			continue
		}
		out = append(out, tt.list...)
	}
	return out, nil
}

// fetchTools lists a provider's tools: those of its Composio toolkit.
func (s *Service) fetchTools(ctx context.Context, provider string) (*toolkitTools, error) {
	toolkit := toolkitOf(provider)
	list, err := s.c.Client.ListTools(ctx, toolkit)
	if err != nil {
		return nil, err
	}
	tt := &toolkitTools{bySlug: map[string]string{}}
	for i := range list {
		t := &list[i]
		if t.Slug == "" || t.IsDeprecated {
			continue
		}
		if t.Toolkit.Slug != "" && !strings.EqualFold(t.Toolkit.Slug, toolkit) {
			continue
		}
		tt.list = append(tt.list, toolOf(provider, t))
		tt.bySlug[strings.ToUpper(t.Slug)] = t.Version
	}
	return tt, nil
}

// CallbackTarget checks a callback's state before any job is queued: its
// signature (a forgery is a 400 with no redirect at all), that its redirect
// URL is still allowed, and that it is the open flow's state: a state already
// used (the record is no longer pending with its nonce) or expired is
// refused, with Closed set, so the browser goes back to OA as failed and
// nothing runs. An expired flow still pending is closed as failed here, as
// the callback job would have.
func (s *Service) CallbackTarget(ctx context.Context, state string) (*api.CallbackTarget, error) {
	st, err := s.c.Signer.Verify(state, s.c.Now())
	if errors.Is(err, ErrStateInvalid) {
		return nil, bad("invalid_state", "the OAuth state is missing, malformed or not signed by this service")
	}
	expired := errors.Is(err, ErrStateExpired)
	if _, err := CheckRedirect(st.RedirectURL, s.c.Allowed()); err != nil {
		return nil, bad("redirect_not_allowed", "%s", err.Error())
	}
	t := &api.CallbackTarget{UserID: st.UserID, Provider: st.Provider, RedirectURL: st.RedirectURL}
	rec, err := s.c.Store.Get(ctx, st.UserID, st.IntegrationID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		t.Closed = reasonUnknownFlow
		return t, nil
	case err != nil:
		return nil, storageError(err)
	}
	open := rec.Status == storage.StatusPending && rec.Provider == st.Provider && rec.StateNonce != "" &&
		subtle.ConstantTimeCompare([]byte(rec.StateNonce), []byte(st.Nonce)) == 1
	switch {
	case !open:
		t.Closed = reasonStateUsed
	case expired:
		s.markFailed(rec, st.Nonce)
		t.Closed = reasonStateExpired
	}
	return t, nil
}

// deleteAccount deletes a connected account at Composio, best effort (an
// account we created and no longer want).
func (s *Service) deleteAccount(id string) {
	if id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.c.Client.DeleteConnectedAccount(ctx, id); err != nil && !errors.Is(err, composio.ErrNotFound) {
		s.c.Logger.Warn("could not delete an unused Composio connected account", "account", id, "err", err)
	}
}

// ---- errors ------------------------------------------------------------------

func bad(code, format string, args ...any) *api.IntegrationError {
	return &api.IntegrationError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

func notFound(code, format string, args ...any) *api.IntegrationError {
	return &api.IntegrationError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

func storageError(err error) error {
	if errors.Is(err, storage.ErrUnavailable) {
		return &api.IntegrationError{Code: "storage_unavailable",
			Msg: "storage is unavailable; try again shortly"}
	}
	if errors.Is(err, storage.ErrNotFound) {
		return notFound("integration_not_found", "integration not found")
	}
	return err
}

// composioError maps a failed Composio call onto the API's answer: 429 with
// Retry-After when rate limited, 503 when Composio is down or unreachable,
// 502 when it refused the call.
func composioError(what string, err error) error {
	var ae *composio.APIError
	errors.As(err, &ae)
	switch {
	case errors.Is(err, composio.ErrRateLimited):
		wait := time.Second
		if ae != nil && ae.RetryAfter > 0 {
			wait = ae.RetryAfter
		}
		return &api.IntegrationError{Code: "rate_limited", RetryAfter: wait,
			Msg: fmt.Sprintf("Composio is rate limiting this service; could not %s. Retry after %s", what, wait)}
	case errors.Is(err, composio.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded):
		return &api.IntegrationError{Code: "composio_unavailable",
			Msg: fmt.Sprintf("Composio is unavailable; could not %s: %v", what, err)}
	case errors.Is(err, composio.ErrUnauthorized):
		return &api.IntegrationError{Code: "composio_unauthorized",
			Msg: fmt.Sprintf("Composio refused this service's API key (check COMPOSIO_API_KEY); could not %s", what)}
	default:
		return &api.IntegrationError{Code: "composio_error",
			Msg: fmt.Sprintf("Composio could not %s: %v", what, err)}
	}
}

// ---- ids ---------------------------------------------------------------------

func newID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

func randomToken() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
