package postgres_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/connectors/sqlconn"
)

func TestTypes(t *testing.T) {
	t.Parallel()
	src := open(t, params(t), opts())
	ad := admin(t)
	enum := uniq("mood")
	exec(t, ad, "CREATE TYPE "+enum+" AS ENUM ('happy', 'sad')")
	t.Cleanup(func() { exec(t, admin(t), "DROP TYPE "+enum) })

	cases := []struct{ expr, want string }{
		{"NULL::int", `null`},
		{"NULL::text", `null`},
		{"true", `true`},
		{"false", `false`},
		{"32767::int2", `32767`},
		{"(-2147483648)::int4", `-2147483648`},
		{"9223372036854775807::int8", `"9223372036854775807"`},
		{"12345678901234567890.123456789::numeric", `"12345678901234567890.123456789"`},
		{"'NaN'::numeric", `"NaN"`},
		{"1.5::float8", `1.5`},
		{"0.1::float4", `0.1`},
		{"1e300::float8", `1e+300`},
		{"'NaN'::float8", `"NaN"`},
		{"'Infinity'::float8", `"Infinity"`},
		{"'-Infinity'::float4", `"-Infinity"`},
		{"'2024-01-02 03:04:05.123456'::timestamp", `"2024-01-02T03:04:05.123456"`},
		{"'2024-01-02 03:04:05'::timestamp", `"2024-01-02T03:04:05"`},
		{"'2024-01-02 03:04:05.5+02'::timestamptz", `"2024-01-02T01:04:05.5Z"`},
		{"'2024-01-02'::date", `"2024-01-02"`},
		{"'15:04:05'::time", `"15:04:05"`},
		{"'1 day 02:03:04'::interval", `"1 day 02:03:04"`},
		{"'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid", `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`},
		{`'{"a": [1, 2, {"b": null}], "s": "x"}'::json`, `{"a":[1,2,{"b":null}],"s":"x"}`},
		{`'{"n": 12345678901234567890, "t": true}'::jsonb`, `{"n":12345678901234567890,"t":true}`},
		{`'"just a string"'::jsonb`, `"just a string"`},
		{"ARRAY[1, 2, NULL]::int[]", `[1,2,null]`},
		{"ARRAY[[1, 2], [3, 4]]", `[[1,2],[3,4]]`},
		{"ARRAY[1]::int8[]", `["1"]`},
		{"'{}'::int[]", `[]`},
		{"'[0:1]={5,6}'::int[]", `[5,6]`},
		{`ARRAY['a', 'b c', '"q"', NULL, 'NULL', '', 'x\y', '{}']`, `["a","b c","\"q\"",null,"NULL","","x\\y","{}"]`},
		{"ARRAY[true, false]", `[true,false]`},
		{"ARRAY['2024-01-02 03:04:05+00'::timestamptz]", `["2024-01-02T03:04:05Z"]`},
		{`ARRAY['{"a": 1}'::jsonb, NULL]`, `[{"a":1},null]`},
		{"ARRAY[1.5::numeric]", `["1.5"]`},
		{"ARRAY['(1,2),(3,4)'::box, '(5,6),(7,8)'::box]", `["(3,4),(1,2)","(7,8),(5,6)"]`},
		{`'\x0001ff'::bytea`, `"AAH/"`},
		{`''::bytea`, `""`},
		{`E'line\n"quoted"\ttab\\ \u00e9 \u0001'`, `"line\n\"quoted\"\ttab\\ é \u0001"`},
		{"'x'::char(3)", `"x  "`},
		{"'happy'::" + enum, `"happy"`},
		{"'192.168.0.1/24'::inet", `"192.168.0.1/24"`},
	}
	for _, c := range cases {
		res, err := run(src, "DB_QUERY", map[string]any{"query": "SELECT " + c.expr + " AS v"}, lim)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if want := `[{"v":` + c.want + `}]`; string(res.Body) != want {
			t.Errorf("%s:\n got %s\nwant %s", c.expr, res.Body, want)
		}
		if !json.Valid(res.Body) {
			t.Errorf("%s: invalid JSON %s", c.expr, res.Body)
		}
	}
}

