package mongodb

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// maxCountedCollections bounds the per-collection estimated counts of
// DB_LIST_COLLECTIONS.
const maxCountedCollections = 100

// queryInput is DB_QUERY's params.
type queryInput struct {
	Operation  string          `json:"operation"`
	Collection string          `json:"collection"`
	Filter     json.RawMessage `json:"filter"`
	Projection json.RawMessage `json:"projection"`
	Sort       json.RawMessage `json:"sort"`
	Limit      *int64          `json:"limit"`
	Skip       *int64          `json:"skip"`
	Pipeline   json.RawMessage `json:"pipeline"`
	Documents  json.RawMessage `json:"documents"`
	Update     json.RawMessage `json:"update"`
	Multi      bool            `json:"multi"`
	Upsert     bool            `json:"upsert"`
}

// present reports whether a params field was given (and is not null).
func present(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

// Run executes DB_QUERY or DB_LIST_COLLECTIONS.
func (s *source) Run(ctx context.Context, tool string, params json.RawMessage, lim connectors.Limits) (*connectors.Result, error) {
	timeout := lim.Timeout
	if s.stmtTimeout > 0 && (timeout <= 0 || s.stmtTimeout < timeout) {
		timeout = s.stmtTimeout
	}
	if timeout > 0 {
		// The driver sends the remaining time as maxTimeMS, so the server
		// stops too.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	switch tool {
	case "DB_QUERY":
		return s.query(ctx, params, lim)
	case "DB_LIST_COLLECTIONS":
		if err := decodeStrict(params, &struct{}{}); err != nil {
			return nil, err
		}
		return s.listCollections(ctx, lim)
	}
	return nil, connectors.Errorf(connectors.KindInput, "unknown tool %q for mongodb", tool)
}

func (s *source) query(ctx context.Context, params json.RawMessage, lim connectors.Limits) (*connectors.Result, error) {
	in, op, err := prepare(params, s.writes)
	if err != nil {
		return nil, err
	}
	coll := s.db.Collection(in.Collection)
	switch op {
	case "find":
		return s.find(ctx, coll, in, lim)
	case "aggregate":
		return s.aggregate(ctx, coll, in, lim)
	case "count":
		return s.count(ctx, coll, in)
	case "insert":
		return s.insert(ctx, coll, in, lim)
	case "update":
		return s.update(ctx, coll, in)
	}
	return s.delete(ctx, coll, in)
}

// prepare decodes DB_QUERY's params and applies every check that needs no
// server, the read-only guard included.
func prepare(params json.RawMessage, writes bool) (*queryInput, string, error) {
	var in queryInput
	if err := decodeStrict(params, &in); err != nil {
		return nil, "", err
	}
	op := strings.ToLower(strings.TrimSpace(in.Operation))
	if op == "" {
		op = "find"
		if present(in.Pipeline) {
			op = "aggregate"
		}
	}
	if strings.TrimSpace(in.Collection) == "" {
		return nil, "", connectors.Errorf(connectors.KindInput, `"collection" is required`)
	}
	// Fields that belong to other operations are a mistake worth reporting.
	allowed := map[string][]string{
		"find":      {"filter", "projection", "sort", "limit", "skip"},
		"aggregate": {"pipeline"},
		"count":     {"filter", "limit", "skip"},
		"insert":    {"documents"},
		"update":    {"filter", "update", "multi", "upsert"},
		"delete":    {"filter", "multi"},
	}
	fields, known := allowed[op]
	if !known {
		return nil, "", connectors.Errorf(connectors.KindInput,
			"operation %q is not supported; use find, aggregate or count (insert, update, delete when writes are allowed)", in.Operation)
	}
	given := []struct {
		name string
		ok   bool
	}{
		{"filter", present(in.Filter)}, {"projection", present(in.Projection)}, {"sort", present(in.Sort)},
		{"limit", in.Limit != nil}, {"skip", in.Skip != nil}, {"pipeline", present(in.Pipeline)},
		{"documents", present(in.Documents)}, {"update", present(in.Update)}, {"multi", in.Multi}, {"upsert", in.Upsert},
	}
	for _, g := range given {
		if g.ok && !contains(fields, g.name) {
			return nil, "", connectors.Errorf(connectors.KindInput, "%q is not used by operation %s (it takes %s)",
				g.name, op, strings.Join(fields, ", "))
		}
	}
	if writes {
		return &in, op, nil
	}
	if op == "insert" || op == "update" || op == "delete" {
		return nil, "", connectors.Errorf(connectors.KindQuery, "operation %s is not allowed on a read-only connection", op)
	}
	if err := checkReadOnly(&in); err != nil {
		return nil, "", err
	}
	return &in, op, nil
}

// readOnlyKeys are refused at any depth of a read-only connection's filter,
// projection, sort or pipeline: stages that write, and operators that run
// server-side JavaScript. MongoDB's operators are case sensitive, so "$OUT"
// is at worst an unknown operator; keys are still compared
// case-insensitively, to be safe against any server that is not.
var readOnlyKeys = []string{"$out", "$merge", "$where", "$function", "$accumulator"}

// checkReadOnly refuses a query that holds a key of readOnlyKeys.
func checkReadOnly(in *queryInput) error {
	var docs []bson.D
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"filter", in.Filter}, {"projection", in.Projection}, {"sort", in.Sort}} {
		if present(f.raw) {
			d, err := parseDoc(f.name, f.raw)
			if err != nil {
				return err
			}
			docs = append(docs, d)
		}
	}
	if present(in.Pipeline) {
		stages, err := parsePipeline(in.Pipeline)
		if err != nil {
			return err
		}
		docs = append(docs, stages...)
	}
	key, found := findKey(docs, readOnlyKeys...)
	switch {
	case !found:
		return nil
	case key == "$out" || key == "$merge":
		return connectors.Errorf(connectors.KindQuery,
			"stage %s writes to a collection and is not allowed on a read-only connection", key)
	}
	return connectors.Errorf(connectors.KindQuery,
		"operator %s runs server-side JavaScript and is not allowed on a read-only connection", key)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// rowCap is how many documents to fetch: one more than MaxRows, to know
