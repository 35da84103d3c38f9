package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/internal/testservices"
)

// ---- setup bundle ----

type env struct {
	t      *testing.T
	host   string
	port   int
	direct *goredis.Client // plain client on DB 0, to arrange and verify
	prefix string          // every key a test touches starts with this
}

func newEnv(t *testing.T) *env {
	t.Helper()
	host, port := testservices.Need(t, testservices.Redis)
	e := &env{t: t, host: host, port: port, prefix: "mcptest:" + uniq() + ":"}
	e.direct = goredis.NewClient(&goredis.Options{Addr: net.JoinHostPort(host, strconv.Itoa(port))})
	t.Cleanup(func() {
		e.deleteKeys(e.direct)
		_ = e.direct.Close()
	})
	return e
}

func uniq() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (e *env) key(s string) string { return e.prefix + s }

func (e *env) deleteKeys(c *goredis.Client) {
	ctx := context.Background()
	iter := c.Scan(ctx, 0, e.prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if len(keys) > 0 {
		_ = c.Del(ctx, keys...).Err()
	}
}

func (e *env) params(writes bool) connectors.Params {
	return connectors.Params{Host: e.host, Port: e.port, AllowWrites: writes}
}

func testOptions(allowPrivate bool) connectors.Options {
	return connectors.Options{
		MaxOpen:          4,
		IdleTimeout:      time.Minute,
		StatementTimeout: 5 * time.Second,
		ConnectTimeout:   2 * time.Second,
		Dial:             connectors.HostPolicy{AllowPrivate: allowPrivate}.Dialer(2 * time.Second),
	}
}

func (e *env) open(p connectors.Params) connectors.Source {
	e.t.Helper()
	return e.openWith(p, testOptions(true))
}

func (e *env) openWith(p connectors.Params, o connectors.Options) connectors.Source {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Driver{}.Open(ctx, p, o)
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	e.t.Cleanup(s.Close)
	return s
}

var lim = connectors.Limits{MaxRows: 1000, Timeout: 5 * time.Second}

func run(t *testing.T, s connectors.Source, tool, params string, l connectors.Limits) *connectors.Result {
	t.Helper()
	res, err := s.Run(context.Background(), tool, json.RawMessage(params), l)
	if err != nil {
		t.Fatalf("Run(%s, %s): %v", tool, params, err)
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
		t.Fatalf("Run(%s, %s): error %T %v is not a *connectors.Error", tool, params, err, err)
	}
	return ce
}

func q(cmd string, args ...string) string {
	b, _ := json.Marshal(map[string]any{"command": cmd, "args": args})
	return string(b)
}

func line(l string) string {
	b, _ := json.Marshal(map[string]any{"command": l})
	return string(b)
}

func decode(t *testing.T, body json.RawMessage) any {
	t.Helper()
	var v any
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("body %s is not JSON: %v", body, err)
	}
	return v
}

// ---- unit tests ----

