package integrations

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/openanalyst/mcp-integration-service/api"
	"github.com/openanalyst/mcp-integration-service/connectors/composio"
	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/storage"
	"github.com/openanalyst/mcp-integration-service/worker"
)

// Reasons a callback fails, as they appear in the job result and the logs.
const (
	reasonUnknownFlow     = "unknown_flow"
	reasonStateUsed       = "state_used"
	reasonStateExpired    = "state_expired"
	reasonConsentFailed   = "consent_failed"
	reasonAccountMismatch = "account_mismatch"
	reasonAccountMissing  = "account_not_found"
	reasonAccountUser     = "account_user_mismatch"
	reasonAccountToolkit  = "account_toolkit_mismatch"
	reasonNotActive       = "account_not_active"
	reasonComposio        = "composio_error"
)

// HandleCallback is the worker handler of OAuth-callback jobs. It trusts
// nothing in the query but the signed state, and then only once:
//
//  1. the state must verify, be unexpired, and name a pending integration
//     holding the same nonce (a replay finds the nonce gone and changes
//     nothing);
//  2. Composio must have said status=success, and the account id it sent
//     (connected_account_id, or connectedAccountId of the older flow) must
//     be the one our link created;
//  3. the account, fetched from Composio, must be ACTIVE, belong to
//     user_<user_id> and be of the provider's Composio toolkit (toolkitOf:
//     googlebigquery for bigquery).
//
// Only then is the record set active, in one conditional update that also
// clears the nonce. Any other outcome marks the flow failed. The answer is
// a CallbackResult; the API redirects the browser accordingly.
//
// A new connection of a provider that already has an active one replaces
// it: once the new one is active, the older ones are marked removed and
// their Composio accounts deleted.
//
// It is idempotent per job id: a redelivered job whose first run activated
// the record answers success again.
func (s *Service) HandleCallback(ctx context.Context, job *messages.Job, attempt int) worker.Outcome {
	var pl messages.OAuthPayload
	if err := job.Decode(&pl); err != nil {
		return worker.Fail("invalid_request", err.Error())
	}
	q := pl.Query
	st, stateErr := s.c.Signer.Verify(q["state"], s.c.Now())
	if errors.Is(stateErr, ErrStateInvalid) || job.UserID != "" && st != nil && st.UserID != job.UserID {
		return worker.Fail("invalid_state", "the OAuth state is missing, malformed or not signed by this service")
	}
	log := s.c.Logger.With("job_id", job.JobID, "integration_id", st.IntegrationID, "provider", st.Provider)
	failed := func(reason string) worker.Outcome {
		log.Info("oauth callback refused", "reason", reason)
		return callbackResult(api.CallbackResult{Status: "failed", Provider: st.Provider, IntegrationID: st.IntegrationID, Reason: reason})
	}

	rec, err := s.c.Store.Get(ctx, st.UserID, st.IntegrationID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return failed(reasonUnknownFlow)
	case err != nil:
		return worker.RetryLater("storage_unavailable", "storage is unavailable", backoff(attempt))
	}
	if rec.Status == storage.StatusActive && rec.CallbackJobID == job.JobID {
		return s.succeeded(rec)
	}
	if rec.Status != storage.StatusPending || rec.Provider != st.Provider || rec.StateNonce == "" ||
		subtle.ConstantTimeCompare([]byte(rec.StateNonce), []byte(st.Nonce)) != 1 {
		// A replay, or a flow already closed: leave the record alone.
		return failed(reasonStateUsed)
	}
	// From here on the flow is ours to close: any refusal marks it failed.
	fail := func(reason string) worker.Outcome {
		s.markFailed(rec, st.Nonce)
		return failed(reason)
	}
	if errors.Is(stateErr, ErrStateExpired) {
		return fail(reasonStateExpired)
	}
	if !strings.EqualFold(q["status"], "success") {
		return fail(reasonConsentFailed)
	}
	snake, camel := q["connected_account_id"], q["connectedAccountId"]
	accountID := snake
	if accountID == "" {
		accountID = camel
	}
	if snake != "" && camel != "" && snake != camel {
		return fail(reasonAccountMismatch)
	}
	if accountID == "" {
		accountID = rec.ComposioConnectionID
	}
	if accountID == "" || rec.ComposioConnectionID != "" && accountID != rec.ComposioConnectionID {
		return fail(reasonAccountMismatch)
	}

	acct, err := s.c.Client.GetConnectedAccount(ctx, accountID)
	switch {
	case err == nil:
	case errors.Is(err, composio.ErrNotFound):
		return fail(reasonAccountMissing)
	case composio.Retryable(err) && attempt < s.c.MaxDeliver && ctx.Err() == nil:
		log.Info("composio unavailable while confirming an account; retrying", "attempt", attempt, "err", err)
		return worker.RetryLater("composio_unavailable",
			"Composio is unavailable: "+err.Error(), retryDelay(err, attempt))
	default:
		log.Warn("could not confirm the connected account with Composio", "err", err)
		return fail(reasonComposio)
	}
	switch {
	case acct.UserID != EntityID(st.UserID):
		return fail(reasonAccountUser)
	case !strings.EqualFold(acct.Toolkit.Slug, toolkitOf(st.Provider)):
		return fail(reasonAccountToolkit)
	case !acct.IsActive():
		log.Info("connected account is not active", "status", acct.Status, "status_reason", acct.StatusReason)
		return fail(reasonNotActive)
	}

	err = s.c.Store.Activate(ctx, st.UserID, rec.ID, st.Nonce,
		storage.Activation{AccountID: acct.ID, Email: acct.Email(), JobID: job.JobID})
	switch {
	case errors.Is(err, storage.ErrNotFound):
		// Another run of the same callback won the race.
		if cur, gerr := s.c.Store.Get(ctx, st.UserID, rec.ID); gerr == nil &&
			cur.Status == storage.StatusActive && cur.CallbackJobID == job.JobID {
			return s.succeeded(cur)
		}
		return failed(reasonStateUsed)
	case err != nil:
		return worker.RetryLater("storage_unavailable", "storage is unavailable", backoff(attempt))
	}
	rec.Status, rec.ComposioConnectionID = storage.StatusActive, acct.ID
	s.retireOlder(ctx, rec)
	log.Info("integration connected")
	return s.succeeded(rec)
}

