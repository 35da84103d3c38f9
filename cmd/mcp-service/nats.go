package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/openanalyst/mcp-integration-service/config"
	"github.com/openanalyst/mcp-integration-service/embedded"
)

// natsOnly runs the embedded NATS server alone until a signal.
func natsOnly(ctx context.Context, cfg *config.Config) int {
	var every time.Duration
	if cfg.StreamSync != "always" {
		every, _ = time.ParseDuration(cfg.StreamSync)
	}
	ns, err := embedded.StartNATS(cfg.DataDir, cfg.EmbeddedNATS, every)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "embedded NATS on %s (JetStream data in %s)\n", ns.URL(), cfg.DataDir)
	<-ctx.Done()
	ns.Close()
	return 0
}
