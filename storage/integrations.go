package storage

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Statuses of an integration that completed its OAuth flow and that
// Composio has since reported as no longer usable. Such a record keeps its
// connected account until the user reconnects or disconnects.
const (
	StatusExpired  = "expired"  // the credentials expired and could not be refreshed
	StatusRevoked  = "revoked"  // access was revoked, or the account is gone at Composio
	StatusDisabled = "disabled" // the account was disabled at Composio
)

// Activation is what a completed OAuth flow stores on its record.
type Activation struct {
	AccountID string // Composio's connected account id
	Email     string // the account's email, when its data carries one
	JobID     string // the callback job that completed the flow
}

// AccountStatus is what Composio last said about a connected account.
type AccountStatus struct {
	Status         string // ours: active, expired, revoked, disabled or failed
	ComposioStatus string // Composio's: ACTIVE, EXPIRED, … ("" when the account is gone)
	Reason         string // Composio's status_reason, or ours
	CheckedAt      time.Time
}

// WasConnected reports whether the integration completed its OAuth flow and
// was not removed since: it is active, or Composio has reported it inactive
// after it was. A pending flow or one that failed is not.
func (in *Integration) WasConnected() bool {
	switch in.Status {
	case StatusActive, StatusExpired, StatusRevoked, StatusDisabled:
		return true
	case StatusFailed:
		// A flow that failed never had its account checked; a connection
		// that Composio reported FAILED later has.
		return in.ComposioStatus != ""
	}
	return false
}

// wasConnected is WasConnected as a filter.
var wasConnected = bson.D{{Key: "$or", Value: bson.A{
	bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{StatusActive, StatusExpired, StatusRevoked, StatusDisabled}}}}},
	bson.D{{Key: "status", Value: StatusFailed}, {Key: "composio_status", Value: bson.D{{Key: "$gt", Value: ""}}}},
}}}

// Integrations returns the integration store.
func (m *Mongo) Integrations() IntegrationStore { return (*mongoIntegrations)(m) }

type mongoIntegrations Mongo

func (s *mongoIntegrations) m() *Mongo { return (*Mongo)(s) }

func (s *mongoIntegrations) Put(ctx context.Context, in *Integration) error {
	ctx, cancel := s.m().ctx(ctx)
	defer cancel()
	_, err := s.ints.ReplaceOne(ctx, bson.D{{Key: "_id", Value: in.ID}, {Key: "user_id", Value: in.UserID}}, in,
		options.Replace().SetUpsert(true))
	return s.m().wrap("put integration", err)
}

func (s *mongoIntegrations) Get(ctx context.Context, userID, id string) (*Integration, error) {
	return s.findOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "user_id", Value: userID}})
}

func (s *mongoIntegrations) GetByProvider(ctx context.Context, userID, provider string) (*Integration, error) {
	return s.findOne(ctx, bson.D{{Key: "user_id", Value: userID}, {Key: "provider", Value: provider},
		{Key: "status", Value: bson.D{{Key: "$ne", Value: StatusRemoved}}}})
}

func (s *mongoIntegrations) findOne(ctx context.Context, filter bson.D) (*Integration, error) {
	ctx, cancel := s.m().ctx(ctx)
	defer cancel()
	var in Integration
	err := s.ints.FindOne(ctx, filter, options.FindOne().SetSort(bson.D{{Key: "updated_at", Value: -1}})).Decode(&in)
	if err != nil {
		return nil, s.m().wrap("get integration", err)
	}
	return &in, nil
}

func (s *mongoIntegrations) List(ctx context.Context, userID string) ([]Integration, error) {
	return s.find(ctx, "list integrations", bson.D{{Key: "user_id", Value: userID}},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}))
}

// DueForRefresh lists up to n integrations of any user that completed their
// OAuth flow, those checked longest ago (or never) first. It is the one read
// across users: the worker's status refresher walks every connection.
func (s *mongoIntegrations) DueForRefresh(ctx context.Context, n int) ([]Integration, error) {
	return s.find(ctx, "list integrations due for a refresh", wasConnected,
		options.Find().SetSort(bson.D{{Key: "checked_at", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(int64(max(n, 1))))
}

func (s *mongoIntegrations) find(ctx context.Context, op string, filter bson.D, opts *options.FindOptionsBuilder) ([]Integration, error) {
	ctx, cancel := s.m().ctx(ctx)
	defer cancel()
	cur, err := s.ints.Find(ctx, filter, opts)
	if err != nil {
		return nil, s.m().wrap(op, err)
	}
	out := []Integration{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, s.m().wrap(op, err)
	}
	return out, nil
}

// Activate completes a pending flow: only the flow still pending with nonce
// becomes active (and its nonce is cleared, so a replay finds nothing).
func (s *mongoIntegrations) Activate(ctx context.Context, userID, id, nonce string, a Activation) error {
	return s.update(ctx, userID, id, bson.D{{Key: "status", Value: StatusPending}, {Key: "state_nonce", Value: nonce}},
		bson.D{{Key: "status", Value: StatusActive}, {Key: "composio_connection_id", Value: a.AccountID},
			{Key: "connected_email", Value: a.Email}, {Key: "state_nonce", Value: ""}, {Key: "callback_job_id", Value: a.JobID}}, true)
}

// MarkFailed closes a pending flow as failed, if it is still pending with
// nonce.
func (s *mongoIntegrations) MarkFailed(ctx context.Context, userID, id, nonce string) error {
	return s.update(ctx, userID, id, bson.D{{Key: "status", Value: StatusPending}, {Key: "state_nonce", Value: nonce}},
		bson.D{{Key: "status", Value: StatusFailed}, {Key: "state_nonce", Value: ""}}, true)
}

// Remove marks an integration removed, whatever its status but removed.
func (s *mongoIntegrations) Remove(ctx context.Context, userID, id string) error {
	return s.update(ctx, userID, id, bson.D{{Key: "status", Value: bson.D{{Key: "$ne", Value: StatusRemoved}}}},
		bson.D{{Key: "status", Value: StatusRemoved}, {Key: "state_nonce", Value: ""}}, true)
}

// SetStatus records what Composio said about a connection, if its status is
// still from (a disconnect or a replacement in between wins). updated_at
// moves only when the status changes; checked_at always does.
func (s *mongoIntegrations) SetStatus(ctx context.Context, userID, id, from string, st AccountStatus) error {
	set := bson.D{{Key: "status", Value: st.Status}, {Key: "composio_status", Value: st.ComposioStatus},
		{Key: "status_reason", Value: st.Reason}, {Key: "checked_at", Value: st.CheckedAt.UTC()}}
	return s.update(ctx, userID, id, bson.D{{Key: "status", Value: from}}, set, st.Status != from)
}

// update sets fields of one integration of one user when it also matches
// onlyIf; no match is ErrNotFound. touch moves updated_at.
func (s *mongoIntegrations) update(ctx context.Context, userID, id string, onlyIf, set bson.D, touch bool) error {
	ctx, cancel := s.m().ctx(ctx)
	defer cancel()
	filter := append(bson.D{{Key: "_id", Value: id}, {Key: "user_id", Value: userID}}, onlyIf...)
	if touch {
		set = append(set, bson.E{Key: "updated_at", Value: time.Now().UTC()})
	}
	res, err := s.ints.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return s.m().wrap("update integration", err)
	}
	if res.MatchedCount == 0 {
		return ErrNotFound
	}
	return nil
}