func (s *Service) succeeded(rec *storage.Integration) worker.Outcome {
	return callbackResult(api.CallbackResult{Status: "success", Provider: rec.Provider, IntegrationID: rec.ID})
}

func callbackResult(r api.CallbackResult) worker.Outcome {
	b, _ := json.Marshal(r)
	return worker.Outcome{Body: b}
}

// markFailed closes a pending flow as failed, if it is still the same flow,
// and deletes the account our link created at Composio.
func (s *Service) markFailed(rec *storage.Integration, nonce string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.c.Store.MarkFailed(ctx, rec.UserID, rec.ID, nonce); err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			s.c.Logger.Warn("could not mark an OAuth flow failed", "integration_id", rec.ID, "err", err)
		}
		return
	}
	s.deleteAccount(rec.ComposioConnectionID)
}

// retireOlder removes the user's other connections of the same provider
// once a new one is active, whether they are active or Composio has marked
// them expired, revoked or failed since: one connection per app, and
// reconnecting replaces the one that stopped working.
func (s *Service) retireOlder(ctx context.Context, cur *storage.Integration) {
	recs, err := s.c.Store.List(ctx, cur.UserID)
	if err != nil {
		s.c.Logger.Warn("could not list integrations to retire older ones", "err", err)
		return
	}
	for _, r := range recs {
		if r.ID == cur.ID || r.Provider != cur.Provider || !r.WasConnected() {
			continue
		}
		if err := s.c.Store.Remove(ctx, r.UserID, r.ID); err != nil {
			continue
		}
		if r.ComposioConnectionID != cur.ComposioConnectionID {
			s.deleteAccount(r.ComposioConnectionID)
		}
	}
}

// retryDelay honours Composio's Retry-After, else backs off.
func retryDelay(err error, attempt int) time.Duration {
	var ae *composio.APIError
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		return min(ae.RetryAfter, 30*time.Second)
	}
	return backoff(attempt)
}

func backoff(attempt int) time.Duration {
	d := 500 * time.Millisecond << min(max(attempt-1, 0), 5)
	return min(d, 10*time.Second)
}
