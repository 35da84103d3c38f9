package sqlconn

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// Tool prefixes every SQL database exposes.
const (
	ToolQuery      = "DB_QUERY"
	ToolListTables = "DB_LIST_TABLES"
	ToolDescribe   = "DB_DESCRIBE"
)

// Fields returns the connection form of an SQL database type whose server
// listens on defaultPort by default.
func Fields(defaultPort int) []connectors.Field {
	return []connectors.Field{
		{Name: "connection_name", Label: "Connection Name", Type: "text", Required: true},
		{Name: "host", Label: "Host", Type: "text", Required: true},
		{Name: "port", Label: "Port", Type: "number", Default: defaultPort},
		{Name: "database", Label: "Database Name", Type: "text", Required: true},
		{Name: "username", Label: "Username", Type: "text", Required: true},
		{Name: "password", Label: "Password", Type: "password", Required: true},
		{Name: "ssl", Label: "SSL Required", Type: "checkbox", Default: false},
		connectors.CAField,
	}
}

// Validate checks the parameters every SQL database needs. The password may
// be empty (trust authentication); the API layer decides whether the form
// requires it.
func Validate(p connectors.Params) error {
	switch {
	case strings.TrimSpace(p.Host) == "":
		return connectors.Errorf(connectors.KindInput, "host is required")
	case strings.ContainsAny(p.Host, " \t\r\n/\\?#@'\"") || strings.ContainsRune(p.Host, 0):
		return connectors.Errorf(connectors.KindInput, "host %q is not a valid host name or IP address (no spaces, slashes or URL parts)", connectors.Prefix(p.Host))
	case len(p.Host) > 253:
		return connectors.Errorf(connectors.KindInput, "host is too long")
	case p.Port < 1 || p.Port > 65535:
		return connectors.Errorf(connectors.KindInput, "port must be between 1 and 65535, got %d", p.Port)
	case strings.TrimSpace(p.Database) == "":
		return connectors.Errorf(connectors.KindInput, "database is required")
	case strings.TrimSpace(p.Username) == "":
		return connectors.Errorf(connectors.KindInput, "username is required")
	case strings.ContainsRune(p.Database, 0) || strings.ContainsRune(p.Username, 0) || strings.ContainsRune(p.Password, 0):
		return connectors.Errorf(connectors.KindInput, "database, username and password may not contain NUL characters")
	}
	return nil
}

const (
	queryDescription = "Query '%s' (%s). Read-only SQL unless the connection allows writes. " +
		"Runs exactly one SQL statement and returns its rows as JSON objects (big integers and decimals as strings, " +
		"timestamps as RFC 3339, bytes as base64); a statement without rows returns {\"rows_affected\": n}."
	listDescription = "List the tables and views in '%s' (%s), with their schema, kind and estimated row count. " +
		"Use it before DB_QUERY to find table names."
	describeDescription = "Describe the columns of one table in '%s' (%s): name, SQL type, nullability, default, " +
		"primary key and foreign key reference."
)

var (
	querySchema = json.RawMessage(`{"type":"object","properties":{` +
		`"query":{"type":"string","description":"One SQL statement in the database's own dialect, e.g. SELECT name, total FROM orders ORDER BY total DESC LIMIT 20. Multiple statements separated by ';' are refused. Prefer LIMIT and explicit column lists."},` +
		`"max_rows":{"type":"integer","minimum":1,"description":"Return at most this many rows (capped by the server's maximum). When more rows exist the response says truncated."}` +
		`},"required":["query"],"additionalProperties":false}`)
	listSchema = json.RawMessage(`{"type":"object","properties":{` +
		`"schema":{"type":"string","description":"Only list tables in this schema (PostgreSQL schema, or MySQL database). Omit to list every non-system schema."}` +
		`},"additionalProperties":false}`)
	describeSchema = json.RawMessage(`{"type":"object","properties":{` +
		`"table":{"type":"string","description":"Table or view name, as listed by DB_LIST_TABLES."},` +
		`"schema":{"type":"string","description":"Schema (PostgreSQL) or database (MySQL) holding the table. Omit to use the connection's default."}` +
		`},"required":["table"],"additionalProperties":false}`)
)

// Tools returns the tool specs every SQL database exposes.
func Tools() []connectors.ToolSpec { return slices.Clone(toolSpecs) }

// toolSpecs are built once: every tool call looks its tool up (FindTool).
// Their maps are shared and read-only.
var toolSpecs = []connectors.ToolSpec{
	{
		Prefix:      ToolQuery,
		Description: queryDescription,
		Parameters:  map[string]string{"query": "string (SQL query)"},
		InputSchema: querySchema,
	},
	{
		Prefix:      ToolListTables,
		Description: listDescription,
		Parameters:  map[string]string{"schema": "string (optional schema name)"},
		InputSchema: listSchema,
	},
	{
		Prefix:      ToolDescribe,
		Description: describeDescription,
		Parameters:  map[string]string{"table": "string (table name)", "schema": "string (optional schema name)"},
		InputSchema: describeSchema,
	},
}
