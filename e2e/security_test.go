package e2e

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/openanalyst/mcp-integration-service/service"
	"github.com/openanalyst/mcp-integration-service/service/servicetest"
	"github.com/openanalyst/mcp-integration-service/storage"
)

func connectPG(t *testing.T, b *servicetest.Bundle, user, password string) string {
	t.Helper()
	r := b.Do(t, "POST", "/api/databases/connect", pgConnectBody(t, user, password)).Expect(t, 200)
	return r.Str("db_id")
}

// Another user's database answers exactly like a missing one.
func TestIsolation(t *testing.T) {
	t.Parallel()
	alice, bob := servicetest.User(t)+"-alice", servicetest.User(t)+"-bob"
	dbID := connectPG(t, shared, alice, "pw-alice")

	if n := len(shared.Do(t, "GET", "/api/databases?user_id="+bob, nil).Expect(t, 200).JSON["databases"].([]any)); n != 0 {
		t.Fatalf("bob sees %d databases", n)
	}
	for _, tool := range shared.Do(t, "GET", "/api/tools?user_id="+bob, nil).Expect(t, 200).JSON["tools"].([]any) {
		if strings.Contains(tool.(map[string]any)["name"].(string), dbID) {
			t.Fatalf("bob sees alice's tool %v", tool)
		}
	}
	exec := func(user, id string) *servicetest.Response {
		return shared.Do(t, "POST", "/api/tools/execute", map[string]any{"user_id": user, "action": "DB_QUERY_" + id,
			"params": map[string]any{"query": "SELECT 1"}})
	}
	theirs := exec(bob, dbID).Expect(t, http.StatusNotFound)
	missing := exec(bob, "db_doesnotexist0").Expect(t, http.StatusNotFound)
	if theirs.Str("code") != missing.Str("code") || strings.ReplaceAll(theirs.Str("error"), dbID, "X") != strings.ReplaceAll(missing.Str("error"), "db_doesnotexist0", "X") {
		t.Fatalf("another user's db differs from a missing one:\n%s\n%s", theirs.Body, missing.Body)
	}
	dis := shared.Do(t, "POST", "/api/databases/disconnect", map[string]any{"user_id": bob, "db_id": dbID}).Expect(t, http.StatusNotFound)
	disMissing := shared.Do(t, "POST", "/api/databases/disconnect", map[string]any{"user_id": bob, "db_id": "db_doesnotexist0"}).Expect(t, http.StatusNotFound)
	if dis.Str("code") != disMissing.Str("code") {
		t.Fatalf("disconnect differs: %s vs %s", dis.Body, disMissing.Body)
	}
	// Alice still has it, and it still works.
	exec(alice, dbID).Expect(t, 200)
}

func TestAPIKey(t *testing.T) {
	t.Parallel()
	user := servicetest.User(t)
	for _, key := range []string{"", "wrong", shared.Key + "x", strings.ToUpper(shared.Key)} {
		r := shared.DoKey(t, key, "GET", "/api/databases?user_id="+user, nil).Expect(t, http.StatusUnauthorized)
		if r.JSON["success"] != false || r.Str("code") != "unauthorized" {
			t.Fatalf("401 body: %s", r.Body)
		}
	}
	shared.DoKey(t, "", "POST", "/api/databases/connect", pgConnectBody(t, user, "pw")).Expect(t, http.StatusUnauthorized)
	if n := len(shared.Do(t, "GET", "/api/databases?user_id="+user, nil).Expect(t, 200).JSON["databases"].([]any)); n != 0 {
		t.Fatal("an unauthenticated connect stored a database")
	}
	shared.DoKey(t, "", "GET", "/api/tools/health", nil).Expect(t, 200)
}

