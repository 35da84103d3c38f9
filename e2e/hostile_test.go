package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/internal/testservices"
	"github.com/openanalyst/mcp-integration-service/service/servicetest"
	"github.com/openanalyst/mcp-integration-service/storage"
)

// maxErrorLen is the longest error message an attack may get back.
const maxErrorLen = 300

// hostile is a real `serve` process under attack, in its default
// configuration (plus the Composio sandbox), and the tenant attacking it.
type hostile struct {
	*servicetest.Bundle
	p        *proc
	dataDir  string
	apiPort  int
	sandbox  string // the Composio sandbox's host:port
	attacker string
	tmp      string // prefix of every file an attack tries to write

	mu      sync.Mutex
	created []string // the attacker's connections made on purpose
}

// TestHostile runs the hostile-input suite: every attack on a real `serve`
// is refused with a 4xx and a short message, nothing is written, and the
// process stays up and healthy.
func TestHostile(t *testing.T) {
	t.Parallel()
	h := startHostile(t)
	t.Run("attacks", func(t *testing.T) {
		t.Run("OwnInfrastructure", h.ownInfrastructure)
		t.Run("ForbiddenHosts", h.forbiddenHosts)
		t.Run("PostgresReadOnly", h.postgresReadOnly)
		t.Run("MySQLReadOnly", h.mysqlReadOnly)
		t.Run("MongoReadOnly", h.mongoReadOnly)
		t.Run("RedisReadOnly", h.redisReadOnly)
		t.Run("OversizedAndMalformed", h.oversized)
		t.Run("InventedMethod", h.inventedMethod)
		t.Run("HugeResult", h.hugeResult)
		t.Run("ReplayedOAuthState", h.replayedState)
		t.Run("AnotherUsersIDs", h.anotherUsersIDs)
	})
	h.alive(t)
	// Nothing was written: the attacker has exactly the connections made on
	// purpose, and the audit log holds no raw input.
	var got []string
	for _, d := range h.Do(t, "GET", "/api/databases?user_id="+url.QueryEscape(h.attacker), nil).Expect(t, 200).JSON["databases"].([]any) {
		got = append(got, d.(map[string]any)["db_id"].(string))
	}
	slices.Sort(got)
	slices.Sort(h.created)
	if !slices.Equal(got, h.created) {
		t.Fatalf("the attacker has databases %v, want only %v", got, h.created)
	}
	h.checkAudit(t)
	if files, _ := filepath.Glob(h.tmp + "*"); len(files) != 0 {
		t.Fatalf("attacks wrote files: %v", files)
	}
}

func startHostile(t *testing.T) *hostile {
	t.Helper()
	port := freePort(t)
	dir := t.TempDir()
	p := startProc(t, map[string]string{"MCP_DATA_DIR": dir, "MCP_SERVICE_HOST": "127.0.0.1",
		"MCP_SERVICE_PORT": fmt.Sprint(port), "AGENT_API_KEY": "hostile-key"}, "serve", "--composio-sandbox")
	h := &hostile{p: p, dataDir: dir, apiPort: port, attacker: servicetest.User(t) + "-attacker",
		tmp: filepath.Join(os.TempDir(), fmt.Sprintf("mcp-hostile-%d-", time.Now().UnixNano())),
		Bundle: &servicetest.Bundle{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Key: "hostile-key",
			HTTP: &http.Client{Timeout: 30 * time.Second}}}
	waitHTTP(t, h.URL+"/api/tools/health", 30*time.Second)
	p.waitLog(t, "Composio SANDBOX is on", 10*time.Second)
	m := regexp.MustCompile(`a local fake of Composio at https?://([^ /]+)`).FindStringSubmatch(p.Logs())
	if m == nil {
		t.Fatalf("no sandbox address in the logs:\n%s", p.Logs())
	}
	h.sandbox = m[1]
	return h
}

// alive fails unless the process still runs and reports itself healthy.
func (h *hostile) alive(t *testing.T) {
	t.Helper()
	select {
	case <-h.p.done:
		t.Fatalf("the service exited:\n%s", h.p.Logs())
	default:
	}
	h.DoKey(t, "", "GET", "/api/tools/health", nil).Expect(t, http.StatusOK)
}

// refused checks an attack's answer: one of the statuses in want, the error
// envelope with a short message that echoes at most a short prefix of
// input, and a healthy process afterwards.
func (h *hostile) refused(t *testing.T, r *servicetest.Response, input string, want ...int) {
	t.Helper()
	if err := h.check(t, r, input, want...); err != nil {
		t.Fatal(err)
	}
}

// check is refused returning what is wrong instead of failing; the
// process's health is still required.
func (h *hostile) check(t *testing.T, r *servicetest.Response, input string, want ...int) error {
	t.Helper()
	defer h.alive(t)
	if !slices.Contains(want, r.Status) {
		return fmt.Errorf("status %d, want one of %v; body %.300s", r.Status, want, r.Body)
	}
	msg := r.Str("error")
	if r.JSON["success"] != false || r.Str("code") == "" || msg == "" || len(msg) > maxErrorLen {
		return fmt.Errorf("not a short error envelope (%d bytes of error): %.400s", len(msg), r.Body)
	}
	if e := echoed(input, string(r.Body)+msg); e != "" {
		return fmt.Errorf("the answer echoes the input (%.40q…): %.300s", e, r.Body)
	}
	return nil
}

// knownHole fails a test whose attack got through one of the holes this
// suite found and that were then closed (see the hole field of the tables):
// it is open again. It first disconnects any database the attack stored, so
// that the final "nothing written" check still tests the other attacks.
func (h *hostile) knownHole(t *testing.T, r *servicetest.Response, users []string, hole string, err error) {
	t.Helper()
	if id := r.Str("db_id"); r.Status == http.StatusOK && id != "" {
		for _, u := range users {
			h.Do(t, "POST", "/api/databases/disconnect", map[string]any{"user_id": u, "db_id": id})
		}
	}
	t.Fatalf("a closed hole is open again: %s (%v)", hole, err)
}

