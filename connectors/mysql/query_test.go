package mysql_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

func TestTypes(t *testing.T) {
	t.Parallel()
	src := open(t, params(t), opts())
	ad := admin(t)
	tbl := uniq("types")
	exec(t, ad, "CREATE TABLE "+tbl+` (
		id INT PRIMARY KEY,
		n_null INT, flag BOOLEAN, tiny TINYINT, small SMALLINT UNSIGNED, i INT, u INT UNSIGNED,
		big BIGINT, ubig BIGINT UNSIGNED, dec_ DECIMAL(30,10), f FLOAT, d DOUBLE,
		dt DATETIME(6), ts TIMESTAMP NULL, da DATE, ti TIME, y YEAR,
		s VARCHAR(50), txt TEXT, e ENUM('a','b'), st SET('x','y'),
		bin VARBINARY(10), bl BLOB, bits BIT(10), js JSON, uid UUID)`)
	t.Cleanup(func() { exec(t, admin(t), "DROP TABLE "+tbl) })
	exec(t, ad, "SET time_zone = '+00:00'")
	exec(t, ad, "INSERT INTO "+tbl+` VALUES (1,
		NULL, TRUE, -128, 65535, -2147483648, 4294967295,
		-9223372036854775808, 18446744073709551615, 12345678901234567890.0123456789, 0.1, 1e300,
		'2024-01-02 03:04:05.123456', '2024-01-02 03:04:05', '2024-01-02', '15:04:05', 2024,
		'hé "q"', 'line\nnext', 'b', 'x,y',
		X'0001FF', X'DEADBEEF', b'1010101010', '{"a": [1, 2, {"b": null}], "n": 12345678901234567890}',
		'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')`)
	res, err := run(src, "DB_QUERY", map[string]any{"query": "SELECT * FROM " + tbl}, lim)
	if err != nil {
		t.Fatal(err)
	}
	var row []map[string]json.RawMessage
	if err := json.Unmarshal(res.Body, &row); err != nil {
		t.Fatalf("%v: %s", err, res.Body)
	}
	// MariaDB stores JSON as LONGTEXT and sends it as text, so it arrives as
	// a string holding the document; MySQL's JSON type arrives nested.
	js := `{"a":[1,2,{"b":null}],"n":12345678901234567890}`
	if mariadb(t, src) {
		js = `"{\"a\": [1, 2, {\"b\": null}], \"n\": 12345678901234567890}"`
	}
	want := map[string]string{
		"id": `1`, "n_null": `null`, "flag": `1`, "tiny": `-128`, "small": `65535`, "i": `-2147483648`, "u": `4294967295`,
		"big": `"-9223372036854775808"`, "ubig": `"18446744073709551615"`, "dec_": `"12345678901234567890.0123456789"`,
		"f": `0.1`, "d": `1e+300`,
		"dt": `"2024-01-02T03:04:05.123456"`, "ts": `"2024-01-02T03:04:05Z"`, "da": `"2024-01-02"`, "ti": `"15:04:05"`, "y": `2024`,
		"s": `"hé \"q\""`, "txt": `"line\nnext"`, "e": `"b"`, "st": `"x,y"`,
		"bin": `"AAH/"`, "bl": `"3q2+7w=="`, "bits": `682`, "js": js,
		"uid": `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`,
	}
	for col, w := range want {
		if got := string(row[0][col]); got != w {
			t.Errorf("%s: got %s, want %s", col, got, w)
		}
	}
	if len(row[0]) != len(want) {
		t.Errorf("got %d columns, want %d: %s", len(row[0]), len(want), res.Body)
	}
	// Column order follows the table.
	if !strings.HasPrefix(string(res.Body), `[{"id":1,"n_null":null,"flag":1,`) {
		t.Errorf("column order: %.60s", res.Body)
	}

	exprs := []struct{ expr, want string }{
		{"NULL", `null`},
		{"CAST(1.5 AS DOUBLE)", `1.5`},
		{"CAST(12.50 AS DECIMAL(10,2))", `"12.50"`},
		{"X'C3A9'", `"w6k="`},
		{"CONVERT(X'C3A9' USING utf8mb4)", `"é"`},
		{"JSON_OBJECT('k', 1)", map[bool]string{true: `"{\"k\": 1}"`, false: `{"k":1}`}[mariadb(t, src)]},
		{"''", `""`},
	}
	for _, c := range exprs {
		res, err := run(src, "DB_QUERY", map[string]any{"query": "SELECT " + c.expr + " AS v"}, lim)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if w := `[{"v":` + c.want + `}]`; string(res.Body) != w {
			t.Errorf("%s: got %s, want %s", c.expr, res.Body, w)
		}
	}
	res, err = run(src, "DB_QUERY", map[string]any{"query": "SELECT 2 AS z, 1 AS a, 3 AS z"}, lim)
	if err != nil || !strings.HasPrefix(string(res.Body), `[{"z":`) || !strings.Contains(string(res.Body), `"z_2":`) {
		t.Errorf("duplicate names: %v %s", err, res.Body)
	}
}

