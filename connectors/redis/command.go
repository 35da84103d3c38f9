package redis

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// ReadCommands is the allowlist of a read-only connection: command name to
// nil (any arguments) or to the allowed subcommands.
var ReadCommands = map[string][]string{
	// Strings.
	"GET": nil, "MGET": nil, "STRLEN": nil, "GETRANGE": nil, "SUBSTR": nil, "LCS": nil,
	// Keyspace.
	"EXISTS": nil, "TYPE": nil, "TTL": nil, "PTTL": nil, "EXPIRETIME": nil, "PEXPIRETIME": nil,
	"RANDOMKEY": nil, "DBSIZE": nil, "SCAN": nil, "DUMP": nil,
	"OBJECT": {"ENCODING", "FREQ", "IDLETIME", "REFCOUNT", "HELP"},
	"MEMORY": {"USAGE", "STATS", "DOCTOR", "HELP"},
	// Hashes.
	"HGET": nil, "HGETALL": nil, "HMGET": nil, "HKEYS": nil, "HVALS": nil, "HLEN": nil,
	"HEXISTS": nil, "HSTRLEN": nil, "HRANDFIELD": nil, "HSCAN": nil,
	"HTTL": nil, "HPTTL": nil, "HEXPIRETIME": nil, "HPEXPIRETIME": nil,
	// Lists.
	"LRANGE": nil, "LLEN": nil, "LINDEX": nil, "LPOS": nil,
	// Sets.
	"SMEMBERS": nil, "SISMEMBER": nil, "SMISMEMBER": nil, "SCARD": nil, "SRANDMEMBER": nil,
	"SSCAN": nil, "SINTER": nil, "SUNION": nil, "SDIFF": nil, "SINTERCARD": nil,
	// Sorted sets. ZRANGESTORE, ZUNIONSTORE … are separate commands, left out.
	"ZRANGE": nil, "ZRANGEBYSCORE": nil, "ZRANGEBYLEX": nil, "ZREVRANGE": nil,
	"ZREVRANGEBYSCORE": nil, "ZREVRANGEBYLEX": nil, "ZSCORE": nil, "ZMSCORE": nil, "ZCARD": nil,
	"ZCOUNT": nil, "ZLEXCOUNT": nil, "ZRANK": nil, "ZREVRANK": nil, "ZSCAN": nil,
	"ZRANDMEMBER": nil, "ZINTER": nil, "ZUNION": nil, "ZDIFF": nil, "ZINTERCARD": nil,
	// Streams (XREAD is left out: it can block).
	"XRANGE": nil, "XREVRANGE": nil, "XLEN": nil, "XPENDING": nil,
	"XINFO": {"STREAM", "GROUPS", "CONSUMERS", "HELP"},
	// Bitmaps and geo (GEORADIUS can STORE; its _RO variants cannot).
	"BITCOUNT": nil, "GETBIT": nil, "BITPOS": nil, "BITFIELD_RO": nil,
	"GEOPOS": nil, "GEODIST": nil, "GEOHASH": nil, "GEOSEARCH": nil,
	"GEORADIUS_RO": nil, "GEORADIUSBYMEMBER_RO": nil,
	"SORT_RO": nil,
	// RedisJSON reads (the module may be absent: Redis then says so).
	"JSON.GET": nil, "JSON.MGET": nil, "JSON.TYPE": nil, "JSON.STRLEN": nil,
	"JSON.ARRLEN": nil, "JSON.OBJKEYS": nil, "JSON.OBJLEN": nil,
	// Server.
	"PING": nil, "ECHO": nil, "INFO": nil, "TIME": nil, "LASTSAVE": nil,
}