// whether the cap cut the result. 0 means no cap.
func rowCap(lim connectors.Limits) int64 {
	if lim.MaxRows <= 0 {
		return 0
	}
	return int64(lim.MaxRows) + 1
}

func nonNegative(name string, v *int64) (int64, error) {
	if v == nil {
		return 0, nil
	}
	if *v < 0 {
		return 0, connectors.Errorf(connectors.KindInput, "%s must not be negative", name)
	}
	return *v, nil
}

func (s *source) find(ctx context.Context, coll *mongo.Collection, in *queryInput, lim connectors.Limits) (*connectors.Result, error) {
	filter, err := parseDoc("filter", in.Filter)
	if err != nil {
		return nil, err
	}
	opts := options.Find()
	if present(in.Projection) {
		proj, err := parseDoc("projection", in.Projection)
		if err != nil {
			return nil, err
		}
		opts.SetProjection(proj)
	}
	if present(in.Sort) {
		srt, err := parseDoc("sort", in.Sort)
		if err != nil {
			return nil, err
		}
		opts.SetSort(srt)
	}
	limit, err := nonNegative("limit", in.Limit)
	if err != nil {
		return nil, err
	}
	skip, err := nonNegative("skip", in.Skip)
	if err != nil {
		return nil, err
	}
	if c := rowCap(lim); c > 0 && (limit == 0 || limit > c) {
		limit = c
	}
	if limit > 0 {
		opts.SetLimit(limit)
	}
	if skip > 0 {
		opts.SetSkip(skip)
	}
	cur, err := coll.Find(ctx, filter, opts)
	if err != nil {
		return nil, s.classify(err, false)
	}
	return s.drain(ctx, cur, lim)
}

func (s *source) aggregate(ctx context.Context, coll *mongo.Collection, in *queryInput, lim connectors.Limits) (*connectors.Result, error) {
	pipeline, err := parsePipeline(in.Pipeline)
	if err != nil {
		return nil, err
	}
	writesLast := false
	if n := len(pipeline); n > 0 && len(pipeline[n-1]) > 0 {
		k := pipeline[n-1][0].Key
		writesLast = k == "$out" || k == "$merge"
	}
	if c := rowCap(lim); c > 0 && !writesLast {
		pipeline = append(pipeline, bson.D{{Key: "$limit", Value: c}})
	}
	cur, err := coll.Aggregate(ctx, pipeline)
	if err != nil {
		return nil, s.classify(err, false)
	}
	return s.drain(ctx, cur, lim)
}

