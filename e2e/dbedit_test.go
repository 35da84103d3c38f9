package e2e

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/openanalyst/mcp-integration-service/service"
	"github.com/openanalyst/mcp-integration-service/service/servicetest"
	"github.com/openanalyst/mcp-integration-service/storage"
)

// dbPath is /api/databases/{db_id}, with a user_id query when given.
func dbPath(dbID, user string) string {
	p := "/api/databases/" + dbID
	if user != "" {
		p += "?user_id=" + url.QueryEscape(user)
	}
	return p
}

// stored reads a database record as the service stored it.
func stored(t *testing.T, b *servicetest.Bundle, user, dbID string) *storage.Database {
	t.Helper()
	rec, err := b.In.Store.GetDatabase(context.Background(), user, dbID)
	if err != nil {
		t.Fatalf("stored record %s: %v", dbID, err)
	}
	return rec
}

// noSecrets fails when a response shows a secret field or value.
func noSecrets(t *testing.T, r *servicetest.Response, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, `"password"`, `"connection_string"`, `"ssl_ca"`, "gAAAAA") {
		if strings.Contains(string(r.Body), s) {
			t.Fatalf("response shows %q: %s", s, r.Body)
		}
	}
}

// eventually retries check for up to within: a change event reaches the
// workers asynchronously.
func eventually(t *testing.T, within time.Duration, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An edited database keeps its id and tool names, every worker drops its
// pool at once, a re-test of the stored credentials records its outcome, and
// bad input changes nothing.
func TestDatabaseEdit(t *testing.T) {
	t.Parallel()
	admin := pgAdmin(t)
	tbl := table("edit")
	pgExec(t, admin, "CREATE TABLE "+tbl+" (n int)")
	t.Cleanup(func() { pgExec(t, admin, "DROP TABLE IF EXISTS "+tbl) })
	b, user := shared, servicetest.User(t)
	dbID := connectPG(t, b, user, "first-pw-4711")
	query := func() *servicetest.Response {
		return execute(t, b, user, "DB_QUERY_"+dbID, map[string]any{"query": "SELECT count(*) AS n FROM " + tbl})
	}
	query().Expect(t, http.StatusOK) // the worker now holds a pool

	// Read one: the list's shape, no secrets, not checked yet.
	one := b.Do(t, "GET", dbPath(dbID, user), nil).Expect(t, http.StatusOK)
	noSecrets(t, one, "first-pw-4711")
	if one.Str("db_id") != dbID || one.Str("db_type") != "postgres" || one.Str("name") != "My Analytics DB" ||
		one.Str("database") != "test" || one.Str("status") != "connected" || one.JSON["last_checked_at"] != nil {
		t.Fatalf("GET one: %s", one.Body)
	}

	// Re-test with the stored credentials: recorded.
	ok := b.Do(t, "POST", dbPath(dbID, "")+"/test", map[string]any{"user_id": user}).Expect(t, http.StatusOK)
	if ok.JSON["success"] != true || ok.Str("message") != "Connection successful" {
		t.Fatalf("re-test: %s", ok.Body)
	}
	one = b.Do(t, "GET", dbPath(dbID, user), nil).Expect(t, http.StatusOK)
	checked, err := time.Parse(time.RFC3339Nano, one.Str("last_checked_at"))
	if err != nil || one.Str("status") != "connected" || one.JSON["last_error"] != nil || time.Since(checked) > time.Minute {
		t.Fatalf("after a good re-test: %s", one.Body)
	}

	// A form that sends the unchanged settings again keeps the check.
	host, port := one.Str("host"), one.JSON["port"]
	same := b.Do(t, "PATCH", dbPath(dbID, ""), map[string]any{"user_id": user, "db_type": "postgres",
		"connection_name": "My Analytics DB", "host": host, "port": port, "database": "test", "ssl": false}).Expect(t, http.StatusOK)
	if same.Str("last_checked_at") != one.Str("last_checked_at") || same.Str("status") != "connected" {
		t.Fatalf("an unchanged connection lost its check: %s", same.Body)
	}
	before := stored(t, b, user, dbID)

	// Bad input: 400, short messages, nothing changed.
	long := strings.Repeat("h", 300)
	for name, body := range map[string]any{
		"no user":       map[string]any{"name": "x"},
		"nothing":       map[string]any{"user_id": user},
		"port":          map[string]any{"user_id": user, "port": 70000},
		"port text":     map[string]any{"user_id": user, "port": "abc"},
		"empty name":    map[string]any{"user_id": user, "name": "   "},
		"long host":     map[string]any{"user_id": user, "host": long},
		"spaced host":   map[string]any{"user_id": user, "host": "a b"},
		"db_type":       map[string]any{"user_id": user, "db_type": "mysql"},
		"bad ca":        map[string]any{"user_id": user, "ssl_ca": "not a certificate"},
		"ssl type":      map[string]any{"user_id": user, "ssl": "yes"},
		"empty host":    map[string]any{"user_id": user, "host": ""},
		"malformed":     `{"user_id": "` + user + `", "name": `,
		"no body":       "",
		"not an object": `[1]`,
	} {
		r := b.Do(t, "PATCH", dbPath(dbID, ""), body).Expect(t, http.StatusBadRequest)
		if r.JSON["success"] != false || r.Str("code") == "" || len(r.Str("error")) > 200 || strings.Contains(r.Str("error"), long) {
			t.Fatalf("%s: %s", name, r.Body)
		}
	}
	if after := stored(t, b, user, dbID); !after.UpdatedAt.Equal(before.UpdatedAt) || after.Host != before.Host || after.Name != before.Name {
		t.Fatalf("refused edits changed the record: %+v", after)
	}

	// Another user's id answers exactly like a missing one, and changes nothing.
	bob := user + "-bob"
	for _, c := range []struct{ method, path string }{{"GET", dbPath(dbID, bob)}, {"PATCH", dbPath(dbID, "")},
		{"POST", dbPath(dbID, "") + "/test"}} {
		theirs := b.Do(t, c.method, c.path, map[string]any{"user_id": bob, "name": "Bob's"}).Expect(t, http.StatusNotFound)
		missing := b.Do(t, c.method, strings.Replace(c.path, dbID, "db_doesnotexist0", 1),
			map[string]any{"user_id": bob, "name": "Bob's"}).Expect(t, http.StatusNotFound)
		if theirs.Str("code") != "database_not_found" || theirs.Str("code") != missing.Str("code") ||
			strings.ReplaceAll(theirs.Str("error"), dbID, "X") != strings.ReplaceAll(missing.Str("error"), "db_doesnotexist0", "X") {
			t.Fatalf("%s: another user's database differs from a missing one:\n%s\n%s", c.method, theirs.Body, missing.Body)
		}
	}
	if stored(t, b, user, dbID).Name != "My Analytics DB" {
		t.Fatal("bob renamed alice's database")
	}

	// An edit to a database that does not exist: same id, the old pool is
	// dropped at once (it would serve for 30 s otherwise), the check is reset.
	ed := b.Do(t, "PATCH", dbPath(dbID, ""), map[string]any{"user_id": user, "database": "no_such_db_e2e"}).Expect(t, http.StatusOK)
	noSecrets(t, ed, "first-pw-4711")
	if ed.Str("db_id") != dbID || ed.Str("database") != "no_such_db_e2e" || ed.Str("name") != "My Analytics DB" ||
		ed.Str("status") != "connected" || ed.JSON["last_checked_at"] != nil {
		t.Fatalf("edit: %s", ed.Body)
	}
	after := stored(t, b, user, dbID)
	if after.Password != before.Password || !after.UpdatedAt.After(before.UpdatedAt) || !after.CreatedAt.Equal(before.CreatedAt) {
		t.Fatalf("an edit without a password changed the stored token or the times: %+v", after)
	}
	eventually(t, 5*time.Second, "the worker still answers from its old pool", func() bool {
		return query().Status == http.StatusUnprocessableEntity
	})
	if !strings.Contains(toolNames(t, b, user), "DB_QUERY_"+dbID) {
		t.Fatal("the tool name changed with the edit")
	}

	// A failing re-test is recorded, with a short error and no secret.
	bad := b.Do(t, "POST", dbPath(dbID, "")+"/test", map[string]any{"user_id": user}).Expect(t, http.StatusUnprocessableEntity)
	if bad.Str("code") != "connection_failed" && bad.Str("code") != "database_unavailable" {
		t.Fatalf("failing re-test: %s", bad.Body)
	}
	list := b.Do(t, "GET", "/api/databases?user_id="+url.QueryEscape(user), nil).Expect(t, http.StatusOK)
	noSecrets(t, list, "first-pw-4711")
	entry := list.JSON["databases"].([]any)[0].(map[string]any)
	lastErr, _ := entry["last_error"].(string)
	if entry["status"] != "error" || entry["last_checked_at"] == nil || lastErr == "" || len(lastErr) > 304 ||
		!strings.Contains(lastErr, "no_such_db_e2e") {
		t.Fatalf("list after a failed re-test: %s", list.Body)
	}

	// Back to a good database, renamed, writable, with a new password: the
	// tools carry the new name, writes work at once, the password is sealed
	// again for this record.
	ed = b.Do(t, "PATCH", dbPath(dbID, ""), map[string]any{"user_id": user, "database": "test", "name": "Renamed DB",
		"allow_writes": true, "password": "second-pw-0815", "port": "5432"}).Expect(t, http.StatusOK)
	if ed.Str("name") != "Renamed DB" || ed.JSON["allow_writes"] != true || ed.Str("status") != "connected" || ed.JSON["last_error"] != nil {
		t.Fatalf("second edit: %s", ed.Body)
	}
	rec := stored(t, b, user, dbID)
	pw, err := b.In.Ring.OpenBound(storage.CredentialBinding(rec, storage.FieldPassword), rec.Password)
	if err != nil || string(pw) != "second-pw-0815" || rec.Password == before.Password {
		t.Fatalf("new password: %q %v", pw, err)
	}
	eventually(t, 5*time.Second, "a write after allow_writes", func() bool {
		return execute(t, b, user, "DB_QUERY_"+dbID, map[string]any{"query": "INSERT INTO " + tbl + " VALUES (1)"}).Status == http.StatusOK
	})
	var n int
	if err := admin.QueryRow(context.Background(), "SELECT count(*) FROM "+tbl).Scan(&n); err != nil || n < 1 {
		t.Fatalf("the write did not land: %d %v", n, err)
	}
	tools := b.Do(t, "GET", "/api/tools?user_id="+url.QueryEscape(user), nil).Expect(t, http.StatusOK)
	if !strings.Contains(string(tools.Body), "Renamed DB") {
		t.Fatalf("tools do not carry the new name: %s", tools.Body)
	}

	// Audited, without parameters.
	eventually(t, 10*time.Second, "database.update in the audit log", func() bool {
		entries, err := b.In.Store.AuditLog(context.Background(), user, 20)
		if err != nil {
			t.Fatal(err)
		}
		var oks int
		for _, e := range entries {
			if e.Action == "database.update" && e.Target == dbID && e.Outcome == "ok" && e.Status == http.StatusOK {
				oks++
			}
		}
		return oks == 3
	})
}

// MongoDB entries show the hosts of their connection string, never its
// credentials, and an edit keeps the stored connection string unless a new
// one is sent.
func TestMongoHostListed(t *testing.T) {
	t.Parallel()
	b, user := shared, servicetest.User(t)
	connect := func(name, uri string) string {
		return b.Do(t, "POST", "/api/databases/connect", map[string]any{"user_id": user, "db_type": "mongodb",
			"name": name, "host": "ignored.example", "connection_string": uri}).Expect(t, http.StatusOK).Str("db_id")
	}
	rs := connect("Replica", "mongodb://app:Pa55-w0rd@db1.example.com:27017,db2.example.com:27018/shop?replicaSet=rs0&authSource=admin")
	srv := connect("Atlas", "mongodb+srv://app:Pa55-w0rd@cluster0.abcde.mongodb.net/shop")
	hosts := func() map[string]string {
		list := b.Do(t, "GET", "/api/databases?user_id="+url.QueryEscape(user), nil).Expect(t, http.StatusOK)
		noSecrets(t, list, "Pa55-w0rd", "app:")
		out := map[string]string{}
		for _, d := range list.JSON["databases"].([]any) {
			m := d.(map[string]any)
			out[m["db_id"].(string)], _ = m["host"].(string)
		}
		return out
	}
	h := hosts()
	if h[rs] != "db1.example.com:27017,db2.example.com:27018" || h[srv] != "cluster0.abcde.mongodb.net" {
		t.Fatalf("hosts: %v", h)
	}

	// A rename keeps the (opened, validated) connection string.
	tok := stored(t, b, user, rs).ConnectionString
	r := b.Do(t, "PATCH", dbPath(rs, ""), map[string]any{"user_id": user, "name": "Replica 2"}).Expect(t, http.StatusOK)
	noSecrets(t, r, "Pa55-w0rd")
	if r.Str("host") != "db1.example.com:27017,db2.example.com:27018" || stored(t, b, user, rs).ConnectionString != tok {
		t.Fatalf("rename: %s", r.Body)
	}
	// A new connection string: new hosts; an invalid one is refused.
	b.Do(t, "PATCH", dbPath(rs, ""), map[string]any{"user_id": user,
		"connection_string": "mongodb://app:Pa55-w0rd@db3.example.com/shop?tlsInsecure=true"}).Expect(t, http.StatusBadRequest)
	b.Do(t, "PATCH", dbPath(rs, ""), map[string]any{"user_id": user,
		"connection_string": "mongodb://app:Pa55-w0rd@db3.example.com/shop"}).Expect(t, http.StatusOK)
	if h := hosts(); h[rs] != "db3.example.com" {
		t.Fatalf("after a new connection string: %v", h)
	}
	one := b.Do(t, "GET", dbPath(srv, user), nil).Expect(t, http.StatusOK)
	noSecrets(t, one, "Pa55-w0rd")
	if one.Str("host") != "cluster0.abcde.mongodb.net" {
		t.Fatalf("GET one: %s", one.Body)
	}
}

// hangingListener accepts TCP connections and never answers.
func hangingListener(t *testing.T) (host string, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { <-done; _ = c.Close() }()
		}
	}()
	a := ln.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port
}