func mariadb(t *testing.T, src connectors.Source) bool {
	t.Helper()
	v := query(t, src, "SELECT VERSION() AS v")[0]["v"].(string)
	return strings.Contains(strings.ToLower(v), "mariadb")
}

func TestRowCap(t *testing.T) {
	t.Parallel()
	src := open(t, params(t), opts())
	const digits = "(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 " +
		"UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)"
	const q = "SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 1 AS n FROM " + digits + " a, " + digits + " b, " + digits + " c, " + digits +
		" e WHERE a.d + 10 * b.d + 100 * c.d + 1000 * e.d < 2500"
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
	}
	check(connectors.Limits{MaxRows: 1000, Timeout: lim.Timeout}, map[string]any{"query": q}, 1000, true)
	check(connectors.Limits{MaxRows: 5000, Timeout: lim.Timeout}, map[string]any{"query": q}, 2500, false)
	check(connectors.Limits{MaxRows: 1000, Timeout: lim.Timeout}, map[string]any{"query": q, "max_rows": 10}, 10, true)

	// A huge result is cut without streaming it all; the Source stays healthy.
	huge := "SELECT a.SEQ AS x FROM information_schema.COLLATIONS a, information_schema.COLLATIONS b, information_schema.COLLATIONS c, information_schema.COLLATIONS d"
	huge = strings.ReplaceAll(huge, "a.SEQ", "a.ID")
	res, err := run(src, "DB_QUERY", map[string]any{"query": huge}, connectors.Limits{MaxRows: 3, Timeout: lim.Timeout})
	if err != nil || res.RowCount != 3 || !res.Truncated {
		t.Fatalf("huge: %v %+v", err, res)
	}
	if got := query(t, src, "SELECT 7 AS seven"); len(got) != 1 {
		t.Fatalf("after truncation: %v", got)
	}
	if n := src.OpenConns(); n > 3 {
		t.Fatalf("OpenConns = %d", n)
	}
}