// drain encodes a cursor's documents, at most MaxRows of them, into one
// JSON array.
func (s *source) drain(ctx context.Context, cur *mongo.Cursor, lim connectors.Limits) (*connectors.Result, error) {
	defer func() {
		// Kill the server cursor even when ctx has expired.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = cur.Close(cctx)
	}()
	res := &connectors.Result{Rows: true}
	var buf bytes.Buffer
	buf.WriteByte('[')
	for cur.Next(ctx) {
		if lim.MaxRows > 0 && res.RowCount >= lim.MaxRows {
			res.Truncated = true
			break
		}
		mark := buf.Len()
		if res.RowCount > 0 {
			buf.WriteByte(',')
		}
		if err := appendDoc(&buf, cur.Current); err != nil {
			return nil, connectors.Errorf(connectors.KindQuery, "cannot encode a result document: %v", err)
		}
		// Keep room for the closing bracket; a document that does not fit
		// is taken back whole, and the server cursor is killed below.
		if buf.Len()+1 > connectors.MaxResultBytes {
			buf.Truncate(mark)
			res.Truncated = true
			break
		}
		res.RowCount++
	}
	if err := cur.Err(); err != nil {
		return nil, s.classify(err, false)
	}
	buf.WriteByte(']')
	res.Body = buf.Bytes()
	return res, nil
}

func (s *source) count(ctx context.Context, coll *mongo.Collection, in *queryInput) (*connectors.Result, error) {
	filter, err := parseDoc("filter", in.Filter)
	if err != nil {
		return nil, err
	}
	opts := options.Count()
	limit, err := nonNegative("limit", in.Limit)
	if err != nil {
		return nil, err
	}
	skip, err := nonNegative("skip", in.Skip)
	if err != nil {
		return nil, err
	}
	if limit > 0 {
		opts.SetLimit(limit)
	}
	if skip > 0 {
		opts.SetSkip(skip)
	}
	n, err := coll.CountDocuments(ctx, filter, opts)
	if err != nil {
		return nil, s.classify(err, false)
	}
	return &connectors.Result{Body: json.RawMessage(fmt.Sprintf(`{"count":%d}`, n))}, nil
}

func (s *source) insert(ctx context.Context, coll *mongo.Collection, in *queryInput, lim connectors.Limits) (*connectors.Result, error) {
	if !present(in.Documents) {
		return nil, connectors.Errorf(connectors.KindInput, `"documents" is required for insert`)
	}
	docs, err := parseDocArray("documents", in.Documents)
	if err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, connectors.Errorf(connectors.KindInput, `"documents" is empty`)
	}
	if lim.MaxRows > 0 && len(docs) > lim.MaxRows {
		return nil, connectors.Errorf(connectors.KindInput, "at most %d documents can be inserted in one call", lim.MaxRows)
	}
	r, err := coll.InsertMany(ctx, docs)
	if err != nil {
		return nil, s.classify(err, false)
	}
	return s.encodeObject(bson.D{{Key: "inserted_count", Value: len(r.InsertedIDs)}, {Key: "inserted_ids", Value: r.InsertedIDs}})
}

func (s *source) update(ctx context.Context, coll *mongo.Collection, in *queryInput) (*connectors.Result, error) {
	if !present(in.Filter) || !present(in.Update) {
		return nil, connectors.Errorf(connectors.KindInput, `update needs "filter" and "update"`)
	}
	filter, err := parseDoc("filter", in.Filter)
	if err != nil {
		return nil, err
	}
	var upd any
	if raw := bytes.TrimSpace(unquote(in.Update)); len(raw) > 0 && raw[0] == '[' {
		upd, err = parsePipeline(in.Update)
	} else {
		var doc bson.D
		doc, err = parseDoc("update", in.Update)
		if err == nil && (len(doc) == 0 || !strings.HasPrefix(doc[0].Key, "$")) {
			err = connectors.Errorf(connectors.KindInput,
				`update must use update operators such as {"$set": {…}}, or be an update pipeline`)
		}
		upd = doc
	}
	if err != nil {
		return nil, err
	}
	var r *mongo.UpdateResult
	if in.Multi {
		r, err = coll.UpdateMany(ctx, filter, upd, options.UpdateMany().SetUpsert(in.Upsert))
	} else {
		r, err = coll.UpdateOne(ctx, filter, upd, options.UpdateOne().SetUpsert(in.Upsert))
	}
	if err != nil {
		return nil, s.classify(err, false)
	}
	return s.encodeObject(bson.D{
		{Key: "matched_count", Value: r.MatchedCount},
		{Key: "modified_count", Value: r.ModifiedCount},
		{Key: "upserted_id", Value: r.UpsertedID},
	})
}