// echoed returns a run of at least 71 bytes of input found in out: any such
// run holds a 64-byte window starting at a multiple of 8.
func echoed(input, out string) string {
	const window = 64
	for i := 0; i+window <= len(input); i += 8 {
		if strings.Contains(out, input[i:i+window]) {
			return input[i : i+window]
		}
	}
	return ""
}

// connect stores a connection for the attacker on purpose.
func (h *hostile) connect(t *testing.T, body map[string]any) string {
	t.Helper()
	body["user_id"] = h.attacker
	if body["name"] == nil {
		body["name"] = "hostile " + body["db_type"].(string)
	}
	id := h.Do(t, "POST", "/api/databases/connect", body).Expect(t, 200).Str("db_id")
	h.mu.Lock()
	h.created = append(h.created, id)
	h.mu.Unlock()
	return id
}

// query runs DB_QUERY on one of the attacker's connections.
func (h *hostile) query(t *testing.T, dbID string, params any) *servicetest.Response {
	t.Helper()
	return execute(t, h.Bundle, h.attacker, "DB_QUERY_"+dbID, params)
}

// The service's own servers, as user databases: the embedded FerretDB's
// unix socket and the API port under every spelling of this host.
func (h *hostile) ownInfrastructure(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(h.dataDir, "ferretdb", "run", "mongo.sock")
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("the embedded FerretDB socket is not where expected: %v", err)
	}
	own := "mongodb://" + url.PathEscape(sock) + "/mcp_integrations"
	for _, path := range []string{"/api/databases/test", "/api/databases/connect"} {
		r := h.Do(t, "POST", path, map[string]any{"user_id": h.attacker, "db_type": "mongodb", "name": "own store",
			"connection_string": own})
		h.refused(t, r, own, http.StatusBadRequest)
		if strings.Contains(string(r.Body), "user_databases") {
			t.Fatalf("the own store answered: %s", r.Body)
		}
	}
	hosts := []string{"127.0.0.1", "localhost", "::1", "127.0.0.2", "::ffff:127.0.0.1", "0.0.0.0"}
	if name, err := os.Hostname(); err == nil {
		hosts = append(hosts, name) // resolves to loopback on a developer machine
	}
	engines := []map[string]any{
		{"db_type": "postgres", "database": "x", "username": "u", "password": "p"},
		{"db_type": "mysql", "database": "x", "username": "u", "password": ""},
		{"db_type": "redis"},
	}
	for _, host := range hosts {
		for _, e := range engines {
			t.Run(fmt.Sprintf("%s/%s", e["db_type"], host), func(t *testing.T) {
				body := map[string]any{"user_id": h.attacker, "name": "own api", "host": host, "port": h.apiPort}
				for k, v := range e {
					body[k] = v
				}
				r := h.Do(t, "POST", "/api/databases/connect", body)
				h.refused(t, r, host, http.StatusBadRequest)
				if r.Str("code") != "host_not_allowed" {
					t.Fatalf("%s: %s", host, r.Body)
				}
			})
		}
		uri := "mongodb://" + hostPort(host, h.apiPort) + "/x"
		t.Run("mongodb/"+host, func(t *testing.T) { h.refuseURI(t, uri) })
	}
	// The Composio sandbox is a listener of this process too.
	t.Run("sandbox", func(t *testing.T) {
		host, port := splitHostPort(t, h.sandbox)
		r := h.Do(t, "POST", "/api/databases/connect", map[string]any{"user_id": h.attacker, "db_type": "redis",
			"name": "sandbox", "host": host, "port": port})
		if err := h.check(t, r, "", http.StatusBadRequest); err != nil {
			h.knownHole(t, r, []string{h.attacker}, "the Composio sandbox's listener "+h.sandbox+
				" is not among the host policy's own servers", err)
		}
	})
}

// refuseURI expects a MongoDB connection string to be refused at connect.
// One that is stored must still be refused when dialled.
func (h *hostile) refuseURI(t *testing.T, uri string) {
	t.Helper()
	r := h.Do(t, "POST", "/api/databases/connect", map[string]any{"user_id": h.attacker, "db_type": "mongodb",
		"name": "own api", "connection_string": uri})
	err := h.check(t, r, uri, http.StatusBadRequest)
	if err == nil {
		return
	}
	if r.Status != http.StatusOK {
		t.Fatal(err)
	}
	x := h.query(t, r.Str("db_id"), map[string]any{"collection": "c", "filter": map[string]any{}})
	h.refused(t, x, uri, http.StatusBadRequest, http.StatusUnprocessableEntity)
	if !strings.Contains(x.Str("error"), "not allowed") {
		t.Fatalf("%s: the dial was not refused by the host policy: %s", uri, x.Body)
	}
	h.knownHole(t, r, []string{h.attacker}, "the hosts of a mongodb:// connection string are not checked by the "+
		"host policy at connect, so "+uri+" is stored (the dial refuses it)", err)
}

func hostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return fmt.Sprintf("[%s]:%d", host, port)
	}
	return fmt.Sprintf("%s:%d", host, port)
}

func splitHostPort(t *testing.T, hp string) (string, int) {
	t.Helper()
	i := strings.LastIndexByte(hp, ':')
	var port int
	if _, err := fmt.Sscanf(hp[i+1:], "%d", &port); err != nil || i < 0 {
		t.Fatalf("bad host:port %q", hp)
	}
	return strings.Trim(hp[:i], "[]"), port
}

// Cloud metadata and special-purpose addresses, however spelled, and a unix
// socket as a PostgreSQL host: refused even though private hosts are
// allowed (the embedded default).
func (h *hostile) forbiddenHosts(t *testing.T) {
	t.Parallel()
	for _, host := range []string{"169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192",
		"64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::", "::ffff:169.254.169.254", "::ffff:a9fe:a9fe", "fe80::1",
		"0.0.0.0", "::", "2001:0:a9fe:a9fe::", "/var/run/postgresql", "/tmp/.s.PGSQL.5432", "@abstract"} {
		t.Run(host, func(t *testing.T) {
			t.Parallel()
			for _, path := range []string{"/api/databases/test", "/api/databases/connect"} {
				r := h.Do(t, "POST", path, map[string]any{"user_id": h.attacker, "db_type": "postgres", "name": "meta",
					"host": host, "port": 80, "database": "x", "username": "u", "password": "p"})
				h.refused(t, r, host, http.StatusBadRequest)
			}
			if !strings.Contains(host, "/") && !strings.HasPrefix(host, "@") {
				t.Run("mongodb", func(t *testing.T) { h.refuseURI(t, "mongodb://"+hostPort(host, 80)+"/x") })
			}
		})
	}
}