// A connection test that outlives the job timeout answers 504 with a job id
// that GET /api/jobs/{id} answers, first as queued or running, then with the
// test's outcome, never the parameters. A re-test that times out records
// nothing on the database.
func TestDatabaseTestTimeout(t *testing.T) {
	t.Parallel()
	b, err := servicetest.Start(t, service.ModeServe, servicetest.Env{"MCP_JOB_TIMEOUT": "1s"}, service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	host, port := hangingListener(t)
	user := servicetest.User(t)
	body := map[string]any{"user_id": user, "db_type": "postgres", "host": host, "port": port, "database": "test",
		"username": "postgres", "password": "hang-pw-9931"}

	r := b.Do(t, "POST", "/api/databases/test", body).Expect(t, http.StatusGatewayTimeout)
	jobID := r.Str("job_id")
	if _, err := uuid.Parse(jobID); err != nil || r.Str("code") != "worker_timeout" || !strings.Contains(r.Str("error"), jobID) {
		t.Fatalf("504: %s", r.Body)
	}
	if st := b.Do(t, "GET", jobPath(jobID, user), nil).Expect(t, http.StatusOK).Str("status"); st != "queued" && st != "running" {
		t.Fatalf("status right after the 504: %q", st)
	}
	b.Do(t, "GET", jobPath(jobID, user+"-other"), nil).Expect(t, http.StatusNotFound)
	j := waitJob(t, b, jobID, user, 30*time.Second)
	noSecrets(t, j, "hang-pw-9931", "sealed")
	if j.Str("status") != "failed" || j.Str("code") == "" || !strings.HasPrefix(j.Str("error"), "Connection failed") {
		t.Fatalf("timed-out test: %s", j.Body)
	}

	// Without a user_id there is nothing to poll: no job id is promised.
	delete(body, "user_id")
	r = b.Do(t, "POST", "/api/databases/test", body).Expect(t, http.StatusGatewayTimeout)
	if r.Str("code") != "worker_timeout" || r.JSON["job_id"] != nil || !strings.Contains(r.Str("error"), "user_id") {
		t.Fatalf("userless 504: %s", r.Body)
	}

	// A saved database on the hanging host: the re-test's 504 is pollable
	// and leaves the record's status alone.
	body["user_id"], body["name"] = user, "Hangs"
	dbID := b.Do(t, "POST", "/api/databases/connect", body).Expect(t, http.StatusOK).Str("db_id")
	r = b.Do(t, "POST", dbPath(dbID, "")+"/test", map[string]any{"user_id": user}).Expect(t, http.StatusGatewayTimeout)
	j = waitJob(t, b, r.Str("job_id"), user, 30*time.Second)
	noSecrets(t, j, "hang-pw-9931", "sealed")
	if j.Str("status") != "failed" {
		t.Fatalf("timed-out re-test: %s", j.Body)
	}
	if one := b.Do(t, "GET", dbPath(dbID, user), nil).Expect(t, http.StatusOK); one.Str("status") != "connected" || one.JSON["last_checked_at"] != nil {
		t.Fatalf("a timed-out re-test was recorded: %s", one.Body)
	}
}