func (s *source) delete(ctx context.Context, coll *mongo.Collection, in *queryInput) (*connectors.Result, error) {
	filter, err := parseDoc("filter", in.Filter)
	if err != nil {
		return nil, err
	}
	if len(filter) == 0 {
		return nil, connectors.Errorf(connectors.KindInput,
			"delete needs a non-empty filter; deleting every document of a collection is not supported")
	}
	var r *mongo.DeleteResult
	if in.Multi {
		r, err = coll.DeleteMany(ctx, filter)
	} else {
		r, err = coll.DeleteOne(ctx, filter)
	}
	if err != nil {
		return nil, s.classify(err, false)
	}
	return s.encodeObject(bson.D{{Key: "deleted_count", Value: r.DeletedCount}})
}

func (s *source) encodeObject(d bson.D) (*connectors.Result, error) {
	raw, err := bson.Marshal(d)
	if err != nil {
		return nil, connectors.Errorf(connectors.KindQuery, "cannot encode the result: %v", err)
	}
	var buf bytes.Buffer
	if err := appendDoc(&buf, raw); err != nil {
		return nil, connectors.Errorf(connectors.KindQuery, "cannot encode the result: %v", err)
	}
	return &connectors.Result{Body: buf.Bytes()}, nil
}

// collectionRow is one row of DB_LIST_COLLECTIONS.
type collectionRow struct {
	Name           string `json:"name"`
	Type           string `json:"type"`
	EstimatedCount *int64 `json:"estimated_count,omitempty"`
}

func (s *source) listCollections(ctx context.Context, lim connectors.Limits) (*connectors.Result, error) {
	specs, err := s.db.ListCollectionSpecifications(ctx, bson.D{})
	if err != nil {
		return nil, s.classify(err, false)
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	res := &connectors.Result{Rows: true}
	if lim.MaxRows > 0 && len(specs) > lim.MaxRows {
		specs = specs[:lim.MaxRows]
		res.Truncated = true
	}
	rows := make([]collectionRow, len(specs))
	for i, sp := range specs {
		typ := sp.Type
		if typ == "" {
			typ = "collection"
		}
		rows[i] = collectionRow{Name: sp.Name, Type: typ}
		if typ == "collection" && len(specs) <= maxCountedCollections && !strings.HasPrefix(sp.Name, "system.") {
			if n, err := s.db.Collection(sp.Name).EstimatedDocumentCount(ctx); err == nil {
				rows[i].EstimatedCount = &n
			} else if ctx.Err() != nil {
				return nil, s.classify(err, false)
			}
		}
	}
	body, err := json.Marshal(rows)
	if err != nil {
		return nil, connectors.Errorf(connectors.KindQuery, "cannot encode the collection list: %v", err)
	}
	res.Body = body
	res.RowCount = len(rows)
	return res, nil
}

// decodeStrict decodes params into v, refusing unknown fields. Empty params
// decode as {}.
func decodeStrict(params json.RawMessage, v any) error {
	params = bytes.TrimSpace(params)
	if len(params) == 0 || bytes.Equal(params, []byte("null")) {
		params = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return connectors.Errorf(connectors.KindInput, "invalid params: %v", err)
	}
	if dec.More() {
		return connectors.Errorf(connectors.KindInput, "invalid params: trailing data after the object")
	}
	return nil
}

// unquote returns the Extended JSON inside a JSON string, or raw itself when
// it is not a string. Callers sometimes send {"filter": "{\"a\": 1}"}.
func unquote(raw json.RawMessage) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			return json.RawMessage(strings.TrimSpace(s))
		}
	}
	return raw
}

