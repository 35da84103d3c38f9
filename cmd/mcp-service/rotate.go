package main

import (
	"context"
	"fmt"
	"os"

	"github.com/openanalyst/mcp-integration-service/config"
	"github.com/openanalyst/mcp-integration-service/keyring"
)

// rotateKeys re-encrypts stored credentials with the first key of
// DB_ENCRYPTION_KEY. Put the new key first and keep the old ones after it
// until this has run on every record.
func rotateKeys(ctx context.Context, cfg *config.Config) int {
	if cfg.EncryptionKeys == "" {
		fmt.Fprintln(os.Stderr, "rotate-keys: DB_ENCRYPTION_KEY is not set")
		return 2
	}
	ring, err := keyring.Parse(cfg.EncryptionKeys)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rotate-keys:", err)
		return 2
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rotate-keys:", err)
		return 1
	}
	defer store.Close(context.Background())
	res, err := store.RotateCredentials(ctx, ring, func(id string, err error) {
		if err != nil {
			fmt.Fprintf(os.Stderr, "  %s: %v\n", id, err)
		}
	})
	fmt.Printf("rotate-keys: scanned %d, re-encrypted %d, already current %d, failed %d\n",
		res.Scanned, res.Rotated, res.Current, res.Failed)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rotate-keys: stopped early (run it again to resume):", err)
		return 1
	}
	if res.Failed > 0 {
		return 1
	}
	return 0
}
