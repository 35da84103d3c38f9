package integrations

import (
	"encoding/json"
	"strings"

	"github.com/openanalyst/mcp-integration-service/connectors/composio"
	"github.com/openanalyst/mcp-integration-service/tools"
)

// emptySchema is the input schema of a tool that declares none.
var emptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

// Parameters turns a tool's JSON Schema into the design document's simple
// map: property name → JSON type ("string", "integer", "array", …). A union
// type gives its first non-null member; a property without a type is "any".
func Parameters(schema json.RawMessage) map[string]string {
	out := map[string]string{}
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if len(schema) == 0 || json.Unmarshal(schema, &s) != nil {
		return out
	}
	for name, raw := range s.Properties {
		out[name] = typeOf(raw, 0)
	}
	return out
}

func typeOf(raw json.RawMessage, depth int) string {
	var p struct {
		Type  json.RawMessage   `json:"type"`
		AnyOf []json.RawMessage `json:"anyOf"`
		OneOf []json.RawMessage `json:"oneOf"`
		AllOf []json.RawMessage `json:"allOf"`
		Enum  []any             `json:"enum"`
	}
	if json.Unmarshal(raw, &p) != nil {
		return "any"
	}
	var one string
	if json.Unmarshal(p.Type, &one) == nil && one != "" {
		return one
	}
	var many []string
	if json.Unmarshal(p.Type, &many) == nil {
		for _, t := range many {
			if t != "null" && t != "" {
				return t
			}
		}
	}
	if depth < 3 {
		for _, alts := range [][]json.RawMessage{p.AnyOf, p.OneOf, p.AllOf} {
			for _, alt := range alts {
				if t := typeOf(alt, depth+1); t != "any" && t != "null" {
					return t
				}
			}
		}
	}
	if len(p.Enum) > 0 {
		if _, ok := p.Enum[0].(string); ok {
			return "string"
		}
	}
	return "any"
}

// toolOf maps a Composio tool onto GET /api/tools's shape.
func toolOf(provider string, t *composio.Tool) tools.Tool {
	desc := strings.TrimSpace(t.Description)
	if desc == "" {
		desc = t.Name
	}
	schema := t.InputParameters
	if len(schema) == 0 || !json.Valid(schema) || string(schema) == "null" {
		schema = emptySchema
	}
	return tools.Tool{Name: t.Slug, Description: desc, Provider: provider, Parameters: Parameters(schema), InputSchema: schema}
}