// parseDoc parses an Extended JSON object. Absent or null is an empty
// document.
func parseDoc(name string, raw json.RawMessage) (bson.D, error) {
	raw = unquote(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return bson.D{}, nil
	}
	if raw[0] != '{' {
		return nil, connectors.Errorf(connectors.KindInput, "%s must be a JSON object", name)
	}
	var d bson.D
	if err := bson.UnmarshalExtJSON(raw, false, &d); err != nil {
		return nil, connectors.Errorf(connectors.KindInput, "%s is not valid Extended JSON: %s", name, shortErr(err))
	}
	if d == nil {
		d = bson.D{}
	}
	return d, nil
}

// parseDocArray parses an Extended JSON array of objects (or one object).
func parseDocArray(name string, raw json.RawMessage) ([]bson.D, error) {
	raw = unquote(raw)
	if len(raw) > 0 && raw[0] == '{' {
		d, err := parseDoc(name, raw)
		if err != nil {
			return nil, err
		}
		return []bson.D{d}, nil
	}
	if len(raw) == 0 || raw[0] != '[' {
		return nil, connectors.Errorf(connectors.KindInput, "%s must be a JSON array of objects", name)
	}
	// Extended JSON's top level is a document: wrap the array in one.
	wrapped := make([]byte, 0, len(raw)+8)
	wrapped = append(wrapped, `{"a":`...)
	wrapped = append(wrapped, raw...)
	wrapped = append(wrapped, '}')
	var w struct {
		A []bson.Raw `bson:"a"`
	}
	if err := bson.UnmarshalExtJSON(wrapped, false, &w); err != nil {
		return nil, connectors.Errorf(connectors.KindInput, "%s is not an array of Extended JSON objects: %s", name, shortErr(err))
	}
	out := make([]bson.D, len(w.A))
	for i, r := range w.A {
		if err := bson.Unmarshal(r, &out[i]); err != nil {
			return nil, connectors.Errorf(connectors.KindInput, "%s[%d]: %v", name, i, err)
		}
		if out[i] == nil {
			out[i] = bson.D{}
		}
	}
	return out, nil
}

// parsePipeline parses an aggregation pipeline: an array of stage objects.
func parsePipeline(raw json.RawMessage) ([]bson.D, error) {
	if !present(raw) {
		return nil, connectors.Errorf(connectors.KindInput, `"pipeline" is required for aggregate`)
	}
	if r := unquote(raw); len(r) == 0 || r[0] != '[' {
		return nil, connectors.Errorf(connectors.KindInput, "pipeline must be a JSON array of stages, e.g. [{\"$match\": {…}}]")
	}
	stages, err := parseDocArray("pipeline", raw)
	if err != nil {
		return nil, err
	}
	for i, st := range stages {
		if len(st) != 1 {
			return nil, connectors.Errorf(connectors.KindInput,
				"pipeline[%d] must have exactly one stage name such as $match, not %d keys", i, len(st))
		}
	}
	return stages, nil
}

// findKey reports the first of names used as a key at any depth of the
// stages, walking their BSON encoding so no value type is overlooked.
func findKey(stages []bson.D, names ...string) (string, bool) {
	for _, st := range stages {
		raw, err := bson.Marshal(st)
		if err != nil {
			// Cannot happen for parsed Extended JSON; refuse to be safe.
			return names[0], true
		}
		if k, ok := findKeyRaw(raw, names); ok {
			return k, true
		}
	}
	return "", false
}

func findKeyRaw(doc bson.Raw, names []string) (string, bool) {
	elems, err := doc.Elements()
	if err != nil {
		return names[0], true
	}
	for _, e := range elems {
		key := e.Key()
		for _, n := range names {
			if strings.EqualFold(key, n) {
				return n, true
			}
		}
		v := e.Value()
		switch v.Type {
		case bson.TypeEmbeddedDocument:
			if k, ok := findKeyRaw(v.Document(), names); ok {
				return k, true
			}
		case bson.TypeArray:
			if k, ok := findKeyRaw(bson.Raw(v.Array()), names); ok {
				return k, true
			}
		case bson.TypeCodeWithScope:
			if _, scope, ok := v.CodeWithScopeOK(); ok {
				if k, ok := findKeyRaw(scope, names); ok {
					return k, true
				}
			}
		}
	}
	return "", false
}

// shortErr is a driver's parse error cut to a readable length: it can quote
// the input, e.g. a key path as deep as the filter.
func shortErr(err error) string {
	const maxLen = 120
	msg := err.Error()
	if len(msg) <= maxLen {
		return msg
	}
	return strings.ToValidUTF8(msg[:maxLen], "") + "…"
}