func TestBadQueries(t *testing.T) {
	t.Parallel()
	src := open(t, params(t), opts())
	cases := map[string]string{
		"SELECT FROM WHERE 1":                          "syntax error at position 12 near 'FROM'", // refused by the read-only guard's parser
		"SELECT * FROM no_such_table_mcp":              "Error 1146",
		"SELECT 1; SELECT 2":                           "single statement",
		"SELECT no_such_column FROM (SELECT 1 AS a) t": "Error 1054",
		"SELECT 1 + ROW(1, 2)":                         "Error ", // wrong type: 4078 on MariaDB, 1241 on MySQL
	}
	for q, want := range cases {
		_, err := run(src, "DB_QUERY", map[string]any{"query": q}, lim)
		if kindOf(err) != connectors.KindQuery || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v (kind %d), want KindQuery containing %q", q, err, kindOf(err), want)
		}
	}
	if _, err := src.Run(context.Background(), "DB_QUERY", json.RawMessage(`{"query": ""}`), lim); kindOf(err) != connectors.KindInput {
		t.Errorf("empty query: %v", err)
	}
	if got := query(t, src, "SELECT 1 AS ok; -- a trailing semicolon is fine"); len(got) != 1 {
		t.Fatal(got)
	}
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	src := open(t, params(t), opts())
	ad := admin(t)
	parent, child, view := uniq("parent"), uniq("child"), uniq("view")
	exec(t, ad, "CREATE TABLE "+parent+" (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL) ENGINE=InnoDB")
	exec(t, ad, "CREATE TABLE "+child+" (id BIGINT PRIMARY KEY, parent_id INT, note VARCHAR(20) DEFAULT 'n/a', at DATETIME NULL, "+
		"FOREIGN KEY (parent_id) REFERENCES "+parent+"(id)) ENGINE=InnoDB")
	exec(t, ad, "CREATE VIEW "+view+" AS SELECT id FROM "+parent)
	t.Cleanup(func() {
		ad := admin(t)
		exec(t, ad, "DROP VIEW "+view)
		exec(t, ad, "DROP TABLE "+child)
		exec(t, ad, "DROP TABLE "+parent)
	})

	res, err := run(src, "DB_LIST_TABLES", map[string]any{"schema": "test"}, lim)
	if err != nil {
		t.Fatal(err)
	}
	var tables []map[string]any
	if err := json.Unmarshal(res.Body, &tables); err != nil {
		t.Fatal(err)
	}
	found := map[string]map[string]any{}
	for _, tb := range tables {
		if tb["schema"] != "test" {
			t.Fatalf("schema filter ignored: %v", tb)
		}
		found[tb["table"].(string)] = tb
	}
	if found[parent]["type"] != "table" || found[child]["type"] != "table" || found[view]["type"] != "view" || found[view]["row_estimate"] != nil {
		t.Errorf("parent %v child %v view %v", found[parent], found[child], found[view])
	}
	if _, ok := found[parent]["row_estimate"].(float64); !ok {
		t.Errorf("parent row_estimate = %v", found[parent]["row_estimate"])
	}
	res, err = run(src, "DB_LIST_TABLES", map[string]any{}, lim)
	if err != nil || strings.Contains(string(res.Body), `"schema":"mysql"`) || strings.Contains(string(res.Body), `"information_schema"`) {
		t.Errorf("unfiltered list: %v %.300s", err, res.Body)
	}

	res, err = run(src, "DB_DESCRIBE", map[string]any{"table": child}, lim)
	if err != nil {
		t.Fatal(err)
	}
	note := `"'n/a'"` // MariaDB quotes literal defaults
	if !mariadb(t, src) {
		note = `"n/a"`
	}
	want := `[{"column":"id","type":"bigint(20)","nullable":false,"default":null,"primary_key":true,"foreign_key":null},` +
		`{"column":"parent_id","type":"int(11)","nullable":true,"default":null,"primary_key":false,"foreign_key":"test.` + parent + `(id)"},` +
		`{"column":"note","type":"varchar(20)","nullable":true,"default":` + note + `,"primary_key":false,"foreign_key":null},` +
		`{"column":"at","type":"datetime","nullable":true,"default":null,"primary_key":false,"foreign_key":null}]`
	if !mariadb(t, src) {
		want = strings.NewReplacer("bigint(20)", "bigint", "int(11)", "int").Replace(want)
	}
	if string(res.Body) != want {
		t.Errorf("describe child:\n got %s\nwant %s", res.Body, want)
	}
	for _, p := range []map[string]any{{"table": parent, "schema": "test"}, {"table": "test." + parent}} {
		res, err = run(src, "DB_DESCRIBE", p, lim)
		if err != nil || !strings.Contains(string(res.Body), `"default":"AUTO_INCREMENT"`) || res.RowCount != 2 {
			t.Errorf("describe %v: %v %s", p, err, res.Body)
		}
	}
	for _, p := range []map[string]any{{"table": "no_such_table_mcp"}, {"table": parent, "schema": "no_such_schema"}} {
		_, err = run(src, "DB_DESCRIBE", p, lim)
		if kindOf(err) != connectors.KindQuery || !strings.Contains(err.Error(), "table not found") {
			t.Errorf("describe %v: got %v, want KindQuery table not found", p, err)
		}
	}
}