// DeniedCommands are refused even when the connection allows writes, with
// the reason given to the caller.
var DeniedCommands = map[string]string{
	"KEYS":         "it blocks the server while it walks every key; use SCAN (or the DB_LIST_KEYS tool)",
	"FLUSHALL":     "it deletes every key of every database; delete keys individually",
	"FLUSHDB":      "it deletes every key of the database; delete keys individually",
	"SHUTDOWN":     "it is a server administration command",
	"CONFIG":       "it is a server administration command",
	"DEBUG":        "it is a server administration command",
	"MODULE":       "it is a server administration command",
	"ACL":          "it is a server administration command",
	"SAVE":         "it is a server administration command",
	"BGSAVE":       "it is a server administration command",
	"BGREWRITEAOF": "it is a server administration command",
	"LATENCY":      "it is a server administration command",
	"SLOWLOG":      "it is a server administration command",
	"CLUSTER":      "it is a server administration command",
	"FAILOVER":     "it is a server administration command",
	"PFDEBUG":      "it is a server administration command",
	"PFSELFTEST":   "it is a server administration command",
	"MONITOR":      "it streams every command of every client",
	"SYNC":         "it is a replication command",
	"PSYNC":        "it is a replication command",
	"REPLCONF":     "it is a replication command",
	"REPLICAOF":    "it is a replication command",
	"SLAVEOF":      "it is a replication command",
	"MIGRATE":      "it moves keys to another server",
	"SENTINEL":     "it is a server administration command",
	"EVAL":         "scripts cannot be checked before they run",
	"EVALSHA":      "scripts cannot be checked before they run",
	"EVAL_RO":      "scripts cannot be checked before they run",
	"EVALSHA_RO":   "scripts cannot be checked before they run",
	"FCALL":        "functions cannot be checked before they run",
	"FCALL_RO":     "functions cannot be checked before they run",
	"SCRIPT":       "scripts cannot be checked before they run",
	"FUNCTION":     "functions cannot be checked before they run",
	"SUBSCRIBE":    "subscriptions need a dedicated connection",
	"PSUBSCRIBE":   "subscriptions need a dedicated connection",
	"SSUBSCRIBE":   "subscriptions need a dedicated connection",
	"UNSUBSCRIBE":  "subscriptions need a dedicated connection",
	"PUNSUBSCRIBE": "subscriptions need a dedicated connection",
	"SUNSUBSCRIBE": "subscriptions need a dedicated connection",
	"CLIENT":       "it changes pooled connections or other clients",
	"HELLO":        "it changes the state of a pooled connection",
	"AUTH":         "it changes the state of a pooled connection",
	"SELECT":       "it changes the state of a pooled connection; the database is part of the connection settings",
	"SWAPDB":       "it changes the state of a pooled connection",
	"RESET":        "it changes the state of a pooled connection",
	"QUIT":         "it changes the state of a pooled connection",
	"READONLY":     "it changes the state of a pooled connection",
	"READWRITE":    "it changes the state of a pooled connection",
	"ASKING":       "it changes the state of a pooled connection",
	"MULTI":        "transactions span several calls, which may use different pooled connections",
	"EXEC":         "transactions span several calls, which may use different pooled connections",
	"DISCARD":      "transactions span several calls, which may use different pooled connections",
	"WATCH":        "transactions span several calls, which may use different pooled connections",
	"UNWATCH":      "transactions span several calls, which may use different pooled connections",
	"WAIT":         "it blocks waiting for replicas",
	"WAITAOF":      "it blocks waiting for replicas",
}

// randCountCommands take an optional count as their second argument, which
// when negative may repeat elements without bound.
var randCountCommands = map[string]bool{"SRANDMEMBER": true, "HRANDFIELD": true, "ZRANDMEMBER": true}

// checkCommand decides whether args may run. It returns a KindQuery error
// saying why not.
func checkCommand(args []string, allowWrites bool) error {
	if len(args) == 0 {
		return connectors.Errorf(connectors.KindInput, "command is empty")
	}
	name, err := commandName(args[0])
	if err != nil {
		return err
	}
	if why, denied := DeniedCommands[name]; denied {
		if name == "KEYS" || allowWrites {
			return connectors.Errorf(connectors.KindQuery, "command %s is not allowed: %s", name, why)
		}
	}
	if allowWrites {
		return nil
	}
	subs, ok := ReadCommands[name]
	if !ok {
		return connectors.Errorf(connectors.KindQuery, "command %s is not allowed on a read-only connection", name)
	}
	if subs != nil {
		if len(args) < 2 {
			return connectors.Errorf(connectors.KindQuery,
				"command %s without a subcommand is not allowed; allowed on a read-only connection: %s %s",
				name, name, strings.Join(subs, "|"))
		}
		sub := asciiUpper(args[1])
		allowed := false
		for _, s := range subs {
			if s == sub {
				allowed = true
				break
			}
		}
		if !allowed {
			return connectors.Errorf(connectors.KindQuery,
				"command %s %s is not allowed on a read-only connection", name, sub)
		}
	}
	if randCountCommands[name] && len(args) >= 3 {
		if n, err := strconv.ParseInt(args[2], 10, 64); err == nil && n < 0 {
			return connectors.Errorf(connectors.KindQuery,
				"command %s with a negative count is not allowed on a read-only connection; use a positive count", name)
		}
	}
	return nil
}

