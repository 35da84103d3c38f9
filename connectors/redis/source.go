package redis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// source is one pooled Redis client.
type source struct {
	client *goredis.Client
	addr   string
	writes bool
}

// maxScanCalls bounds the SCAN round trips of one DB_LIST_KEYS call; the
// cursor it returns continues where it stopped.
const maxScanCalls = 1000

// defaultListCount is DB_LIST_KEYS's page size when count is absent.
const defaultListCount = 100

// Run executes DB_QUERY or DB_LIST_KEYS.
func (s *source) Run(ctx context.Context, tool string, params json.RawMessage, lim connectors.Limits) (*connectors.Result, error) {
	if lim.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, lim.Timeout)
		defer cancel()
	}
	switch tool {
	case "DB_QUERY":
		return s.query(ctx, params, lim)
	case "DB_LIST_KEYS":
		return s.listKeys(ctx, params, lim)
	}
	return nil, connectors.Errorf(connectors.KindInput, "unknown tool %q for redis", tool)
}

func (s *source) query(ctx context.Context, params json.RawMessage, lim connectors.Limits) (*connectors.Result, error) {
	words, err := parseQuery(params)
	if err != nil {
		return nil, err
	}
	if err := checkCommand(words, s.writes); err != nil {
		return nil, err
	}
	args := make([]any, len(words))
	for i, w := range words {
		args[i] = w
	}
	v, err := s.client.Do(ctx, args...).Result()
	if errors.Is(err, goredis.Nil) {
		v, err = nil, nil
	}
	if err != nil {
		return nil, s.classify(err, false)
	}
	return encodeReply(pairUp(words[0], v), lim.MaxRows)
}

// pairUp turns HGETALL's flat field, value list, the answer of a server
// without RESP3 (Redis < 6), into the map RESP3 would have sent.
func pairUp(command string, v any) any {
	flat, ok := v.([]any)
	if !ok || !strings.EqualFold(command, "HGETALL") || len(flat)%2 != 0 {
		return v
	}
	m := make(map[any]any, len(flat)/2)
	for i := 0; i < len(flat); i += 2 {
		m[flat[i]] = flat[i+1]
	}
	return m
}

// encodeReply encodes a reply as the Result body, applying the row cap to
// arrays (and to maps' entries) and the byte cap, connectors.MaxResultBytes,
// to everything: an array or map is cut before the first element that does
// not fit, and a single value over the cap is refused.
func encodeReply(v any, maxRows int) (*connectors.Result, error) {
	res := &connectors.Result{}
	var err error
	switch r := v.(type) {
	case []any:
		if maxRows > 0 && len(r) > maxRows {
			r = r[:maxRows]
			res.Truncated = true
		}
		var cut bool
		res.Body, res.RowCount, cut, err = encodeCapped('[', ']', len(r), connectors.MaxResultBytes,
			func(i int) ([]byte, error) { return marshal(jsonValue(r[i])) })
		res.Truncated = res.Truncated || cut
		res.Rows = true
	case map[any]any:
		m := jsonValue(r).(map[string]any)
		keys := sortedKeys(m)
		if maxRows > 0 && len(keys) > maxRows {
			keys = keys[:maxRows]
			res.Truncated = true
		}
		var cut bool
		res.Body, _, cut, err = encodeCapped('{', '}', len(keys), connectors.MaxResultBytes, func(i int) ([]byte, error) {
			k, err := marshal(keys[i])
			if err != nil {
				return nil, err
			}
			val, err := marshal(m[keys[i]])
			return append(append(k, ':'), val...), err
		})
		res.Truncated = res.Truncated || cut
	default:
		res.Body, err = marshal(jsonValue(v))
		if err == nil && len(res.Body) > connectors.MaxResultBytes {
			return nil, errTooLarge(int64(len(res.Body)))
		}
	}
	if err != nil {
		return nil, connectors.Errorf(connectors.KindQuery, "cannot encode the reply: %v", err)
	}
	return res, nil
}

// errTooLarge refuses a single value whose encoding would pass the result cap.
func errTooLarge(n int64) error {
	return connectors.Errorf(connectors.KindQuery,
		"the reply holds a value of %d bytes, larger than the %d MiB result limit; read part of it, e.g. GETRANGE key 0 1048575 or LRANGE key 0 99",
		n, connectors.MaxResultBytes>>20)
}

// encodeCapped encodes n elements between open and close, stopping before
// the first element that would make the whole longer than limit. It returns
// the body, the number of elements written and whether any was left out.
func encodeCapped(open, closing byte, n, limit int, elem func(i int) ([]byte, error)) (json.RawMessage, int, bool, error) {
	buf := []byte{open}
	for i := 0; i < n; i++ {
		b, err := elem(i)
		if err != nil {
			return nil, 0, false, err
		}
		if len(buf)+1+len(b)+1 > limit {
			return append(buf, closing), i, true, nil
		}
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, b...)
	}
	return append(buf, closing), n, false, nil
}

