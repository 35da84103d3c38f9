package integrations

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/api"
	"github.com/openanalyst/mcp-integration-service/connectors/composio"
	"github.com/openanalyst/mcp-integration-service/storage"
	"github.com/openanalyst/mcp-integration-service/worker"
)

// RefreshBucket is the JetStream KV bucket whose one key elects the worker
// that runs a status refresh tick (see RunStatusRefresh).
const RefreshBucket = "MCP_COMPOSIO_REFRESH"

// refreshKey is the key a worker creates to run a tick. It lives for
// refreshLockTTL, so the fleet runs about one tick per interval.
const refreshKey = "tick"

// DefaultRefreshBatch is how many connections one tick checks.
const DefaultRefreshBatch = 50

// refreshLockTTL is how long a tick's claim keeps the other workers out:
// most of an interval, so the next tick (whichever worker's timer fires
// first) finds it gone.
func refreshLockTTL(every time.Duration) time.Duration { return max(every*9/10, 100*time.Millisecond) }

// accountStatus maps what Composio says of a connected account onto our
// status, with a reason for a status that is not active.
func accountStatus(a *composio.ConnectedAccount, rec *storage.Integration) (status, reason string) {
	switch {
	case rec.ComposioEntityID != "" && a.UserID != rec.ComposioEntityID:
		return storage.StatusFailed, "the connected account now belongs to another Composio user"
	case a.Toolkit.Slug != "" && !strings.EqualFold(a.Toolkit.Slug, toolkitOf(rec.Provider)):
		return storage.StatusFailed, "the connected account is of another toolkit"
	}
	switch a.Status {
	case composio.StatusActive:
		if !a.IsDisabled {
			return storage.StatusActive, ""
		}
		status = storage.StatusDisabled
	case composio.StatusExpired:
		status = storage.StatusExpired
	case composio.StatusRevoked:
		status = storage.StatusRevoked
	case composio.StatusInactive:
		status = storage.StatusDisabled
	case composio.StatusInitiated, composio.StatusInitializing:
		// Sent back through a new consent at Composio: unusable until the
		// user completes it, as after an expiry.
		status = storage.StatusExpired
	default: // FAILED, and any status Composio adds later
		status = storage.StatusFailed
	}
	reason = strings.TrimSpace(a.StatusReason)
	if reason == "" {
		reason = "Composio reports the connected account " + clipText(a.Status, 40)
	}
	return status, clipText(reason, 300)
}

