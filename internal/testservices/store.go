package testservices

import (
	"context"
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
