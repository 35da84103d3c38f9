package sqlconn

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// defaultMaxRows caps rows when the caller passed no row limit at all.
const defaultMaxRows = 1000

// queryParams are the params of DB_QUERY.
type queryParams struct {
	Query   string
	MaxRows int // 0 when the caller did not ask for a limit
}

// ListParams are the params of DB_LIST_TABLES.
type ListParams struct {
	Schema string
}

// DescribeParams are the params of DB_DESCRIBE.
type DescribeParams struct {
	Table  string
	Schema string
}

func decodeObject(raw json.RawMessage) (map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return map[string]json.RawMessage{}, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, connectors.Errorf(connectors.KindInput, "params must be a JSON object")
	}
	return m, nil
}

func stringParam(m map[string]json.RawMessage, name string) (string, error) {
	v, ok := m[name]
	if !ok || string(v) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", connectors.Errorf(connectors.KindInput, "param %q must be a string", name)
	}
	return s, nil
}

// decodeQuery decodes and checks DB_QUERY params.
func decodeQuery(raw json.RawMessage) (queryParams, error) {
	m, err := decodeObject(raw)
	if err != nil {
		return queryParams{}, err
	}
	q, err := stringParam(m, "query")
	if err != nil {
		return queryParams{}, err
	}
	if strings.TrimSpace(q) == "" {
		return queryParams{}, connectors.Errorf(connectors.KindInput, "param \"query\" is required: one SQL statement")
	}
	if strings.ContainsRune(q, 0) {
		return queryParams{}, connectors.Errorf(connectors.KindInput, "param \"query\" may not contain NUL characters")
	}
	p := queryParams{Query: q}
	if v, ok := m["max_rows"]; ok && string(v) != "null" {
		s := strings.Trim(string(v), `"`)
		n, err := strconv.Atoi(s)
		if err != nil {
			return queryParams{}, connectors.Errorf(connectors.KindInput, "param \"max_rows\" must be a positive integer")
		}
		if n < 1 {
			return queryParams{}, connectors.Errorf(connectors.KindInput, "param \"max_rows\" must be at least 1")
		}
		p.MaxRows = n
	}
	return p, nil
}

// decodeList decodes DB_LIST_TABLES params.
func decodeList(raw json.RawMessage) (ListParams, error) {
	m, err := decodeObject(raw)
	if err != nil {
		return ListParams{}, err
	}
	s, err := stringParam(m, "schema")
	return ListParams{Schema: strings.TrimSpace(s)}, err
}

// decodeDescribe decodes and checks DB_DESCRIBE params.
func decodeDescribe(raw json.RawMessage) (DescribeParams, error) {
	m, err := decodeObject(raw)
	if err != nil {
		return DescribeParams{}, err
	}
	t, err := stringParam(m, "table")
	if err != nil {
		return DescribeParams{}, err
	}
	s, err := stringParam(m, "schema")
	if err != nil {
		return DescribeParams{}, err
	}
	t, s = strings.TrimSpace(t), strings.TrimSpace(s)
	if t == "" {
		return DescribeParams{}, connectors.Errorf(connectors.KindInput, "param \"table\" is required")
	}
	return DescribeParams{Table: t, Schema: s}, nil
}

// rowCap is the number of rows a call may return: the caller's limit, lowered
// by the params' max_rows when that is smaller.
func rowCap(lim connectors.Limits, requested int) int {
	n := lim.MaxRows
	if n <= 0 {
		n = defaultMaxRows
	}
	if requested > 0 && requested < n {
		n = requested
	}
	return n
}
