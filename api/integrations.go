package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"

	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/tools"
)

// Integrations is the OAuth side of the service (Composio). The API calls it
// for the /api/integrations routes and for the tools of connected apps.
// Errors meant for the caller are *IntegrationError; anything else answers
// 500.
type Integrations interface {
	// Providers lists the OAuth apps this service offers.
	Providers(ctx context.Context) ([]Provider, error)
	// Connect starts an OAuth flow: it records a pending integration and
	// returns the page the user must open.
	Connect(ctx context.Context, userID, provider, redirectURL string) (*ConnectStarted, error)
	// Connected lists the user's connections: the active ones, and those
	// Composio has reported expired, revoked, disabled or failed since.
	Connected(ctx context.Context, userID string) ([]ConnectedIntegration, error)
	// Refresh asks Composio for one connection's status now and records it.
	// changed reports a new status. Unknown and other users' integrations
	// are a 404.
	Refresh(ctx context.Context, userID, integrationID string) (out *ConnectedIntegration, changed bool, err error)
	// Disconnect removes one integration (by id) or every integration of a
	// provider (by provider), at Composio and here, and returns the ids
	// removed. Unknown and other users' integrations are a 404.
	Disconnect(ctx context.Context, userID, integrationID, provider string) ([]string, error)
	// Tools lists the tools of the user's active integrations.
	Tools(ctx context.Context, userID string) ([]tools.Tool, error)
	// CallbackTarget checks the signature of a callback's state token and
	// returns what it vouches for. A forged or garbled state is an error:
	// the callback then has no redirect target at all. A used or expired
	// state comes back with Closed set.
	CallbackTarget(ctx context.Context, state string) (*CallbackTarget, error)
}

