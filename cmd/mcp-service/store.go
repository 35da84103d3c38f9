package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/openanalyst/mcp-integration-service/config"
	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/storage"
)

// storeURI is MONGODB_URI, else the unix socket of the embedded FerretDB of
// a `serve` running on MCP_DATA_DIR.
func storeURI(ctx context.Context, cfg *config.Config) (string, error) {
	if cfg.MongoURI != "" {
		return cfg.MongoURI, nil
	}
	dir := filepath.Join(cfg.DataDir, "ferretdb")
	if uri, ok := embedded.RunningFerretURI(ctx, dir); ok {
		return uri, nil
	}
	return "", fmt.Errorf("set MONGODB_URI, or run this while `serve` runs on MCP_DATA_DIR=%s (its store listens on %s)",
		cfg.DataDir, filepath.Join(dir, "run", "mongo.sock"))
}

// openStore opens the service's store for a one-off command.
func openStore(ctx context.Context, cfg *config.Config) (*storage.Mongo, error) {
	uri, err := storeURI(ctx, cfg)
	if err != nil {
		return nil, err
	}
	octx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return storage.Open(octx, uri, cfg.MongoDBName)
}

// printAudit prints the newest audit entries, newest first, one JSON
// object per line: all users', or one user's with -user.
func printAudit(ctx context.Context, cfg *config.Config, args []string, out io.Writer) int {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	user := fs.String("user", "", "only this user_id's entries")
	limit := fs.Int64("limit", 100, "at most this many entries")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *limit <= 0 {
		fmt.Fprintln(os.Stderr, "audit: -limit must be positive")
		return 2
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "audit:", err)
		return 1
	}
	defer store.Close(context.Background())
	entries, err := store.AuditLog(ctx, *user, *limit)
	if err != nil {
		fmt.Fprintln(os.Stderr, "audit:", err)
		return 1
	}
	enc := json.NewEncoder(out)
	for _, e := range entries {
		if err := enc.Encode(e); err != nil {
			return 1
		}
	}
	return 0
}
