package redis

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// redisAttacks are command lines a read-only connection must refuse; every
// one is refused with writes allowed too.
var redisAttacks = []string{
	`EVAL "return redis.call('FLUSHALL')" 0`,
	`EVALSHA 0123456789abcdef0123456789abcdef01234567 0`,
	`EVAL_RO "return 1" 0`,
	`FCALL f 0`,
	`FCALL_RO f 0`,
	`SCRIPT LOAD "return 1"`,
	`FUNCTION LOAD "#!lua name=x\nredis.register_function('f', function() return 1 end)"`,
	`CONFIG SET dir /tmp`,
	`CONFIG SET dbfilename authorized_keys`,
	`MODULE LOAD /tmp/evil.so`,
	`DEBUG SEGFAULT`,
	`SHUTDOWN NOSAVE`,
	`FLUSHALL ASYNC`,
	`FLUSHDB`,
	`MIGRATE 203.0.113.1 6379 "" 0 5000 KEYS a b`,
	`CLIENT KILL TYPE normal`,
	`CLIENT LIST`,
	`SUBSCRIBE news`,
	`PSUBSCRIBE *`,
	`MULTI`,
	`EXEC`,
	`SLAVEOF 203.0.113.1 6379`,
	`REPLICAOF 203.0.113.1 6379`,
	`ACL SETUSER evil on >pw +@all`,
	`SAVE`,
	`BGSAVE`,
	`KEYS *`,
	`SELECT 1`,
	`HELLO 2`,
	`AUTH default pw`,
	`MONITOR`,
	`SYNC`,
	`PSYNC ? -1`,
	`SWAPDB 0 1`,
	`SENTINEL SET mymaster auth-pass x`,
	`CLUSTER RESET HARD`,
	`SET k v`,
	`DEL k`,
}

// homoglyphs maps ASCII letters to look-alikes.
var homoglyphs = map[byte]string{'E': "Е", 'A': "А", 'C': "С", 'O': "О", 'P': "Р", 'K': "К", 'M': "М", 'T': "Т", 'S': "Ѕ", 'L': "Ⅼ"}

// commandVariants rewrites a command line in ways that keep (or try to keep)
// its command: case, white space, quoting and escapes, the args form, NUL
// bytes, homoglyphs and invisible characters.
func commandVariants(line string) []string {
	name, rest, _ := strings.Cut(line, " ")
	words, err := splitArgs(line)
	if err != nil {
		panic(err)
	}
	argsJSON, _ := json.Marshal(words[1:])
	mixed := []byte(strings.ToLower(name))
	for i := 0; i < len(mixed); i += 2 {
		mixed[i] = asciiUpper(string(mixed[i]))[0]
	}
	hex := ""
	for i := 0; i < len(name); i++ {
		hex += `\x` + strings.ToUpper(string("0123456789abcdef"[name[i]>>4])+string("0123456789abcdef"[name[i]&15]))
	}
	glyph := ""
	for i := 0; i < len(name); i++ {
		if g, ok := homoglyphs[name[i]]; ok && glyph == "" {
			glyph = name[:i] + g + name[i+1:]
		}
	}
	sp := func(n string) string { return strings.TrimSpace(n + " " + rest) }
	lines := []string{
		line, strings.ToLower(line), sp(string(mixed)),
		"  " + line + "  ", "\t" + line + "\r\n", "\n\n" + sp(name),
		sp(`"` + name + `"`), sp(`'` + name + `'`), sp(`"` + hex + `"`),
		sp(`"` + strings.ToLower(name) + `"`),
		sp(`"` + name + `\x00"`), sp(`"\x00` + name + `"`), sp(`"` + name + ` "`),
		sp(name + "\u200b"), sp("\u00a0" + name), sp("\ufeff" + name),
	}
	if glyph != "" {
		lines = append(lines, sp(glyph), sp(strings.ToLower(glyph)))
	}
	out := make([]string, 0, len(lines)+4)
	for _, l := range lines {
		b, _ := json.Marshal(map[string]string{"command": l})
		out = append(out, string(b))
	}
	out = append(out,
		`{"command": `+quote(name)+`, "args": `+string(argsJSON)+`}`,
		`{"command": `+quote(strings.ToLower(name))+`, "args": `+string(argsJSON)+`}`,
		`{"command": `+quote(name+"\x00")+`, "args": `+string(argsJSON)+`}`,
		`{"query": `+quote(line)+`}`,
		`{"command": "", "args": [`+quote(name)+`]}`,
	)
	return out
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// allowed runs DB_QUERY's checks without a server.
func allowed(params string, writes bool) ([]string, error) {
	words, err := parseQuery(json.RawMessage(params))
	if err != nil {
		return nil, err
	}
	return words, checkCommand(words, writes)
}

// TestRedisAttackVariants: every rewrite of every attack is refused, on a
// read-only connection and, for denied commands, with writes allowed.
func TestRedisAttackVariants(t *testing.T) {
	t.Parallel()
	n := 0
	for _, line := range redisAttacks {
		name, _, _ := strings.Cut(line, " ")
		_, denied := DeniedCommands[name]
		for _, v := range commandVariants(line) {
			n++
			if words, err := allowed(v, false); err == nil {
				t.Errorf("read-only ran %s as %q", v, words)
			}
			if !denied {
				continue
			}
			if words, err := allowed(v, true); err == nil {
				t.Errorf("writable ran %s as %q", v, words)
			} else if k := connectors.KindOf(err); k != connectors.KindQuery && k != connectors.KindInput {
				t.Errorf("writable %s: %v (kind %d)", v, err, k)
			}
		}
	}
	if n < 40*len(redisAttacks)/2 {
		t.Errorf("only %d variants", n)
	}
	// Commands hidden in arguments stay arguments of the command checked.
	for _, p := range []string{
		`{"command": "GET k\r\nFLUSHALL"}`, `{"command": "GET", "args": ["FLUSHALL"]}`,
		`{"command": "GET \"k\r\nCONFIG SET dir /tmp\""}`,
	} {
		words, err := allowed(p, false)
		if err != nil || words[0] != "GET" {
			t.Errorf("%s → %q, %v; want GET with arguments", p, words, err)
		}
	}
}

// FuzzRedisAllowlist: whatever the input, a command that passes the
// read-only check is on the allowlist as Redis would look it up (ASCII
// case-insensitive, up to a NUL), and one that passes with writes allowed
// is not denied.
func FuzzRedisAllowlist(f *testing.F) {
	for _, line := range redisAttacks {
		for _, v := range commandVariants(line) {
			f.Add(v)
		}
	}
	f.Add(`{"command": "GET k"}`)
	f.Add(`{"command": "OBJECT encoding k"}`)
	f.Add(`{"command": "SRANDMEMBER s -5"}`)
	f.Fuzz(func(t *testing.T, params string) {
		for _, writes := range []bool{false, true} {
			words, err := allowed(params, writes)
			if err != nil {
				continue
			}
			name := words[0]
			if i := strings.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			name = asciiUpper(name)
			if _, denied := DeniedCommands[name]; denied {
				t.Fatalf("writes=%v: %q ran a denied command %q", writes, params, words)
			}
			if writes {
				continue
			}
			subs, ok := ReadCommands[name]
			if !ok {
				t.Fatalf("read-only ran %q (%q), which is not on the allowlist", params, words)
			}
			if subs != nil && !contains(subs, asciiUpper(words[1])) {
				t.Fatalf("read-only ran %q with subcommand %q", params, words[1])
			}
		}
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