func TestRegistered(t *testing.T) {
	t.Parallel()
	d, ok := connectors.Lookup("redis")
	if !ok {
		t.Fatal("redis driver not registered")
	}
	info := d.Info()
	if info.Name != "Redis" || info.Order != 3 || info.Type != "redis" {
		t.Errorf("Info = %+v", info)
	}
	fields := map[string]connectors.Field{}
	for _, f := range d.Fields() {
		fields[f.Name] = f
	}
	for name, typ := range map[string]string{
		"connection_name": "text", "host": "text", "port": "number", "password": "password",
		"username": "text", "database": "number", "ssl": "checkbox",
	} {
		if fields[name].Type != typ {
			t.Errorf("field %s has type %q, want %q", name, fields[name].Type, typ)
		}
	}
	if !fields["host"].Required || !fields["connection_name"].Required || fields["password"].Required {
		t.Errorf("required flags wrong: %+v", fields)
	}
	if fields["port"].Default != DefaultPort {
		t.Errorf("port default = %v", fields["port"].Default)
	}
	for _, prefix := range []string{"DB_QUERY", "DB_LIST_KEYS"} {
		spec, ok := connectors.FindTool(d, prefix)
		if !ok {
			t.Fatalf("tool %s missing", prefix)
		}
		var schema map[string]any
		if err := json.Unmarshal(spec.InputSchema, &schema); err != nil || schema["type"] != "object" {
			t.Errorf("%s input schema invalid: %v %v", prefix, err, schema)
		}
		if len(spec.Parameters) == 0 || !strings.Contains(spec.Description, "%s") {
			t.Errorf("%s spec incomplete: %+v", prefix, spec)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	good := []connectors.Params{
		{Host: "redis.example.com", Port: 6379},
		{Host: "10.0.0.1"},
		{Host: "::1", Port: 6380, Database: "15"},
		{Host: "[2001:db8::1]", Database: ""},
	}
	for _, p := range good {
		if err := (Driver{}).Validate(p); err != nil {
			t.Errorf("Validate(%v) = %v", p, err)
		}
	}
	bad := []connectors.Params{
		{Host: ""},
		{Host: "  "},
		{Host: "redis://example.com"},
		{Host: "example.com:6379"},
		{Host: "exa mple.com"},
		{Host: "example.com", Port: 70000},
		{Host: "example.com", Port: -1},
		{Host: "example.com", Database: "x"},
		{Host: "example.com", Database: "-1"},
		{Host: "example.com", Database: "256"},
	}
	for _, p := range bad {
		err := (Driver{}).Validate(p)
		if connectors.KindOf(err) != connectors.KindInput || err == nil {
			t.Errorf("Validate(%v) = %v, want a KindInput error", p, err)
		}
	}
	// The password never shows up in an error.
	err := Driver{}.Validate(connectors.Params{Host: "bad host", Password: "s3cret"})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Validate error %v", err)
	}
}

func TestSplitArgs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want []string
	}{
		{"GET k", []string{"GET", "k"}},
		{"  HGETALL   user:1  ", []string{"HGETALL", "user:1"}},
		{`SET "a key" "a \"quoted\" value"`, []string{"SET", "a key", `a "quoted" value`}},
		{`SET k "line\nbreak\ttab\\"`, []string{"SET", "k", "line\nbreak\ttab\\"}},
		{`SET k "\x41\x62\xff"`, []string{"SET", "k", "Ab\xff"}},
		{`SET k 'it\'s raw \n'`, []string{"SET", "k", `it's raw \n`}},
		{`ECHO ""`, []string{"ECHO", ""}},
		{`ECHO pre"fix mid"`, []string{"ECHO", "prefix mid"}},
		{"", nil},
		{"\t\n", nil},
	}
	for _, c := range cases {
		got, err := splitArgs(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{`GET "k`, `GET 'k`, `GET "a"b`, `GET 'a'b`, `GET "a\"`} {
		if got, err := splitArgs(in); err == nil {
			t.Errorf("splitArgs(%q) = %q, want an error", in, got)
		}
	}
}

func TestParseQuery(t *testing.T) {
	t.Parallel()
	cases := []struct {
		params string
		want   []string
	}{
		{`{"command": "HGETALL", "args": ["k"]}`, []string{"HGETALL", "k"}},
		{`{"command": "HGETALL k"}`, []string{"HGETALL", "k"}},
		{`{"command": "LRANGE", "args": ["my list", 0, -1]}`, []string{"LRANGE", "my list", "0", "-1"}},
		{`{"command": "ZADD z", "args": [1.5, "m"]}`, []string{"ZADD", "z", "1.5", "m"}},
		{`{"query": "GET k"}`, []string{"GET", "k"}},
	}
	for _, c := range cases {
		got, err := parseQuery(json.RawMessage(c.params))
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseQuery(%s) = %q, %v; want %q", c.params, got, err, c.want)
		}
	}
	for _, bad := range []string{
		`{}`, `{"command": ""}`, `{"command": "   "}`, `{"command": 5}`,
		`{"command": "GET", "args": [{"a": 1}]}`, `{"command": "GET", "args": [null]}`,
		`{"command": "GET", "args": [true]}`, `{"command": "GET k", "extra": 1}`,
		`{"command": "GET \"k"}`, `[1]`, `{"command": "GET"} x`,
	} {
		_, err := parseQuery(json.RawMessage(bad))
		if connectors.KindOf(err) != connectors.KindInput || err == nil {
			t.Errorf("parseQuery(%s) = %v, want KindInput", bad, err)
		}
	}
}

