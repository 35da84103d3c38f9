package storage

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

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
	ctx, cancel := s.m().ctx(ctx)
	defer cancel()
	cur, err := s.ints.Find(ctx, bson.D{{Key: "user_id", Value: userID}},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, s.m().wrap("list integrations", err)
	}
	out := []Integration{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, s.m().wrap("list integrations", err)
	}
	return out, nil
}

func (s *mongoIntegrations) Update(ctx context.Context, userID, id string, set bson.M, onlyIf bson.M) error {
	ctx, cancel := s.m().ctx(ctx)
	defer cancel()
	filter := bson.M{"_id": id, "user_id": userID}
	for k, v := range onlyIf {
		filter[k] = v
	}
	set["updated_at"] = time.Now().UTC()
	res, err := s.ints.UpdateOne(ctx, filter, bson.M{"$set": set})
	if err != nil {
		return s.m().wrap("update integration", err)
	}
	if res.MatchedCount == 0 {
		return ErrNotFound
	}
	return nil
}