// Provider is one entry of GET /api/integrations.
type Provider struct {
	Provider    string `json:"provider"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Logo        string `json:"logo,omitempty"`
	Configured  bool   `json:"configured"`
}

// ConnectStarted is the answer of POST /api/integrations/connect.
type ConnectStarted struct {
	AuthURL       string `json:"auth_url"`
	IntegrationID string `json:"integration_id"`
}

// ConnectedIntegration is one entry of GET /api/integrations/connected: the
// stored record without its OAuth internals (state nonce, redirect URL).
type ConnectedIntegration struct {
	IntegrationID        string    `json:"integration_id"`
	Provider             string    `json:"provider"`
	Status               string    `json:"status"`
	ConnectedEmail       string    `json:"connected_email,omitempty"`
	ComposioEntityID     string    `json:"composio_entity_id"`
	ComposioConnectionID string    `json:"composio_connection_id,omitempty"`
	CreatedAt            time.Time `json:"created_at"`
	UpdatedAt            time.Time `json:"updated_at"`
	// StatusReason says why a connection is not active (Composio's
	// status_reason, or ours); CheckedAt is when Composio was last asked.
	StatusReason string     `json:"status_reason,omitempty"`
	CheckedAt    *time.Time `json:"checked_at,omitempty"`
}

// CallbackTarget is what a validly signed state says: whose flow it is, for
// which provider, and where the browser goes back to.
type CallbackTarget struct {
	UserID      string
	Provider    string
	RedirectURL string
	// Closed, when set, is why the flow can no longer complete (its state
	// was used already, or expired): the browser goes back as failed and no
	// job is queued.
	Closed string
}

// CallbackResult is the body an OAuth-callback job answers with.
type CallbackResult struct {
	Status        string `json:"status"` // "success" or "failed"
	Provider      string `json:"provider,omitempty"`
	IntegrationID string `json:"integration_id,omitempty"`
	Reason        string `json:"reason,omitempty"` // a stable code, for logs
}

// IntegrationError is an error of the OAuth side: a stable code (the API
// picks the status, statusOf) and a message. RetryAfter, when set, becomes a
// Retry-After header.
type IntegrationError struct {
	Code       string
	Msg        string
	RetryAfter time.Duration
}

func (e *IntegrationError) Error() string { return e.Msg }

func notConfigured(w http.ResponseWriter) {
	writeError(w, errUnavailable("composio_not_configured",
		"OAuth integrations are not configured on this server (set COMPOSIO_API_KEY and COMPOSIO_AUTH_CONFIGS)"))
}

func (s *Server) integrationsList(w http.ResponseWriter, r *http.Request) {
	if s.d.Integrations == nil {
		notConfigured(w)
		return
	}
	ps, err := s.d.Integrations.Providers(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"integrations": ps})
}

type connectRequest struct {
	UserID      string `json:"user_id"`
	Provider    string `json:"provider"`
	RedirectURL string `json:"redirect_url"`
}

func (s *Server) integrationsConnect(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if s.d.Integrations == nil {
		notConfigured(w)
		return
	}
	var req connectRequest
	if err := decodeUser(r, &req, &req.UserID); err != nil {
		writeError(w, err)
		return
	}
	req.Provider = strings.ToLower(strings.TrimSpace(req.Provider))
	if req.Provider == "" {
		writeError(w, errBadRequest("missing_field", "provider is required; see GET /api/integrations"))
		return
	}
	if err := checkSlug("provider", req.Provider); err != nil {
		writeError(w, err)
		return
	}
	if strings.TrimSpace(req.RedirectURL) == "" {
		writeError(w, errBadRequest("missing_field", "redirect_url is required"))
		return
	}
	out, err := s.d.Integrations.Connect(r.Context(), req.UserID, req.Provider, strings.TrimSpace(req.RedirectURL))
	if err != nil {
		writeError(w, err)
		s.audit(r.Context(), "integration.connect", req.UserID, req.Provider, errStatus(err), start, "")
		return
	}
	s.audit(r.Context(), "integration.connect", req.UserID, req.Provider, http.StatusOK, start, "")
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) integrationsConnected(w http.ResponseWriter, r *http.Request) {
	if s.d.Integrations == nil {
		notConfigured(w)
		return
	}
	userID := r.URL.Query().Get("user_id")
	if err := requireUser(userID); err != nil {
		writeError(w, err)
		return
	}
	list, err := s.d.Integrations.Connected(r.Context(), userID)
	if err != nil {
		writeError(w, err)
		return
	}
	if list == nil {
		list = []ConnectedIntegration{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"integrations": list})
}

type disconnectRequest struct {
	UserID        string `json:"user_id"`
	IntegrationID string `json:"integration_id"`
	Provider      string `json:"provider"`
}

func (s *Server) integrationsDisconnect(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if s.d.Integrations == nil {
		notConfigured(w)
		return
	}
	var req disconnectRequest
	if err := decodeUser(r, &req, &req.UserID); err != nil {
		writeError(w, err)
		return
	}
	req.IntegrationID = strings.TrimSpace(req.IntegrationID)
	req.Provider = strings.ToLower(strings.TrimSpace(req.Provider))
	if req.IntegrationID == "" && req.Provider == "" {
		writeError(w, errBadRequest("missing_field", "integration_id (or provider) is required"))
		return
	}
	if err := checkOptional(checkID, "integration_id", req.IntegrationID); err != nil {
		writeError(w, err)
		return
	}
	if err := checkOptional(checkSlug, "provider", req.Provider); err != nil {
		writeError(w, err)
		return
	}
	target := req.IntegrationID
	if target == "" {
		target = req.Provider
	}
	ids, err := s.d.Integrations.Disconnect(r.Context(), req.UserID, req.IntegrationID, req.Provider)
	if err != nil {
		writeError(w, err)
		s.audit(r.Context(), "integration.disconnect", req.UserID, target, errStatus(err), start, "")
		return
	}
	s.toolsChanged(req.UserID)
	s.audit(r.Context(), "integration.disconnect", req.UserID, target, http.StatusOK, start, "")
	out := map[string]any{"success": true, "status": "removed", "integration_ids": ids}
	if len(ids) > 0 {
		out["integration_id"] = ids[0]
	}
	if req.Provider != "" {
		out["provider"] = req.Provider
	}
	writeJSON(w, http.StatusOK, out)
}

type refreshRequest struct {
	UserID string `json:"user_id"`
}

// integrationsRefresh asks Composio for one connection's status now, so a
// user who fixed (or lost) access at Composio need not wait for the
// worker's periodic refresh.
func (s *Server) integrationsRefresh(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if s.d.Integrations == nil {
		notConfigured(w)
		return
	}
	var req refreshRequest
	id, err := decodeWithID(r, &req, &req.UserID, "integration_id")
	if err != nil {
		writeError(w, err)
		return
	}
	out, changed, err := s.d.Integrations.Refresh(r.Context(), req.UserID, id)
	if err != nil {
		writeError(w, err)
		s.audit(r.Context(), "integration.refresh", req.UserID, id, errStatus(err), start, "")
		return
	}
	if changed {
		s.toolsChanged(req.UserID)
	}
	s.audit(r.Context(), "integration.refresh", req.UserID, id, http.StatusOK, start, "")
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "changed": changed, "integration": out})
}

// callbackKeys bounds what a callback may carry to the worker.
const (
	callbackMaxKeys  = 16
	callbackMaxValue = 4096
)

// integrationCallback is opened by the user's browser after consent. It
// trusts only the signed state: a forged one gets a 400 and no redirect at
// all. Otherwise the callback runs as an OAuth job on a worker, which
// confirms the account with Composio, and the browser goes back to the
// redirect_url the state vouches for, with status and provider added.
func (s *Server) integrationCallback(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if s.d.Integrations == nil {
		notConfigured(w)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	q := r.URL.Query()
	target, err := s.d.Integrations.CallbackTarget(r.Context(), q.Get("state"))
	if err != nil {
		writeError(w, err)
		return
	}
	if target.Closed != "" {
		// A replay or an expired flow: back to OA as failed, nothing queued.
		s.log.Info("oauth callback refused before queueing", "reason", target.Closed, "provider", target.Provider)
		s.callbackBack(w, r, target, "failed", http.StatusConflict, start, "")
		return
	}
	if len(q) > callbackMaxKeys {
		writeError(w, errBadRequest("invalid_callback", "the callback carries too many query parameters"))
		return
	}
	query := make(map[string]string, len(q))
	for k, v := range q {
		if len(v) == 0 {
			continue
		}
		if len(k) > 64 || len(v[0]) > callbackMaxValue {
			writeError(w, errBadRequest("invalid_callback", "a callback query parameter is too long"))
			return
		}
		query[k] = v[0]
	}
	job, err := messages.NewJob(messages.KindOAuth, uuid.NewString(), target.UserID, messages.OAuthPayload{Query: query})
	if err != nil {
		writeError(w, err)
		return
	}
	job.RequestID, job.Trace = middleware.GetReqID(r.Context()), r.Header.Get("traceparent")
	jobID := job.JobID
	// An OAuth callback has side effects and must never be lost: durable.
	rep, err := s.d.Tools.Submit(r.Context(), messages.Durable, job)
	if err != nil {
		// The outcome is unknown (broker down, no worker in time): no
		// redirect, so the user may reload the page.
		writeError(w, err)
		s.audit(r.Context(), "integration.callback", target.UserID, target.Provider, errStatus(err), start, jobID)
		return
	}
	status := "failed"
	if rep.OK() {
		var res CallbackResult
		if json.Unmarshal(rep.Body, &res) == nil && res.Status == "success" {
			status = "success"
		}
	}
	code := http.StatusUnprocessableEntity
	if status == "success" {
		s.toolsChanged(target.UserID)
		code = http.StatusOK
	}
	s.callbackBack(w, r, target, status, code, start, jobID)
}

// callbackBack sends the browser back to the redirect_url the state vouches
// for, with status and provider added, and audits the outcome as code.
func (s *Server) callbackBack(w http.ResponseWriter, r *http.Request, target *CallbackTarget, status string, code int, start time.Time, jobID string) {
	loc, err := withQuery(target.RedirectURL, map[string]string{"status": status, "provider": target.Provider})
	if err != nil {
		writeError(w, errBadRequest("invalid_state", "the state's redirect_url is not a valid URL"))
		return
	}
	s.audit(r.Context(), "integration.callback", target.UserID, target.Provider, code, start, jobID)
	// loc is the signed state's redirect_url, checked against
	// OAUTH_ALLOWED_REDIRECTS at connect and again by CallbackTarget.
	http.Redirect(w, r, loc, http.StatusFound) //nolint:gosec // G710: allowlisted, see above
}

// withQuery sets query parameters on a URL, keeping its other parameters.
func withQuery(raw string, set map[string]string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	q := u.Query()
	for k, v := range set {
		q.Set(k, v)
	}
	u.RawQuery = encodeOrdered(q, u.RawQuery, set)
	return u.String(), nil
}

// encodeOrdered keeps the original parameters in their order and appends
// the new ones (status, then provider), so OA sees the URL it sent plus ours.
func encodeOrdered(q url.Values, original string, set map[string]string) string {
	var kept []string
	for part := range strings.SplitSeq(original, "&") {
		if part == "" {
			continue
		}
		k, _, _ := strings.Cut(part, "=")
		if name, err := url.QueryUnescape(k); err == nil {
			if _, replaced := set[name]; replaced {
				continue
			}
		}
		kept = append(kept, part)
	}
	for _, k := range []string{"status", "provider"} {
		if _, ok := set[k]; ok {
			kept = append(kept, url.QueryEscape(k)+"="+url.QueryEscape(q.Get(k)))
		}
	}
	for k := range set {
		if k != "status" && k != "provider" {
			kept = append(kept, url.QueryEscape(k)+"="+url.QueryEscape(q.Get(k)))
		}
	}
	return strings.Join(kept, "&")
}