func TestCheckCommand(t *testing.T) {
	t.Parallel()
	readOK := [][]string{
		{"GET", "k"}, {"get", "k"}, {"HGETALL", "h"}, {"LRANGE", "l", "0", "-1"},
		{"ZRANGE", "z", "0", "-1", "WITHSCORES"}, {"SCAN", "0"}, {"OBJECT", "ENCODING", "k"},
		{"memory", "usage", "k"}, {"SRANDMEMBER", "s", "3"}, {"SRANDMEMBER", "s"},
		{"XINFO", "STREAM", "x"}, {"INFO"}, {"PING"}, {"DBSIZE"}, {"SORT_RO", "l"},
	}
	for _, a := range readOK {
		if err := checkCommand(a, false); err != nil {
			t.Errorf("read-only %q refused: %v", a, err)
		}
	}
	readRefused := [][]string{
		{"SET", "k", "v"}, {"DEL", "k"}, {"FLUSHALL"}, {"FLUSHDB"}, {"EVAL", "return 1", "0"},
		{"EVAL_RO", "return 1", "0"}, {"FCALL", "f", "0"}, {"CONFIG", "SET", "x", "y"},
		{"CONFIG", "GET", "*"}, {"MULTI"}, {"EXEC"}, {"KEYS", "*"}, {"SORT", "l", "STORE", "d"},
		{"ZRANGESTORE", "d", "z", "0", "-1"}, {"PFCOUNT", "h"}, {"SELECT", "1"}, {"SHUTDOWN"},
		{"DEBUG", "SLEEP", "1"}, {"CLIENT", "KILL", "x"}, {"SUBSCRIBE", "c"}, {"MONITOR"},
		{"SRANDMEMBER", "s", "-5"}, {"HRANDFIELD", "h", "-1"}, {"OBJECT", "FOO"}, {"OBJECT"},
		{"MEMORY", "PURGE"}, {"BLPOP", "l", "0"}, {"XREAD", "STREAMS", "x", "0"},
		{"GETDEL", "k"}, {"GETEX", "k", "EX", "1"}, {"GEORADIUS", "g", "0", "0", "1", "km", "STORE", "d"},
		{"SCRIPT", "FLUSH"}, {"MIGRATE", "h", "1", "k", "0", "1"}, {"SWAPDB", "0", "1"},
	}
	for _, a := range readRefused {
		err := checkCommand(a, false)
		if connectors.KindOf(err) != connectors.KindQuery || err == nil {
			t.Errorf("read-only %q = %v, want KindQuery refusal", a, err)
			continue
		}
		if !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("read-only %q: message %q", a, err)
		}
	}
	if err := checkCommand([]string{"SET", "k", "v"}, false); err.Error() != "command SET is not allowed on a read-only connection" {
		t.Errorf("message = %q", err)
	}
	if err := checkCommand([]string{"keys", "*"}, false); !strings.Contains(err.Error(), "SCAN") {
		t.Errorf("KEYS refusal should suggest SCAN: %q", err)
	}
	writeOK := [][]string{
		{"SET", "k", "v"}, {"DEL", "k"}, {"HSET", "h", "f", "v"}, {"EXPIRE", "k", "10"},
		{"SORT", "l", "STORE", "d"}, {"BLPOP", "l", "1"}, {"SRANDMEMBER", "s", "-5"}, {"GET", "k"},
	}
	for _, a := range writeOK {
		if err := checkCommand(a, true); err != nil {
			t.Errorf("writable %q refused: %v", a, err)
		}
	}
	for name := range DeniedCommands {
		if err := checkCommand([]string{strings.ToLower(name)}, true); connectors.KindOf(err) != connectors.KindQuery || err == nil {
			t.Errorf("writable %s = %v, want refusal", name, err)
		}
		if _, ok := ReadCommands[name]; ok {
			t.Errorf("%s is both read-allowed and denied", name)
		}
	}
	if err := checkCommand(nil, false); connectors.KindOf(err) != connectors.KindInput {
		t.Errorf("empty command: %v", err)
	}
}

