package mcpserver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Token lifetimes.
const (
	// DefaultTTL is the lifetime of a token minted without ttl_seconds.
	DefaultTTL = 30 * 24 * time.Hour
	// MaxTTL is the longest lifetime a token may have.
	MaxTTL = 365 * 24 * time.Hour
)

// CollTokens holds MCP tokens: only their SHA-256, never the token itself.
const CollTokens = "mcp_tokens"

const (
	tokenPrefix = "mcp_"
	tokenBytes  = 32
	// tokenLen is the length of "mcp_" + 32 bytes in unpadded base64url.
	tokenLen = len(tokenPrefix) + (tokenBytes*8+5)/6
)

var (
	errTokenUnknown = errors.New("unknown MCP token")
	errTokenExpired = errors.New("MCP token expired")
	errTokenRevoked = errors.New("MCP token revoked")
	errNotFound     = errors.New("not found")
	errUnavailable  = errors.New("storage is unavailable")
)

// tokenDoc is one stored token. Expiry is checked in code: FerretDB has no
// TTL indexes. Revoked tokens are kept, with RevokedAt set.
type tokenDoc struct {
	ID        string     `bson:"_id"`
	UserID    string     `bson:"user_id"`
	Hash      string     `bson:"hash"`
	Label     string     `bson:"label"`
	CreatedAt time.Time  `bson:"created_at"`
	ExpiresAt time.Time  `bson:"expires_at"`
	RevokedAt *time.Time `bson:"revoked_at,omitempty"`
}

// tokenStore keeps tokens in the service's MongoDB database.
type tokenStore struct {
	coll    *mongo.Collection
	timeout time.Duration
	now     func() time.Time
}

func newTokenStore(db *mongo.Database) *tokenStore {
	return &tokenStore{coll: db.Collection(CollTokens), timeout: 5 * time.Second,
		now: func() time.Time { return time.Now().UTC() }}
}

// ensureIndexes makes the indexes on user_id and on the hash.
func (s *tokenStore) ensureIndexes(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.coll.Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "user_id", Value: 1}}},
		{Keys: bson.D{{Key: "hash", Value: 1}}, Options: options.Index().SetUnique(true)},
	})
	return wrap(err)
}

// newToken returns a fresh token: "mcp_" and 32 random bytes in base64url.
func newToken() (string, error) {
	var b [tokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// hashToken is what is stored and looked up. The token carries 256 random
// bits, so a plain SHA-256 is enough: there is nothing to brute-force.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// wellFormed rejects what cannot be a token without asking the database.
func wellFormed(token string) bool {
	if len(token) != tokenLen || !strings.HasPrefix(token, tokenPrefix) {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(token[len(tokenPrefix):])
	return err == nil
}

func newTokenID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return "tok_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// mint stores a new token of a user and returns it with its record.
func (s *tokenStore) mint(ctx context.Context, userID, label string, ttl time.Duration) (*tokenDoc, string, error) {
	token, err := newToken()
	if err != nil {
		return nil, "", err
	}
	now := s.now().Truncate(time.Millisecond)
	d := &tokenDoc{ID: newTokenID(), UserID: userID, Hash: hashToken(token), Label: label,
		CreatedAt: now, ExpiresAt: now.Add(ttl)}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := s.coll.InsertOne(ctx, d); err != nil {
		return nil, "", wrap(err)
	}
	return d, token, nil
}

// list returns a user's tokens, newest first, revoked and expired included.
func (s *tokenStore) list(ctx context.Context, userID string) ([]tokenDoc, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cur, err := s.coll.Find(ctx, bson.D{{Key: "user_id", Value: userID}},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: -1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, wrap(err)
	}
	out := []tokenDoc{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, wrap(err)
	}
	return out, nil
}

// revoke marks one of a user's tokens revoked. Revoking twice is fine;
// another user's token is errNotFound, like a missing one.
func (s *tokenStore) revoke(ctx context.Context, userID, id string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	owned := bson.D{{Key: "_id", Value: id}, {Key: "user_id", Value: userID}}
	var d tokenDoc
	if err := s.coll.FindOne(ctx, owned).Decode(&d); err != nil {
		return wrap(err)
	}
	if d.RevokedAt != nil {
		return nil
	}
	_, err := s.coll.UpdateOne(ctx, owned, bson.D{{Key: "$set", Value: bson.D{{Key: "revoked_at", Value: s.now()}}}})
	return wrap(err)
}

// verify finds the live token a client presented.
func (s *tokenStore) verify(ctx context.Context, token string) (*tokenDoc, error) {
	if !wellFormed(token) {
		return nil, errTokenUnknown
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var d tokenDoc
	if err := s.coll.FindOne(ctx, bson.D{{Key: "hash", Value: hashToken(token)}}).Decode(&d); err != nil {
		if err = wrap(err); errors.Is(err, errNotFound) {
			return nil, errTokenUnknown
		}
		return nil, err
	}
	switch {
	case d.RevokedAt != nil:
		return nil, errTokenRevoked
	case !s.now().Before(d.ExpiresAt):
		return nil, errTokenExpired
	}
	return &d, nil
}

func wrap(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return errNotFound
	default:
		return fmt.Errorf("%w: %w", errUnavailable, err)
	}
}
