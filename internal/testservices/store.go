package testservices

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/storage"
)

// Store starts an embedded FerretDB, as `serve` runs it, and opens the
// service's store in database name. Both end with the test.
func Store(t testing.TB, name string) *storage.Mongo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := embedded.StartFerret(ctx, t.TempDir(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	m, err := storage.Open(ctx, f.URI(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

// HeldStore is a store whose database reads are counted and whose answers
// are held until the test lets them go: a read is made at once, counted,
// then waits for a value on Release (one per read, in the order they came)
// or for Release to be closed.
type HeldStore struct {
	storage.Store
	Reads   atomic.Int32
	Release chan struct{}
}

// Hold wraps s.
func Hold(s storage.Store) *HeldStore { return &HeldStore{Store: s, Release: make(chan struct{})} }

// GetDatabase reads, counts, then waits to answer.
func (h *HeldStore) GetDatabase(ctx context.Context, userID, id string) (*storage.Database, error) {
	rec, err := h.Store.GetDatabase(ctx, userID, id)
	h.Reads.Add(1)
	<-h.Release
	return rec, err
}
