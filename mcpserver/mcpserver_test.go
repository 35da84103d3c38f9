package mcpserver

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/queue"
)

func TestMCPRestBody(t *testing.T) {
	for _, c := range []struct {
		ok   bool
		body string
		want string
	}{
		{true, `{"result":[{"one":1}],"row_count":1}`, `{"success":true,"result":[{"one":1}],"row_count":1}`},
		{true, ` {} `, `{"success":true}`},
		{false, `{"error":"boom","code":"query_failed"}`, `{"success":false,"error":"boom","code":"query_failed"}`},
		{true, `[1,2]`, `{"success":true,"result":[1,2]}`},
		{true, ``, `{"success":true,"result":null}`},
		{false, `not json`, `{"success":false,"result":null}`},
	} {
		got := string(restBody(c.ok, []byte(c.body)))
		if got != c.want {
			t.Errorf("restBody(%v, %q) = %s, want %s", c.ok, c.body, got, c.want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("restBody(%v, %q) is not JSON: %s", c.ok, c.body, got)
		}
	}
}

func TestMCPToolResult(t *testing.T) {
	r := toolResult(queue.Reply{Outcome: messages.OutcomeError, Status: 404, Body: []byte(`{"error":"nope","code":"tool_not_found"}`)})
	if !r.IsError || len(r.Content) != 1 {
		t.Fatalf("error reply: %+v", r)
	}
	sc, _ := json.Marshal(r.StructuredContent)
	if string(sc) != `{"success":false,"error":"nope","code":"tool_not_found"}` {
		t.Fatalf("structured content %s", sc)
	}
	if r := toolResult(queue.Reply{Outcome: messages.OutcomeOK, Body: []byte(`{"result":[]}`)}); r.IsError {
		t.Fatal("an ok reply is an error result")
	}
}

func TestMCPObjectSchema(t *testing.T) {
	for in, want := range map[string]string{
		`{"type":"object","properties":{"q":{"type":"string"}}}`: `{"type":"object","properties":{"q":{"type":"string"}}}`,
		`{"properties":{"q":{"type":"string"}}}`:                 `{"properties":{"q":{"type":"string"}},"type":"object"}`,
		`{"type":"string"}`:                                      `{"type":"object"}`,
		``:                                                       `{"type":"object"}`,
		`null`:                                                   `{"type":"object"}`,
	} {
		if got := string(objectSchema(json.RawMessage(in))); got != want {
			t.Errorf("objectSchema(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestMCPTokenFormat(t *testing.T) {
	a, err := newToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newToken()
	if a == b || !strings.HasPrefix(a, "mcp_") || len(a) != tokenLen || !wellFormed(a) {
		t.Fatalf("tokens %q %q", a, b)
	}
	for _, bad := range []string{"", "mcp_", a + "A", a[:len(a)-1], "xyz_" + a[4:], a[:10] + "+" + a[11:], a[:10] + "=" + a[11:]} {
		if wellFormed(bad) {
			t.Errorf("wellFormed(%q)", bad)
		}
	}
	if h := hashToken(a); len(h) != 64 || h == hashToken(b) || strings.Contains(h, a[4:]) {
		t.Fatalf("hash %q", h)
	}
	if id := newTokenID(); !strings.HasPrefix(id, "tok_") || id == newTokenID() {
		t.Fatalf("token id %q", id)
	}
}
