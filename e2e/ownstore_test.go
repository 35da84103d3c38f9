package e2e

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/openanalyst/mcp-integration-service/service"
	"github.com/openanalyst/mcp-integration-service/service/servicetest"
)

// No user connection reaches the service's own infrastructure. On a default
// serve the embedded FerretDB listens on a unix socket only and the embedded
// NATS on nothing, so they cannot be dialled; the API port is refused by the
// host policy even though loopback is allowed.
func TestOwnInfrastructureUnreachableByDefault(t *testing.T) {
	t.Parallel()
	user := servicetest.User(t)
	store := shared.In.StorageURI()
	if !strings.Contains(store, ".sock") {
		t.Fatalf("embedded FerretDB is not on a unix socket by default: %s", store)
	}
	// The socket URI itself is refused as a user connection string.
	r := shared.Do(t, "POST", "/api/databases/connect", map[string]any{"user_id": user, "db_type": "mongodb",
		"name": "own", "connection_string": strings.TrimSuffix(store, "/") + "/mcp_integrations"})
	if r.Status != http.StatusBadRequest || strings.Contains(string(r.Body), "user_databases") {
		t.Fatalf("socket URI: %d %s", r.Status, r.Body)
	}
	// Nothing of ours listens on TCP but the API.
	_, ps, _ := net.SplitHostPort(strings.TrimPrefix(shared.URL, "http://"))
	apiPort, _ := strconv.Atoi(ps)
	for _, db := range []map[string]any{
		{"db_type": "postgres", "host": "127.0.0.1", "port": apiPort, "database": "x", "username": "u", "password": "p"},
		{"db_type": "redis", "host": "localhost", "port": apiPort},
		{"db_type": "mysql", "host": "::1", "port": apiPort, "database": "x", "username": "u", "password": ""},
	} {
		db["user_id"], db["name"] = user, "own api"
		r := shared.Do(t, "POST", "/api/databases/connect", db)
		if r.Status != http.StatusBadRequest || r.Str("code") != "host_not_allowed" || !strings.Contains(r.Str("error"), "own") {
			t.Fatalf("%v: %s", db, r.Body)
		}
	}
	if n := len(shared.Do(t, "GET", "/api/databases?user_id="+user, nil).Expect(t, 200).JSON["databases"].([]any)); n != 0 {
		t.Fatalf("refused connections stored %d databases", n)
	}
}

// When split mode asks for TCP listeners, those ports are refused too, at
// connect and again at dial time for a MongoDB URI.
func TestOwnListenersRefusedInSplitMode(t *testing.T) {
	t.Parallel()
	natsPort, mongoPort := freePort(t), freePort(t)
	b, err := servicetest.Start(t, service.ModeServe, servicetest.Env{
		"MCP_EMBEDDED_NATS_PORT": fmt.Sprint(natsPort), "MCP_EMBEDDED_MONGO_PORT": fmt.Sprint(mongoPort)}, service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	user := servicetest.User(t)
	for _, port := range []int{natsPort, mongoPort} {
		body := map[string]any{"user_id": user, "name": "own", "db_type": "redis", "host": "127.0.0.1", "port": port}
		r := b.Do(t, "POST", "/api/databases/connect", body).Expect(t, http.StatusBadRequest)
		if r.Str("code") != "host_not_allowed" {
			t.Fatalf("port %d: %s", port, r.Body)
		}
	}
	for _, host := range []string{"127.0.0.1", "localhost", "[::ffff:127.0.0.1]"} {
		uri := fmt.Sprintf("mongodb://%s:%d/mcp_integrations", host, mongoPort)
		r := b.Do(t, "POST", "/api/databases/connect", map[string]any{"user_id": user, "db_type": "mongodb",
			"name": "own store", "connection_string": uri})
		if r.Status == http.StatusOK {
			// Stored: the dial must still refuse it, and no record leaks.
			dbID := r.Str("db_id")
			x := execute(t, b, user, "DB_QUERY_"+dbID, map[string]any{"collection": "user_databases", "filter": map[string]any{}})
			if x.Status == http.StatusOK || strings.Contains(string(x.Body), "db_type") || !strings.Contains(string(x.Body), "host_not_allowed") {
				t.Fatalf("%s: the service's own store answered: %d %s", host, x.Status, x.Body)
			}
			continue
		}
		if r.Status != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", host, r.Status, r.Body)
		}
	}
}