// Columns keep the SELECT's order, a repeated name gets a suffix, and a
// table's rows (with NULLs in every type) encode as expected.
func TestColumnsAndTableRows(t *testing.T) {
	t.Parallel()
	src := open(t, params(t), opts())
	res, err := run(src, "DB_QUERY", map[string]any{"query": "SELECT 2 AS z, 1 AS a, 3 AS z, 4 AS z_2"}, lim)
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"z":2,"a":1,"z_2":3,"z_2_2":4}]`; string(res.Body) != want {
		t.Fatalf("got %s, want %s", res.Body, want)
	}

	ad := admin(t)
	tbl := uniq("types")
	exec(t, ad, `CREATE TABLE `+tbl+` (id int PRIMARY KEY, big bigint, amount numeric(12,2), at timestamptz,
		tags text[], doc jsonb, raw bytea, ok boolean)`)
	t.Cleanup(func() { exec(t, admin(t), "DROP TABLE "+tbl) })
	exec(t, ad, `INSERT INTO `+tbl+` VALUES
		(1, 42, 9.99, '2024-05-06 07:08:09+00', '{a,b}', '{"k": [1]}', '\xdeadbeef', true),
		(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`)
	res, err = run(src, "DB_QUERY", map[string]any{"query": "SELECT * FROM " + tbl + " ORDER BY id"}, lim)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"id":1,"big":"42","amount":"9.99","at":"2024-05-06T07:08:09Z","tags":["a","b"],"doc":{"k":[1]},"raw":"3q2+7w==","ok":true},` +
		`{"id":2,"big":null,"amount":null,"at":null,"tags":null,"doc":null,"raw":null,"ok":null}]`
	if string(res.Body) != want {
		t.Fatalf("got  %s\nwant %s", res.Body, want)
	}
	if !res.Rows || res.RowCount != 2 || res.Truncated {
		t.Fatalf("result meta = %+v", res)
	}
}

func TestRowCap(t *testing.T) {
	t.Parallel()
	src := open(t, params(t), opts())
	const sql = "SELECT g AS n, repeat('x', 10) AS pad FROM generate_series(1, 2500) g"
	check := func(limit connectors.Limits, p map[string]any, wantRows int, wantTrunc bool) {
		t.Helper()
		res, err := run(src, "DB_QUERY", p, limit)
		if err != nil {
			t.Fatal(err)
		}
		var rows []map[string]any
		if err := json.Unmarshal(res.Body, &rows); err != nil {
			t.Fatal(err)
		}
		if len(rows) != wantRows || res.RowCount != wantRows || res.Truncated != wantTrunc || !res.Rows {
			t.Fatalf("limit %d %v: got %d rows (RowCount %d, truncated %v), want %d truncated %v",
				limit.MaxRows, p, len(rows), res.RowCount, res.Truncated, wantRows, wantTrunc)
		}
		if rows[len(rows)-1]["n"] != float64(wantRows) {
			t.Fatalf("last row = %v", rows[len(rows)-1])
		}
	}
	check(connectors.Limits{MaxRows: 1000, Timeout: lim.Timeout}, map[string]any{"query": sql}, 1000, true)
	check(connectors.Limits{MaxRows: 5000, Timeout: lim.Timeout}, map[string]any{"query": sql}, 2500, false)
	check(connectors.Limits{MaxRows: 2500, Timeout: lim.Timeout}, map[string]any{"query": sql}, 2500, false)
	// max_rows lowers the cap, and never raises it.
	check(connectors.Limits{MaxRows: 1000, Timeout: lim.Timeout}, map[string]any{"query": sql, "max_rows": 10}, 10, true)
	check(connectors.Limits{MaxRows: 100, Timeout: lim.Timeout}, map[string]any{"query": sql, "max_rows": 5000}, 100, true)

	// A huge result is cut without reading it all (the server is told to
	// cancel), and the same connection stays in use.
	one := opts()
	one.MaxOpen = 1
	src = open(t, params(t), one)
	pid := query(t, src, "SELECT pg_backend_pid() AS pid")[0]["pid"]
	res, err := run(src, "DB_QUERY", map[string]any{"query": "SELECT x * 10000 + y AS g FROM generate_series(0, 9999) a(x), generate_series(1, 10000) b(y)"},
		connectors.Limits{MaxRows: 3, Timeout: lim.Timeout})
	if err != nil || string(res.Body) != `[{"g":1},{"g":2},{"g":3}]` || !res.Truncated {
		t.Fatalf("huge result: %v %+v", err, res)
	}
	if got := query(t, src, "SELECT pg_backend_pid() AS pid")[0]["pid"]; got != pid {
		t.Fatalf("connection replaced after truncation: pid %v, then %v", pid, got)
	}
}

