package mongodb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/auth"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// d builds a bson.D from key, value pairs.
func d(kv ...any) bson.D {
	out := make(bson.D, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, bson.E{Key: kv[i].(string), Value: kv[i+1]})
	}
	return out
}

var lim = connectors.Limits{MaxRows: 1000, Timeout: 20 * time.Second}

func run(t *testing.T, s connectors.Source, tool, params string, l connectors.Limits) *connectors.Result {
	t.Helper()
	res, err := s.Run(context.Background(), tool, json.RawMessage(params), l)
	if err != nil {
		t.Fatalf("Run(%s, %s): %v", tool, params, err)
	}
	if !json.Valid(res.Body) {
		t.Fatalf("Run(%s, %s): body is not JSON: %s", tool, params, res.Body)
	}
	return res
}

func runErr(t *testing.T, s connectors.Source, tool, params string) *connectors.Error {
	t.Helper()
	res, err := s.Run(context.Background(), tool, json.RawMessage(params), lim)
	if err == nil {
		t.Fatalf("Run(%s, %s) = %s, want an error", tool, params, res.Body)
	}
	var ce *connectors.Error
	if !errors.As(err, &ce) {
		t.Fatalf("Run(%s, %s): %T %v is not a *connectors.Error", tool, params, err, err)
	}
	return ce
}

// rows decodes a row array body into generic documents.
func rows(t *testing.T, body json.RawMessage) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	return out
}

// ---- unit tests ----

