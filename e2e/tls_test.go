package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/openanalyst/mcp-integration-service/connectors/tlstest"
	"github.com/openanalyst/mcp-integration-service/service/servicetest"
	"github.com/openanalyst/mcp-integration-service/storage"
)

// ssl_ca: an invalid one is a 400; a valid one reaches the worker on the
// test path (sealed in the job) and from the stored record, and is stored
// but not listed. The fake PostgreSQL server refuses the password once TLS
// is up, so "password authentication failed" shows the handshake passed.
func TestSSLCA(t *testing.T) {
	t.Parallel()
	user := servicetest.User(t)
	cert := tlstest.NewCert(t)
	srv := tlstest.Serve(t, cert, tlstest.PostgresAcceptSSL, tlstest.PostgresRefuseLogin)
	body := func(ca string) map[string]any {
		return map[string]any{"user_id": user, "db_type": "postgres", "name": "TLS DB", "host": srv.Host,
			"port": srv.Port, "database": "test", "username": "u", "password": "pw", "ssl": true, "ssl_ca": ca}
	}
	for _, bad := range []string{"junk", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		cert.PEM + strings.Repeat("x", 64<<10)} {
		for _, path := range []string{"/api/databases/test", "/api/databases/connect"} {
			r := shared.Do(t, "POST", path, body(bad)).Expect(t, 400)
			if r.Str("code") != "invalid_field" || !strings.HasPrefix(r.Str("error"), "ssl_ca ") || len(r.Str("error")) > 120 {
				t.Fatalf("%s with ssl_ca %.20q: %s", path, bad, r.Body)
			}
		}
	}

	const untrusted, passed = "server certificate not trusted: x509: ", "password authentication failed (fake server)"
	if r := shared.Do(t, "POST", "/api/databases/test", body("")).Expect(t, 422); !strings.Contains(r.Str("error"), untrusted) {
		t.Fatalf("test without ssl_ca: %s", r.Body)
	}
	if r := shared.Do(t, "POST", "/api/databases/test", body(cert.PEM)).Expect(t, 422); !strings.Contains(r.Str("error"), passed) {
		t.Fatalf("test with ssl_ca: %s", r.Body)
	}

	query := func(dbID string) string {
		return shared.Do(t, "POST", "/api/tools/execute", map[string]any{"user_id": user, "action": "DB_QUERY_" + dbID,
			"params": map[string]any{"query": "SELECT 1"}}).Expect(t, 422).Str("error")
	}
	without := shared.Do(t, "POST", "/api/databases/connect", body("")).Expect(t, 200).Str("db_id")
	if e := query(without); !strings.Contains(e, untrusted) {
		t.Fatalf("stored without ssl_ca: %s", e)
	}
	with := shared.Do(t, "POST", "/api/databases/connect", body(" \n"+cert.PEM)).Expect(t, 200).Str("db_id")
	if e := query(with); !strings.Contains(e, passed) {
		t.Fatalf("stored with ssl_ca: %s", e)
	}

	list := shared.Do(t, "GET", "/api/databases?user_id="+user, nil).Expect(t, 200)
	if n := len(list.JSON["databases"].([]any)); n != 2 || strings.Contains(string(list.Body), "ssl_ca") ||
		strings.Contains(string(list.Body), "BEGIN") {
		t.Fatalf("list of %d: %s", n, list.Body)
	}
	var raw bson.M
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := shared.Collection(t, storage.CollDatabases).FindOne(ctx, bson.M{"_id": with}).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if raw["ssl_ca"] != strings.TrimSpace(cert.PEM) {
		t.Fatalf("stored ssl_ca %.60q", raw["ssl_ca"])
	}
}