// sqlAttack is one statement a read-only connection must refuse.
type sqlAttack struct{ name, query string }

// runSQL runs a corpus of statements against a read-only connection.
func (h *hostile) runSQL(t *testing.T, dbID string, corpus []sqlAttack) {
	t.Helper()
	cases := map[string]map[string]any{}
	for _, a := range corpus {
		cases[a.name] = map[string]any{"query": a.query}
	}
	h.runCorpus(t, dbID, cases)
}

// runCorpus runs DB_QUERY with each case's params, in parallel, and expects
// each refused as a failed query or invalid parameters.
func (h *hostile) runCorpus(t *testing.T, dbID string, cases map[string]map[string]any) {
	t.Helper()
	t.Run("corpus", func(t *testing.T) {
		for name, params := range cases {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				r := h.query(t, dbID, params)
				input, _ := params["query"].(string)
				if input == "" {
					input = mustJSON(params)
				}
				h.refused(t, r, input, http.StatusUnprocessableEntity, http.StatusBadRequest)
				if c := r.Str("code"); c != "query_failed" && c != "invalid_params" {
					t.Fatalf("code %q: %s", c, r.Body)
				}
			})
		}
	})
}

func (h *hostile) postgresReadOnly(t *testing.T) {
	t.Parallel()
	admin := pgAdmin(t)
	tbl := table("hostile_pg")
	pgExec(t, admin, "CREATE TABLE "+tbl+" (v int)")
	t.Cleanup(func() { pgExec(t, admin, "DROP TABLE IF EXISTS "+tbl) })
	pgExec(t, admin, "INSERT INTO "+tbl+" VALUES (1)")

	// A sentinel session that pg_terminate_backend would end.
	host, port := testservices.Need(t, testservices.Postgres)
	app := "mcp_hostile_" + fmt.Sprint(time.Now().UnixNano())
	ctx := context.Background()
	sentinel, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d dbname=test user=postgres sslmode=disable application_name=%s",
		host, port, app))
	if err != nil {
		t.Fatal(err)
	}
	defer sentinel.Close(ctx)
	var pid int
	if err := sentinel.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}

	body := pgConnectBody(t, h.attacker, "")
	delete(body, "user_id")
	dbID := h.connect(t, body)
	f := h.tmp + "pg"
	p := fmt.Sprint(pid)
	h.runSQL(t, dbID, []sqlAttack{
		{"U& lo_export", `SELECT U&"\006Co_export"(lo_from_bytea(0, 'x'), '` + f + `1')`},
		{"lo_export", `SELECT lo_export(lo_from_bytea(0, 'x'), '` + f + `2')`},
		{"lo_import", `SELECT lo_import('/etc/passwd')`},
		{"terminate", `SELECT pg_terminate_backend(` + p + `)`},
		{"terminate quoted", `SELECT "pg_terminate_backend"(` + p + `)`},
		{"terminate qualified", `SELECT pg_catalog.pg_terminate_backend(` + p + `)`},
		{"terminate upper", `SELECT PG_TERMINATE_BACKEND(` + p + `)`},
		{"terminate mixed", `SeLeCt Pg_TeRmInAtE_bAcKeNd(` + p + `)`},
		{"terminate comment", `SELECT pg_terminate_backend/**/(` + p + `)`},
		{"terminate line comment", "SELECT pg_terminate_backend -- x\n(" + p + ")"},
		{"terminate U&", `SELECT U&"pg_terminate_backen\0064"(` + p + `)`},
		{"terminate UESCAPE", `SELECT U&"!0070g_terminate_backend" UESCAPE '!'(` + p + `)`},
		{"terminate by app", `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '` + app + `'`},
		{"cancel", `SELECT pg_cancel_backend(` + p + `)`},
		{"set_config", `SELECT set_config('mcp.hostile', 'pwned', false)`},
		{"set_config quoted", `SELECT pg_catalog."set_config"('statement_timeout', '0', false)`},
		{"copy to program", `COPY (SELECT 1) TO PROGRAM 'touch ` + f + `3'`},
		{"copy lower", `copy (select 1) to program 'touch ` + f + `4'`},
		{"copy after comment", `/* x */ COPY (SELECT 1) TO PROGRAM 'touch ` + f + `5'`},
		{"do block", `DO $$BEGIN PERFORM pg_sleep(0); END$$`},
		{"do string", `DO 'BEGIN NULL; END'`},
		{"two statements", `SELECT 1; DROP TABLE ` + tbl},
		{"then copy", `SELECT 1; COPY (SELECT 1) TO PROGRAM 'touch ` + f + `6'`},
		{"parenthesised then delete", `(SELECT 1); DELETE FROM ` + tbl},
		{"table then truncate", `TABLE ` + tbl + `; TRUNCATE ` + tbl},
		{"cte delete", `WITH d AS (DELETE FROM ` + tbl + ` RETURNING v) SELECT * FROM d`},
		{"explain analyze delete", `EXPLAIN ANALYZE DELETE FROM ` + tbl},
		{"select into", `SELECT * INTO hostile_copy FROM ` + tbl},
		{"dblink", `SELECT * FROM dblink('dbname=test', 'DELETE FROM ` + tbl + `') AS t(x text)`},
		{"query_to_xml", `SELECT query_to_xml('DELETE FROM ` + tbl + `', true, true, '')`},
		{"advisory lock", `SELECT pg_advisory_lock(424242)`},
		{"read file", `SELECT pg_read_file('/etc/passwd')`},
		{"ls dir", `SELECT * FROM pg_ls_dir('.')`},
		{"reload conf", `SELECT pg_reload_conf()`},
		{"notify", `SELECT pg_notify('x', 'y')`},
		{"delete", `DELETE FROM ` + tbl},
	})
	// The sentinel session survived, with the same backend.
	var again int
	if err := sentinel.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&again); err != nil || again != pid {
		t.Fatalf("the sentinel session did not survive: %v (pid %d, was %d)", err, again, pid)
	}
	var n int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM "+tbl).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the table changed: %d rows, %v", n, err)
	}
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 424242").Scan(&n); err != nil || n != 0 {
		t.Fatalf("an advisory lock is held: %d, %v", n, err)
	}
	// No pooled session kept a setting.
	for i := 0; i < 8; i++ {
		r := h.query(t, dbID, map[string]any{"query": "SELECT current_setting('mcp.hostile', true) AS v"}).Expect(t, 200)
		if strings.Contains(string(r.Body), "pwned") {
			t.Fatalf("set_config outlived its call: %s", r.Body)
		}
	}
	if files, _ := filepath.Glob(f + "*"); len(files) != 0 {
		t.Fatalf("PostgreSQL wrote files: %v", files)
	}
}

