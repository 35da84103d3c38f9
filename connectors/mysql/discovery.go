package mysql

import (
	"context"
	"database/sql"
	"strings"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/connectors/sqlconn"
)

const listTablesSQL = `SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, TABLE_ROWS
FROM information_schema.TABLES
WHERE TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
	AND (? = '' OR TABLE_SCHEMA = ?)
ORDER BY TABLE_SCHEMA, TABLE_NAME
LIMIT ?`

const describeSQL = `SELECT c.COLUMN_NAME, c.COLUMN_TYPE, c.IS_NULLABLE, c.COLUMN_DEFAULT, c.COLUMN_KEY, c.EXTRA,
	(SELECT CONCAT(k.REFERENCED_TABLE_SCHEMA, '.', k.REFERENCED_TABLE_NAME, '(', k.REFERENCED_COLUMN_NAME, ')')
		FROM information_schema.KEY_COLUMN_USAGE k
		WHERE k.TABLE_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME AND k.COLUMN_NAME = c.COLUMN_NAME
			AND k.REFERENCED_TABLE_NAME IS NOT NULL
		ORDER BY k.CONSTRAINT_NAME LIMIT 1)
FROM information_schema.COLUMNS c
WHERE c.TABLE_SCHEMA = COALESCE(NULLIF(?, ''), DATABASE()) AND c.TABLE_NAME = ?
ORDER BY c.ORDINAL_POSITION`

func tableType(t string) string {
	switch t {
	case "BASE TABLE", "SYSTEM VERSIONED":
		return "table"
	case "VIEW", "SYSTEM VIEW":
		return "view"
	case "SEQUENCE":
		return "sequence"
	case "TEMPORARY", "LOCAL TEMPORARY":
		return "temporary table"
	}
	return strings.ToLower(t)
}

func (s *Source) listTables(ctx context.Context, lp sqlconn.ListParams, maxRows int) (*connectors.Result, error) {
	var res *connectors.Result
	err := s.withConn(ctx, true, func(conn *sql.Conn) (bool, error) {
		rows, err := conn.QueryContext(ctx, listTablesSQL, lp.Schema, lp.Schema, maxRows+1)
		if err != nil {
			return false, err
		}
		defer func() { _ = rows.Close() }()
		var ts []sqlconn.Table
		for rows.Next() {
			var schema, name, typ string
			var est sql.NullInt64
			if err := rows.Scan(&schema, &name, &typ, &est); err != nil {
				return false, err
			}
			t := sqlconn.Table{Schema: schema, Name: name, Type: tableType(typ)}
			if est.Valid && t.Type != "view" {
				n := est.Int64
				t.RowEstimate = &n
			}
			ts = append(ts, t)
		}
		if err := rows.Err(); err != nil {
			return false, err
		}
		res = sqlconn.TablesResult(ts, maxRows)
		return false, nil
	})
	return res, err
}

func (s *Source) describe(ctx context.Context, dp sqlconn.DescribeParams) (*connectors.Result, error) {
	var res *connectors.Result
	err := s.withConn(ctx, true, func(conn *sql.Conn) (bool, error) {
		cols, err := s.columns(ctx, conn, dp.Schema, dp.Table)
		if err == nil && len(cols) == 0 && dp.Schema == "" && strings.Count(dp.Table, ".") == 1 {
			sch, tbl, _ := strings.Cut(dp.Table, ".")
			cols, err = s.columns(ctx, conn, sch, tbl)
		}
		if err != nil {
			return false, err
		}
		if len(cols) == 0 {
			name := dp.Table
			if dp.Schema != "" {
				name = dp.Schema + "." + dp.Table
			}
			return false, connectors.Errorf(connectors.KindQuery, "table not found: %q (use DB_LIST_TABLES to see the tables)", name)
		}
		res = sqlconn.ColumnsResult(cols)
		return false, nil
	})
	return res, err
}

func (s *Source) columns(ctx context.Context, conn *sql.Conn, schema, table string) ([]sqlconn.Column, error) {
	rows, err := conn.QueryContext(ctx, describeSQL, schema, table)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var cols []sqlconn.Column
	for rows.Next() {
		var name, typ, nullable, key, extra string
		var def, fk sql.NullString
		if err := rows.Scan(&name, &typ, &nullable, &def, &key, &extra, &fk); err != nil {
			return nil, err
		}
		c := sqlconn.Column{Name: name, Type: typ, Nullable: nullable == "YES", PrimaryKey: key == "PRI"}
		// MariaDB shows "no default" as the bare word NULL (a string default
		// is quoted there), MySQL as a real NULL.
		if def.Valid && (!s.mariadb || def.String != "NULL") {
			d := def.String
			c.Default = &d
		} else if strings.Contains(strings.ToLower(extra), "auto_increment") {
			d := "AUTO_INCREMENT"
			c.Default = &d
		}
		if fk.Valid {
			f := fk.String
			c.ForeignKey = &f
		}
		cols = append(cols, c)
	}
	return cols, rows.Err()
}
