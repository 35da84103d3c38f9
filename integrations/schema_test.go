package integrations

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/openanalyst/mcp-integration-service/connectors/composio"
)

func TestParameters(t *testing.T) {
	t.Parallel()
	schema := json.RawMessage(`{"type":"object","properties":{
		"recipient_email":{"type":"string"},
		"cc":{"type":"array","items":{"type":"string"}},
		"max_results":{"type":["null","integer"]},
		"thread":{"anyOf":[{"type":"null"},{"type":"object"}]},
		"mode":{"enum":["a","b"]},
		"whatever":{}
	},"required":["recipient_email"]}`)
	want := map[string]string{"recipient_email": "string", "cc": "array", "max_results": "integer",
		"thread": "object", "mode": "string", "whatever": "any"}
	if got := Parameters(schema); !reflect.DeepEqual(got, want) {
		t.Fatalf("Parameters = %v, want %v", got, want)
	}
	if got := Parameters(json.RawMessage(`not json`)); len(got) != 0 {
		t.Fatalf("garbage schema: %v", got)
	}
}

func TestToolOf(t *testing.T) {
	t.Parallel()
	tool := toolOf("gmail", &composio.Tool{Slug: "GMAIL_SEND_EMAIL", Name: "Send Email", Description: " Sends an email. ",
		InputParameters: json.RawMessage(`{"type":"object","properties":{"body":{"type":"string"}}}`)})
	if tool.Name != "GMAIL_SEND_EMAIL" || tool.Provider != "gmail" || tool.Description != "Sends an email." ||
		tool.Parameters["body"] != "string" || string(tool.InputSchema) == "" {
		t.Fatalf("toolOf = %+v", tool)
	}
	bare := toolOf("slack", &composio.Tool{Slug: "SLACK_X", Name: "X"})
	if bare.Description != "X" || string(bare.InputSchema) != string(emptySchema) || bare.Parameters == nil {
		t.Fatalf("toolOf without schema = %+v", bare)
	}
}