func TestRegistered(t *testing.T) {
	t.Parallel()
	drv, ok := connectors.Lookup("mongodb")
	if !ok {
		t.Fatal("mongodb driver not registered")
	}
	if info := drv.Info(); info.Name != "MongoDB" || info.Order != 4 || info.Type != "mongodb" {
		t.Errorf("Info = %+v", info)
	}
	fields := map[string]connectors.Field{}
	for _, f := range drv.Fields() {
		fields[f.Name] = f
	}
	if f := fields["connection_string"]; f.Type != "password" || !f.Required {
		t.Errorf("connection_string field = %+v", f)
	}
	if f := fields["connection_name"]; f.Type != "text" || !f.Required {
		t.Errorf("connection_name field = %+v", f)
	}
	for _, prefix := range []string{"DB_QUERY", "DB_LIST_COLLECTIONS"} {
		spec, ok := connectors.FindTool(drv, prefix)
		if !ok {
			t.Fatalf("tool %s missing", prefix)
		}
		var schema map[string]any
		if err := json.Unmarshal(spec.InputSchema, &schema); err != nil || schema["type"] != "object" {
			t.Errorf("%s schema: %v %v", prefix, err, schema)
		}
		if !strings.Contains(spec.Description, "%s") {
			t.Errorf("%s description %q takes no name", prefix, spec.Description)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	const pw = "S3cr3t-Pa55"
	good := []connectors.Params{
		{ConnectionString: "mongodb://db.example.com/shop"},
		{ConnectionString: "mongodb://app:" + pw + "@db1.example.com:27017,db2.example.com:27018/shop?replicaSet=rs0&authSource=admin"},
		{ConnectionString: "mongodb+srv://app:" + pw + "@cluster0.example.net/shop?retryWrites=true&w=majority"},
		{ConnectionString: "mongodb+srv://app:" + pw + "@cluster0.example.net/?retryWrites=true", Database: "shop"},
		{ConnectionString: "  mongodb://10.1.2.3:27017/analytics  "},
		{ConnectionString: "mongodb://app:" + pw + "@h/shop?authMechanism=SCRAM-SHA-256&tls=true"},
	}
	for _, p := range good {
		if err := (Driver{}).Validate(p); err != nil {
			t.Errorf("Validate(%q) = %v", p.ConnectionString, err)
		}
	}
	bad := map[string]string{
		"":                             "required",
		"postgres://u:" + pw + "@h/db": "must start with",
		"mongodb://app:" + pw + "@h":   "must name the database",
		"mongodb://app:" + pw + "@h/":  "must name the database",
		"mongodb+srv://app:" + pw + "@cluster0.example.net:27017/db":                                           "must not have a port",
		"mongodb+srv://app:" + pw + "@a.example.net,b.example.net/db":                                          "exactly one host",
		"mongodb://app:" + pw + "@h/db?authMechanism=MONGODB-AWS":                                              "authMechanism",
		"mongodb://h/db?authMechanism=MONGODB-OIDC&authMechanismProperties=ENVIRONMENT:azure,TOKEN_RESOURCE:x": "authMechanism",
		"mongodb://app@h/db?authMechanism=GSSAPI":                                                              "authMechanism",
		"mongodb://h/db?authMechanism=MONGODB-X509&tls=true":                                                   "authMechanism",
		"mongodb://app:" + pw + "@h/db?tls=true&tlsCAFile=/etc/passwd":                                         "certificate file",
		"mongodb://app:" + pw + "@h/db?tls=true&tlsCertificateKeyFile=/k":                                      "certificate file",
		"mongodb://app:" + pw + "@h/shop?tls=true&tlsInsecure=true":                                            "tlsInsecure is not allowed",
		"mongodb://app:" + pw + "@%2Ftmp%2Fmongodb-27017.sock/db":                                              "Unix socket",
		"mongodb://app:" + pw + "@h:99999/db":                                                                  "invalid connection string",
		"mongodb://app:" + pw + "@h/bad.name":                                                                  "invalid database name",
		"mongodb://app:" + pw + "@h/db?maxPoolSize=lots":                                                       "invalid connection string",
		"mongodb://app:pa:ss" + pw + "@h/db":                                                                   "invalid connection string",
		"mongodb://app:" + pw + "@h?x=1":                                                                       "invalid connection string",
	}
	for uri, want := range bad {
		err := Driver{}.Validate(connectors.Params{ConnectionString: uri})
		if err == nil {
			t.Errorf("Validate(%q) accepted", uri)
			continue
		}
		if connectors.KindOf(err) != connectors.KindInput {
			t.Errorf("Validate(%q) kind %d", uri, connectors.KindOf(err))
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%q) = %q, want it to mention %q", uri, err, want)
		}
		if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), "S3cr3t") {
			t.Errorf("Validate(%q) echoes the password: %q", uri, err)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	tg := &target{secrets: secretsOf("mongodb://app:p%40ss@w0rd@h/db")}
	for _, msg := range []string{
		"error near app:p%40ss@w0rd",
		"password p@ss@w0rd rejected",
		"password p%40ss@w0rd rejected",
	} {
		if got := tg.redact(msg); strings.Contains(got, "ss@w0rd") || strings.Contains(got, "p%40ss") {
			t.Errorf("redact(%q) = %q", msg, got)
		}
	}
	if got := (&target{secrets: secretsOf("mongodb://h/db")}).redact("plain message"); got != "plain message" {
		t.Errorf("redact without userinfo = %q", got)
	}
}

func TestExtJSONEncoding(t *testing.T) {
	t.Parallel()
	oid := bson.NewObjectID()
	dec, err := bson.ParseDecimal128("12345678901234567890.123456789")
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2024, 3, 4, 5, 6, 7, 8e6, time.UTC)
	for _, withBig := range []bool{false, true} {
		big := int64(42)
		if withBig {
			big = 9007199254740993 // 2^53 + 1: a float64 would read 9007199254740992
		}
		doc := d("_id", oid, "price", dec, "when", bson.NewDateTimeFromTime(when),
			"bin", bson.Binary{Subtype: 0, Data: []byte{0, 1, 0xff}},
			"nested", d("deep", bson.A{int64(-9007199254740995), "x", d("big", big)}),
			"i32", int32(7), "f", 1.5, "nil", nil, "b", true, "s", "<a & b>", "big", big)
		raw, err := bson.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := appendDoc(&buf, raw); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if !json.Valid(buf.Bytes()) {
			t.Fatalf("not JSON: %s", out)
		}
		for _, want := range []string{
			`"_id":{"$oid":"` + oid.Hex() + `"}`,
			`"price":{"$numberDecimal":"12345678901234567890.123456789"}`,
			`"when":{"$date":"2024-03-04T05:06:07.008Z"}`,
			`"bin":{"$binary":{"base64":"AAH/","subType":"00"}}`,
			`"i32":7`, `"f":1.5`, `"nil":null`, `"b":true`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("big=%v: %s lacks %s", withBig, out, want)
			}
		}
		if withBig && (!strings.Contains(out, `"big":{"$numberLong":"9007199254740993"}`) ||
			!strings.Contains(out, `{"$numberLong":"-9007199254740995"}`)) {
			t.Errorf("big int64 not canonical: %s", out)
		}
		if !withBig && !strings.Contains(out, `"big":42`) {
			t.Errorf("small int64 not relaxed: %s", out)
		}
		// Lossless: the output parses back to the same BSON values.
		var back bson.D
		if err := bson.UnmarshalExtJSON(buf.Bytes(), false, &back); err != nil {
			t.Fatalf("round trip: %v", err)
		}
		m := map[string]any{}
		for _, el := range back {
			m[el.Key] = el.Value
		}
		if m["_id"] != oid || m["price"] != dec || m["big"] != big && m["big"] != int32(big) {
			t.Errorf("round trip: %#v", back)
		}
		if got := m["when"].(bson.DateTime).Time().UTC(); !got.Equal(when) {
			t.Errorf("date round trip: %v", got)
		}
	}
}

