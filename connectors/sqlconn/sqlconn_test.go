package sqlconn

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

func TestAppendString(t *testing.T) {
	cases := map[string]string{
		"plain":              `"plain"`,
		"q\"b\\s/":           `"q\"b\\s/"`,
		"\n\r\t\x00\x1f":     `"\n\r\t\u0000\u001f"`,
		"héllo ✓ 😀":          `"héllo ✓ 😀"`,
		"bad\xffbyte\xc3":    `"bad\ufffdbyte\ufffd"`,
		"":                   `""`,
		"<script>&</script>": `"<script>&</script>"`,
	}
	for in, want := range cases {
		if got := string(AppendString(nil, in)); got != want {
			t.Errorf("AppendString(%q) = %s, want %s", in, got, want)
		}
		if got := string(AppendString(nil, []byte(in))); got != want {
			t.Errorf("AppendString([]byte %q) = %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal(AppendString(nil, in), &back); err != nil {
			t.Errorf("%q: invalid JSON: %v", in, err)
		}
	}
}

func TestNumbersAndJSON(t *testing.T) {
	for _, ok := range []string{"0", "-0", "42", "-1.5", "1e+300", "1.5E-07", "0.1"} {
		if !IsJSONNumber([]byte(ok)) || string(AppendNumber(nil, []byte(ok))) != ok {
			t.Errorf("%q should be a JSON number", ok)
		}
	}
	for _, bad := range []string{"", "-", "01", "1.", ".5", "+1", "NaN", "Infinity", "1e", "0x10", "1 "} {
		if IsJSONNumber([]byte(bad)) {
			t.Errorf("%q is not a JSON number", bad)
		}
		if !json.Valid(AppendNumber(nil, []byte(bad))) {
			t.Errorf("AppendNumber(%q) is not valid JSON", bad)
		}
	}
	if got := string(AppendJSON(nil, []byte("{\"a\" : [1, 2]}\n"))); got != `{"a":[1,2]}` {
		t.Errorf("AppendJSON compacts: %s", got)
	}
	if got := string(AppendJSON([]byte("x"), []byte("{bad"))); got != `x"{bad"` {
		t.Errorf("invalid JSON becomes a string: %s", got)
	}
	if got := string(AppendFloat(nil, 0.1, 32)); got != "0.1" {
		t.Errorf("float32 0.1 = %s", got)
	}
}

func TestRowWriter(t *testing.T) {
	w := NewRowWriter([]string{"id", "id", "name", "id_2"})
	for i := range 2 {
		w.BeginRow()
		w.Col(0)
		w.Buf = AppendNull(w.Buf)
		w.Col(1)
		w.Buf = AppendBool(w.Buf, i == 0)
		w.Col(2)
		w.Buf = AppendBase64(w.Buf, []byte{0xde, 0xad})
		w.Col(3)
		w.Buf = AppendString(w.Buf, "x")
		w.EndRow()
	}
	mark, n := w.Mark(), w.Rows()
	w.BeginRow()
	w.Col(0)
	w.Reset(mark, n)
	got := string(w.Finish())
	want := `[{"id":null,"id_2":true,"name":"3q0=","id_2_2":"x"},{"id":null,"id_2":false,"name":"3q0=","id_2_2":"x"}]`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	empty := NewRowWriter([]string{"a"})
	if got := string(empty.Finish()); got != "[]" {
		t.Fatalf("empty = %s", got)
	}
}

func TestFirstKeyword(t *testing.T) {
	cases := []struct {
		sql  string
		d    Dialect
		want string
	}{
		{"select 1", Postgres, "SELECT"},
		{"  \n\t-- c\n/* a /* nested */ b */ (( WITH x AS (SELECT 1) SELECT * FROM x", Postgres, "WITH"},
		{"/* a /* nested */ DELETE */ SELECT 1", Postgres, "SELECT"},
		{"/* a /* nested */ DELETE */ SELECT 1", MySQL, "DELETE"},
		{"# c\nshow tables", MySQL, "SHOW"},
		{"--x\nDELETE", MySQL, ""},
		{"-- x\nDELETE FROM t", MySQL, "DELETE"},
		{"/* unterminated", Postgres, ""},
		{"", MySQL, ""},
	}
	for _, c := range cases {
		if got := FirstKeyword(c.sql, c.d); got != c.want {
			t.Errorf("FirstKeyword(%q, %d) = %q, want %q", c.sql, c.d, got, c.want)
		}
	}
}

func TestCheckReadOnly(t *testing.T) {
	allowed := map[Dialect][]string{
		Postgres: {"SELECT 1", "with x as (select 1) select * from x", "VALUES (1)", "TABLE t", "SHOW search_path",
			"EXPLAIN SELECT 1", "(SELECT 1) UNION (SELECT 2)", "SELECT 'into'"},
		MySQL: {"SELECT 1", "SHOW TABLES", "DESC t", "DESCRIBE t", "EXPLAIN SELECT 1", "SELECT 'INTO OUTFILE' AS s",
			"SELECT `into` FROM t", "SELECT 1 -- INTO OUTFILE", "SELECT \"a\\\" INTO\" FROM t", "SELECT /*+ MAX_EXECUTION_TIME(1) */ 1"},
	}
	refused := map[Dialect][]string{
		Postgres: {"DELETE FROM t", "COPY t TO PROGRAM 'x'", "DO $$ BEGIN END $$", "SET x = 1", "BEGIN", "CALL p()",
			"SELECT lo_export(1, '/tmp/x')", "SELECT * FROM DBLINK('', '')", "SELECT query_to_xml('x', true, false, '')", ""},
		MySQL: {"DELETE FROM t", "/*!50000 DROP TABLE t */", "SELECT 1 /*!, 2 */", "SELECT 1 /*M!100000 , 2 */",
			"SELECT * FROM t INTO OUTFILE '/tmp/x'", "SELECT 1 INTO @x", "select 1 into dumpfile 'x'", "SET autocommit = 1",
			"LOCK TABLES t WRITE", "CALL p()", "DO 1", "HANDLER t OPEN", "ANALYZE TABLE t", "--x\nSELECT 1"},
	}
	for d, list := range allowed {
		for _, s := range list {
			if err := CheckReadOnly(s, d); err != nil {
				t.Errorf("dialect %d: %q refused: %v", d, s, err)
			}
		}
	}
	for d, list := range refused {
		for _, s := range list {
			err := CheckReadOnly(s, d)
			if connectors.KindOf(err) != connectors.KindQuery || err == nil || !strings.Contains(err.Error(), "read-only") {
				t.Errorf("dialect %d: %q allowed or wrong error: %v", d, s, err)
			}
		}
	}
}

func TestDecodeParams(t *testing.T) {
	q, err := DecodeQuery(json.RawMessage(`{"query": "SELECT 1", "max_rows": 5, "extra": true}`))
	if err != nil || q.Query != "SELECT 1" || q.MaxRows != 5 {
		t.Fatalf("%+v %v", q, err)
	}
	if q, err := DecodeQuery(json.RawMessage(`{"query": "SELECT 1", "max_rows": "7"}`)); err != nil || q.MaxRows != 7 {
		t.Fatalf("string max_rows: %+v %v", q, err)
	}
	for _, bad := range []string{`{}`, `null`, `{"query": "  "}`, `{"query": 1}`, `{"query": "x", "max_rows": 0}`,
		`{"query": "x", "max_rows": 1.5}`, `"SELECT 1"`, `{"query": "a\u0000b"}`} {
		if _, err := DecodeQuery(json.RawMessage(bad)); connectors.KindOf(err) != connectors.KindInput || err == nil {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if d, err := DecodeDescribe(json.RawMessage(`{"table": " t ", "schema": "s"}`)); err != nil || d.Table != "t" || d.Schema != "s" {
		t.Errorf("describe: %+v %v", d, err)
	}
	if _, err := DecodeDescribe(json.RawMessage(`{"schema": "s"}`)); connectors.KindOf(err) != connectors.KindInput || err == nil {
		t.Errorf("describe without table: %v", err)
	}
	if l, err := DecodeList(nil); err != nil || l.Schema != "" {
		t.Errorf("list: %+v %v", l, err)
	}
	lim := connectors.Limits{MaxRows: 100}
	if RowCap(lim, 0) != 100 || RowCap(lim, 10) != 10 || RowCap(lim, 1000) != 100 || RowCap(connectors.Limits{}, 0) != DefaultMaxRows {
		t.Error("RowCap")
	}
}

func TestScrub(t *testing.T) {
	if got := Scrub("failed for s3cret-pw!", "s3cret-pw"); strings.Contains(got, "s3cret") {
		t.Errorf("not scrubbed: %s", got)
	}
	if got := Scrub("a bad thing", "a"); got != "a bad thing" {
		t.Errorf("short passwords are not searched for: %s", got)
	}
}
