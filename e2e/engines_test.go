package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/internal/testservices"
	"github.com/openanalyst/mcp-integration-service/service"
	"github.com/openanalyst/mcp-integration-service/service/servicetest"
)

func toolNames(t *testing.T, b *servicetest.Bundle, user string) string {
	t.Helper()
	var names []string
	for _, tool := range b.Do(t, "GET", "/api/tools?user_id="+user, nil).Expect(t, 200).JSON["tools"].([]any) {
		names = append(names, tool.(map[string]any)["name"].(string))
	}
	return strings.Join(names, " ")
}

// Redis end to end through the REST API, read-only by default.
func TestRedisThroughREST(t *testing.T) {
	t.Parallel()
	host, port := testservices.Need(t, testservices.Redis)
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("%s:%d", host, port)})
	defer rdb.Close()
	ctx := context.Background()
	key := "mcp-e2e-" + fmt.Sprint(time.Now().UnixNano())
	if err := rdb.HSet(ctx, key, "name", "Black Friday", "spend", "5000").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Del(context.Background(), key, key+"-w") })

	user := servicetest.User(t)
	dbID := shared.Do(t, "POST", "/api/databases/connect", map[string]any{"user_id": user, "db_type": "redis",
		"name": "Cache", "host": host, "port": port, "password": "", "database": 0}).Expect(t, 200).Str("db_id")
	if names := toolNames(t, shared, user); !strings.Contains(names, "DB_QUERY_"+dbID) || !strings.Contains(names, "DB_LIST_KEYS_"+dbID) {
		t.Fatalf("tools: %s", names)
	}
	r := execute(t, shared, user, "DB_QUERY_"+dbID, map[string]any{"command": "HGETALL", "args": []string{key}}).Expect(t, 200)
	var res struct {
		Result map[string]string `json:"result"`
	}
	if err := json.Unmarshal(r.Body, &res); err != nil || res.Result["name"] != "Black Friday" || res.Result["spend"] != "5000" {
		t.Fatalf("HGETALL: %s", r.Body)
	}
	execute(t, shared, user, "DB_QUERY_"+dbID, map[string]any{"command": "HGET " + key + ` "name"`}).Expect(t, 200)
	keys := execute(t, shared, user, "DB_LIST_KEYS_"+dbID, map[string]any{"pattern": key + "*"}).Expect(t, 200)
	if !strings.Contains(string(keys.Body), key) {
		t.Fatalf("DB_LIST_KEYS: %s", keys.Body)
	}
	for _, cmd := range []map[string]any{{"command": "SET", "args": []string{key + "-w", "x"}}, {"command": "DEL " + key}, {"command": "FLUSHALL"}} {
		w := execute(t, shared, user, "DB_QUERY_"+dbID, cmd).Expect(t, http.StatusUnprocessableEntity)
		if !strings.Contains(w.Str("error"), "not allowed") {
			t.Fatalf("%v: %s", cmd, w.Body)
		}
	}
	if n, _ := rdb.Exists(ctx, key, key+"-w").Result(); n != 1 {
		t.Fatalf("a refused write changed Redis: exists=%d", n)
	}
}