func TestParseInputs(t *testing.T) {
	t.Parallel()
	f, err := parseDoc("filter", json.RawMessage(`{"_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}, "n": {"$gt": 5}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f[0].Value.(bson.ObjectID); !ok || f[0].Key != "_id" {
		t.Errorf("ObjectId not parsed: %#v", f)
	}
	// A JSON string holding Extended JSON is accepted too.
	f, err = parseDoc("filter", json.RawMessage(`"{\"a\": 1}"`))
	if err != nil || len(f) != 1 || f[0].Key != "a" {
		t.Errorf("string filter: %#v %v", f, err)
	}
	// Sort keeps its key order.
	s, _ := parseDoc("sort", json.RawMessage(`{"z": 1, "a": -1, "m": 1}`))
	if s[0].Key != "z" || s[1].Key != "a" || s[2].Key != "m" {
		t.Errorf("sort order lost: %#v", s)
	}
	for _, bad := range []string{`[1]`, `5`, `{"_id": {"$oid": "nothex"}}`, `{"a": {"$date": "yesterday"}}`, `{`} {
		if _, err := parseDoc("filter", json.RawMessage(bad)); connectors.KindOf(err) != connectors.KindInput || err == nil {
			t.Errorf("parseDoc(%s) = %v", bad, err)
		}
	}
	p, err := parsePipeline(json.RawMessage(`[{"$match": {"a": 1}}, {"$group": {"_id": "$k", "n": {"$sum": 1}}}]`))
	if err != nil || len(p) != 2 || p[1][0].Key != "$group" {
		t.Errorf("pipeline: %#v %v", p, err)
	}
	for _, bad := range []string{`{"$match": {}}`, `[{"$match": {}, "$limit": 1}]`, `[1]`, `[]x`, `null`} {
		if _, err := parsePipeline(json.RawMessage(bad)); err == nil {
			t.Errorf("parsePipeline(%s) accepted", bad)
		}
	}
	// $out and $merge are found at any depth.
	for _, pl := range []string{
		`[{"$out": "x"}]`,
		`[{"$match": {}}, {"$merge": {"into": "x"}}]`,
		`[{"$facet": {"a": [{"$match": {}}, {"$out": "x"}]}}]`,
		`[{"$lookup": {"from": "o", "pipeline": [{"$merge": "x"}], "as": "y"}}]`,
		`[{"$unionWith": {"coll": "o", "pipeline": [{"$project": {"a": [{"$out": 1}]}}]}}]`,
	} {
		stages, err := parsePipeline(json.RawMessage(pl))
		if err != nil {
			t.Fatalf("%s: %v", pl, err)
		}
		if _, found := findKey(stages, "$out", "$merge"); !found {
			t.Errorf("findKey missed a write stage in %s", pl)
		}
	}
	stages, _ := parsePipeline(json.RawMessage(`[{"$match": {"out": "$out_field"}}, {"$project": {"merge": 1}}]`))
	if k, found := findKey(stages, "$out", "$merge"); found {
		t.Errorf("findKey found %s in a harmless pipeline", k)
	}
}

func TestClassifyAuth(t *testing.T) {
	t.Parallel()
	s := &source{target: &target{secrets: secretsOf("mongodb://u:pw@h/db")}}
	err := s.classify(topology.ConnectionError{Wrapped: &auth.Error{}}, true)
	if connectors.KindOf(err) != connectors.KindAuth {
		t.Errorf("auth error → %v (kind %d)", err, connectors.KindOf(err))
	}
	err = s.classify(context.DeadlineExceeded, false)
	if connectors.KindOf(err) != connectors.KindTimeout {
		t.Errorf("deadline during a query → kind %d", connectors.KindOf(err))
	}
	err = s.classify(context.DeadlineExceeded, true)
	if connectors.KindOf(err) != connectors.KindUnavailable {
		t.Errorf("deadline while connecting → kind %d", connectors.KindOf(err))
	}
}

// ---- against the embedded FerretDB ----

// seed inserts the test documents of the "items" collection.
func seed(t *testing.T, e *env) []bson.ObjectID {
	t.Helper()
	ids := make([]bson.ObjectID, 5)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var docs []any
	for i := range ids {
		ids[i] = bson.NewObjectID()
		docs = append(docs, d(
			"_id", ids[i],
			"name", fmt.Sprintf("item%d", i),
			"category", []string{"tools", "toys"}[i%2],
			"qty", int32(i*10),
			"price", 1.25*float64(i+1),
			"created", bson.NewDateTimeFromTime(base.Add(time.Duration(i)*24*time.Hour)),
			"tags", bson.A{"t" + fmt.Sprint(i), "common"},
			"dims", d("w", int32(i), "h", d("cm", float64(i)/2)),
			"note", nil,
			"active", i%2 == 0,
			"big", int64(9007199254740993)+int64(i),
			"blob", bson.Binary{Subtype: 0, Data: []byte{byte(i), 0xff}},
		))
	}
	ctx := context.Background()
	if _, err := e.db.Collection("items").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestFind(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := seed(t, e)
	s := e.open(false)

	res := run(t, s, "DB_QUERY", `{"collection": "items", "filter": {"category": "tools"}, "sort": {"qty": -1}, "projection": {"name": 1, "qty": 1, "_id": 0}, "limit": 2}`, lim)
	if !res.Rows || res.RowCount != 2 || res.Truncated {
		t.Errorf("find: %+v", res)
	}
	if got := string(res.Body); got != `[{"name":"item4","qty":40},{"name":"item2","qty":20}]` {
		t.Errorf("find body %s", got)
	}

	// Every type comes back as Extended JSON.
	res = run(t, s, "DB_QUERY", `{"collection": "items", "filter": {"name": "item1"}}`, lim)
	body := string(res.Body)
	for _, want := range []string{
		`"_id":{"$oid":"` + ids[1].Hex() + `"}`,
		`"created":{"$date":"2024-01-02T00:00:00Z"}`,
		`"tags":["t1","common"]`,
		`"dims":{"w":1,"h":{"cm":0.5}}`,
		`"note":null`,
		`"active":false`,
		`"big":{"$numberLong":"9007199254740994"}`,
		`"blob":{"$binary":{"base64":"Af8=","subType":"00"}}`,
		`"price":2.5`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("find body lacks %s:\n%s", want, body)
		}
	}

	// Filters with dates, $in, nested fields and arrays.
	for params, want := range map[string]int{
		`{"collection": "items", "filter": {"created": {"$gte": {"$date": "2024-01-03T00:00:00Z"}}}}`: 3,
		`{"collection": "items", "filter": {"name": {"$in": ["item0", "item3", "nope"]}}}`:            2,
		`{"collection": "items", "filter": {"dims.w": {"$lt": 2}}}`:                                   2,
		`{"collection": "items", "filter": {"tags": "common"}, "skip": 1}`:                            4,
		`{"collection": "items", "filter": {"note": null, "active": true}}`:                           3,
		`{"collection": "items", "filter": "{\"qty\": {\"$gt\": 25}}"}`:                               2,
		`{"collection": "missing_collection"}`:                                                        0,
	} {
		if res := run(t, s, "DB_QUERY", params, lim); res.RowCount != want {
			t.Errorf("%s → %d rows, want %d: %s", params, res.RowCount, want, res.Body)
		}
	}
}

func TestExtendedJSONRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := seed(t, e)
	s := e.open(false)

	res := run(t, s, "DB_QUERY", `{"collection": "items", "filter": {"name": "item3"}}`, lim)
	var docs []map[string]json.RawMessage // raw values keep their key order
	if err := json.Unmarshal(res.Body, &docs); err != nil || len(docs) != 1 {
		t.Fatalf("got %s (%v)", res.Body, err)
	}
	doc := docs[0]
	// Each value from the result, pasted into a filter, finds the document.
	for _, field := range []string{"_id", "created", "big", "blob", "dims", "tags", "price"} {
		v := doc[field]
		params := fmt.Sprintf(`{"collection": "items", "filter": {%q: %s}, "projection": {"name": 1}}`, field, v)
		got := rows(t, run(t, s, "DB_QUERY", params, lim).Body)
		if len(got) != 1 || got[0]["name"] != "item3" {
			t.Errorf("filter on %s = %s found %v", field, v, got)
		}
	}
	if oid := string(doc["_id"]); oid != `{"$oid":"`+ids[3].Hex()+`"}` {
		t.Errorf("_id = %v, want %s", doc["_id"], ids[3].Hex())
	}
}

func TestAggregateAndCount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seed(t, e)
	s := e.open(false)

	// One accumulator per $group: FerretDB 1.24 computes only the first
	// accumulator of a $group correctly (the others see an empty group).
	res := run(t, s, "DB_QUERY", `{"collection": "items", "pipeline": [
		{"$match": {"qty": {"$gte": 10}}},
		{"$group": {"_id": "$category", "qty": {"$sum": "$qty"}}},
		{"$sort": {"_id": 1}}]}`, lim)
	if got := string(res.Body); got != `[{"_id":"tools","qty":60},{"_id":"toys","qty":40}]` {
		t.Errorf("aggregate → %s", got)
	}
	if !res.Rows || res.RowCount != 2 {
		t.Errorf("aggregate result %+v", res)
	}
	res = run(t, s, "DB_QUERY", `{"collection": "items", "pipeline": [{"$group": {"_id": "$active", "n": {"$sum": 1}}}, {"$sort": {"_id": -1}}]}`, lim)
	if got := string(res.Body); got != `[{"_id":true,"n":3},{"_id":false,"n":2}]` {
		t.Errorf("aggregate count per group → %s", got)
	}
	res = run(t, s, "DB_QUERY", `{"collection": "items", "operation": "aggregate", "pipeline": [{"$count": "total"}]}`, lim)
	if string(res.Body) != `[{"total":5}]` {
		t.Errorf("$count → %s", res.Body)
	}

	for params, want := range map[string]string{
		`{"collection": "items", "operation": "count"}`:                                  `{"count":5}`,
		`{"collection": "items", "operation": "COUNT", "filter": {"category": "toys"}}`:  `{"count":2}`,
		`{"collection": "items", "operation": "count", "filter": {"qty": {"$gt": 100}}}`: `{"count":0}`,
		`{"collection": "nothing_here", "operation": "count"}`:                           `{"count":0}`,
	} {
		res := run(t, s, "DB_QUERY", params, lim)
		if string(res.Body) != want || res.Rows {
			t.Errorf("%s → %s (rows=%v), want %s", params, res.Body, res.Rows, want)
		}
	}
}

func TestReadOnlyRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seed(t, e)
	s := e.open(false)
	ctx := context.Background()

	for _, params := range []string{
		`{"collection": "items", "pipeline": [{"$match": {}}, {"$out": "stolen"}]}`,
		`{"collection": "items", "pipeline": [{"$merge": {"into": "stolen"}}]}`,
		`{"collection": "items", "pipeline": [{"$facet": {"a": [{"$out": "stolen"}]}}]}`,
		`{"collection": "items", "pipeline": [{"$lookup": {"from": "x", "as": "y", "pipeline": [{"$merge": "stolen"}]}}]}`,
		`{"collection": "items", "pipeline": "[{\"$out\": \"stolen\"}]"}`,
		`{"collection": "stolen", "operation": "insert", "documents": [{"a": 1}]}`,
		`{"collection": "items", "operation": "update", "filter": {}, "update": {"$set": {"qty": 0}}, "multi": true}`,
		`{"collection": "items", "operation": "delete", "filter": {"name": "item0"}}`,
	} {
		ce := runErr(t, s, "DB_QUERY", params)
		if ce.Kind != connectors.KindQuery || !strings.Contains(ce.Msg, "read-only") {
			t.Errorf("%s → %q (kind %d), want a read-only refusal", params, ce.Msg, ce.Kind)
		}
	}
	names, err := e.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(names, []string{"items"}) {
		t.Errorf("collections after refusals: %v", names)
	}
	if n, _ := e.db.Collection("items").CountDocuments(ctx, d("qty", d("$gt", 0))); n != 4 {
		t.Errorf("items with qty > 0: %d, want 4", n)
	}
	if n, _ := e.db.Collection("items").CountDocuments(ctx, d("name", "item0")); n != 1 {
		t.Errorf("item0 deleted")
	}
}

func TestWritesAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seed(t, e)
	s := e.open(true)
	ctx := context.Background()

	res := run(t, s, "DB_QUERY", `{"collection": "notes", "operation": "insert", "documents": [{"text": "a", "at": {"$date": "2024-05-01T00:00:00Z"}}, {"text": "b"}]}`, lim)
	var ins struct {
		Count int              `json:"inserted_count"`
		IDs   []map[string]any `json:"inserted_ids"`
	}
	if err := json.Unmarshal(res.Body, &ins); err != nil || ins.Count != 2 || len(ins.IDs) != 2 || ins.IDs[0]["$oid"] == nil {
		t.Errorf("insert → %s (%v)", res.Body, err)
	}
	var got bson.M
	if err := e.db.Collection("notes").FindOne(ctx, d("text", "a")).Decode(&got); err != nil {
		t.Fatalf("inserted document missing: %v", err)
	}
	if _, ok := got["at"].(bson.DateTime); !ok {
		t.Errorf("$date stored as %T", got["at"])
	}

	res = run(t, s, "DB_QUERY", `{"collection": "items", "operation": "update", "filter": {"category": "toys"}, "update": {"$set": {"sale": true}}, "multi": true}`, lim)
	if string(res.Body) != `{"matched_count":2,"modified_count":2,"upserted_id":null}` {
		t.Errorf("update → %s", res.Body)
	}
	if n, _ := e.db.Collection("items").CountDocuments(ctx, d("sale", true)); n != 2 {
		t.Errorf("%d documents on sale, want 2", n)
	}
	res = run(t, s, "DB_QUERY", `{"collection": "items", "operation": "delete", "filter": {"name": "item0"}}`, lim)
	if string(res.Body) != `{"deleted_count":1}` {
		t.Errorf("delete → %s", res.Body)
	}
	if ce := runErr(t, s, "DB_QUERY", `{"collection": "items", "operation": "delete", "filter": {}, "multi": true}`); ce.Kind != connectors.KindInput {
		t.Errorf("delete everything → %v", ce)
	}
	if ce := runErr(t, s, "DB_QUERY", `{"collection": "items", "operation": "update", "filter": {"name": "item1"}, "update": {"name": "replaced"}}`); ce.Kind != connectors.KindInput {
		t.Errorf("replacement document as update → %v", ce)
	}
	res = run(t, s, "DB_QUERY", `{"collection": "items", "operation": "update", "filter": {"name": "item9"}, "update": {"$set": {"qty": 90}}, "upsert": true}`, lim)
	if !strings.Contains(string(res.Body), `"upserted_id":{"$oid":"`) {
		t.Errorf("upsert → %s", res.Body)
	}
	if n, _ := e.db.Collection("items").CountDocuments(ctx, bson.D{}); n != 5 {
		t.Errorf("%d items, want 5 (one deleted, one upserted)", n)
	}
	if n, _ := e.db.Collection("items").CountDocuments(ctx, d("name", "replaced")); n != 0 {
		t.Errorf("a replacement document was applied")
	}
	// With writes allowed $out is not refused by the connector; FerretDB
	// itself does not implement it.
	if _, err := s.Run(ctx, "DB_QUERY", json.RawMessage(`{"collection": "items", "pipeline": [{"$out": "copy"}]}`), lim); err != nil &&
		strings.Contains(err.Error(), "read-only") {
		t.Errorf("$out refused as read-only on a writable connection: %v", err)
	}
}

func TestRowCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	docs := make([]any, 2500)
	for i := range docs {
		docs[i] = d("i", int32(i))
	}
	if _, err := e.db.Collection("many").InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
	s := e.open(false)
	cases := []struct {
		params    string
		count     int
		truncated bool
	}{
		{`{"collection": "many", "sort": {"i": 1}}`, 1000, true},
		{`{"collection": "many", "sort": {"i": 1}, "limit": 5000}`, 1000, true},
		{`{"collection": "many", "sort": {"i": 1}, "limit": 1000}`, 1000, false},
		{`{"collection": "many", "sort": {"i": 1}, "limit": 10}`, 10, false},
		{`{"collection": "many", "pipeline": [{"$sort": {"i": 1}}]}`, 1000, true},
		{`{"collection": "many", "pipeline": [{"$match": {"i": {"$lt": 20}}}]}`, 20, false},
	}
	for _, c := range cases {
		res := run(t, s, "DB_QUERY", c.params, lim)
		got := rows(t, res.Body)
		if res.RowCount != c.count || len(got) != c.count || res.Truncated != c.truncated {
			t.Errorf("%s → %d rows (body %d), truncated=%v; want %d, %v", c.params, res.RowCount, len(got), res.Truncated, c.count, c.truncated)
		}
		if len(got) > 0 && fmt.Sprint(got[0]["i"]) != "0" {
			t.Errorf("%s: first row %v", c.params, got[0])
		}
	}
}

func TestListCollections(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for name, n := range map[string]int{"orders": 3, "customers": 2, "empty": 0} {
		if n == 0 {
			if err := e.db.CreateCollection(ctx, name); err != nil {
				t.Fatal(err)
			}
			continue
		}
		docs := make([]any, n)
		for i := range docs {
			docs[i] = d("i", i)
		}
		if _, err := e.db.Collection(name).InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}
	s := e.open(false)
	res := run(t, s, "DB_LIST_COLLECTIONS", `{}`, lim)
	want := `[{"name":"customers","type":"collection","estimated_count":2},{"name":"empty","type":"collection","estimated_count":0},{"name":"orders","type":"collection","estimated_count":3}]`
	if string(res.Body) != want || !res.Rows || res.RowCount != 3 {
		t.Errorf("DB_LIST_COLLECTIONS → %s %+v", res.Body, res)
	}
	res = run(t, s, "DB_LIST_COLLECTIONS", ``, connectors.Limits{MaxRows: 2, Timeout: 10 * time.Second})
	if res.RowCount != 2 || !res.Truncated {
		t.Errorf("capped list: %s %+v", res.Body, res)
	}
	if ce := runErr(t, s, "DB_LIST_COLLECTIONS", `{"x": 1}`); ce.Kind != connectors.KindInput {
		t.Errorf("unknown param → %v", ce)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seed(t, e)
	s := e.open(false)
	for params, kind := range map[string]connectors.Kind{
		`{"collection": "items", "filter": {"_id": {"$oid": "zz"}}}`:      connectors.KindInput,
		`{"collection": "items", "filter": [1]}`:                          connectors.KindInput,
		`{"collection": "items", "filter": "{not json"}`:                  connectors.KindInput,
		`{"collection": "items", "filter": {"qty": {"$foo": 1}}}`:         connectors.KindQuery,
		`{"collection": "items", "pipeline": [{"$bogus": {}}]}`:           connectors.KindQuery,
		`{"collection": "items", "pipeline": {"$match": {}}}`:             connectors.KindInput,
		`{"collection": "items", "limit": -1}`:                            connectors.KindInput,
		`{"collection": "items", "pipeline": [], "projection": {"a": 1}}`: connectors.KindInput,
		`{"collection": "items", "operation": "drop"}`:                    connectors.KindInput,
		`{"filter": {}}`: connectors.KindInput,
		`{"collection": "items", "query": "db.items.find()"}`:             connectors.KindInput,
		`{"collection": "items", "operation": "count", "sort": {"a": 1}}`: connectors.KindInput,
		`not json`: connectors.KindInput,
	} {
		ce := runErr(t, s, "DB_QUERY", params)
		if ce.Kind != kind {
			t.Errorf("%s → %q kind %d, want %d", params, ce.Msg, ce.Kind, kind)
		}
	}
	ce := runErr(t, s, "DB_QUERY", `{"collection": "items", "filter": {"qty": {"$foo": 1}}}`)
	if !strings.Contains(ce.Msg, "$foo") {
		t.Errorf("the engine's message is lost: %q", ce.Msg)
	}
	if ce := runErr(t, s, "DB_NOPE", `{}`); ce.Kind != connectors.KindInput {
		t.Errorf("unknown tool → %v", ce)
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seed(t, e)
	s := e.open(false)
	_, err := s.Run(context.Background(), "DB_QUERY", json.RawMessage(`{"collection": "items"}`),
		connectors.Limits{MaxRows: 10, Timeout: time.Nanosecond})
	if connectors.KindOf(err) != connectors.KindTimeout || err == nil {
		t.Errorf("expired deadline → %v (kind %d), want KindTimeout", err, connectors.KindOf(err))
	}
	// The source still works afterwards.
	if res := run(t, s, "DB_QUERY", `{"collection": "items", "operation": "count"}`, lim); string(res.Body) != `{"count":5}` {
		t.Errorf("count after timeout → %s", res.Body)
	}
}

func TestPoolAndClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seed(t, e)
	o := testOptions(true)
	o.MaxOpen = 2
	s := e.openParams(connectors.Params{ConnectionString: e.uri}, o)
	run(t, s, "DB_QUERY", `{"collection": "items"}`, lim)
	if n := s.OpenConns(); n < 1 || n > 2 {
		t.Errorf("OpenConns = %d, want 1..2", n)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	s.Close()
	if n := s.OpenConns(); n != 0 {
		t.Errorf("OpenConns after Close = %d", n)
	}
	_, err := s.Run(context.Background(), "DB_QUERY", json.RawMessage(`{"collection": "items"}`), lim)
	if connectors.KindOf(err) != connectors.KindUnavailable || err == nil {
		t.Errorf("Run after Close → %v", err)
	}
}

func TestDatabaseField(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seed(t, e)
	// No database in the path: the database field is used.
	s := e.openParams(connectors.Params{ConnectionString: ferretURI(t), Database: e.dbName}, testOptions(true))
	if res := run(t, s, "DB_QUERY", `{"collection": "items", "operation": "count"}`, lim); string(res.Body) != `{"count":5}` {
		t.Errorf("count → %s", res.Body)
	}
}

func TestAuthRefused(t *testing.T) {
	t.Parallel()
	uri := ferretURI(t)
	const pw = "Wr0ng-Pa55"
	withCreds := strings.Replace(uri, "mongodb://", "mongodb://someone:"+pw+"@", 1) + "t_" + uniq()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := Driver{}.Open(ctx, connectors.Params{ConnectionString: withCreds}, testOptions(true))
	if connectors.KindOf(err) != connectors.KindAuth || err == nil {
		t.Fatalf("refused credentials → %v (kind %d), want KindAuth", err, connectors.KindOf(err))
	}
	if strings.Contains(err.Error(), pw) {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := testOptions(true)
	o.ConnectTimeout = time.Second
	_, err := Driver{}.Open(ctx, connectors.Params{ConnectionString: "mongodb://u:Pw-" + uniq() + "@127.0.0.1:1/db"}, o)
	if connectors.KindOf(err) != connectors.KindUnavailable || err == nil {
		t.Fatalf("closed port → %v (kind %d), want KindUnavailable", err, connectors.KindOf(err))
	}
	if strings.Contains(err.Error(), "Pw-") {
		t.Errorf("error shows the password: %v", err)
	}
	if ctx.Err() != nil {
		t.Error("Open waited until the test deadline")
	}
}

func TestHostPolicy(t *testing.T) {
	t.Parallel()
	uri := ferretURI(t) + "t_" + uniq()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A long server selection timeout: the refusal must not wait for it.
	o := testOptions(false)
	o.ConnectTimeout = time.Minute
	_, err := Driver{}.Open(ctx, connectors.Params{ConnectionString: uri}, o)
	if connectors.KindOf(err) != connectors.KindPolicy || err == nil {
		t.Errorf("loopback with AllowPrivate=false → %v (kind %d), want KindPolicy", err, connectors.KindOf(err))
	}
	o = testOptions(true)
	o.ConnectTimeout = time.Minute
	_, err = Driver{}.Open(ctx, connectors.Params{ConnectionString: "mongodb://169.254.169.254:27017/db"}, o)
	if connectors.KindOf(err) != connectors.KindPolicy || err == nil {
		t.Errorf("metadata address → %v (kind %d), want KindPolicy", err, connectors.KindOf(err))
	}
	if ctx.Err() != nil {
		t.Error("policy refusals waited for server selection")
	}
}
