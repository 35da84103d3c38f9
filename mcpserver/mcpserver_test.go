package mcpserver

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestMCPErrorResult(t *testing.T) {
	r := errorResult(errBody{Error: "nope", Code: "tool_not_found"})
	if !r.IsError || len(r.Content) != 1 {
		t.Fatalf("error result: %+v", r)
	}
	sc, _ := json.Marshal(r.StructuredContent)
	if string(sc) != `{"success":false,"error":"nope","code":"tool_not_found"}` {
		t.Fatalf("structured content %s", sc)
	}
	r = errorResult(errBody{Error: "late", Code: "worker_timeout", JobID: "8c1f0a8e-2b4d-4c47-9a63-6f3f3b1c2d10"})
	sc, _ = json.Marshal(r.StructuredContent)
	if !strings.Contains(string(sc), `"job_id":"8c1f0a8e-2b4d-4c47-9a63-6f3f3b1c2d10"`) {
		t.Fatalf("timeout without its job id: %s", sc)
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

// The connection count and the session bound of limits, without a server.
func TestMCPLimitsBookkeeping(t *testing.T) {
	l := newLimits(0, 2)
	for i, want := range []bool{true, true, false} {
		if l.acquire("t") != want {
			t.Fatalf("acquire %d: want two places per token", i+1)
		}
	}
	if !l.acquire("u") {
		t.Fatal("another token has no place")
	}
	l.release("t")
	if !l.acquire("t") {
		t.Fatal("a released place is not free")
	}
	live := func(ids ...string) map[string]bool {
		m := map[string]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	if ev := l.opened("t", "a", live("a")); ev != nil {
		t.Fatalf("evicted %v", ev)
	}
	if ev := l.opened("t", "b", live("a", "b")); ev != nil {
		t.Fatalf("evicted %v", ev)
	}
	if ev := l.opened("t", "c", live("a", "b", "c")); len(ev) != 1 || ev[0] != "a" {
		t.Fatalf("evicted %v, want [a]", ev)
	}
	if ev := l.opened("t", "d", live("c", "d")); ev != nil { // b was closed
		t.Fatalf("evicted %v after b closed, want none", ev)
	}
	if ev := l.opened("u", "e", live("e")); ev != nil {
		t.Fatalf("another token's session evicted %v", ev)
	}
	l.prune(func() map[string]bool { return live("d") })
	if len(l.sessions) != 1 || len(l.sessions["t"]) != 1 || l.sessions["t"][0] != "d" {
		t.Fatalf("after prune: %v", l.sessions)
	}
}