// clipText bounds text from Composio shown to users.
func clipText(s string, n int) string {
	s = strings.ToValidUTF8(strings.Join(strings.Fields(s), " "), "")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// check asks Composio for rec's account and records what it says, unless
// rec changed meanwhile (a disconnect or a newer connection wins). It
// updates rec and reports whether its status changed. It never retries: a
// 429 comes back at once, with its Retry-After.
func (s *Service) check(ctx context.Context, rec *storage.Integration) (bool, error) {
	st := storage.AccountStatus{CheckedAt: s.c.Now().UTC().Truncate(time.Millisecond)}
	var acct *composio.ConnectedAccount
	err := composio.ErrNotFound
	if rec.ComposioConnectionID != "" {
		acct, err = s.checker.GetConnectedAccount(ctx, rec.ComposioConnectionID)
	}
	switch {
	case errors.Is(err, composio.ErrNotFound):
		st.Status, st.Reason = storage.StatusRevoked, "the connected account no longer exists at Composio"
	case err != nil:
		return false, err
	default:
		st.Status, st.Reason = accountStatus(acct, rec)
		st.ComposioStatus = acct.Status
	}
	err = s.c.Store.SetStatus(ctx, rec.UserID, rec.ID, rec.Status, st)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	changed := st.Status != rec.Status
	if changed {
		s.c.Logger.Info("integration status changed at Composio", "integration_id", rec.ID, "provider", rec.Provider,
			"from", rec.Status, "to", st.Status, "composio_status", st.ComposioStatus)
	}
	rec.Status, rec.ComposioStatus, rec.StatusReason, rec.CheckedAt = st.Status, st.ComposioStatus, st.Reason, st.CheckedAt
	return changed, nil
}

// Refresh checks one of the user's connections with Composio now.
func (s *Service) Refresh(ctx context.Context, userID, integrationID string) (*api.ConnectedIntegration, bool, error) {
	rec, err := s.c.Store.Get(ctx, userID, integrationID)
	switch {
	case err != nil:
		return nil, false, storageError(err)
	case rec.Status == storage.StatusRemoved:
		return nil, false, notFound("integration_not_found", "integration %s not found", api.Clip(integrationID))
	case !rec.WasConnected():
		return nil, false, &api.IntegrationError{Code: "integration_not_connected", Msg: fmt.Sprintf(
			"integration %s never completed its connection (status %s): finish the OAuth flow or connect again",
			api.Clip(integrationID), rec.Status)}
	}
	changed, err := s.check(ctx, rec)
	switch {
	case errors.Is(err, storage.ErrUnavailable):
		return nil, false, storageError(err)
	case err != nil:
		return nil, false, composioError("check the connected account", err)
	}
	if cur, err := s.c.Store.Get(ctx, userID, integrationID); err == nil {
		rec = cur // what a concurrent change left
	}
	if rec.Status == storage.StatusRemoved {
		return nil, false, notFound("integration_not_found", "integration %s not found", api.Clip(integrationID))
	}
	v := connectedView(rec)
	return &v, changed, nil
}

// connectedView is a record as GET /api/integrations/connected shows it.
func connectedView(r *storage.Integration) api.ConnectedIntegration {
	v := api.ConnectedIntegration{IntegrationID: r.ID, Provider: r.Provider, Status: r.Status,
		ConnectedEmail: r.ConnectedEmail, ComposioEntityID: r.ComposioEntityID,
		ComposioConnectionID: r.ComposioConnectionID, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if r.Status != storage.StatusActive {
		v.StatusReason = r.StatusReason
	}
	if !r.CheckedAt.IsZero() {
		at := r.CheckedAt
		v.CheckedAt = &at
	}
	return v
}

// inactive is the answer to running a tool of a connection that Composio
// no longer accepts: a 409 that says to reconnect.
func inactive(slug string, r *storage.Integration) worker.Outcome {
	why := ""
	if r.StatusReason != "" {
		why = " (" + r.StatusReason + ")"
	}
	return worker.Fail("integration_inactive", fmt.Sprintf(
		"%s cannot run: this user's %s connection is %s at Composio%s. Reconnect %s (POST /api/integrations/connect) to use its tools again",
		slug, r.Provider, r.Status, why, r.Provider))
}

// RunStatusRefresh follows Composio's status of every connection until ctx
// ends: each RefreshEvery, one worker of the fleet (the one that creates
// the tick key in RefreshLock first; every worker without a lock) checks
// the RefreshBatch connections checked longest ago. A connection that
// Composio reports expired, revoked, disabled or failed stops listing its
// tools, and one that is active again lists them again. A 429 stops the
// batch and pauses the refresher for its Retry-After; Composio down stops
// the batch until the next tick. Off when RefreshEvery is 0.
func (s *Service) RunStatusRefresh(ctx context.Context) {
	if s.c.RefreshEvery <= 0 {
		return
	}
	t := time.NewTicker(s.c.RefreshEvery)
	defer t.Stop()
	var pausedUntil time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.c.Now().Before(pausedUntil) || !s.claimTick(ctx) {
			continue
		}
		if wait := s.refreshBatch(ctx); wait > 0 {
			pausedUntil = s.c.Now().Add(wait)
		}
	}
}

// claimTick elects this worker for one tick.
func (s *Service) claimTick(ctx context.Context) bool {
	if s.c.RefreshLock == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := s.c.RefreshLock.Create(ctx, refreshKey, []byte(s.c.Now().UTC().Format(time.RFC3339Nano)))
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		s.c.Logger.Warn("could not claim a status refresh tick; skipping it", "err", err)
	}
	return err == nil
}

// refreshBatch checks one batch and returns how long to pause when
// Composio rate limited it.
func (s *Service) refreshBatch(ctx context.Context) time.Duration {
	ctx, cancel := context.WithTimeout(ctx, s.c.RefreshEvery)
	defer cancel()
	recs, err := s.c.Store.DueForRefresh(ctx, s.c.RefreshBatch)
	if err != nil {
		s.c.Logger.Warn("status refresh: could not list connections", "err", err)
		return 0
	}
	for i := range recs {
		changed, err := s.check(ctx, &recs[i])
		switch {
		case errors.Is(err, composio.ErrRateLimited):
			wait := time.Minute
			var ae *composio.APIError
			if errors.As(err, &ae) && ae.RetryAfter > 0 {
				wait = ae.RetryAfter
			}
			s.c.Logger.Warn("status refresh: Composio is rate limiting; stopping this batch",
				"checked", i, "retry_after", wait.String())
			return wait
		case composio.Retryable(err) || errors.Is(err, storage.ErrUnavailable) || ctx.Err() != nil:
			s.c.Logger.Warn("status refresh: stopping this batch", "checked", i, "err", err)
			return 0
		case err != nil:
			s.c.Logger.Warn("status refresh: could not check a connection", "integration_id", recs[i].ID, "err", err)
		case changed:
			s.c.Notify(recs[i].UserID)
		}
	}
	return 0
}