func TestEncodeReplyShapes(t *testing.T) {
	t.Parallel()
	res, err := encodeReply(map[any]any{"b": int64(2), "a": "x", "c": nil}, 2)
	if err != nil || string(res.Body) != `{"a":"x","b":2}` || !res.Truncated || res.Rows {
		t.Errorf("map cap: %s %+v %v", res.Body, res, err)
	}
	res, _ = encodeReply([]any{"\xff\x00", 1.5, "inf", true}, 10)
	if string(res.Body) != `[{"$base64":"/wA="},1.5,"inf",true]` || !res.Rows || res.RowCount != 4 || res.Truncated {
		t.Errorf("array: %s %+v", res.Body, res)
	}
	res, _ = encodeReply(pairUp("hgetall", []any{"f1", "v1", "f2", nil}), 10)
	if string(res.Body) != `{"f1":"v1","f2":null}` || res.Rows {
		t.Errorf("RESP2 HGETALL: %s", res.Body)
	}
	if v := pairUp("LRANGE", []any{"a", "b"}); !reflect.DeepEqual(v, []any{"a", "b"}) {
		t.Errorf("pairUp touched LRANGE: %v", v)
	}
	res, _ = encodeReply("<html>&", 10)
	if string(res.Body) != `"<html>&"` || res.Rows {
		t.Errorf("string: %s", res.Body)
	}
}

// ---- against the real Redis ----

