package sqlconn

import (
	"strconv"
	"strings"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// Table is one row of DB_LIST_TABLES.
type Table struct {
	Schema string
	Name   string
	// Type is "table", "view", "materialized view", "foreign table",
	// "partitioned table" or "sequence".
	Type string
	// RowEstimate is the engine's row count estimate; nil when unknown (a
	// view, or a table never analysed).
	RowEstimate *int64
}

// Column is one row of DB_DESCRIBE.
type Column struct {
	Name       string
	Type       string
	Nullable   bool
	Default    *string
	PrimaryKey bool
	// ForeignKey names the referenced column as schema.table(column), or nil.
	ForeignKey *string
}

func appendOptString(dst []byte, s *string) []byte {
	if s == nil {
		return AppendNull(dst)
	}
	return AppendString(dst, *s)
}

// TablesResult encodes DB_LIST_TABLES rows: {schema, table, type,
// row_estimate}, cut at maxRows.
func TablesResult(ts []Table, maxRows int) *connectors.Result {
	w := NewRowWriter([]string{"schema", "table", "type", "row_estimate"})
	truncated := false
	for _, t := range ts {
		if w.Rows() >= maxRows {
			truncated = true
			break
		}
		w.beginRow()
		w.col(0)
		w.Buf = AppendString(w.Buf, t.Schema)
		w.col(1)
		w.Buf = AppendString(w.Buf, t.Name)
		w.col(2)
		w.Buf = AppendString(w.Buf, t.Type)
		w.col(3)
		if t.RowEstimate == nil {
			w.Buf = AppendNull(w.Buf)
		} else {
			w.Buf = strconv.AppendInt(w.Buf, *t.RowEstimate, 10)
		}
		w.endRow()
	}
	n := w.Rows()
	return &connectors.Result{Body: w.Finish(), RowCount: n, Rows: true, Truncated: truncated}
}

// ColumnsResult encodes DB_DESCRIBE rows: {column, type, nullable, default,
// primary_key, foreign_key}.
func ColumnsResult(cs []Column) *connectors.Result {
	w := NewRowWriter([]string{"column", "type", "nullable", "default", "primary_key", "foreign_key"})
	for _, c := range cs {
		w.beginRow()
		w.col(0)
		w.Buf = AppendString(w.Buf, c.Name)
		w.col(1)
		w.Buf = AppendString(w.Buf, c.Type)
		w.col(2)
		w.Buf = AppendBool(w.Buf, c.Nullable)
		w.col(3)
		w.Buf = appendOptString(w.Buf, c.Default)
		w.col(4)
		w.Buf = AppendBool(w.Buf, c.PrimaryKey)
		w.col(5)
		w.Buf = appendOptString(w.Buf, c.ForeignKey)
		w.endRow()
	}
	n := w.Rows()
	return &connectors.Result{Body: w.Finish(), RowCount: n, Rows: true}
}

// AffectedResult is the body of a statement that returns no rows.
func AffectedResult(n int64) *connectors.Result {
	b := append([]byte(`{"rows_affected":`), strconv.FormatInt(n, 10)...)
	return &connectors.Result{Body: append(b, '}')}
}

// Scrub removes the password from a message that is about to leave the
// connector, in case an engine or driver ever echoed it. Passwords shorter
// than four characters are not searched for, as they would mangle ordinary
// words.
func Scrub(msg, password string) string {
	if len(password) < 4 {
		return msg
	}
	return strings.ReplaceAll(msg, password, "********")
}
