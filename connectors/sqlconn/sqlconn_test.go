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
		if !isJSONNumber([]byte(ok)) || string(AppendNumber(nil, []byte(ok))) != ok {
			t.Errorf("%q should be a JSON number", ok)
		}
	}
	for _, bad := range []string{"", "-", "01", "1.", "1.e5", ".5", "+1", "NaN", "Infinity", "1e", "1e+", "1.5e-", "0x10", "1 "} {
		if isJSONNumber([]byte(bad)) {
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
		w.beginRow()
		w.col(0)
		w.Buf = AppendNull(w.Buf)
		w.col(1)
		w.Buf = AppendBool(w.Buf, i == 0)
		w.col(2)
		w.Buf = AppendBase64(w.Buf, []byte{0xde, 0xad})
		w.col(3)
		w.Buf = AppendString(w.Buf, "x")
		w.endRow()
	}
	mark, n := w.mark(), w.Rows()
	w.beginRow()
	w.col(0)
	w.reset(mark, n)
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

func TestDecodeParams(t *testing.T) {
	q, err := decodeQuery(json.RawMessage(`{"query": "SELECT 1", "max_rows": 5, "extra": true}`))
	if err != nil || q.Query != "SELECT 1" || q.MaxRows != 5 {
		t.Fatalf("%+v %v", q, err)
	}
	if q, err := decodeQuery(json.RawMessage(`{"query": "SELECT 1", "max_rows": "7"}`)); err != nil || q.MaxRows != 7 {
		t.Fatalf("string max_rows: %+v %v", q, err)
	}
	for _, bad := range []string{`{}`, `null`, `{"query": "  "}`, `{"query": 1}`, `{"query": "x", "max_rows": 0}`,
		`{"query": "x", "max_rows": 1.5}`, `"SELECT 1"`, `{"query": "a\u0000b"}`} {
		if _, err := decodeQuery(json.RawMessage(bad)); connectors.KindOf(err) != connectors.KindInput || err == nil {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if d, err := decodeDescribe(json.RawMessage(`{"table": " t ", "schema": "s"}`)); err != nil || d.Table != "t" || d.Schema != "s" {
		t.Errorf("describe: %+v %v", d, err)
	}
	if _, err := decodeDescribe(json.RawMessage(`{"schema": "s"}`)); connectors.KindOf(err) != connectors.KindInput || err == nil {
		t.Errorf("describe without table: %v", err)
	}
	if l, err := decodeList(nil); err != nil || l.Schema != "" {
		t.Errorf("list: %+v %v", l, err)
	}
	lim := connectors.Limits{MaxRows: 100}
	if rowCap(lim, 0) != 100 || rowCap(lim, 10) != 10 || rowCap(lim, 1000) != 100 || rowCap(connectors.Limits{}, 0) != defaultMaxRows {
		t.Error("rowCap")
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