// MongoDB (FerretDB) end to end through the REST API, with Extended JSON.
func TestMongoThroughREST(t *testing.T) {
	t.Parallel()
	// The user's MongoDB: a FerretDB of its own on TCP. The service's own
	// store is never reachable as a user database (ownstore_test.go).
	userMongo, err := embedded.StartFerret(context.Background(), t.TempDir(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = userMongo.Close() })
	uri := userMongo.URI()
	dbName := fmt.Sprintf("usertest_%d", time.Now().UnixNano())
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	coll := client.Database(dbName).Collection("campaigns")
	at := time.Date(2025, 11, 28, 10, 0, 0, 0, time.UTC)
	ins, err := coll.InsertMany(ctx, []any{
		bson.M{"name": "Black Friday", "spend": 5000, "at": at, "tags": bson.A{"q4", "sale"}},
		bson.M{"name": "Holiday Sale", "spend": 3000, "at": at, "tags": bson.A{"q4"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Database(dbName).Drop(context.Background()) })
	firstID := ins.InsertedIDs[0].(bson.ObjectID).Hex()

	user := servicetest.User(t)
	dbID := shared.Do(t, "POST", "/api/databases/connect", map[string]any{"user_id": user, "db_type": "mongodb",
		"name": "Mongo", "connection_string": strings.TrimSuffix(uri, "/") + "/" + dbName}).Expect(t, 200).Str("db_id")
	if names := toolNames(t, shared, user); !strings.Contains(names, "DB_LIST_COLLECTIONS_"+dbID) {
		t.Fatalf("tools: %s", names)
	}
	r := execute(t, shared, user, "DB_QUERY_"+dbID, map[string]any{"collection": "campaigns",
		"filter": map[string]any{"spend": map[string]any{"$gt": 4000}}, "sort": map[string]any{"spend": -1}, "limit": 10}).Expect(t, 200)
	body := string(r.Body)
	if !strings.Contains(body, `"$oid":"`+firstID+`"`) || !strings.Contains(body, "Black Friday") || strings.Contains(body, "Holiday") ||
		!strings.Contains(body, `"$date"`) {
		t.Fatalf("find: %s", body)
	}
	// The ObjectId from a result works in the next filter.
	again := execute(t, shared, user, "DB_QUERY_"+dbID, map[string]any{"collection": "campaigns",
		"filter": map[string]any{"_id": map[string]any{"$oid": firstID}}}).Expect(t, 200)
	if again.JSON["row_count"] != 1.0 {
		t.Fatalf("find by $oid: %s", again.Body)
	}
	agg := execute(t, shared, user, "DB_QUERY_"+dbID, map[string]any{"collection": "campaigns",
		"pipeline": []any{map[string]any{"$group": map[string]any{"_id": nil, "total": map[string]any{"$sum": "$spend"}}}}}).Expect(t, 200)
	if !strings.Contains(string(agg.Body), `"total":8000`) {
		t.Fatalf("aggregate: %s", agg.Body)
	}
	out := execute(t, shared, user, "DB_QUERY_"+dbID, map[string]any{"collection": "campaigns",
		"pipeline": []any{map[string]any{"$match": map[string]any{}}, map[string]any{"$out": "stolen"}}}).Expect(t, http.StatusUnprocessableEntity)
	if !strings.Contains(out.Str("error"), "$out") {
		t.Fatalf("$out: %s", out.Body)
	}
	names, _ := client.Database(dbName).ListCollectionNames(ctx, bson.M{})
	if strings.Contains(strings.Join(names, ","), "stolen") {
		t.Fatal("$out wrote a collection")
	}
}

// Limits through the REST API: a dedicated instance with a small pool, a
// short statement timeout and strict host policy checks.
func TestLimitsThroughREST(t *testing.T) {
	t.Parallel()
	admin := pgAdmin(t)
	role := fmt.Sprintf("mcp_pool_%d", time.Now().UnixNano()%1_000_000_000)
	pgExec(t, admin, "CREATE ROLE "+role+" LOGIN")
	t.Cleanup(func() {
		pgExec(t, admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '"+role+"'")
		time.Sleep(200 * time.Millisecond)
		pgExec(t, admin, "DROP ROLE IF EXISTS "+role)
	})
	b, err := servicetest.Start(t, service.ModeServe, servicetest.Env{"MCP_POOL_SIZE": "4", "MCP_QUERY_TIMEOUT": "2s",
		"MCP_WORKERS": "16"}, service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	user := servicetest.User(t)
	body := pgConnectBody(t, user, "pw")
	body["username"] = role
	dbID := b.Do(t, "POST", "/api/databases/connect", body).Expect(t, 200).Str("db_id")
	conns := func() int {
		var n int
		if err := admin.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", role).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := conns()

	// Row cap.
	capped := execute(t, b, user, "DB_QUERY_"+dbID, map[string]any{"query": "SELECT g FROM generate_series(1,2500) g"}).Expect(t, 200)
	if capped.JSON["row_count"] != 1000.0 || capped.JSON["truncated"] != true || len(capped.JSON["result"].([]any)) != 1000 {
		t.Fatalf("row cap: row_count=%v truncated=%v", capped.JSON["row_count"], capped.JSON["truncated"])
	}
	more := execute(t, b, user, "DB_QUERY_"+dbID, map[string]any{"query": "SELECT g FROM generate_series(1,2500) g", "max_rows": 5000}).Expect(t, 200)
	if more.JSON["row_count"] != 2500.0 || more.JSON["truncated"] != false {
		t.Fatalf("max_rows 5000: row_count=%v truncated=%v", more.JSON["row_count"], more.JSON["truncated"])
	}
	// Statement timeout, and the pool stays healthy.
	slow := execute(t, b, user, "DB_QUERY_"+dbID, map[string]any{"query": "SELECT pg_sleep(10)"}).Expect(t, http.StatusUnprocessableEntity)
	if slow.Str("code") != "query_timeout" {
		t.Fatalf("timeout: %s", slow.Body)
	}
	execute(t, b, user, "DB_QUERY_"+dbID, map[string]any{"query": "SELECT 1 AS ok"}).Expect(t, 200)

	// 10,000 executes open no more connections than the pool size.
	var peak atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			if n := int64(conns()); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	const total, workers = 10000, 32
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= total {
				r := execute(t, b, user, "DB_QUERY_"+dbID, map[string]any{"query": "SELECT 1"})
				if r.Status != 200 {
					failed.CompareAndSwap(nil, string(r.Body))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	after := conns()
	if f := failed.Load(); f != nil {
		t.Fatalf("an execute failed: %v", f)
	}
	t.Logf("connections of the role in pg_stat_activity: %d before, peak %d during, %d after %d executes (MCP_POOL_SIZE=4)",
		before, peak.Load(), after, total)
	if peak.Load() > 4 || after > 4 {
		t.Fatalf("pool exceeded its size: peak %d, after %d", peak.Load(), after)
	}
}

// With private hosts disallowed (the production default), loopback and
// metadata addresses are refused after DNS resolution, with the reason.
func TestHostPolicyStrict(t *testing.T) {
	t.Parallel()
	b, err := servicetest.Start(t, service.ModeServe, servicetest.Env{"MCP_ALLOW_PRIVATE_HOSTS": "false"}, service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	user := servicetest.User(t)
	for host, why := range map[string]string{"127.0.0.1": "loopback", "localhost": "loopback", "10.1.2.3": "private",
		"169.254.169.254": "link-local", "fd00:ec2::254": "metadata"} {
		body := pgConnectBody(t, user, "pw")
		body["host"] = host
		r := b.Do(t, "POST", "/api/databases/connect", body).Expect(t, http.StatusBadRequest)
		if r.Str("code") != "host_not_allowed" || !strings.Contains(r.Str("error"), why) {
			t.Fatalf("%s: %s", host, r.Body)
		}
		b.Do(t, "POST", "/api/databases/test", body).Expect(t, http.StatusBadRequest)
	}
	if n := len(b.Do(t, "GET", "/api/databases?user_id="+user, nil).Expect(t, 200).JSON["databases"].([]any)); n != 0 {
		t.Fatalf("refused hosts stored %d databases", n)
	}
}
