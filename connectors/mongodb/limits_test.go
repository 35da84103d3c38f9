package mongodb

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// TestByteCap: 10 MiB of documents come back cut at a whole document below
// connectors.MaxResultBytes, as valid JSON marked truncated; a single
// document over the cap gives an empty truncated array.
func TestByteCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	big := strings.Repeat("x", 1<<20)
	docs := make([]any, 10)
	for i := range docs {
		docs[i] = d("i", int32(i), "pad", big)
	}
	if _, err := e.db.Collection("big").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Collection("huge").InsertOne(ctx, d("pad", strings.Repeat("y", 5<<20))); err != nil {
		t.Fatal(err)
	}
	s := e.open(false)
	cases := []struct {
		params string
		rows   int
	}{
		{`{"collection": "big", "sort": {"i": 1}}`, 3},
		{`{"collection": "big", "pipeline": [{"$sort": {"i": 1}}]}`, 3},
		{`{"collection": "huge"}`, 0},
	}
	for _, c := range cases {
		start := time.Now()
		res := run(t, s, "DB_QUERY", c.params, lim)
		if time.Since(start) > 15*time.Second {
			t.Errorf("%s took %v", c.params, time.Since(start))
		}
		if len(res.Body) > connectors.MaxResultBytes || !json.Valid(res.Body) {
			t.Fatalf("%s: body of %d bytes (valid %v), cap %d", c.params, len(res.Body), json.Valid(res.Body), connectors.MaxResultBytes)
		}
		got := rows(t, res.Body)
		if !res.Truncated || res.RowCount != c.rows || len(got) != c.rows {
			t.Errorf("%s → %d rows (body %d), truncated=%v; want %d, true", c.params, res.RowCount, len(got), res.Truncated, c.rows)
		}
		for i, r := range got {
			if r["i"] != json.Number(string(rune('0'+i))) {
				t.Errorf("%s: row %d is i=%v", c.params, i, r["i"])
			}
		}
	}
	// Under the cap nothing changes.
	res := run(t, s, "DB_QUERY", `{"collection": "big", "filter": {"i": {"$lt": 2}}}`, lim)
	if res.Truncated || res.RowCount != 2 {
		t.Errorf("2 documents → %d rows, truncated=%v", res.RowCount, res.Truncated)
	}
}
