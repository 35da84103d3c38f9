// Package redis is the Redis connector: it registers the "redis" database type
// and runs an agent's commands against a user's Redis with go-redis v9.
//
// # Tools
//
// DB_QUERY runs one command, given either as a name plus an args array
// ({"command": "HGETALL", "args": ["user:1"]}) or as a redis-cli style command
// line ({"command": "HGETALL user:1"}); both can be combined, the args being
// appended after the words of the line. The line is split like redis-cli (and
// Redis's own sdssplitargs) splits it: words are separated by white space;
// "double quotes" allow the escapes \n \r \t \b \a \\ \" and \xHH; 'single
// quotes' allow only \'; a closing quote must end the word.
//
// DB_LIST_KEYS lists keys with SCAN (never KEYS), optionally filtered by a
// MATCH pattern and a type, returning each key's type and a cursor to
// continue from.
//
// # Read-only connections
//
// Unless the connection allows writes, only an allowlist of read commands
// runs; see [ReadCommands]. It leaves out everything that writes, changes
// connection state (SELECT, MULTI, CLIENT …), blocks (BLPOP, XREAD …), runs
// scripts (EVAL, FCALL …, whose effects cannot be inspected), can store its
// result (SORT, GEORADIUS …; their _RO variants are allowed), may write
// internally (PFCOUNT rewrites its cache) or walks the whole keyspace in one
// go (KEYS: use SCAN). SRANDMEMBER, HRANDFIELD and ZRANDMEMBER are allowed
// only with a non-negative count, as a negative count asks for that many
// repeated elements regardless of the key's size.
//
// Command names are compared as Redis compares them, ASCII case-insensitively;
// a name holding any byte other than printable ASCII (a space, NUL, control
// character, or a homoglyph such as Cyrillic "Е") is refused in every mode.
// FuzzRedisAllowlist and a property test over rewritten attacks check this.
//
// With writes allowed every command runs except the denylist in
// [DeniedCommands]: administration, replication, persistence, scripting,
// pub/sub, commands that change the state of a pooled connection, KEYS, and
// FLUSHALL/FLUSHDB, which wipe everything in one call (delete keys
// individually instead).
//
// # Results
//
// Replies are read with RESP3, so hashes come back as maps. They become JSON:
// bulk and simple strings are strings, integers are numbers, doubles are
// numbers (except inf, -inf and nan, which are the strings "inf", "-inf" and
// "nan"), big numbers are strings, nil is null, arrays and sets are arrays,
// maps are objects. A string that is not valid UTF-8 (binary data) becomes
// {"$base64": "<standard base64>"}.
//
// An array reply is a row array: Result.Rows is set and the array is cut to
// Limits.MaxRows elements (Result.Truncated). A map reply keeps at most
// MaxRows entries (the first ones in key order) and sets Truncated when cut.
// Other replies are single values (Rows false).
//
// Every body is capped at connectors.MaxResultBytes (4 MiB). An array, a map
// or DB_LIST_KEYS's key list is cut before the first element that would pass
// the cap (valid JSON, Truncated set; keys cut from a DB_LIST_KEYS page are
// not in the next page either). A single value over the cap, such as a GET of
// a 10 MB string, is refused with KindQuery ("… larger than the 4 MiB result
// limit"), without reading it: read part of it with GETRANGE, LRANGE …
// instead. A string cut in the middle would be silently wrong data.
//
// # Hostile servers
//
// go-redis allocates from the lengths a reply declares, so every connection
// is wrapped below go-redis in a guard that follows the RESP2/RESP3 framing
// and fails the read before go-redis sees a header that declares a string
// over 4 MiB, more than 2^20 elements in one reply (nested aggregates
// included), a reply over 64 MiB, aggregates nested over 64 deep, or a line
// over 64 KiB (KindQuery for sizes, KindUnavailable for a malformed stream).
// The connection is then discarded.
//
// # Connections
//
// Each Source is a go-redis pool: PoolSize Options.MaxOpen, idle connections
// closed after Options.IdleTimeout, every connection dialled through
// Options.Dial (the host policy), with verified TLS on top when ssl is set
// (connectors.TLSConfig: system roots plus the form's ssl_ca). Socket
// reads and writes time out after Options.StatementTimeout and at the call's
// deadline (Limits.Timeout); go-redis discards a connection whose command
// timed out, so a late reply can never be read as the answer to the next
// command. Commands are not retried, as a retried write could apply twice.
package redis
