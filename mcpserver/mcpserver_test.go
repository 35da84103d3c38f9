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