func TestQueryForms(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	k := e.key("greeting")
	if err := e.direct.Set(ctx, k, "hello world", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s := e.open(e.params(false))
	for _, params := range []string{
		q("GET", k),
		line("GET " + k),
		line(`GET "` + k + `"`),
		line("get '" + k + "'"),
		`{"command": "GET ` + k + `", "args": []}`,
	} {
		res := run(t, s, "DB_QUERY", params, lim)
		if string(res.Body) != `"hello world"` || res.Rows {
			t.Errorf("%s → %s (rows=%v)", params, res.Body, res.Rows)
		}
	}
	// A key with a space, through args and through quoting.
	spaced := e.key("with space")
	if err := e.direct.Set(ctx, spaced, `quote " and 'single'`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	for _, params := range []string{q("GET", spaced), line(`GET "` + spaced + `"`), line("GET '" + spaced + "'")} {
		res := run(t, s, "DB_QUERY", params, lim)
		if got := decode(t, res.Body); got != `quote " and 'single'` {
			t.Errorf("%s → %v", params, got)
		}
	}
}

func TestResultShapes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	str, hash, list, zset, set, bin, counter := e.key("s"), e.key("h"), e.key("l"), e.key("z"), e.key("set"), e.key("bin"), e.key("n")
	pipe := e.direct.Pipeline()
	pipe.Set(ctx, str, "value", 0)
	pipe.HSet(ctx, hash, "name", "Ada", "lang", "en", "visits", "3")
	pipe.RPush(ctx, list, "a", "b", "c")
	pipe.ZAdd(ctx, zset, goredis.Z{Score: 1.5, Member: "x"}, goredis.Z{Score: 2, Member: "y"})
	pipe.SAdd(ctx, set, "m1", "m2")
	pipe.Set(ctx, bin, []byte{0xff, 0xfe, 0x00, 0x01}, 0)
	pipe.Set(ctx, counter, "41", 0)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	s := e.open(e.params(false))

	check := func(params, want string, rows bool) {
		t.Helper()
		res := run(t, s, "DB_QUERY", params, lim)
		if string(res.Body) != want {
			t.Errorf("%s → %s, want %s", params, res.Body, want)
		}
		if res.Rows != rows {
			t.Errorf("%s → Rows=%v, want %v", params, res.Rows, rows)
		}
	}
	check(q("GET", str), `"value"`, false)
	check(q("GET", e.key("missing")), `null`, false)
	check(q("STRLEN", str), `5`, false)
	check(q("EXISTS", str, e.key("missing")), `1`, false)
	check(q("LRANGE", list, "0", "-1"), `["a","b","c"]`, true)
	check(q("HGETALL", hash), `{"lang":"en","name":"Ada","visits":"3"}`, false)
	check(q("HMGET", hash, "name", "nope"), `["Ada",null]`, true)
	check(q("ZSCORE", zset, "x"), `1.5`, false)
	check(line("ZRANGE "+zset+" 0 -1 WITHSCORES"), `[["x",1.5],["y",2]]`, true)
	check(q("GET", bin), `{"$base64":"//4AAQ=="}`, false)
	check(q("TYPE", hash), `"hash"`, false)
	check(q("PING"), `"PONG"`, false)
	check(q("HEXISTS", hash, "name"), `1`, false)

	res := run(t, s, "DB_QUERY", q("SMEMBERS", set), lim)
	var members []string
	if err := json.Unmarshal(res.Body, &members); err != nil {
		t.Fatal(err)
	}
	sort.Strings(members)
	if !reflect.DeepEqual(members, []string{"m1", "m2"}) || res.RowCount != 2 || !res.Rows {
		t.Errorf("SMEMBERS → %s %+v", res.Body, res)
	}
	res = run(t, s, "DB_QUERY", q("INFO", "server"), lim)
	if info, _ := decode(t, res.Body).(string); !strings.Contains(info, "redis_version:") {
		t.Errorf("INFO → %s", res.Body)
	}

	// A Redis error is KindQuery with Redis's message.
	ce := runErr(t, s, "DB_QUERY", q("LRANGE", str, "0", "1"))
	if ce.Kind != connectors.KindQuery || !strings.Contains(ce.Msg, "WRONGTYPE") {
		t.Errorf("WRONGTYPE → %v (%d)", ce, ce.Kind)
	}
	ce = runErr(t, s, "DB_QUERY", q("GET"))
	if ce.Kind != connectors.KindQuery || !strings.Contains(strings.ToLower(ce.Msg), "wrong number of arguments") {
		t.Errorf("GET without key → %v (%d)", ce, ce.Kind)
	}
	ce = runErr(t, s, "DB_QUERY", `{"command": "GET \"unterminated"}`)
	if ce.Kind != connectors.KindInput {
		t.Errorf("bad quoting → %v (%d)", ce, ce.Kind)
	}
	ce = runErr(t, s, "NO_SUCH_TOOL", `{}`)
	if ce.Kind != connectors.KindInput {
		t.Errorf("unknown tool → %v (%d)", ce, ce.Kind)
	}
}

func TestReadOnlyRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	k, l, z, st, h := e.key("k"), e.key("l"), e.key("z"), e.key("set"), e.key("hll")
	dst := e.key("dst")
	pipe := e.direct.Pipeline()
	pipe.Set(ctx, k, "original", 0)
	pipe.RPush(ctx, l, "3", "1", "2")
	pipe.ZAdd(ctx, z, goredis.Z{Score: 1, Member: "a"})
	pipe.SAdd(ctx, st, "a", "b")
	pipe.PFAdd(ctx, h, "x")
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	maxmem, err := e.direct.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		t.Fatal(err)
	}
	s := e.open(e.params(false))

	refused := []string{
		q("SET", k, "changed"),
		line("set " + k + " changed"),
		q("DEL", k),
		q("APPEND", k, "x"),
		q("EXPIRE", k, "1"),
		q("RENAME", k, dst),
		q("COPY", k, dst),
		q("FLUSHALL"),
		q("FLUSHDB"),
		q("EVAL", "return redis.call('SET', KEYS[1], 'changed')", "1", k),
		q("EVAL_RO", "return 1", "0"),
		q("CONFIG", "SET", "maxmemory-policy", "allkeys-random"),
		q("MULTI"),
		q("KEYS", "*"),
		q("SORT", l, "STORE", dst),
		q("ZRANGESTORE", dst, z, "0", "-1"),
		q("SUNIONSTORE", dst, st),
		q("RPOPLPUSH", l, dst),
		q("LPOP", l),
		q("SPOP", st),
		q("GETDEL", k),
		q("PFCOUNT", h),
		q("SELECT", "1"),
		q("SRANDMEMBER", st, "-100"),
		q("CLIENT", "SETNAME", "x"),
	}
	for _, params := range refused {
		ce := runErr(t, s, "DB_QUERY", params)
		if ce.Kind != connectors.KindQuery || !strings.Contains(ce.Msg, "not allowed") {
			t.Errorf("%s → %q (kind %d), want a read-only refusal", params, ce.Msg, ce.Kind)
		}
	}

	// Nothing changed.
	if v, err := e.direct.Get(ctx, k).Result(); err != nil || v != "original" {
		t.Errorf("%s = %q, %v after refusals", k, v, err)
	}
	if ttl := e.direct.TTL(ctx, k).Val(); ttl != -1 {
		t.Errorf("%s got a TTL %v", k, ttl)
	}
	if n := e.direct.Exists(ctx, dst).Val(); n != 0 {
		t.Errorf("%s was written", dst)
	}
	if v := e.direct.LRange(ctx, l, 0, -1).Val(); !reflect.DeepEqual(v, []string{"3", "1", "2"}) {
		t.Errorf("%s = %q", l, v)
	}
	if n := e.direct.SCard(ctx, st).Val(); n != 2 {
		t.Errorf("%s has %d members", st, n)
	}
	if got := e.direct.ConfigGet(ctx, "maxmemory-policy").Val(); !reflect.DeepEqual(got, maxmem) {
		t.Errorf("maxmemory-policy changed: %v → %v", maxmem, got)
	}
	// The connection is not left inside a transaction or another database:
	// a read still answers normally.
	if res := run(t, s, "DB_QUERY", q("GET", k), lim); string(res.Body) != `"original"` {
		t.Errorf("GET after refusals → %s", res.Body)
	}
	if res := run(t, s, "DB_QUERY", q("SRANDMEMBER", st, "5"), lim); !res.Rows || res.RowCount != 2 {
		t.Errorf("SRANDMEMBER positive count → %s", res.Body)
	}
}

func TestWritesAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	k := e.key("w")
	s := e.open(e.params(true))
	if res := run(t, s, "DB_QUERY", line(`SET `+k+` "new value"`), lim); string(res.Body) != `"OK"` {
		t.Errorf("SET → %s", res.Body)
	}
	if v := e.direct.Get(ctx, k).Val(); v != "new value" {
		t.Errorf("after SET, %s = %q", k, v)
	}
	if res := run(t, s, "DB_QUERY", q("INCRBY", e.key("ctr"), "5"), lim); string(res.Body) != `5` {
		t.Errorf("INCRBY → %s", res.Body)
	}
	if res := run(t, s, "DB_QUERY", q("DEL", k), lim); string(res.Body) != `1` {
		t.Errorf("DEL → %s", res.Body)
	}
	if n := e.direct.Exists(ctx, k).Val(); n != 0 {
		t.Errorf("%s still exists", k)
	}
	for _, params := range []string{
		q("FLUSHALL"), q("FLUSHDB"), q("CONFIG", "SET", "maxmemory-policy", "allkeys-random"),
		q("EVAL", "return 1", "0"), q("KEYS", "*"), q("MULTI"), q("SELECT", "2"), q("SHUTDOWN"),
	} {
		ce := runErr(t, s, "DB_QUERY", params)
		if ce.Kind != connectors.KindQuery || !strings.Contains(ce.Msg, "not allowed") {
			t.Errorf("writable %s → %q (kind %d)", params, ce.Msg, ce.Kind)
		}
	}
	if v := e.direct.Get(ctx, e.key("ctr")).Val(); v != "5" {
		t.Errorf("counter = %q after denied commands", v)
	}
}

func TestDatabaseIndex(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	k := e.key("db7")
	db7 := goredis.NewClient(&goredis.Options{Addr: net.JoinHostPort(e.host, strconv.Itoa(e.port)), DB: 7})
	t.Cleanup(func() {
		e.deleteKeys(db7)
		_ = db7.Close()
	})
	p := e.params(true)
	p.Database = "7"
	s := e.open(p)
	run(t, s, "DB_QUERY", q("SET", k, "in seven"), lim)
	if v := db7.Get(ctx, k).Val(); v != "in seven" {
		t.Errorf("DB 7 has %q", v)
	}
	if n := e.direct.Exists(ctx, k).Val(); n != 0 {
		t.Errorf("key written to DB 0")
	}
}

func TestListKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	want := map[string]string{}
	pipe := e.direct.Pipeline()
	for i := 0; i < 40; i++ {
		k := e.key("user:" + strconv.Itoa(i))
		switch i % 4 {
		case 0:
			pipe.Set(ctx, k, "v", 0)
			want[k] = "string"
		case 1:
			pipe.HSet(ctx, k, "f", "v")
			want[k] = "hash"
		case 2:
			pipe.RPush(ctx, k, "v")
			want[k] = "list"
		case 3:
			pipe.SAdd(ctx, k, "v")
			want[k] = "set"
		}
	}
	for i := 0; i < 10; i++ {
		pipe.Set(ctx, e.key("other:"+strconv.Itoa(i)), "v", 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	s := e.open(e.params(false))

	type page struct {
		Keys []struct {
			Key  string `json:"key"`
			Type string `json:"type"`
		} `json:"keys"`
		Cursor string `json:"cursor"`
		Done   bool   `json:"done"`
	}
	got := map[string]string{}
	cursor, pages := "0", 0
	for {
		params, _ := json.Marshal(map[string]any{"pattern": e.prefix + "user:*", "count": 7, "cursor": cursor})
		res := run(t, s, "DB_LIST_KEYS", string(params), lim)
		var p page
		if err := json.Unmarshal(res.Body, &p); err != nil {
			t.Fatalf("%s: %v", res.Body, err)
		}
		for _, k := range p.Keys {
			got[k.Key] = k.Type
		}
		pages++
		if p.Done != (p.Cursor == "0") {
			t.Fatalf("done=%v with cursor %q", p.Done, p.Cursor)
		}
		if p.Done {
			break
		}
		if pages > 500 {
			t.Fatal("listing never finished")
		}
		cursor = p.Cursor
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("listed %d keys %v, want %d %v", len(got), got, len(want), want)
	}

	// Type filter, and the row cap.
	params, _ := json.Marshal(map[string]any{"pattern": e.prefix + "user:*", "type": "hash", "count": 1000})
	var p page
	_ = json.Unmarshal(run(t, s, "DB_LIST_KEYS", string(params), lim).Body, &p)
	for p.Cursor != "0" { // finish the listing if SCAN stopped early
		params, _ := json.Marshal(map[string]any{"pattern": e.prefix + "user:*", "type": "hash", "count": 1000, "cursor": p.Cursor})
		var next page
		_ = json.Unmarshal(run(t, s, "DB_LIST_KEYS", string(params), lim).Body, &next)
		p.Keys, p.Cursor = append(p.Keys, next.Keys...), next.Cursor
	}
	if len(p.Keys) != 10 {
		t.Errorf("type=hash listed %d keys, want 10", len(p.Keys))
	}
	for _, k := range p.Keys {
		if k.Type != "hash" || want[k.Key] != "hash" {
			t.Errorf("type=hash listed %s (%s)", k.Key, k.Type)
		}
	}
	capped := connectors.Limits{MaxRows: 5, Timeout: 5 * time.Second}
	params, _ = json.Marshal(map[string]any{"pattern": e.prefix + "*", "count": 100})
	res := run(t, s, "DB_LIST_KEYS", string(params), capped)
	var pc page
	_ = json.Unmarshal(res.Body, &pc)
	if len(pc.Keys) > 5 || len(pc.Keys) == 0 {
		t.Errorf("MaxRows 5 listed %d keys", len(pc.Keys))
	}

	for _, bad := range []string{`{"count": 0}`, `{"type": "blob"}`, `{"cursor": "abc"}`, `{"nope": 1}`} {
		if ce := runErr(t, s, "DB_LIST_KEYS", bad); ce.Kind != connectors.KindInput {
			t.Errorf("%s → %v (kind %d)", bad, ce, ce.Kind)
		}
	}
}

func TestRowCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	l := e.key("big")
	items := make([]any, 2500)
	for i := range items {
		items[i] = "item" + strconv.Itoa(i)
	}
	if err := e.direct.RPush(ctx, l, items...).Err(); err != nil {
		t.Fatal(err)
	}
	s := e.open(e.params(false))
	res := run(t, s, "DB_QUERY", line("LRANGE "+l+" 0 -1"), lim)
	var got []string
	if err := json.Unmarshal(res.Body, &got); err != nil {
		t.Fatal(err)
	}
	if !res.Truncated || !res.Rows || res.RowCount != 1000 || len(got) != 1000 {
		t.Fatalf("LRANGE 2500 with MaxRows 1000: truncated=%v rows=%v count=%d len=%d", res.Truncated, res.Rows, res.RowCount, len(got))
	}
	if got[0] != "item0" || got[999] != "item999" {
		t.Errorf("kept %q … %q", got[0], got[999])
	}
	res = run(t, s, "DB_QUERY", line("LRANGE "+l+" 0 9"), lim)
	if res.Truncated || res.RowCount != 10 {
		t.Errorf("LRANGE 0 9: truncated=%v count=%d", res.Truncated, res.RowCount)
	}
}

