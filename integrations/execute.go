package integrations

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/api"
	"github.com/openanalyst/mcp-integration-service/connectors/composio"
	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/storage"
	"github.com/openanalyst/mcp-integration-service/worker"
)

// Values of an execution marker in Config.Calls.
const callStarted = "started"

// HandleExecute is the worker's fallback for execute jobs whose action is
// not a database tool: a Composio tool such as GMAIL_SEND_EMAIL.
//
// The tool's toolkit must be one the user has an active integration of
// (else 404, "connect gmail first"); the tool then runs on that connected
// account. {successful: true} answers {"result": data}; a tool that ran and
// failed answers 422 with Composio's message.
//
// Running a tool is not idempotent (it may send an email), so it is retried
// only when Composio certainly did not run it: a 429 (after its
// Retry-After), a 503, or a connection that was never made. Any other
// failure answers 502 without a retry. A marker written before the call
// makes a job redelivered after a worker crash answer 502 instead of running
// the tool a second time.
func (s *Service) HandleExecute(ctx context.Context, job *messages.Job, attempt int) worker.Outcome {
	pl, err := job.Execute()
	if err != nil {
		return worker.Fail("invalid_request", err.Error())
	}
	slug := strings.ToUpper(strings.TrimSpace(pl.Action))
	if slug == "" || len(slug) > 200 || strings.ContainsAny(slug, "/?#% \t") {
		return worker.Fail("tool_not_found", fmt.Sprintf("tool %s not found for this user", api.Clip(pl.Action)))
	}
	recs, err := s.c.Store.List(ctx, job.UserID)
	if err != nil {
		return worker.RetryLater("storage_unavailable", "storage is unavailable", backoff(attempt))
	}
	rec, version, out := s.resolveTool(ctx, slug, pl.Action, recs)
	if rec == nil {
		return out
	}

	key := strings.ReplaceAll(job.JobID, ".", "_")
	if s.c.Calls != nil {
		if attempt > 1 {
			if e, err := s.c.Calls.Get(ctx, key); err == nil && string(e.Value()) == callStarted {
				return worker.Fail("outcome_unknown", fmt.Sprintf(
					"a worker stopped while %s was running at Composio; it was not run again, so as not to run it twice. "+
						"Check its effect in %s before retrying", slug, rec.Provider))
			} else if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
				return worker.RetryLater("broker_unavailable", "the execution log is unavailable", backoff(attempt))
			}
		}
		if _, err := s.c.Calls.PutString(ctx, key, callStarted); err != nil {
			return worker.RetryLater("broker_unavailable", "the execution log is unavailable", backoff(attempt))
		}
	}
	params := pl.Params
	if len(bytes.TrimSpace(params)) == 0 || string(bytes.TrimSpace(params)) == "null" {
		params = json.RawMessage("{}")
	}
	res, err := s.c.Client.ExecuteTool(ctx, slug, composio.ExecuteRequest{UserID: rec.ComposioEntityID,
		ConnectedAccountID: rec.ComposioConnectionID, Arguments: params, Version: version})
	if err != nil {
		if s.noLongerActive(ctx, rec, err) {
			return inactive(slug, rec)
		}
		out := s.executeError(slug, rec.Provider, err, attempt)
		if out.Err != nil && out.Err.Retry && s.c.Calls != nil {
			// Certainly not run: a redelivery may run it.
			_ = s.c.Calls.Delete(context.WithoutCancel(ctx), key)
		}
		return out
	}
	if !res.Successful {
		msg := strings.TrimSpace(res.Error)
		if msg == "" {
			msg = "the tool failed without a message"
		}
		return worker.Fail("tool_failed", fmt.Sprintf("%s failed: %s", slug, msg))
	}
	data := bytes.TrimSpace(res.Data)
	if len(data) == 0 {
		data = []byte("null")
	}
	body := make([]byte, 0, len(data)+16)
	body = append(body, `{"success":true,"result":`...)
	body = append(body, data...)
	return worker.Outcome{Body: append(body, '}')}
}