func (h *hostile) mysqlReadOnly(t *testing.T) {
	t.Parallel()
	admin := myAdmin(t)
	tbl := table("hostile_my")
	if _, err := admin.Exec("CREATE TABLE " + tbl + " (v int)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP TABLE IF EXISTS " + tbl) })
	if _, err := admin.Exec("INSERT INTO " + tbl + " VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	host, port := testservices.Need(t, testservices.MySQL)
	dbID := h.connect(t, map[string]any{"db_type": "mysql", "host": host, "port": port, "database": "test",
		"username": "root", "password": ""})
	f := h.tmp + "my"
	lock := fmt.Sprintf("mcp_hostile_%d", time.Now().UnixNano())
	h.runSQL(t, dbID, []sqlAttack{
		{"glued into", `SELECT 1e0INTO OUTFILE '` + f + `1'`},
		{"hex glued into", `SELECT 0x1INTO OUTFILE '` + f + `2'`},
		{"dot glued into", `SELECT 1.INTO OUTFILE '` + f + `3'`},
		{"executable comment", `SELECT 1 /*!50000 INTO OUTFILE '` + f + `4'*/`},
		{"mariadb executable comment", `SELECT 1 /*M!100000 INTO OUTFILE '` + f + `5'*/`},
		{"whole executable comment", `/*!SELECT 1 INTO OUTFILE '` + f + `6'*/`},
		{"outfile", `SELECT 1 INTO OUTFILE '` + f + `7'`},
		{"dumpfile", `select 1 into dumpfile '` + f + `8'`},
		{"comments around into", `SELECT 1 /**/INTO/**/OUTFILE '` + f + `9'`},
		{"line comment into", "SELECT 1 -- x\nINTO OUTFILE '" + f + "10'"},
		{"hash comment into", "SELECT 1 # x\nINTO OUTFILE '" + f + "11'"},
		{"mixed case", `SeLeCt 1 InTo OuTfIlE '` + f + `12'`},
		{"double quotes", `SELECT "a" INTO OUTFILE "` + f + `13"`},
		{"union into", `SELECT 1 UNION SELECT 2 INTO OUTFILE '` + f + `14'`},
		{"derived into", `SELECT * FROM (SELECT 1) t INTO OUTFILE '` + f + `15'`},
		{"backslash ambiguity", `SELECT 'a\' INTO OUTFILE \'` + f + `16\' -- '`},
		{"into variable", `SELECT 1 INTO @v`},
		{"into variable late", `SELECT v FROM ` + tbl + ` WHERE 1=1 INTO @x`},
		{"load_file", `SELECT LOAD_FILE('/etc/passwd')`},
		{"load_file comment", `SELECT load_file/**/('/etc/passwd')`},
		{"get_lock", `SELECT GET_LOCK('` + lock + `', 0)`},
		{"get_lock lower", `select get_lock('` + lock + `', 0) from dual`},
		{"release all", `SELECT RELEASE_ALL_LOCKS()`},
		{"do get_lock", `DO GET_LOCK('` + lock + `', 0)`},
		{"benchmark", `SELECT BENCHMARK(100000000, MD5('x'))`},
		{"sys_exec", `SELECT sys_exec('touch ` + f + `17')`},
		{"hint", `SELECT /*+ MAX_EXECUTION_TIME(0) */ SLEEP(0)`},
		{"two statements", `SELECT 1; DROP TABLE ` + tbl},
		{"two selects", `SELECT 1; SELECT 2`},
		{"set", `SET @a = 1`},
		{"delete", `DELETE FROM ` + tbl},
	})
	var free, n int
	if err := admin.QueryRow("SELECT IS_FREE_LOCK(?)", lock).Scan(&free); err != nil || free != 1 {
		t.Fatalf("the named lock is held: %d, %v", free, err)
	}
	if err := admin.QueryRow("SELECT count(*) FROM " + tbl).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the table changed: %d rows, %v", n, err)
	}
	if files, _ := filepath.Glob(f + "*"); len(files) != 0 {
		t.Fatalf("MariaDB wrote files: %v", files)
	}
}

