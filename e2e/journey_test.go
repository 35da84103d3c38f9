package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/openanalyst/mcp-integration-service/internal/testservices"
	"github.com/openanalyst/mcp-integration-service/service/servicetest"
)

// journey runs the design document's database journey for one engine:
// schema → test → connect → tools → execute → list → disconnect.
func journey(t *testing.T, b *servicetest.Bundle, dbType string, body map[string]any, query string, wantRows []map[string]any) {
	user := body["user_id"].(string)

	schema := b.Do(t, "GET", "/api/databases/schema?db_type="+dbType, nil).Expect(t, 200)
	if schema.Str("db_type") != dbType || len(schema.JSON["fields"].([]any)) < 5 {
		t.Fatalf("schema: %s", schema.Body)
	}

	test := map[string]any{}
	for k, v := range body {
		if k != "user_id" && k != "name" {
			test[k] = v
		}
	}
	tr := b.Do(t, "POST", "/api/databases/test", test).Expect(t, 200)
	if tr.JSON["success"] != true || tr.Str("message") != "Connection successful" {
		t.Fatalf("test: %s", tr.Body)
	}

	cr := b.Do(t, "POST", "/api/databases/connect", body).Expect(t, 200)
	dbID := cr.Str("db_id")
	if cr.Str("status") != "connected" || cr.Str("name") != body["name"] || len(dbID) < 4 || dbID[:3] != "db_" {
		t.Fatalf("connect: %s", cr.Body)
	}

	tools := b.Do(t, "GET", "/api/tools?user_id="+user, nil).Expect(t, 200)
	var tl struct {
		Tools []struct {
			Name        string            `json:"name"`
			Description string            `json:"description"`
			Provider    string            `json:"provider"`
			Parameters  map[string]string `json:"parameters"`
			InputSchema map[string]any    `json:"input_schema"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(tools.Body, &tl); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tool := range tl.Tools {
		if tool.Name == "DB_QUERY_"+dbID {
			found = true
			if tool.Provider != dbType || tool.Parameters["query"] == "" || tool.InputSchema["type"] != "object" {
				t.Fatalf("DB_QUERY tool: %+v", tool)
			}
		}
	}
	if !found {
		t.Fatalf("DB_QUERY_%s missing from %s", dbID, tools.Body)
	}

	ex := b.Do(t, "POST", "/api/tools/execute", map[string]any{"user_id": user, "action": "DB_QUERY_" + dbID,
		"params": map[string]any{"query": query}}).Expect(t, 200)
	var er struct {
		Success bool             `json:"success"`
		Result  []map[string]any `json:"result"`
	}
	if err := json.Unmarshal(ex.Body, &er); err != nil || !er.Success {
		t.Fatalf("execute: %s", ex.Body)
	}
	if fmt.Sprint(er.Result) != fmt.Sprint(wantRows) {
		t.Fatalf("rows = %v, want %v", er.Result, wantRows)
	}

	list := b.Do(t, "GET", "/api/databases?user_id="+user, nil).Expect(t, 200)
	dbs := list.JSON["databases"].([]any)
	if len(dbs) != 1 || dbs[0].(map[string]any)["db_id"] != dbID {
		t.Fatalf("list: %s", list.Body)
	}
	if _, leaked := dbs[0].(map[string]any)["password"]; leaked {
		t.Fatalf("list shows a password field: %s", list.Body)
	}

	b.Do(t, "POST", "/api/databases/disconnect", map[string]any{"user_id": user, "db_id": dbID}).Expect(t, 200)
	if n := len(b.Do(t, "GET", "/api/databases?user_id="+user, nil).Expect(t, 200).JSON["databases"].([]any)); n != 0 {
		t.Fatalf("%d databases left after disconnect", n)
	}
	b.Do(t, "POST", "/api/tools/execute", map[string]any{"user_id": user, "action": "DB_QUERY_" + dbID,
		"params": map[string]any{"query": query}}).Expect(t, http.StatusNotFound)
}

func TestPostgresJourney(t *testing.T) {
	t.Parallel()
	admin := pgAdmin(t)
	tbl := table("campaigns")
	pgExec(t, admin, "CREATE TABLE "+tbl+" (campaign_name text, spend int, clicks int)")
	t.Cleanup(func() { pgExec(t, admin, "DROP TABLE IF EXISTS "+tbl) })
	pgExec(t, admin, "INSERT INTO "+tbl+" VALUES ('Black Friday', 5000, 15000), ('Holiday Sale', 3000, 8000)")

	body := pgConnectBody(t, servicetest.User(t), "secret123")
	journey(t, shared, "postgres", body, "SELECT campaign_name, spend, clicks FROM "+tbl+" ORDER BY spend DESC",
		[]map[string]any{{"campaign_name": "Black Friday", "spend": 5000.0, "clicks": 15000.0},
			{"campaign_name": "Holiday Sale", "spend": 3000.0, "clicks": 8000.0}})
}

func TestMySQLJourney(t *testing.T) {
	t.Parallel()
	admin := myAdmin(t)
	tbl := table("campaigns")
	if _, err := admin.Exec("CREATE TABLE " + tbl + " (campaign_name varchar(50), spend int, clicks int)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP TABLE IF EXISTS " + tbl) })
	if _, err := admin.Exec("INSERT INTO " + tbl + " VALUES ('Black Friday', 5000, 15000), ('Holiday Sale', 3000, 8000)"); err != nil {
		t.Fatal(err)
	}
	host, port := testservices.Need(t, testservices.MySQL)
	body := map[string]any{"user_id": servicetest.User(t), "db_type": "mysql", "connection_name": "Shop DB",
		"name": "Shop DB", "host": host, "port": port, "database": "test", "username": "root", "password": "", "ssl": false}
	journey(t, shared, "mysql", body, "SELECT campaign_name, spend, clicks FROM "+tbl+" ORDER BY spend DESC",
		[]map[string]any{{"campaign_name": "Black Friday", "spend": 5000.0, "clicks": 15000.0},
			{"campaign_name": "Holiday Sale", "spend": 3000.0, "clicks": 8000.0}})
}
