package testservices

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/embedded"
)

// InProcessNATS starts an embedded NATS server with JetStream and no
// listener, as `serve` runs it, and connects to it in-process. Both end
// with the test.
func InProcessNATS(t testing.TB) (*nats.Conn, jetstream.JetStream, *embedded.NATS) {
	t.Helper()
	ns, err := embedded.StartNATS(t.TempDir(), -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	nc, err := nats.Connect("", nats.InProcessServer(ns.Server()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js, ns
}