// Each bad input gets its 4xx and the error envelope, and changes nothing.
func TestBadInput(t *testing.T) {
	t.Parallel()
	user := servicetest.User(t)
	good := func() map[string]any { return pgConnectBody(t, user, "pw") }
	with := func(k string, v any) map[string]any { m := good(); m[k] = v; return m }
	without := func(k string) map[string]any { m := good(); delete(m, k); return m }
	huge := `{"user_id":"` + user + `","db_type":"postgres","name":"` + strings.Repeat("x", 1<<20) + `"}`
	cases := []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"malformed json", "POST", "/api/databases/connect", `{"user_id": "x",`, 400, "invalid_json"},
		{"not an object", "POST", "/api/databases/connect", `[1,2]`, 400, "invalid_field"},
		{"empty body", "POST", "/api/databases/connect", ``, 400, "invalid_json"},
		{"unknown db_type", "POST", "/api/databases/connect", with("db_type", "oracle"), 400, "unknown_db_type"},
		{"missing host", "POST", "/api/databases/connect", without("host"), 400, "missing_field"},
		{"missing name", "POST", "/api/databases/connect", without("name"), 400, "missing_field"},
		{"missing user_id", "POST", "/api/databases/connect", without("user_id"), 400, "missing_field"},
		{"port too big", "POST", "/api/databases/connect", with("port", 70000), 400, "invalid_field"},
		{"port zero", "POST", "/api/databases/connect", with("port", 0), 400, "invalid_field"},
		{"port not a number", "POST", "/api/databases/connect", with("port", "abc"), 400, "invalid_field"},
		{"ssl not a bool", "POST", "/api/databases/connect", with("ssl", "yes"), 400, "invalid_field"},
		{"body over 1 MiB", "POST", "/api/databases/connect", huge, 413, "body_too_large"},
		{"metadata host", "POST", "/api/databases/connect", with("host", "169.254.169.254"), 400, "host_not_allowed"},
		{"test unknown type", "POST", "/api/databases/test", map[string]any{"db_type": "nope"}, 400, "unknown_db_type"},
		{"schema unknown type", "GET", "/api/databases/schema?db_type=nope", nil, 400, "unknown_db_type"},
		{"schema no type", "GET", "/api/databases/schema", nil, 400, "missing_field"},
		{"list no user", "GET", "/api/databases", nil, 400, "missing_field"},
		{"tools no user", "GET", "/api/tools", nil, 400, "missing_field"},
		{"execute no action", "POST", "/api/tools/execute", map[string]any{"user_id": user}, 400, "missing_field"},
		{"execute params not object", "POST", "/api/tools/execute", map[string]any{"user_id": user, "action": "DB_QUERY_db_x", "params": "SELECT 1"}, 400, "invalid_field"},
		{"execute unknown tool", "POST", "/api/tools/execute", map[string]any{"user_id": user, "action": "NOPE"}, 404, "tool_not_found"},
		{"disconnect no db_id", "POST", "/api/databases/disconnect", map[string]any{"user_id": user}, 400, "missing_field"},
		{"unknown route", "GET", "/api/nope", nil, 404, "route_not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := shared.Do(t, c.method, c.path, c.body).Expect(t, c.status)
			if r.JSON["success"] != false || r.Str("code") != c.code || r.Str("error") == "" {
				t.Fatalf("envelope: %s (want code %s)", r.Body, c.code)
			}
		})
	}
	if n := len(shared.Do(t, "GET", "/api/databases?user_id="+user, nil).Expect(t, 200).JSON["databases"].([]any)); n != 0 {
		t.Fatalf("bad input stored %d databases", n)
	}
	// An SQL error is a 422 with the engine's message.
	dbID := connectPG(t, shared, user, "pw")
	r := shared.Do(t, "POST", "/api/tools/execute", map[string]any{"user_id": user, "action": "DB_QUERY_" + dbID,
		"params": map[string]any{"query": "SELECT * FROM no_such_table_xyz"}}).Expect(t, http.StatusUnprocessableEntity)
	if r.Str("code") != "query_failed" || !strings.Contains(r.Str("error"), `relation "no_such_table_xyz" does not exist`) {
		t.Fatalf("sql error: %s", r.Body)
	}
}

// safeBuffer collects log output from several goroutines.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// No plaintext password reaches MongoDB, a NATS message, a log line or a
// response.
func TestPasswordNeverLeaks(t *testing.T) {
	t.Parallel()
	var logs safeBuffer
	b, err := servicetest.Start(t, service.ModeServe, servicetest.Env{"MCP_LOG_LEVEL": "debug"},
		service.Options{Logger: service.NewLogger(&logs, "debug"), Out: &logs})
	if err != nil {
		t.Fatal(err)
	}
	const password = "Sup3r-Secret-Passw0rd-7731"
	// Watch every subject on the bus, including JetStream's own.
	nc, err := b.In.ConnectNATS()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var mu sync.Mutex
	var seen [][]byte
	sub, err := nc.Subscribe(">", func(m *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, append(append([]byte(m.Subject+" "), m.Data...), []byte(headerText(m))...))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	_ = nc.Flush()

	user := servicetest.User(t)
	var responses [][]byte
	body := pgConnectBody(t, user, password)
	responses = append(responses, b.Do(t, "POST", "/api/databases/test", body).Expect(t, 200).Body)
	r := b.Do(t, "POST", "/api/databases/connect", body).Expect(t, 200)
	responses = append(responses, r.Body)
	dbID := r.Str("db_id")
	responses = append(responses, b.Do(t, "GET", "/api/databases?user_id="+user, nil).Expect(t, 200).Body)
	responses = append(responses, b.Do(t, "GET", "/api/tools?user_id="+user, nil).Expect(t, 200).Body)
	responses = append(responses, b.Do(t, "POST", "/api/tools/execute", map[string]any{"user_id": user,
		"action": "DB_QUERY_" + dbID, "params": map[string]any{"query": "SELECT 1 AS one"}}).Expect(t, 200).Body)
	// A failing test-connection must not echo it either.
	bad := pgConnectBody(t, user, password)
	bad["database"] = "no_such_db_xyz"
	responses = append(responses, b.Do(t, "POST", "/api/databases/test", bad).Expect(t, 422).Body)

	var raw bson.M
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Collection(t, storage.CollDatabases).FindOne(ctx, bson.M{"_id": dbID}).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	stored, _ := raw["password"].(string)
	if stored == "" || stored == password || strings.Contains(stored, password) {
		t.Fatalf("stored password is not a Fernet token: %q", stored)
	}
	rec := &storage.Database{ID: dbID, UserID: raw["user_id"].(string)}
	pt, err := b.In.Ring.OpenBound(storage.CredentialBinding(rec, storage.FieldPassword), stored)
	if err != nil || string(pt) != password {
		t.Fatalf("stored token does not decrypt to the password: %v", err)
	}
	for _, resp := range responses {
		if bytes.Contains(resp, []byte(password)) {
			t.Fatalf("a response holds the password: %s", resp)
		}
	}
	_ = nc.Flush()
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	n := len(seen)
	for _, m := range seen {
		if bytes.Contains(m, []byte(password)) {
			mu.Unlock()
			t.Fatalf("a NATS message holds the password: %.200s", m)
		}
	}
	mu.Unlock()
	if n < 3 {
		t.Fatalf("saw only %d NATS messages; the watcher is broken", n)
	}
	if l := logs.String(); strings.Contains(l, password) || !strings.Contains(l, `"level"`) {
		t.Fatalf("logs hold the password or nothing was logged (%d bytes)", len(l))
	}
}

func headerText(m *nats.Msg) string {
	var sb strings.Builder
	for k, vs := range m.Header {
		sb.WriteString(k + ":" + strings.Join(vs, ",") + ";")
	}
	return sb.String()
}