// marshal encodes v without HTML escaping and without a trailing newline.
func marshal(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// listKeysInput is DB_LIST_KEYS's params.
type listKeysInput struct {
	Pattern string          `json:"pattern"`
	Type    string          `json:"type"`
	Count   *int            `json:"count"`
	Cursor  json.RawMessage `json:"cursor"`
}

// keyEntry is one listed key.
type keyEntry struct {
	Key  any    `json:"key"`
	Type string `json:"type"`
}

var keyTypes = map[string]bool{"string": true, "list": true, "set": true, "zset": true, "hash": true, "stream": true}

func (s *source) listKeys(ctx context.Context, params json.RawMessage, lim connectors.Limits) (*connectors.Result, error) {
	var in listKeysInput
	if err := decodeStrict(params, &in); err != nil {
		return nil, err
	}
	pattern := in.Pattern
	if pattern == "" {
		pattern = "*"
	}
	typ := strings.ToLower(in.Type)
	if typ != "" && !keyTypes[typ] {
		return nil, connectors.Errorf(connectors.KindInput,
			"type %q is not a Redis type (string, list, set, zset, hash or stream)", in.Type)
	}
	want := defaultListCount
	if in.Count != nil {
		if *in.Count < 1 {
			return nil, connectors.Errorf(connectors.KindInput, "count must be at least 1")
		}
		want = *in.Count
	}
	if lim.MaxRows > 0 && want > lim.MaxRows {
		want = lim.MaxRows
	}
	cursor, err := parseCursor(in.Cursor)
	if err != nil {
		return nil, err
	}

	// Every key scanned matches "*" with no type filter, so ask for about what
	// is missing; otherwise look at more keys per call, as few may match.
	var keys []string
	for calls := 0; calls < maxScanCalls; calls++ {
		hint := int64(want - len(keys))
		if pattern != "*" || typ != "" {
			hint = max(hint, 500)
		}
		// A batch returns about COUNT keys at most: keep it within the row
		// cap, as keys cut from a batch are skipped by the next cursor.
		if lim.MaxRows > 0 {
			hint = max(min(hint, int64(lim.MaxRows-len(keys))), 1)
		}
		var batch []string
		if typ != "" {
			batch, cursor, err = s.client.ScanType(ctx, cursor, pattern, hint, typ).Result()
		} else {
			batch, cursor, err = s.client.Scan(ctx, cursor, pattern, hint).Result()
		}
		if err != nil {
			return nil, s.classify(err, false)
		}
		keys = append(keys, batch...)
		if cursor == 0 || len(keys) >= want {
			break
		}
	}

	res := &connectors.Result{}
	if lim.MaxRows > 0 && len(keys) > lim.MaxRows {
		keys = keys[:lim.MaxRows]
		res.Truncated = true
	}
	types := make([]string, len(keys))
	if typ != "" {
		for i := range types {
			types[i] = typ
		}
	} else if len(keys) > 0 {
		pipe := s.client.Pipeline()
		cmds := make([]*goredis.StatusCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.Type(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, s.classify(err, false)
		}
		for i, c := range cmds {
			types[i] = c.Val()
		}
	}
	// Huge keys are cut at the byte cap, leaving room for the cursor.
	list, n, cut, err := encodeCapped('[', ']', len(keys), connectors.MaxResultBytes-64, func(i int) ([]byte, error) {
		return marshal(keyEntry{Key: jsonString(keys[i]), Type: types[i]})
	})
	if err == nil {
		res.Body, err = marshal(struct {
			Keys   json.RawMessage `json:"keys"`
			Cursor string          `json:"cursor"`
			Done   bool            `json:"done"`
		}{list, strconv.FormatUint(cursor, 10), cursor == 0})
	}
	if err != nil {
		return nil, connectors.Errorf(connectors.KindQuery, "cannot encode the key list: %v", err)
	}
	res.Truncated = res.Truncated || cut
	res.RowCount = n
	return res, nil
}

// parseCursor accepts a SCAN cursor as a string or a number.
func parseCursor(raw json.RawMessage) (uint64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, nil
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, connectors.Errorf(connectors.KindInput, "cursor: %v", err)
		}
	}
	if s == "" {
		return 0, nil
	}
	c, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, connectors.Errorf(connectors.KindInput, "cursor must be the number a previous call returned, not %q", s)
	}
	return c, nil
}

// Ping checks that Redis answers.
func (s *source) Ping(ctx context.Context) error {
	return s.classify(s.client.Ping(ctx).Err(), true)
}

// OpenConns is the number of connections in the pool, busy or idle.
func (s *source) OpenConns() int { return int(s.client.PoolStats().TotalConns) }

// Close closes the pool.
func (s *source) Close() { _ = s.client.Close() }
