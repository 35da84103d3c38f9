package embedded

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATS is an in-process NATS server with JetStream.
type NATS struct {
	srv       *server.Server
	listening bool
	lock      *dirLock
}

// StartNATS starts NATS with JetStream, storing streams under dir/nats.
//
// With a negative port the server opens no listener at all: only clients in
// the same process reach it (nats.InProcessServer), so no user database
// connection can dial it. Otherwise it listens on 127.0.0.1:port (0 picks a
// free port), so that worker processes on the same machine can join.
//
// syncInterval is how often JetStream fsyncs: 0 means every write, before it
// is acknowledged (sync_interval: always), so an acknowledged job survives a
// crash of the process or the machine.
func StartNATS(dir string, port int, syncInterval ...time.Duration) (*NATS, error) {
	lock, err := lockDir(filepath.Join(dir, "nats"), "NATS")
	if err != nil {
		return nil, err
	}
	listen := port >= 0
	if port <= 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		DontListen:         !listen,
		ServerName:         "mcp-embedded",
		Host:               "127.0.0.1",
		Port:               port,
		JetStream:          true,
		StoreDir:           filepath.Join(dir, "nats"),
		NoSigs:             true,
		MaxPayload:         8 << 20,
		JetStreamMaxMemory: 256 << 20,
		SyncAlways:         true,
	}
	if len(syncInterval) > 0 && syncInterval[0] > 0 {
		opts.SyncAlways, opts.SyncInterval = false, syncInterval[0]
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		lock.release()
		return nil, errors.New("embedded nats: not ready after 10s (is the port taken?)")
	}
	return &NATS{srv: srv, listening: listen, lock: lock}, nil
}

// Server is the running server, for in-process client connections
// (nats.InProcessServer), which skip the loopback TCP stack.
func (n *NATS) Server() *server.Server { return n.srv }

// URL is the client URL of the server, or "" when it has no listener.
func (n *NATS) URL() string {
	if !n.listening {
		return ""
	}
	return n.srv.ClientURL()
}

// Addr is the server's TCP address, or "" when it has no listener.
func (n *NATS) Addr() string {
	if !n.listening {
		return ""
	}
	if a := n.srv.Addr(); a != nil {
		return a.String()
	}
	return ""
}

// Close shuts the server down and waits for it.
func (n *NATS) Close() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.lock.release()
}
