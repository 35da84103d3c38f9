package main

import (
	"context"
	"fmt"
	"os"

	"github.com/openanalyst/mcp-integration-service/config"
)

func rotateKeys(_ context.Context, _ *config.Config) int {
	fmt.Fprintln(os.Stderr, "rotate-keys: not yet available")
	return 1
}