func TestHostPolicy(t *testing.T) {
	t.Parallel()
	host, port := testservices.Need(t, testservices.Redis)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	_, err := Driver{}.Open(ctx, connectors.Params{Host: host, Port: port}, testOptions(false))
	if connectors.KindOf(err) != connectors.KindPolicy || err == nil {
		t.Errorf("loopback with AllowPrivate=false: %v (kind %d), want KindPolicy", err, connectors.KindOf(err))
	}
	_, err = Driver{}.Open(ctx, connectors.Params{Host: "169.254.169.254", Port: 6379}, testOptions(true))
	if connectors.KindOf(err) != connectors.KindPolicy || err == nil {
		t.Errorf("metadata address: %v (kind %d), want KindPolicy", err, connectors.KindOf(err))
	}
	if ctx.Err() != nil {
		t.Error("policy refusals took until the test deadline")
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := Driver{}.Open(ctx, connectors.Params{Host: "127.0.0.1", Port: 1}, testOptions(true))
	if connectors.KindOf(err) != connectors.KindUnavailable || err == nil {
		t.Errorf("closed port: %v (kind %d), want KindUnavailable", err, connectors.KindOf(err))
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	user, pw := "mcp_test_"+uniq(), "pw-"+uniq()
	if err := e.direct.Do(ctx, "ACL", "SETUSER", user, "on", ">"+pw, "~"+e.prefix+"*", "+@all").Err(); err != nil {
		t.Skipf("cannot create an ACL user: %v", err)
	}
	t.Cleanup(func() { _ = e.direct.Do(context.Background(), "ACL", "DELUSER", user).Err() })
	k := e.key("acl")
	if err := e.direct.Set(ctx, k, "for acl user", 0).Err(); err != nil {
		t.Fatal(err)
	}

	p := e.params(false)
	p.Username, p.Password = user, pw
	s := e.open(p)
	if res := run(t, s, "DB_QUERY", q("GET", k), lim); string(res.Body) != `"for acl user"` {
		t.Errorf("GET as ACL user → %s", res.Body)
	}
	// The ACL forbids other keys: Redis's NOPERM is a query error.
	if ce := runErr(t, s, "DB_QUERY", q("GET", "not-mine-"+uniq())); ce.Kind != connectors.KindQuery {
		t.Errorf("NOPERM → %v (kind %d)", ce, ce.Kind)
	}

	p.Password = "wrong-" + pw
	_, err := Driver{}.Open(ctx, p, testOptions(true))
	if connectors.KindOf(err) != connectors.KindAuth || err == nil {
		t.Fatalf("wrong password: %v (kind %d), want KindAuth", err, connectors.KindOf(err))
	}
	if strings.Contains(err.Error(), p.Password) {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestTimeoutDiscardsConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	k, l := e.key("k"), e.key("empty-list")
	if err := e.direct.Set(ctx, k, "still right", 0).Err(); err != nil {
		t.Fatal(err)
	}
	o := testOptions(true)
	o.MaxOpen = 1
	s := e.openWith(e.params(true), o)
	if n := s.OpenConns(); n != 1 {
		t.Fatalf("OpenConns after Open = %d, want 1", n)
	}

	short := connectors.Limits{MaxRows: 10, Timeout: 200 * time.Millisecond}
	_, err := s.Run(ctx, "DB_QUERY", json.RawMessage(q("BLPOP", l, "5")), short)
	if connectors.KindOf(err) != connectors.KindTimeout || err == nil {
		t.Fatalf("BLPOP past the deadline: %v (kind %d), want KindTimeout", err, connectors.KindOf(err))
	}
	if n := s.OpenConns(); n != 0 {
		t.Errorf("OpenConns after a timeout = %d, want 0 (the connection must be discarded)", n)
	}
	// The next command gets its own reply on a fresh connection.
	if res := run(t, s, "DB_QUERY", q("GET", k), lim); string(res.Body) != `"still right"` {
		t.Errorf("GET after timeout → %s", res.Body)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	s.Close()
	_, err = s.Run(ctx, "DB_QUERY", json.RawMessage(q("GET", k)), lim)
	if connectors.KindOf(err) != connectors.KindUnavailable || err == nil {
		t.Errorf("Run after Close: %v", err)
	}
}
