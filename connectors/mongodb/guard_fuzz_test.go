package mongodb

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// mongoAttack is a value a read-only connection must refuse: a pipeline
// stage, a filter or a projection.
type mongoAttack struct{ field, value string }

const jsFn = `{"body": "function() { return true }", "args": [], "lang": "js"}`

var mongoAttacks = []mongoAttack{
	{"pipeline", `{"$out": "stolen"}`},
	{"pipeline", `{"$out": {"db": "admin", "coll": "stolen"}}`},
	{"pipeline", `{"$merge": {"into": "stolen", "whenMatched": "replace"}}`},
	{"pipeline", `{"$merge": "stolen"}`},
	{"pipeline", `{"$match": {"$where": "sleep(10000) || true"}}`},
	{"pipeline", `{"$match": {"$expr": {"$function": ` + jsFn + `}}}`},
	{"pipeline", `{"$addFields": {"x": {"$function": {"body": {"$code": "function() { return 1 }"}, "args": [], "lang": "js"}}}}`},
	{"pipeline", `{"$group": {"_id": null, "x": {"$accumulator": {"init": "function() { return 0 }", "accumulate": "function(s) { return s }", "accumulateArgs": [], "merge": "function(a) { return a }", "lang": "js"}}}}`},
	{"filter", `{"$where": "sleep(10000) || true"}`},
	{"filter", `{"$where": {"$code": "sleep(10000)"}}`},
	{"filter", `{"$expr": {"$function": ` + jsFn + `}}`},
	{"filter", `{"a": 1, "$where": "true", "a": 2}`},
	{"projection", `{"x": {"$function": ` + jsFn + `}}`},
}

var dangerName = regexp.MustCompile(`(?i)\$(out|merge|where|function|accumulator)\b`)

// nestings wrap an attack value in structures that keep it effective.
func nestings(a mongoAttack) []string {
	v := a.value
	switch a.field {
	case "pipeline":
		return []string{v,
			`{"$facet": {"f": [` + v + `]}}`,
			`{"$lookup": {"from": "o", "as": "j", "pipeline": [` + v + `]}}`,
			`{"$unionWith": {"coll": "o", "pipeline": [` + v + `]}}`,
			`{"$facet": {"f": [{"$lookup": {"from": "o", "as": "j", "pipeline": [{"$unionWith": {"coll": "o", "pipeline": [` + v + `]}}]}}]}}`,
		}
	case "filter":
		return []string{v, `{"$and": [` + v + `]}`, `{"$or": [{}, ` + v + `]}`, `{"$nor": [{"$nor": [` + v + `]}]}`,
			`{"tags": {"$elemMatch": ` + v + `}}`}
	}
	return []string{v, `{"y": ` + v + `}`}
}

// mongoVariants rewrites an attack into many DB_QUERY params: nested, as a
// JSON string of Extended JSON, with the operator in other cases or
// \u-escaped, re-indented, and behind a harmless duplicate of its field.
func mongoVariants(a mongoAttack) []string {
	var out []string
	for _, v := range nestings(a) {
		val := v
		if a.field == "pipeline" {
			val = `[{"$match": {}}, ` + v + `]`
		}
		safe := `{}`
		if a.field == "pipeline" {
			safe = `[{"$match": {}}]`
		}
		params := []string{
			`{"collection": "c", "` + a.field + `": ` + val + `}`,
			`{"collection": "c", "` + a.field + `": ` + quote(val) + `}`,
			`{"collection": "c", "` + a.field + `": ` + safe + `, "` + a.field + `": ` + val + `}`,
		}
		if a.field == "filter" {
			params = append(params, `{"collection": "c", "operation": "count", "filter": `+val+`}`)
		}
		for _, p := range params {
			out = append(out, p,
				dangerName.ReplaceAllStringFunc(p, strings.ToUpper),
				dangerName.ReplaceAllStringFunc(p, func(m string) string { return "$" + strings.ToUpper(m[1:2]) + m[2:] }),
				strings.ReplaceAll(p, `"$`, `"\u0024`),
				dangerName.ReplaceAllStringFunc(p, func(m string) string { return `\u0024` + `\u00` + hex2(m[1]) + m[2:] }),
				indent(p))
		}
	}
	return out
}

func hex2(c byte) string { return string("0123456789abcdef"[c>>4]) + string("0123456789abcdef"[c&15]) }

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func indent(s string) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, []byte(s), "\n\t ", "\t  "); err != nil {
		return s
	}
	return " \r\n" + buf.String() + "\n "
}

// TestMongoReadOnlyVariants: every rewrite of every attack is refused with
// KindQuery on a read-only connection (and accepted with writes allowed, so
// the refusals are the read-only guard's).
func TestMongoReadOnlyVariants(t *testing.T) {
	t.Parallel()
	n := 0
	for _, a := range mongoAttacks {
		for _, p := range mongoVariants(a) {
			n++
			_, _, err := prepare(json.RawMessage(p), false)
			if err == nil || connectors.KindOf(err) != connectors.KindQuery || !strings.Contains(err.Error(), "read-only") {
				t.Errorf("read-only accepted or misjudged %s: %v", p, err)
			}
			if _, _, err := prepare(json.RawMessage(p), true); err != nil {
				t.Errorf("writable refused %s: %v", p, err)
			}
		}
	}
	if n < 300 {
		t.Errorf("only %d variants", n)
	}
	for _, p := range []string{
		`{"collection": "c", "filter": {"note": "$where and $out are just text"}}`,
		`{"collection": "c", "pipeline": [{"$match": {"outcome": 1, "where": 2}}]}`,
		`{"collection": "c", "pipeline": [{"$project": {"o": "$out"}}]}`,
	} {
		if _, _, err := prepare(json.RawMessage(p), false); err != nil {
			t.Errorf("read-only refused harmless %s: %v", p, err)
		}
	}
}

// FuzzMongoReadOnly: params that pass the read-only check hold no refused
// key in the fields the driver sends, as encoding/json reads them.
func FuzzMongoReadOnly(f *testing.F) {
	for _, a := range mongoAttacks {
		for _, p := range mongoVariants(a) {
			f.Add(p)
		}
	}
	f.Add(`{"collection": "c", "filter": {"a": {"$gt": 1}}}`)
	f.Fuzz(func(t *testing.T, params string) {
		if _, _, err := prepare(json.RawMessage(params), false); err != nil {
			return
		}
		var top map[string]json.RawMessage
		if json.Unmarshal([]byte(params), &top) != nil {
			return
		}
		for _, field := range []string{"filter", "projection", "sort", "pipeline"} {
			if k := deniedKey(unquote(top[field])); k != "" {
				t.Fatalf("read-only accepted %s holding %s", params, k)
			}
		}
	})
}

// deniedKey walks raw's JSON tokens and returns the first object key
// (duplicates included) that matches a refused key.
func deniedKey(raw json.RawMessage) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var inObject []bool // per open container: is it an object
	wantKey := false    // the next string in the current object is a key
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		switch tok := tok.(type) {
		case json.Delim:
			if tok == '{' || tok == '[' {
				inObject = append(inObject, tok == '{')
				wantKey = tok == '{'
				continue
			}
			inObject = inObject[:len(inObject)-1]
		case string:
			if wantKey {
				for _, n := range readOnlyKeys {
					if strings.EqualFold(tok, n) {
						return tok
					}
				}
				wantKey = false
				continue
			}
		}
		// A value ended: in an object, a key comes next.
		wantKey = len(inObject) > 0 && inObject[len(inObject)-1]
	}
}
