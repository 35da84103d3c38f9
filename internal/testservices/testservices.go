// Package testservices finds the real servers that tests run against, and
// skips loudly (or fails, under MCP_REQUIRE_SERVICES=1) when one is absent.
package testservices

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// RequireEnv is the variable .ci/run sets to turn every skip into a failure.
const RequireEnv = "MCP_REQUIRE_SERVICES"

// Server is one of the machine's test servers.
type Server struct {
	Name string
	Env  string // variable overriding the address
	Addr string // default host:port
}

var (
	// Postgres is PostgreSQL with trust auth and a database "test".
	Postgres = Server{"PostgreSQL", "MCP_TEST_POSTGRES_ADDR", "127.0.0.1:5432"}
	// MySQL is MariaDB, root with no password, database "test".
	MySQL = Server{"MariaDB", "MCP_TEST_MYSQL_ADDR", "127.0.0.1:3306"}
	// Redis is an unauthenticated Redis.
	Redis = Server{"Redis", "MCP_TEST_REDIS_ADDR", "127.0.0.1:6379"}
	// NATS is a NATS server with JetStream.
	NATS = Server{"NATS", "MCP_TEST_NATS_ADDR", "127.0.0.1:4222"}
)

// Need returns the server's host and port, or skips the test loudly when it
// does not answer. Under MCP_REQUIRE_SERVICES=1 it fails instead.
func Need(t testing.TB, s Server) (host string, port int) {
	t.Helper()
	addr := s.Addr
	if v := os.Getenv(s.Env); v != "" {
		addr = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		msg := fmt.Sprintf("!!! %s is not reachable at %s (%v): this test needs it", s.Name, addr, err)
		if os.Getenv(RequireEnv) == "1" {
			t.Fatal(msg + "; " + RequireEnv + "=1 forbids skipping")
		}
		t.Skip(msg + "; skipping (set " + RequireEnv + "=1 to fail instead)")
	}
	_ = c.Close()
	h, p, _ := net.SplitHostPort(addr)
	var n int
	_, _ = fmt.Sscanf(p, "%d", &n)
	return h, n
}
