package redis

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// TestByteCap: replies over connectors.MaxResultBytes come back promptly,
// cut at a whole element (valid JSON, Truncated) or, for one value that can
// never fit, refused; the connection pool stays usable.
func TestByteCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	mib := strings.Repeat("x", 1<<20)
	if err := e.direct.Set(ctx, e.key("huge"), strings.Repeat("y", 10<<20), 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.direct.Set(ctx, e.key("small"), "ok", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		n := strconv.Itoa(i)
		if err := e.direct.RPush(ctx, e.key("list"), n+mib).Err(); err != nil {
			t.Fatal(err)
		}
		if err := e.direct.HSet(ctx, e.key("hash"), "f"+n, mib).Err(); err != nil {
			t.Fatal(err)
		}
		if err := e.direct.Set(ctx, e.key(n+mib), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	s := e.open(e.params(false))

	start := time.Now()
	ce := runErr(t, s, "DB_QUERY", q("GET", e.key("huge")))
	if ce.Kind != connectors.KindQuery || !strings.Contains(ce.Msg, "larger than the 4 MiB result limit") {
		t.Errorf("GET of 10 MiB → %q (kind %d), want a KindQuery size refusal", ce.Msg, ce.Kind)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("GET of 10 MiB took %v", d)
	}
	if res := run(t, s, "DB_QUERY", q("GET", e.key("small")), lim); string(res.Body) != `"ok"` {
		t.Errorf("GET after the refusal → %s", res.Body)
	}

	for _, c := range []struct {
		params string
		n      int
	}{
		{q("LRANGE", e.key("list"), "0", "-1"), 3},
		{q("HGETALL", e.key("hash")), 3},
		{`{"pattern": "` + e.prefix + `[0-9]*"}`, 3},
	} {
		tool := "DB_QUERY"
		if strings.HasPrefix(c.params, `{"pattern"`) {
			tool = "DB_LIST_KEYS"
		}
		start := time.Now()
		res := run(t, s, tool, c.params, lim)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s took %v", tool, d)
		}
		if len(res.Body) > connectors.MaxResultBytes || !json.Valid(res.Body) || !res.Truncated {
			t.Fatalf("%s %.80s: %d bytes, valid %v, truncated %v", tool, c.params, len(res.Body), json.Valid(res.Body), res.Truncated)
		}
		var v any
		_ = json.Unmarshal(res.Body, &v)
		got := 0
		switch v := v.(type) {
		case []any:
			got = len(v)
		case map[string]any:
			got = len(v)
			if keys, ok := v["keys"].([]any); ok {
				got = len(keys)
			}
		}
		if got != c.n {
			t.Errorf("%s %.60s: %d elements, want %d", tool, c.params, got, c.n)
		}
	}
}

// hostile is a fake Redis: it answers HELLO and PING as Redis would, up to
// okReplies commands, then sends reply to every command.
func hostile(t *testing.T, okReplies int, reply string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				br := bufio.NewReader(c)
				for i := 0; ; i++ {
					cmd, err := readCommand(br)
					if err != nil {
						return
					}
					out := reply
					if i < okReplies {
						out = "+PONG\r\n"
						if strings.EqualFold(cmd, "HELLO") {
							out = "%1\r\n+proto\r\n:3\r\n"
						}
					}
					if _, err := io.WriteString(c, out); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// readCommand reads one RESP array of bulk strings and returns its first word.
func readCommand(br *bufio.Reader) (string, error) {
	head, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "*") {
		return "", errors.New("not a command")
	}
	n, _ := strconv.Atoi(strings.TrimSpace(head[1:]))
	var first string
	for i := range n {
		l, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		size, _ := strconv.Atoi(strings.TrimSpace(l[1:]))
		b := make([]byte, size+2)
		if _, err := io.ReadFull(br, b); err != nil {
			return "", err
		}
		if i == 0 {
			first = string(b[:size])
		}
	}
	return first, nil
}

// TestHostileServer: declared lengths and counts that would make go-redis
// allocate without bound fail promptly, and the process allocates little.
// Not parallel, so that the allocation count is this test's alone.
func TestHostileServer(t *testing.T) {
	cases := []struct {
		name  string
		reply string
		kind  connectors.Kind
	}{
		{"huge array", "*1099511627776\r\n", connectors.KindQuery},
		{"huge bulk", "$1099511627776\r\n", connectors.KindQuery},
		{"500 MB bulk", "$500000000\r\nxx", connectors.KindQuery},
		{"huge map", "%1099511627776\r\n", connectors.KindQuery},
		{"huge set", "~1099511627776\r\n", connectors.KindQuery},
		{"huge push", ">1099511627776\r\n", connectors.KindQuery},
		{"huge attribute", "|1099511627776\r\n", connectors.KindQuery},
		{"huge verbatim", "=1099511627776\r\n", connectors.KindQuery},
		{"huge blob error", "!1099511627776\r\n", connectors.KindQuery},
		{"nested arrays", strings.Repeat("*900000\r\n", 60), connectors.KindQuery},
		{"20-digit length", "$99999999999999999999\r\n", connectors.KindUnavailable},
		{"endless line", "+" + strings.Repeat("a", 200<<10), connectors.KindUnavailable},
		{"not RESP", "HTTP/1.1 400 Bad Request\r\n\r\n", connectors.KindUnavailable},
		{"deep nesting", strings.Repeat("*1\r\n", 100), connectors.KindUnavailable},
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, c := range cases {
		for _, stage := range []string{"Open", "Run"} {
			ok := 0
			if stage == "Run" {
				ok = 2
			}
			port := hostile(t, ok, c.reply)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			start := time.Now()
			s, err := Driver{}.Open(ctx, connectors.Params{Host: "127.0.0.1", Port: port}, testOptions(true))
			if stage == "Run" && err == nil {
				_, err = s.Run(ctx, "DB_QUERY", json.RawMessage(q("GET", "k")), lim)
				s.Close()
			}
			cancel()
			if err == nil || connectors.KindOf(err) != c.kind {
				t.Errorf("%s, %s: %v (kind %d), want kind %d", c.name, stage, err, connectors.KindOf(err), c.kind)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("%s, %s took %v", c.name, stage, d)
			}
		}
	}
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 64<<20 {
		t.Errorf("the hostile replies made the process allocate %d MiB", grown>>20)
	}
}
