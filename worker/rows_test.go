package worker

import (
	"encoding/json"
	"testing"

	"github.com/openanalyst/mcp-integration-service/messages"
)

// The row limit skips decoding params that cannot name max_rows; it must
// find every spelling encoding/json would match (case, \u escapes, the
// Unicode letters that fold to 's' and 'k') and agree with a full decode.
func TestRowsFindsEveryMaxRowsSpelling(t *testing.T) {
	t.Parallel()
	d := &Databases{Limits: Limits{DefaultRows: 100, MaxRows: 1000}}
	cases := []struct {
		params string
		want   int
	}{
		{`{"query":"SELECT 1"}`, 100},
		{`{"query":"SELECT 1","max_rows":7}`, 7},
		{`{"query":"SELECT 1","MAX_ROWS":7}`, 7},
		{`{"query":"SELECT 1","Max_Rows":7}`, 7},
		{`{"query":"SELECT 1","max\u005frows":7}`, 7},
		{`{"query":"SELECT 1","\u006dax_rows":7}`, 7},
		{`{"query":"SELECT 1","max_rowſ":7}`, 7}, // U+017F folds to 's'
		{`{"query":"SELECT 1","max_rows":5000}`, 1000},
		{`{"query":"SELECT 'max_rows'"}`, 100},       // in a value: decoded, no key
		{`{"query":"SELECT 'é'"}`, 100},              // non-ASCII: decoded, no key
		{`{"query":"SELECT 1","max_row":7}`, 100},    // not the key
		{`{"query":"SELECT 1","max_rows":"x"}`, 100}, // not a number
		{``, 100},
	}
	for _, c := range cases {
		pl := &messages.ExecutePayload{Params: json.RawMessage(c.params)}
		if got := d.rows(pl); got != c.want {
			t.Errorf("%s: %d rows, want %d", c.params, got, c.want)
		}
		var p struct {
			MaxRows json.Number `json:"max_rows"`
		}
		if json.Unmarshal(pl.Params, &p) == nil && p.MaxRows != "" && !mayNameMaxRows(pl.Params) {
			t.Errorf("%s: json finds max_rows=%s, the fast path skips it", c.params, p.MaxRows)
		}
	}
	if mayNameMaxRows([]byte(`{"query":"SELECT 1","limit":3}`)) {
		t.Error("params without the key were decoded")
	}
}

// FuzzMayNameMaxRows: whatever the params, when encoding/json finds a
// max_rows key the fast path did not skip them.
func FuzzMayNameMaxRows(f *testing.F) {
	for _, s := range []string{`{"max_rows":1}`, `{"MAX_ROWS":2}`, `{"max\u005frows":3}`, `{"max_rowſ":4}`,
		`{"query":"x"}`, `{"max_roWs":"5"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, params []byte) {
		var p struct {
			MaxRows json.Number `json:"max_rows"`
		}
		if json.Unmarshal(params, &p) == nil && p.MaxRows != "" && !mayNameMaxRows(params) {
			t.Fatalf("%q: json finds max_rows=%s, the fast path skips it", params, p.MaxRows)
		}
	})
}