// A result past the byte cap is cut at the last whole row, and the
// connection stays in use. (Slow under the race detector: 32 MiB go through
// the encoder byte by byte.)
func TestByteCap(t *testing.T) {
	t.Parallel()
	one := opts()
	one.MaxOpen = 1
	src := open(t, params(t), one)
	pid := query(t, src, "SELECT pg_backend_pid() AS pid")[0]["pid"]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := src.Run(ctx, "DB_QUERY", json.RawMessage(`{"query": "SELECT x.s FROM (SELECT repeat('x', 1048576) AS s) x, generate_series(1, 40)"}`),
		connectors.Limits{MaxRows: 1000, Timeout: 5 * time.Minute})
	if err != nil {
		t.Fatalf("byte cap: %v", err)
	}
	if !res.Truncated || res.RowCount >= 5 || res.RowCount < 3 || len(res.Body) > sqlconn.MaxBodyBytes+2 || !json.Valid(res.Body) {
		t.Fatalf("byte cap: truncated=%v rows=%d bytes=%d", res.Truncated, res.RowCount, len(res.Body))
	}
	if got := query(t, src, "SELECT pg_backend_pid() AS pid")[0]["pid"]; got != pid {
		t.Fatalf("connection replaced after the byte cap: pid %v, then %v", pid, got)
	}
}