func (h *hostile) mongoReadOnly(t *testing.T) {
	t.Parallel()
	// The user's MongoDB: a FerretDB of its own, on TCP.
	ctx := context.Background()
	fdb, err := embedded.StartFerret(ctx, t.TempDir(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fdb.Close() })
	client, err := mongo.Connect(options.Client().ApplyURI(fdb.URI()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	db := client.Database("hostile")
	if _, err := db.Collection("campaigns").InsertMany(ctx, []any{bson.M{"n": 1}, bson.M{"n": 2}}); err != nil {
		t.Fatal(err)
	}
	dbID := h.connect(t, map[string]any{"db_type": "mongodb", "connection_string": strings.TrimSuffix(fdb.URI(), "/") + "/hostile"})

	out := map[string]any{"$out": "stolen"}
	merge := map[string]any{"$merge": map[string]any{"into": "stolen"}}
	fn := map[string]any{"$function": map[string]any{"body": "function() { return true }", "args": []any{}, "lang": "js"}}
	cases := map[string]string{
		"$out":             `{"collection":"campaigns","pipeline":[{"$match":{}},{"$out":"stolen"}]}`,
		"$merge":           mustJSON(map[string]any{"collection": "campaigns", "pipeline": []any{merge}}),
		"$where":           `{"collection":"campaigns","filter":{"$where":"sleep(100) || true"}}`,
		"$function":        mustJSON(map[string]any{"collection": "campaigns", "filter": map[string]any{"$expr": fn}}),
		"$accumulator":     `{"collection":"campaigns","pipeline":[{"$group":{"_id":null,"a":{"$accumulator":{"init":"function(){}","accumulate":"function(){}","accumulateArgs":[],"merge":"function(){}","lang":"js"}}}}]}`,
		"$facet":           mustJSON(map[string]any{"collection": "campaigns", "pipeline": []any{map[string]any{"$facet": map[string]any{"a": []any{out}}}}}),
		"$lookup":          mustJSON(map[string]any{"collection": "campaigns", "pipeline": []any{map[string]any{"$lookup": map[string]any{"from": "campaigns", "pipeline": []any{merge}, "as": "x"}}}}),
		"$unionWith":       mustJSON(map[string]any{"collection": "campaigns", "pipeline": []any{map[string]any{"$unionWith": map[string]any{"coll": "campaigns", "pipeline": []any{out}}}}}),
		"escaped $out":     `{"collection":"campaigns","pipeline":[{"\u0024out":"stolen"}]}`,
		"upper $OUT":       `{"collection":"campaigns","pipeline":[{"$OUT":"stolen"}]}`,
		"$where in sort":   `{"collection":"campaigns","filter":{},"sort":{"$where":1}}`,
		"$function in $or": mustJSON(map[string]any{"collection": "campaigns", "filter": map[string]any{"$or": []any{map[string]any{"$expr": fn}}}}),
		"insert":           `{"operation":"insert","collection":"campaigns","documents":[{"n":3}]}`,
		"update":           `{"operation":"update","collection":"campaigns","filter":{},"update":{"$set":{"n":0}},"multi":true}`,
		"delete":           `{"operation":"delete","collection":"campaigns","filter":{},"multi":true}`,
		"bad value deeply nested": `{"collection":"campaigns","filter":` + strings.Repeat(`{"$and":[`, 3000) + `{}` +
			strings.Repeat(`]}`, 3000) + `}`,
		"long key with a bad value": `{"collection":"campaigns","filter":{"` + strings.Repeat("K", 4000) + `":{"$date":"x"}}}`,
	}
	t.Run("corpus", func(t *testing.T) {
		for name, params := range cases {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				body := `{"user_id":` + mustJSON(h.attacker) + `,"action":"DB_QUERY_` + dbID + `","params":` + params + `}`
				r := h.Do(t, "POST", "/api/tools/execute", body)
				err := h.check(t, r, params, http.StatusUnprocessableEntity, http.StatusBadRequest)
				if err != nil && strings.HasPrefix(name, "bad value") {
					h.knownHole(t, r, nil, "mongodb's parseDoc passes the driver's decoding error through, which names the "+
						"array index path (\"error decoding key 0.0.0…\", up to 200 levels): a ~500-byte message", err)
				}
				if err != nil {
					t.Fatal(err)
				}
			})
		}
	})
	names, err := db.ListCollectionNames(ctx, bson.M{})
	if err != nil || len(names) != 1 || names[0] != "campaigns" {
		t.Fatalf("collections after the attacks: %v, %v", names, err)
	}
	if n, err := db.Collection("campaigns").CountDocuments(ctx, bson.M{"n": bson.M{"$in": bson.A{1, 2}}}); err != nil || n != 2 {
		t.Fatalf("the documents changed: %d, %v", n, err)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func (h *hostile) redisReadOnly(t *testing.T) {
	t.Parallel()
	host, port := testservices.Need(t, testservices.Redis)
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("%s:%d", host, port)})
	defer rdb.Close()
	ctx := context.Background()
	key := fmt.Sprintf("mcp-hostile-%d", time.Now().UnixNano())
	if err := rdb.Set(ctx, key, "intact", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	dir, err := rdb.ConfigGet(ctx, "dir").Result()
	if err != nil {
		t.Fatal(err)
	}
	dbID := h.connect(t, map[string]any{"db_type": "redis", "host": host, "port": port, "password": "", "database": 0})
	script := []string{"redis.call('set', KEYS[1], 'pwned')", "1", key}
	cases := map[string]map[string]any{
		"EVAL":             {"command": "EVAL", "args": script},
		"eval lower":       {"command": "eval", "args": script},
		"EVAL NUL":         {"command": "EVAL\x00", "args": script},
		"EVAL homoglyph":   {"command": "\u0415VAL", "args": script}, // Cyrillic Е
		"EVAL fullwidth":   {"command": "ＥＶＡＬ", "args": script},
		"EVAL space":       {"command": "EVAL ", "args": script},
		"EVAL_RO":          {"command": "EVAL_RO", "args": script},
		"EVAL inline":      {"command": "EVAL \"redis.call('set', KEYS[1], 'pwned')\" 1 " + key},
		"CONFIG SET":       {"command": "CONFIG", "args": []string{"SET", "dir", "/tmp"}},
		"CONFIG SET line":  {"command": "CONFIG SET dir /tmp"},
		"FLUSHALL":         {"command": "FLUSHALL"},
		"flushall async":   {"command": "flushall ASYNC"},
		"SCRIPT FLUSH":     {"command": "SCRIPT", "args": []string{"FLUSH"}},
		"MODULE LOAD":      {"command": "MODULE", "args": []string{"LOAD", "/tmp/x.so"}},
		"DEBUG SLEEP":      {"command": "DEBUG", "args": []string{"SLEEP", "0"}},
		"FUNCTION FLUSH":   {"command": "FUNCTION", "args": []string{"FLUSH"}},
		"CLIENT KILL":      {"command": "CLIENT", "args": []string{"KILL", "TYPE", "normal"}},
		"SELECT":           {"command": "SELECT", "args": []string{"1"}},
		"MULTI":            {"command": "MULTI"},
		"SET":              {"command": "SET", "args": []string{key, "pwned"}},
		"DEL":              {"command": "DEL " + key},
		"CRLF smuggling":   {"command": "GET " + key + "\r\nSET " + key + " pwned"},
		"OBJECT bad sub":   {"command": "OBJECT", "args": []string{"FREQ\x00", key}},
		"negative count":   {"command": "SRANDMEMBER", "args": []string{key, "-1000000000"}},
		"query alias EVAL": {"query": "EVAL \"return 1\" 0"},
	}
	h.runCorpus(t, dbID, cases)
	if v, err := rdb.Get(ctx, key).Result(); err != nil || v != "intact" {
		t.Fatalf("the key changed: %q, %v", v, err)
	}
	if now, err := rdb.ConfigGet(ctx, "dir").Result(); err != nil || now["dir"] != dir["dir"] {
		t.Fatalf("CONFIG changed: %v → %v (%v)", dir, now, err)
	}
}

// Oversized and malformed requests.
func (h *hostile) oversized(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("A", 900<<10)
	user := mustJSON(h.attacker)
	pg := func(field, value string) string {
		b := pgConnectBody(t, h.attacker, "pw")
		b[field] = value
		return mustJSON(b)
	}
	nested := strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000)
	type attack struct {
		name, method, path, body string
		input                    string // what the answer must not echo
		want                     []int
	}
	bad := []int{http.StatusBadRequest}
	cases := []attack{
		{"900 KB action", "POST", "/api/tools/execute", `{"user_id":` + user + `,"action":"` + big + `","params":{}}`, big, bad},
		{"900 KB user_id", "POST", "/api/tools/execute", `{"user_id":"` + big + `","action":"DB_QUERY_db_x"}`, big, bad},
		{"900 KB user_id in query", "GET", "/api/databases?user_id=" + big[:8000], "", big[:8000], bad},
		{"900 KB db_type", "POST", "/api/databases/connect", pg("db_type", big), big, bad},
		{"900 KB host", "POST", "/api/databases/connect", pg("host", big), big, bad},
		{"900 KB host with a slash", "POST", "/api/databases/connect", pg("host", "/"+big), big, bad},
		{"900 KB host, test", "POST", "/api/databases/test", pg("host", big+"/"), big, bad},
		{"900 KB name", "POST", "/api/databases/connect", pg("name", big), big, bad},
		{"900 KB database", "POST", "/api/databases/connect", pg("database", big), big, bad},
		{"900 KB username", "POST", "/api/databases/connect", pg("username", big), big, bad},
		{"900 KB password", "POST", "/api/databases/connect", pg("password", big), big, bad},
		{"900 KB connection string", "POST", "/api/databases/connect", mustJSON(map[string]any{"user_id": h.attacker,
			"db_type": "mongodb", "name": "x", "connection_string": "mongodb://" + big + "/x"}), big, bad},
		{"900 KB connection string option", "POST", "/api/databases/connect", mustJSON(map[string]any{"user_id": h.attacker,
			"db_type": "mongodb", "name": "x", "connection_string": "mongodb://h/x?" + big + "=1"}), big, bad},
		{"900 KB db_id", "POST", "/api/databases/disconnect", `{"user_id":` + user + `,"db_id":"` + big + `"}`, big, bad},
		{"900 KB job id", "GET", "/api/jobs/" + big[:8000] + "?user_id=" + url.QueryEscape(h.attacker), "", big[:8000],
			[]int{http.StatusNotFound, http.StatusBadRequest}},
		{"900 KB provider", "GET", "/api/tools?user_id=" + url.QueryEscape(h.attacker) + "&provider=" + big[:8000], "", big[:8000], bad},
		{"10 MB body", "POST", "/api/tools/execute", `{"user_id":` + user + `,"action":"` + strings.Repeat("A", 10<<20) + `"}`,
			"", []int{http.StatusRequestEntityTooLarge}},
		{"invalid UTF-8 user_id", "POST", "/api/databases/connect", strings.Replace(pg("user_id", "USER"), `"USER"`, "\"\xff\xfe"+h.attacker+"\"", 1), "", bad},
		{"invalid UTF-8 user_id in query", "GET", "/api/databases?user_id=%FF%FE", "", "", bad},
		{"invalid UTF-8 action", "POST", "/api/tools/execute", `{"user_id":` + user + ",\"action\":\"DB_QUERY_\xff\"}", "", bad},
		{"control char user_id", "POST", "/api/databases/connect", pg("user_id", "a\x01b"), "", bad},
		{"NUL user_id", "POST", "/api/databases/connect", pg("user_id", h.attacker+"\x00"), "", bad},
		{"newline user_id in query", "GET", "/api/databases?user_id=a%0Ab", "", "", bad},
		{"DEL user_id", "GET", "/api/databases?user_id=a%7Fb", "", "", bad},
		{"NUL password", "POST", "/api/databases/connect", pg("password", "pw\x00"), "", bad},
		{"deeply nested params", "POST", "/api/tools/execute", `{"user_id":` + user + `,"action":"DB_QUERY_db_x","params":` + nested + `}`, nested, bad},
		{"deeply nested array", "POST", "/api/databases/connect", strings.Repeat("[", 500000) + strings.Repeat("]", 500000), "", bad},
		{"user_id a number", "POST", "/api/tools/execute", `{"user_id":123,"action":"DB_QUERY_db_x"}`, "", bad},
		{"user_id null", "POST", "/api/databases/connect", `{"user_id":null,"db_type":"redis","name":"x","host":"127.0.0.1"}`, "", bad},
		{"action an array", "POST", "/api/tools/execute", `{"user_id":` + user + `,"action":["DB_QUERY_db_x"]}`, "", bad},
		{"params a string", "POST", "/api/tools/execute", `{"user_id":` + user + `,"action":"DB_QUERY_db_x","params":"SELECT 1"}`, "", bad},
		{"max_rows a string", "POST", "/api/tools/execute", `{"user_id":` + user + `,"action":"DB_QUERY_db_x","max_rows":"10"}`, "", bad},
		{"max_rows huge", "POST", "/api/tools/execute", `{"user_id":` + user + `,"action":"DB_QUERY_db_x","max_rows":1e300}`, "", bad},
		{"max_rows negative", "POST", "/api/tools/execute", `{"user_id":` + user + `,"action":"DB_QUERY_db_x","max_rows":-1}`, "", bad},
		{"async a string", "POST", "/api/tools/execute", `{"user_id":` + user + `,"action":"DB_QUERY_db_x","async":"yes"}`, "", bad},
		{"port a bool", "POST", "/api/databases/connect", `{"user_id":` + user + `,"db_type":"redis","name":"x","host":"127.0.0.1","port":true}`, "", bad},
		{"port huge", "POST", "/api/databases/connect", `{"user_id":` + user + `,"db_type":"redis","name":"x","host":"127.0.0.1","port":1e100}`, "", bad},
		{"db_type an object", "POST", "/api/databases/connect", `{"user_id":` + user + `,"db_type":{"$ne":""},"name":"x"}`, "", bad},
		{"top-level string", "POST", "/api/databases/connect", `"x"`, "", bad},
		{"top-level null", "POST", "/api/tools/execute", `null`, "", bad},
		{"two documents", "POST", "/api/databases/connect", pg("name", "x") + pg("name", "y"), "", bad},
		{"duplicate user_id", "POST", "/api/databases/connect",
			`{"user_id":` + user + `,"db_type":"redis","name":"dup","host":"127.0.0.1","user_id":"` + big[:200] + `\u0000"}`, "", bad},
		{"duplicate db_type", "POST", "/api/databases/connect",
			`{"user_id":` + user + `,"db_type":"redis","name":"dup","host":"127.0.0.1","db_type":"oracle"}`, "", bad},
	}
	// A 900 KB URL never reaches a handler: net/http answers 431.
	t.Run("900 KB URL", func(t *testing.T) {
		t.Parallel()
		r := h.Do(t, "GET", "/api/databases?user_id="+big, nil)
		if r.Status != http.StatusRequestHeaderFieldsTooLarge || len(r.Body) > maxErrorLen {
			t.Fatalf("%d %.300s", r.Status, r.Body)
		}
		h.alive(t)
	})
	unbounded := "database, username, password and connection_string have no length bound: a 900 KB value is sealed and stored"
	echoHost := "sqlconn.Validate quotes the whole host (%q) when it holds a '/' or another refused character, " +
		"before api.checkHost bounds its length"
	holes := map[string]string{
		"900 KB host with a slash": echoHost, "900 KB host, test": echoHost,
		"900 KB database": unbounded, "900 KB username": unbounded, "900 KB password": unbounded,
		"900 KB connection string": unbounded, "900 KB connection string option": unbounded,
		"invalid UTF-8 user_id": "encoding/json replaces invalid UTF-8 in a body with U+FFFD, so a user_id that is not " +
			"UTF-8 is accepted (stored under \"\\ufffd\\ufffd…\"), while the same id in a query string is a 400",
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var body any
			if c.body != "" {
				body = []byte(c.body)
			}
			r := h.Do(t, c.method, c.path, body)
			err := h.check(t, r, c.input, c.want...)
			if hole := holes[c.name]; err != nil && hole != "" {
				h.knownHole(t, r, []string{h.attacker, "\uFFFD\uFFFD" + h.attacker}, hole, err)
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// An invented HTTP method without a key is refused and does not become a
// metrics series of its own.
func (h *hostile) inventedMethod(t *testing.T) {
	t.Parallel()
	method := "HOSTILE" + strings.Repeat("X", 73)
	for _, path := range []string{"/api/databases?user_id=x", "/api/tools/execute", "/api/tools/health", "/api/nope", "/mcp", "/metrics"} {
		r := h.DoKey(t, "", method, path, nil)
		if r.Status < 400 || r.Status >= 500 {
			t.Fatalf("%s %s: %d %.200s", method[:10], path, r.Status, r.Body)
		}
		if strings.Contains(string(r.Body), method) || len(r.Body) > maxErrorLen+100 {
			t.Fatalf("%s: the answer echoes the method: %.300s", path, r.Body)
		}
		h.alive(t)
	}
	text := string(h.DoKey(t, "", "GET", "/metrics", nil).Expect(t, 200).Body)
	if strings.Contains(text, "HOSTILE") {
		t.Fatal("/metrics has a series with the invented method")
	}
	if !strings.Contains(text, `method="OTHER"`) {
		t.Fatal("/metrics did not count the invented method as OTHER")
	}
	t.Run("envelope", func(t *testing.T) {
		r := h.DoKey(t, "", method, "/api/tools/execute", nil)
		if err := h.check(t, r, method, http.StatusMethodNotAllowed, http.StatusNotFound); err != nil {
			h.knownHole(t, r, nil, "a method chi does not know (not GET, POST, …) gets chi's bare 405 without the error "+
				"envelope: api.New sets MethodNotAllowed on the /api subrouter only, and chi answers unknown methods "+
				"from the top-level router", err)
		}
	})
}

// A 10 MB result answers promptly, capped or refused, never hangs.
func (h *hostile) hugeResult(t *testing.T) {
	t.Parallel()
	body := pgConnectBody(t, h.attacker, "")
	delete(body, "user_id")
	body["name"] = "huge result"
	dbID := h.connect(t, body)
	for _, q := range []string{"SELECT repeat('x', 10000) AS v FROM generate_series(1, 1000)",
		"SELECT repeat('x', 10000000) AS v"} {
		start := time.Now()
		r := h.query(t, dbID, map[string]any{"query": q, "max_rows": 10000})
		took := time.Since(start)
		if took > 5*time.Second {
			t.Fatalf("%s took %s", q, took)
		}
		switch r.Status {
		case http.StatusOK:
			if r.JSON["truncated"] != true || len(r.Body) > 5<<20 {
				t.Fatalf("%s: %d bytes, truncated=%v", q, len(r.Body), r.JSON["truncated"])
			}
		default:
			h.refused(t, r, "", http.StatusUnprocessableEntity)
			if r.Str("code") != "result_too_large" {
				t.Fatalf("%s: %s", q, r.Body)
			}
		}
		t.Logf("%s: %d, %d bytes in %s", q, r.Status, len(r.Body), took.Round(time.Millisecond))
	}
	h.alive(t)
}

// A replayed OAuth callback connects nothing new and changes nothing.
func (h *hostile) replayedState(t *testing.T) {
	t.Parallel()
	own := h.URL + "/ui/"
	r := h.Do(t, "POST", "/api/integrations/connect",
		map[string]any{"user_id": h.attacker, "provider": "gmail", "redirect_url": own}).Expect(t, 200)
	cb := consent(t, h.Bundle, r.Str("auth_url"), "")
	if got := back(t, cb); got != own+"?status=success&provider=gmail" {
		t.Fatalf("first callback: back to %q", got)
	}
	before := connected(t, h.Bundle, h.attacker)
	for i := 0; i < 3; i++ {
		if got := back(t, cb); got != own+"?status=failed&provider=gmail" {
			t.Fatalf("replay %d: back to %q, want status=failed", i, got)
		}
	}
	// A state replayed under another user's id is not theirs either.
	victim := h.attacker + "-victim"
	if got := back(t, setParam(t, cb, "user_id", victim)); !strings.Contains(got, "status=failed") {
		t.Fatalf("replay with another user_id: back to %q", got)
	}
	if after := connected(t, h.Bundle, h.attacker); len(after) != 1 || len(before) != 1 || after[0] != before[0] {
		t.Fatalf("a replay changed the integrations: %+v → %+v", before, after)
	}
	if len(connected(t, h.Bundle, victim)) != 0 {
		t.Fatal("a replay connected another user")
	}
	h.alive(t)
}

// Another user's db_id and job id answer exactly like missing ones.
func (h *hostile) anotherUsersIDs(t *testing.T) {
	t.Parallel()
	victim := h.attacker + "-victim"
	vdb := h.Do(t, "POST", "/api/databases/connect", pgConnectBody(t, victim, "")).Expect(t, 200).Str("db_id")
	job := h.Do(t, "POST", "/api/tools/execute", map[string]any{"user_id": victim, "action": "DB_QUERY_" + vdb,
		"params": map[string]any{"query": "SELECT 1"}, "async": true}).Expect(t, http.StatusAccepted).Str("job_id")
	missingDB, missingJob := "db_doesnotexist0", uuid.NewString()
	same := func(name string, theirs, missing *servicetest.Response, theirID, missingID string) {
		t.Helper()
		h.refused(t, theirs, "", http.StatusNotFound)
		h.refused(t, missing, "", http.StatusNotFound)
		a := strings.ReplaceAll(string(theirs.Body), theirID, "ID")
		b := strings.ReplaceAll(string(missing.Body), missingID, "ID")
		if a != b {
			t.Fatalf("%s: another user's answer differs from a missing one's:\n%s\n%s", name, a, b)
		}
	}
	for _, tool := range []string{"DB_QUERY_", "DB_LIST_TABLES_", "DB_DESCRIBE_"} {
		q := func(id string) *servicetest.Response {
			return execute(t, h.Bundle, h.attacker, tool+id, map[string]any{"query": "SELECT 1", "table": "x"})
		}
		same(tool, q(vdb), q(missingDB), vdb, missingDB)
	}
	disc := func(id string) *servicetest.Response {
		return h.Do(t, "POST", "/api/databases/disconnect", map[string]any{"user_id": h.attacker, "db_id": id})
	}
	same("disconnect", disc(vdb), disc(missingDB), vdb, missingDB)
	jobOf := func(id string) *servicetest.Response {
		return h.Do(t, "GET", "/api/jobs/"+id+"?user_id="+url.QueryEscape(h.attacker), nil)
	}
	same("job", jobOf(job), jobOf(missingJob), job, missingJob)
	listTools := func(id string) string {
		r := h.Do(t, "GET", "/api/tools?user_id="+url.QueryEscape(h.attacker)+"&db_id="+id, nil)
		return fmt.Sprint(r.Status, strings.ReplaceAll(string(r.Body), id, "ID"))
	}
	if a, b := listTools(vdb), listTools(missingDB); a != b {
		t.Fatalf("tools filtered by another user's db_id: %s vs %s", a, b)
	}
	// The victim's database and job are still theirs.
	deadline := time.Now().Add(10 * time.Second)
	for h.Do(t, "GET", "/api/jobs/"+job+"?user_id="+url.QueryEscape(victim), nil).Expect(t, 200).Str("status") != "succeeded" {
		if time.Now().After(deadline) {
			t.Fatal("the victim's job did not succeed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	execute(t, h.Bundle, victim, "DB_QUERY_"+vdb, map[string]any{"query": "SELECT 1"}).Expect(t, 200)
}

// checkAudit reads the audit log from the process's own store, over its
// unix socket: the attacker's entries exist and hold no raw input.
func (h *hostile) checkAudit(t *testing.T) {
	t.Helper()
	sock := filepath.Join(h.dataDir, "ferretdb", "run", "mongo.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := storage.Open(ctx, "mongodb://"+url.PathEscape(sock)+"/", "mcp_integrations")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close(ctx)
	// Entries are written asynchronously; wait for the last connect's.
	var docs []storage.AuditEntry
	for deadline := time.Now().Add(5 * time.Second); ; {
		all, err := store.AuditLog(ctx, "", 1_000_000)
		if err != nil {
			t.Fatal(err)
		}
		docs = docs[:0]
		for _, e := range all {
			if strings.HasPrefix(e.UserID, h.attacker) {
				docs = append(docs, e)
			}
		}
		if len(docs) >= len(h.created) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(docs) < len(h.created) {
		t.Fatalf("only %d audit entries for %d connects", len(docs), len(h.created))
	}
	for _, d := range docs {
		b, _ := json.Marshal(d)
		if len(b) > 2048 || strings.Contains(string(b), strings.Repeat("A", 64)) {
			t.Fatalf("an audit entry holds raw input (%d bytes): %.300s", len(b), b)
		}
	}
	t.Logf("%d audit entries checked", len(docs))
}