// resolveTool finds the user's active integration a tool runs on, and the
// tool version to pin (from the cached list; "" lets Composio choose).
func (s *Service) resolveTool(ctx context.Context, slug, action string, recs []storage.Integration) (*storage.Integration, string, worker.Outcome) {
	var active []*storage.Integration
	for i := range recs {
		if recs[i].Status == storage.StatusActive {
			active = append(active, &recs[i])
		}
	}
	// The newest connection of a provider wins.
	pick := func(provider string) *storage.Integration {
		var best *storage.Integration
		for _, r := range active {
			if r.Provider == provider && (best == nil || r.UpdatedAt.After(best.UpdatedAt)) {
				best = r
			}
		}
		return best
	}
	var providers []string
	for _, r := range active {
		if !slices.Contains(providers, r.Provider) {
			providers = append(providers, r.Provider)
		}
	}
	var listed []string // providers whose tool list we could read
	for _, p := range providers {
		tt, err := s.tools.get(ctx, p)
		if err != nil {
			continue
		}
		listed = append(listed, p)
		if v, ok := tt.bySlug[slug]; ok {
			return pick(p), v, worker.Outcome{}
		}
	}
	// The tool is in no list we could read: its slug's toolkit prefix
	// names the provider it would belong to.
	guess := s.providerOfTool(slug)
	if r := pick(guess); r != nil && !slices.Contains(listed, guess) {
		// Composio could not list the toolkit's tools just now: let it
		// check the tool itself.
		return r, "", worker.Outcome{}
	}
	if guess != "" && pick(guess) == nil {
		if r := lastConnection(recs, guess); r != nil {
			return nil, "", inactive(slug, r)
		}
		return nil, "", worker.Fail("integration_not_found", fmt.Sprintf(
			"%s is a %s tool, and this user has no active %s integration: connect %s first (POST /api/integrations/connect)",
			slug, guess, guess, guess))
	}
	return nil, "", worker.Fail("tool_not_found", fmt.Sprintf("tool %s not found for this user", api.Clip(action)))
}

// lastConnection is the user's newest connection of a provider that
// Composio no longer accepts (expired, revoked, …), or nil.
func lastConnection(recs []storage.Integration, provider string) *storage.Integration {
	var best *storage.Integration
	for i := range recs {
		r := &recs[i]
		if r.Provider == provider && r.WasConnected() && (best == nil || r.UpdatedAt.After(best.UpdatedAt)) {
			best = r
		}
	}
	return best
}

// noLongerActive reports whether Composio refused to run a tool because its
// connected account stopped being active since our last check: on a
// refusal about the call (a 4xx other than 401, 403, 404 and 429) it asks
// for the account's status and records it.
func (s *Service) noLongerActive(ctx context.Context, rec *storage.Integration, err error) bool {
	var ae *composio.APIError
	if !errors.As(err, &ae) || ae.StatusCode < 400 || ae.StatusCode >= 500 {
		return false
	}
	switch ae.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusTooManyRequests:
		return false
	}
	changed, cerr := s.check(ctx, rec)
	if cerr != nil || rec.Status == storage.StatusActive {
		return false
	}
	if changed {
		s.c.Notify(rec.UserID)
	}
	return true
}

// executeError maps a failed ExecuteTool call. Only failures where Composio
// certainly did not run the tool are retried.
func (s *Service) executeError(slug, provider string, err error, attempt int) worker.Outcome {
	var ae *composio.APIError
	errors.As(err, &ae)
	status := 0
	msg := err.Error()
	if ae != nil {
		status = ae.StatusCode
		if ae.Message != "" {
			msg = ae.Message
		}
	}
	switch {
	case status == http.StatusTooManyRequests:
		return worker.RetryLater("rate_limited",
			"Composio is rate limiting this service: "+msg, retryDelay(err, attempt))
	case status == http.StatusServiceUnavailable || status == 0 && notSent(err):
		return worker.RetryLater("composio_unavailable",
			"Composio is unavailable: "+msg, retryDelay(err, attempt))
	case status == http.StatusNotFound:
		return worker.Fail("tool_not_found", fmt.Sprintf("Composio does not know %s: %s", slug, msg))
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return worker.Fail("composio_unauthorized",
			"Composio refused this service's API key (check COMPOSIO_API_KEY): "+msg)
	case status >= 400 && status < 500:
		return worker.Fail("tool_failed", fmt.Sprintf("%s failed: %s", slug, msg))
	default:
		s.c.Logger.Warn("composio execution failed; not retried", "tool", slug, "provider", provider, "err", err)
		return worker.Fail("composio_error", fmt.Sprintf(
			"Composio failed while running %s (%s); it was not retried, as it may have run. Check its effect in %s before retrying",
			slug, msg, provider))
	}
}

// notSent reports an error from before the request reached Composio: the
// connection was refused or could not be made.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// callsTTL is how long an execution marker lives: as long as a job may be
// redelivered.
func callsTTL(maxAge time.Duration) time.Duration { return max(maxAge, time.Hour) }