func TestBadQueries(t *testing.T) {
	t.Parallel()
	src := open(t, params(t), opts())
	cases := map[string]string{
		"SELECT FROM WHERE 1":             "syntax error",
		"SELECT * FROM no_such_table_mcp": "does not exist",
		"SELECT 'abc'::int":               "invalid input syntax",
		"SELECT 1 + now()":                "operator does not exist",
		"SELECT 1; SELECT 2":              "multiple commands",
		"SELECT $1":                       "parameters",
	}
	for sql, want := range cases {
		_, err := run(src, "DB_QUERY", map[string]any{"query": sql}, lim)
		if kindOf(err) != connectors.KindQuery || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v (kind %d), want KindQuery containing %q", sql, err, kindOf(err), want)
		}
	}
	inputs := map[string]string{
		`{}`:                                     "query",
		`{"query": ""}`:                          "query",
		`{"query": 5}`:                           "string",
		`{"query": "SELECT 1", "max_rows": 0}`:   "max_rows",
		`{"query": "SELECT 1", "max_rows": "x"}`: "max_rows",
		`[1]`:                                    "object",
	}
	for raw, want := range inputs {
		_, err := src.Run(context.Background(), "DB_QUERY", json.RawMessage(raw), lim)
		if kindOf(err) != connectors.KindInput || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want KindInput mentioning %q", raw, err, want)
		}
	}
	if _, err := src.Run(context.Background(), "DB_NOPE", json.RawMessage(`{}`), lim); kindOf(err) != connectors.KindInput {
		t.Errorf("unknown tool: %v", err)
	}
	// The Source is still healthy after the errors.
	if got := query(t, src, "SELECT 1 AS ok; -- a trailing semicolon is fine"); got[0]["ok"] != float64(1) {
		t.Fatal(got)
	}
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	src := open(t, params(t), opts())
	ad := admin(t)
	parent, child, view := uniq("parent"), uniq("child"), uniq("view")
	exec(t, ad, "CREATE TABLE "+parent+" (id serial PRIMARY KEY, name text NOT NULL)")
	exec(t, ad, "CREATE TABLE "+child+" (id bigint PRIMARY KEY, parent_id int REFERENCES "+parent+"(id), note varchar(20) DEFAULT 'n/a', at timestamptz)")
	exec(t, ad, "CREATE VIEW "+view+" AS SELECT id FROM "+parent)
	exec(t, ad, "INSERT INTO "+parent+" (name) SELECT 'p' || g FROM generate_series(1, 50) g")
	exec(t, ad, "ANALYZE "+parent)
	t.Cleanup(func() { exec(t, admin(t), "DROP VIEW "+view+"; DROP TABLE "+child+"; DROP TABLE "+parent) })

	res, err := run(src, "DB_LIST_TABLES", map[string]any{"schema": "public"}, lim)
	if err != nil {
		t.Fatal(err)
	}
	var tables []map[string]any
	if err := json.Unmarshal(res.Body, &tables); err != nil {
		t.Fatal(err)
	}
	found := map[string]map[string]any{}
	for _, tb := range tables {
		if tb["schema"] != "public" {
			t.Fatalf("schema filter ignored: %v", tb)
		}
		found[tb["table"].(string)] = tb
	}
	if found[parent]["type"] != "table" || found[parent]["row_estimate"] != float64(50) {
		t.Errorf("parent = %v", found[parent])
	}
	if found[child]["type"] != "table" || found[view]["type"] != "view" || found[view]["row_estimate"] != nil {
		t.Errorf("child = %v, view = %v", found[child], found[view])
	}
	// Without a schema, system schemas are left out.
	res, err = run(src, "DB_LIST_TABLES", map[string]any{}, lim)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(res.Body), `"pg_catalog"`) || strings.Contains(string(res.Body), `"information_schema"`) ||
		!strings.Contains(string(res.Body), child) {
		t.Errorf("unfiltered list: %.300s", res.Body)
	}

	res, err = run(src, "DB_DESCRIBE", map[string]any{"table": child}, lim)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"column":"id","type":"bigint","nullable":false,"default":null,"primary_key":true,"foreign_key":null},` +
		`{"column":"parent_id","type":"integer","nullable":true,"default":null,"primary_key":false,"foreign_key":"public.` + parent + `(id)"},` +
		`{"column":"note","type":"character varying(20)","nullable":true,"default":"'n/a'::character varying","primary_key":false,"foreign_key":null},` +
		`{"column":"at","type":"timestamp with time zone","nullable":true,"default":null,"primary_key":false,"foreign_key":null}]`
	if string(res.Body) != want {
		t.Errorf("describe child:\n got %s\nwant %s", res.Body, want)
	}
	for _, p := range []map[string]any{{"table": parent, "schema": "public"}, {"table": "public." + parent}, {"table": strings.ToUpper(parent)}} {
		res, err = run(src, "DB_DESCRIBE", p, lim)
		if err != nil || !strings.Contains(string(res.Body), `"default":"nextval(`) || res.RowCount != 2 {
			t.Errorf("describe %v: %v %s", p, err, res.Body)
		}
	}
	for _, p := range []map[string]any{{"table": "no_such_table_mcp"}, {"table": parent, "schema": "no_such_schema"}} {
		_, err = run(src, "DB_DESCRIBE", p, lim)
		if kindOf(err) != connectors.KindQuery || !strings.Contains(err.Error(), "table not found") {
			t.Errorf("describe %v: got %v, want KindQuery table not found", p, err)
		}
	}
	if _, err = run(src, "DB_DESCRIBE", map[string]any{}, lim); kindOf(err) != connectors.KindInput {
		t.Errorf("describe without table: %v", err)
	}
}
