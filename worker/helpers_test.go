package worker

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/internal/testservices"
	"github.com/openanalyst/mcp-integration-service/queue"
)

// startQueue starts an in-process NATS server with the job streams and
// consumers of s, and connects to it.
func startQueue(t *testing.T, s queue.Settings) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, js, _ := testservices.InProcessNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := queue.Setup(ctx, js, s); err != nil {
		t.Fatal(err)
	}
	return nc, js
}