// commandName upper-cases a command name as Redis compares it (ASCII only).
// A name with any other byte (white space, NUL, a control character, a
// non-ASCII homoglyph) is no Redis command; it is refused rather than sent,
// so no lookup quirk of the server can turn it into a denied command.
func commandName(w string) (string, error) {
	if w == "" {
		return "", connectors.Errorf(connectors.KindInput, "command is empty")
	}
	for i := 0; i < len(w); i++ {
		if c := w[i]; c <= ' ' || c >= 0x7f {
			return "", connectors.Errorf(connectors.KindQuery,
				"command name %.40q is not allowed: a Redis command name is ASCII letters, digits and punctuation", w)
		}
	}
	return asciiUpper(w), nil
}

// asciiUpper upper-cases ASCII letters only, as Redis's case-insensitive
// command lookup does; strings.ToUpper would also map "ſ" to "S".
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// queryInput is DB_QUERY's params. Query is accepted as an alias of Command,
// the parameter name SQL connectors use.
type queryInput struct {
	Command *string           `json:"command"`
	Query   *string           `json:"query"`
	Args    []json.RawMessage `json:"args"`
}

// parseQuery turns DB_QUERY's params into the command's words.
func parseQuery(params json.RawMessage) ([]string, error) {
	var in queryInput
	if err := decodeStrict(params, &in); err != nil {
		return nil, err
	}
	line := in.Command
	if line == nil {
		line = in.Query
	}
	if line == nil || strings.TrimSpace(*line) == "" {
		return nil, connectors.Errorf(connectors.KindInput, `"command" is required, e.g. {"command": "GET mykey"}`)
	}
	words, err := splitArgs(*line)
	if err != nil {
		return nil, connectors.Errorf(connectors.KindInput, "cannot parse command: %v", err)
	}
	for i, raw := range in.Args {
		a, err := argString(raw)
		if err != nil {
			return nil, connectors.Errorf(connectors.KindInput, "args[%d]: %v", i, err)
		}
		words = append(words, a)
	}
	if len(words) == 0 {
		return nil, connectors.Errorf(connectors.KindInput, "command is empty")
	}
	return words, nil
}

// argString accepts a JSON string or number as a command argument.
func argString(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", errors.New("empty argument")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return s, nil
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", err
		}
		return n.String(), nil
	}
	return "", fmt.Errorf("must be a string or a number, not %s", jsonKind(raw[0]))
}

func jsonKind(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "that value"
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
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return connectors.Errorf(connectors.KindInput, "invalid params: %v", err)
	}
	if dec.More() {
		return connectors.Errorf(connectors.KindInput, "invalid params: trailing data after the object")
	}
	return nil
}

// splitArgs splits a command line into words as redis-cli does (Redis's
// sdssplitargs): white space separates words; inside "double quotes" the
// escapes \xHH \n \r \t \b \a and \<any> work; inside 'single quotes' only
// \' does; a closing quote must be followed by white space or the end.
func splitArgs(line string) ([]string, error) {
	var out []string
	i, n := 0, len(line)
	for {
		for i < n && isSpace(line[i]) {
			i++
		}
		if i >= n {
			return out, nil
		}
		var cur []byte
		inDQ, inSQ, done := false, false, false
		for !done {
			switch {
			case inDQ:
				if i >= n {
					return nil, errors.New("unbalanced double quotes")
				}
				c := line[i]
				switch {
				case c == '\\' && i+3 < n && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
					cur = append(cur, unhex(line[i+2])<<4|unhex(line[i+3]))
					i += 3
				case c == '\\' && i+1 < n:
					i++
					switch line[i] {
					case 'n':
						cur = append(cur, '\n')
					case 'r':
						cur = append(cur, '\r')
					case 't':
						cur = append(cur, '\t')
					case 'b':
						cur = append(cur, '\b')
					case 'a':
						cur = append(cur, '\a')
					default:
						cur = append(cur, line[i])
					}
				case c == '"':
					if i+1 < n && !isSpace(line[i+1]) {
						return nil, errors.New("closing quote must be followed by a space")
					}
					done = true
				default:
					cur = append(cur, c)
				}
			case inSQ:
				if i >= n {
					return nil, errors.New("unbalanced single quotes")
				}
				c := line[i]
				switch {
				case c == '\\' && i+1 < n && line[i+1] == '\'':
					i++
					cur = append(cur, '\'')
				case c == '\'':
					if i+1 < n && !isSpace(line[i+1]) {
						return nil, errors.New("closing quote must be followed by a space")
					}
					done = true
				default:
					cur = append(cur, c)
				}
			default:
				if i >= n {
					done = true
					break
				}
				switch c := line[i]; {
				case isSpace(c):
					done = true
				case c == '"':
					inDQ = true
				case c == '\'':
					inSQ = true
				default:
					cur = append(cur, c)
				}
			}
			if i < n {
				i++
			}
		}
		out = append(out, string(cur))
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// sortedKeys lists a map's keys in order, for stable output.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
