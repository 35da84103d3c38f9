package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// CollTokens holds MCP tokens: only their SHA-256, never the token itself.
const CollTokens = "mcp_tokens"

const (
	tokenPrefix = "mcp_"
	tokenBytes  = 32
	// tokenLen is the length of "mcp_" + 32 bytes in unpadded base64url.
	tokenLen = len(tokenPrefix) + (tokenBytes*8+5)/6
)

// Why Verify refuses a token.
var (
	ErrTokenUnknown = errors.New("unknown MCP token")
	ErrTokenExpired = errors.New("MCP token expired")
	ErrTokenRevoked = errors.New("MCP token revoked")
)

// Token is one stored MCP token. Expiry is checked in code: FerretDB has no
// TTL indexes. Revoked tokens are kept, with RevokedAt set.
type Token struct {
	ID        string     `bson:"_id"`
	UserID    string     `bson:"user_id"`
	Hash      string     `bson:"hash"`
	Label     string     `bson:"label"`
	CreatedAt time.Time  `bson:"created_at"`
	ExpiresAt time.Time  `bson:"expires_at"`
	RevokedAt *time.Time `bson:"revoked_at,omitempty"`
}

// Expired reports whether the token's lifetime is over at now.
func (t *Token) Expired(now time.Time) bool { return !now.Before(t.ExpiresAt) }

// Tokens keeps MCP tokens by their hash.
type Tokens struct {
	m    *Mongo
	coll *mongo.Collection
	now  func() time.Time
}

// Tokens returns the MCP token store.
func (m *Mongo) Tokens() *Tokens { return m.tokens }

// Mint stores a new token of a user and returns its record and the token,
// which is never stored and cannot be shown again.
func (s *Tokens) Mint(ctx context.Context, userID, label string, ttl time.Duration) (*Token, string, error) {
	token, err := newToken()
	if err != nil {
		return nil, "", err
	}
	now := s.now().Truncate(time.Millisecond)
	d := &Token{ID: newTokenID(), UserID: userID, Hash: hashToken(token), Label: label,
		CreatedAt: now, ExpiresAt: now.Add(ttl)}
	ctx, cancel := s.m.ctx(ctx)
	defer cancel()
	if _, err := s.coll.InsertOne(ctx, d); err != nil {
		return nil, "", s.m.wrap("insert token", err)
	}
	return d, token, nil
}

// List returns a user's tokens, newest first, revoked and expired included.
func (s *Tokens) List(ctx context.Context, userID string) ([]Token, error) {
	ctx, cancel := s.m.ctx(ctx)
	defer cancel()
	cur, err := s.coll.Find(ctx, bson.D{{Key: "user_id", Value: userID}},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: -1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, s.m.wrap("list tokens", err)
	}
	out := []Token{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, s.m.wrap("list tokens", err)
	}
	return out, nil
}

// Revoke marks one of a user's tokens revoked. Revoking twice is fine;
// another user's token is ErrNotFound, like a missing one.
func (s *Tokens) Revoke(ctx context.Context, userID, id string) error {
	ctx, cancel := s.m.ctx(ctx)
	defer cancel()
	owned := bson.D{{Key: "_id", Value: id}, {Key: "user_id", Value: userID}}
	var d Token
	if err := s.coll.FindOne(ctx, owned).Decode(&d); err != nil {
		return s.m.wrap("find token", err)
	}
	if d.RevokedAt != nil {
		return nil
	}
	_, err := s.coll.UpdateOne(ctx, owned, bson.D{{Key: "$set", Value: bson.D{{Key: "revoked_at", Value: s.now()}}}})
	return s.m.wrap("revoke token", err)
}

// Verify finds the live token a client presented: ErrTokenUnknown,
// ErrTokenExpired or ErrTokenRevoked when it is not one, ErrUnavailable
// when storage cannot tell.
func (s *Tokens) Verify(ctx context.Context, token string) (*Token, error) {
	if !wellFormed(token) {
		return nil, ErrTokenUnknown
	}
	ctx, cancel := s.m.ctx(ctx)
	defer cancel()
	var d Token
	if err := s.coll.FindOne(ctx, bson.D{{Key: "hash", Value: hashToken(token)}}).Decode(&d); err != nil {
		if err = s.m.wrap("verify token", err); errors.Is(err, ErrNotFound) {
			return nil, ErrTokenUnknown
		}
		return nil, err
	}
	switch {
	case d.RevokedAt != nil:
		return nil, ErrTokenRevoked
	case d.Expired(s.now()):
		return nil, ErrTokenExpired
	}
	return &d, nil
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
