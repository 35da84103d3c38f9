package storage

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// UpdateDatabase replaces one of a user's database records with d, an
// edited copy of it (same id and user). It answers ErrNotFound when the user
// has no such record.
func (m *Mongo) UpdateDatabase(ctx context.Context, d *Database) error {
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	res, err := m.dbs.ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.ID}, {Key: "user_id", Value: d.UserID}}, d)
	if err != nil {
		return m.wrap("update database", err)
	}
	if res.MatchedCount == 0 {
		return ErrNotFound
	}
	return nil
}

// RecordCheck records the outcome of a connection test of a saved database
// that started at at: its status (StatusConnected or StatusError), when it
// was checked and, when it failed, msg. A record edited after at keeps its
// state, since the test checked the settings it had before: that, or no such
// record, is ErrNotFound.
func (m *Mongo) RecordCheck(ctx context.Context, userID, id string, ok bool, msg string, at time.Time) error {
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	at = at.UTC().Truncate(time.Millisecond)
	update := bson.M{"$set": bson.M{"status": StatusConnected, "last_checked_at": at}, "$unset": bson.M{"last_error": ""}}
	if !ok {
		update = bson.M{"$set": bson.M{"status": StatusError, "last_checked_at": at, "last_error": msg}}
	}
	res, err := m.dbs.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "user_id", Value: userID},
		{Key: "updated_at", Value: bson.D{{Key: "$lte", Value: at}}}}, update)
	if err != nil {
		return m.wrap("record database check", err)
	}
	if res.MatchedCount == 0 {
		return ErrNotFound
	}
	return nil
}
