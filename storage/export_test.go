package storage

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Hooks for the tests of this package, which read stored documents raw and
// move the token clock.

func (m *Mongo) RawDB() *mongo.Database { return m.db }

func (s *Tokens) SetClock(now func() time.Time) { s.now = now }

var (
	NewToken   = newToken
	HashToken  = hashToken
	WellFormed = wellFormed
	NewTokenID = newTokenID
	TokenLen   = tokenLen
)
