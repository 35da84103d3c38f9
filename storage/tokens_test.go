package storage_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/storage"
)

func TestTokenFormat(t *testing.T) {
	t.Parallel()
	a, err := storage.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := storage.NewToken()
	if a == b || !strings.HasPrefix(a, "mcp_") || len(a) != storage.TokenLen || !storage.WellFormed(a) {
		t.Fatalf("tokens %q %q", a, b)
	}
	for _, bad := range []string{"", "mcp_", a + "A", a[:len(a)-1], "xyz_" + a[4:], a[:10] + "+" + a[11:], a[:10] + "=" + a[11:]} {
		if storage.WellFormed(bad) {
			t.Errorf("WellFormed(%q)", bad)
		}
	}
	if h := storage.HashToken(a); len(h) != 64 || h == storage.HashToken(b) || strings.Contains(h, a[4:]) {
		t.Fatalf("hash %q", h)
	}
	if id := storage.NewTokenID(); !strings.HasPrefix(id, "tok_") || id == storage.NewTokenID() {
		t.Fatalf("token id %q", id)
	}
}

// A token verifies until it is revoked or expires; only its hash is stored;
// another user can neither list nor revoke it.
func TestTokensLifecycle(t *testing.T) {
	t.Parallel()
	m := open(t)
	ctx := context.Background()
	ts := m.Tokens()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	ts.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	d, token, err := ts.Mint(ctx, "alice", "Claude", time.Hour)
	if err != nil || !strings.HasPrefix(d.ID, "tok_") || d.UserID != "alice" || !d.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("mint: %+v %v", d, err)
	}
	got, err := ts.Verify(ctx, token)
	if err != nil || got.ID != d.ID || got.UserID != "alice" || got.Label != "Claude" {
		t.Fatalf("verify: %+v %v", got, err)
	}
	var raw bson.M
	if err := m.RawDB().Collection(storage.CollTokens).FindOne(ctx, bson.M{"_id": d.ID}).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	for k, v := range raw {
		if s, ok := v.(string); ok && strings.Contains(s, token[4:]) {
			t.Fatalf("field %s holds the token", k)
		}
	}
	if raw["hash"] != storage.HashToken(token) {
		t.Fatalf("stored hash %v", raw["hash"])
	}
	last := "A" // the token with its last character changed
	if strings.HasSuffix(token, "A") {
		last = "B"
	}
	for _, bad := range []string{"", "mcp_x", token[:len(token)-1] + last, "Bearer " + token} {
		if _, err := ts.Verify(ctx, bad); !errors.Is(err, storage.ErrTokenUnknown) {
			t.Errorf("Verify(%q): %v", bad, err)
		}
	}
	// A well-formed token that was never minted.
	other, _ := storage.NewToken()
	if _, err := ts.Verify(ctx, other); !errors.Is(err, storage.ErrTokenUnknown) {
		t.Fatalf("unminted token: %v", err)
	}

	if l, err := ts.List(ctx, "bob"); err != nil || len(l) != 0 {
		t.Fatalf("bob lists %v %v", l, err)
	}
	if err := ts.Revoke(ctx, "bob", d.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("bob revokes alice's token: %v", err)
	}
	if _, err := ts.Verify(ctx, token); err != nil {
		t.Fatalf("after bob's attempt: %v", err)
	}

	advance(time.Minute)
	d2, token2, err := ts.Mint(ctx, "alice", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ts.List(ctx, "alice")
	if err != nil || len(l) != 2 || l[0].ID != d2.ID || l[1].ID != d.ID {
		t.Fatalf("list, newest first: %+v %v", l, err)
	}

	if err := ts.Revoke(ctx, "alice", d.ID); err != nil {
		t.Fatal(err)
	}
	if err := ts.Revoke(ctx, "alice", d.ID); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	if _, err := ts.Verify(ctx, token); !errors.Is(err, storage.ErrTokenRevoked) {
		t.Fatalf("revoked token: %v", err)
	}
	if err := ts.Revoke(ctx, "alice", "tok_nosuchtoken"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("missing token: %v", err)
	}

	advance(time.Minute)
	if _, err := ts.Verify(ctx, token2); !errors.Is(err, storage.ErrTokenExpired) {
		t.Fatalf("expired token: %v", err)
	}
	l, _ = ts.List(ctx, "alice")
	if l[0].RevokedAt != nil || !l[0].Expired(now) || l[1].RevokedAt == nil {
		t.Fatalf("list after revoke and expiry: %+v", l)
	}
}

// recorder keeps the messages logged at error level.
type recorder struct {
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	if rec.Level >= slog.LevelError {
		r.mu.Lock()
		r.errs = append(r.errs, rec.Message)
		r.mu.Unlock()
	}
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// Opening storage again after FerretDB restarts on the same data dir finds
// the indexes and creates nothing: creating existing indexes made FerretDB
// log a panic and fail the request on every restart.
func TestOpenTwiceOnOneDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rec := &recorder{}
	for run := 1; run <= 2; run++ {
		f, err := embedded.StartFerret(context.Background(), dir, 0, slog.New(rec))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		m, err := storage.Open(ctx, f.URI(), "restart")
		if err != nil {
			cancel()
			_ = f.Close()
			t.Fatalf("open %d: %v", run, err)
		}
		specs, err := m.RawDB().Collection(storage.CollTokens).Indexes().ListSpecifications(ctx)
		cancel()
		_ = m.Close(context.Background())
		_ = f.Close()
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		unique := map[string]bool{}
		for _, sp := range specs {
			unique[sp.Name] = sp.Unique != nil && *sp.Unique
		}
		if u, ok := unique["hash_1"]; !ok || !u {
			t.Fatalf("run %d: no unique hash index: %v", run, unique)
		}
		if _, ok := unique["user_id_1"]; !ok {
			t.Fatalf("run %d: no user_id index: %v", run, unique)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.errs) > 0 {
		t.Fatalf("FerretDB logged errors: %q", rec.errs)
	}
}
