package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/connectors/sqlconn"
)

// drainBudget is how many rows past the cap a read-only call still reads,
// hoping to reach the end of the result and keep its connection. A longer
// result is abandoned by closing the connection.
const drainBudget = 5000

// serverGrace is how long after the call's deadline the server stops a
// statement the client has given up on.
const serverGrace = 100 * time.Millisecond

// Source is a pool of connections to one MySQL or MariaDB database.
type Source struct {
	db          *sql.DB
	connector   idConnector  // also dials the side connection of KILL QUERY
	tooLarge    *atomic.Bool // a connection's reply passed maxReplyBytes
	writes      bool
	mariadb     bool
	stmtTimeout time.Duration
	password    string
	// noServerTimeout is set when the server knows neither
	// max_statement_time nor max_execution_time (MySQL before 5.7.8).
	noServerTimeout atomic.Bool
}

// Ping checks the database answers.
func (s *Source) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return connectErr(err, s.password)
	}
	return nil
}

// OpenConns reports the connections the pool holds, busy or idle.
func (s *Source) OpenConns() int { return s.db.Stats().OpenConnections }

// Close closes every connection.
func (s *Source) Close() { _ = s.db.Close() }

// Run executes one tool.
func (s *Source) Run(ctx context.Context, tool string, params json.RawMessage, lim connectors.Limits) (*connectors.Result, error) {
	return sqlconn.Run(ctx, engine{s}, s.writes, tool, params, lim)
}

// engine adapts a Source to sqlconn.Engine.
type engine struct{ s *Source }

func (e engine) Query(ctx context.Context, stmt string, maxRows int) (*connectors.Result, error) {
	s := e.s
	var res *connectors.Result
	err := s.withConn(ctx, !s.writes, func(conn *sql.Conn) (bool, error) {
		var bad bool
		var err error
		res, bad, err = s.runStatement(ctx, conn, stmt, maxRows)
		if !bad && !s.writes && strings.Contains(strings.ToUpper(stmt), "GET_LOCK") {
			// Named locks outlive the transaction; do not leave one on a
			// pooled connection. A server without RELEASE_ALL_LOCKS loses
			// the connection instead, which frees them too.
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			if _, lerr := conn.ExecContext(lctx, "DO RELEASE_ALL_LOCKS()"); lerr != nil {
				bad = true
			}
			cancel()
		}
		return bad, err
	})
	return res, err
}

func (e engine) ListTables(ctx context.Context, p sqlconn.ListParams, maxRows int) (*connectors.Result, error) {
	return e.s.listTables(ctx, p, maxRows)
}

func (e engine) Describe(ctx context.Context, p sqlconn.DescribeParams) (*connectors.Result, error) {
	return e.s.describe(ctx, p)
}

// serverTimeout is the server-side statement limit for one call: the
// configured statement timeout, or just past the call's deadline when that
// comes first. The client deadline then decides, always with a clear
// KindTimeout (MySQL's SLEEP and MariaDB's BENCHMARK swallow a server-side
// interruption and return a value), and the server stops the abandoned
// statement a moment later. 0 means no limit.
func (s *Source) serverTimeout(ctx context.Context) time.Duration {
	d := s.stmtTimeout
	if dl, ok := ctx.Deadline(); ok {
		left := max(time.Until(dl), 0) + serverGrace
		if d <= 0 || left < d {
			d = left
		}
	}
	return max(d, 0)
}

// timeoutAssignment is the SET assignment of the statement limit:
// max_statement_time (seconds) on MariaDB, max_execution_time (ms, SELECT
// only) on MySQL.
func (s *Source) timeoutAssignment(d time.Duration) string {
	if s.noServerTimeout.Load() {
		return ""
	}
	if s.mariadb {
		return "max_statement_time = " + strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
	}
	return "max_execution_time = " + strconv.FormatInt(d.Milliseconds(), 10)
}

// setup prepares a connection for one call, in one round trip on MariaDB.
// Read-only calls run in a read-only transaction, ended by ROLLBACK. On
// MariaDB one SET makes the session's transactions read-only and turns
// autocommit off, so the call's statement starts that transaction itself;
// on MySQL, whose variable names vary by version, START TRANSACTION READ
// ONLY follows the SET. Write calls get autocommit, read-write transactions
// and UTC back, in case an earlier call changed them.
func (s *Source) setup(ctx context.Context, conn *sql.Conn, readOnly bool) error {
	var set []string
	switch {
	case !readOnly:
		set = append(set, "autocommit = 1", "time_zone = '+00:00'")
		if s.mariadb {
			set = append(set, "tx_read_only = 0")
		}
	case s.mariadb:
		set = append(set, "tx_read_only = 1", "autocommit = 0")
	}
	if t := s.timeoutAssignment(s.serverTimeout(ctx)); t != "" {
		set = append(set, t)
	}
	if len(set) > 0 {
		if _, err := conn.ExecContext(ctx, "SET SESSION "+strings.Join(set, ", ")); err != nil {
			var me *gomysql.MySQLError
			if !errors.As(err, &me) || me.Number != 1193 || s.noServerTimeout.Load() {
				return err
			}
			s.noServerTimeout.Store(true) // unknown system variable: an old server
			return s.setup(ctx, conn, readOnly)
		}
	}
	if readOnly && !s.mariadb {
		if _, err := conn.ExecContext(ctx, "START TRANSACTION READ ONLY"); err != nil {
			return err
		}
	}
	return nil
}

// withConn runs fn on a dedicated pooled connection, then rolls back. A
// connection that fn reports bad, that saw its call's deadline pass, or that
// fails to roll back is discarded, never reused.
func (s *Source) withConn(ctx context.Context, readOnly bool, fn func(*sql.Conn) (bool, error)) (err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return s.runErr(ctx, err)
	}
	bad := false
	defer func() {
		if bad {
			// Returning ErrBadConn from Raw makes database/sql close the
			// connection instead of pooling it.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		_ = conn.Close()
	}()
	if err := s.setup(ctx, conn, readOnly); err != nil {
		bad = true
		return s.runErr(ctx, err)
	}
	// Past the deadline, stop the statement on the server too.
	var id int64
	_ = conn.Raw(func(dc any) error {
		if c, ok := dc.(*idConn); ok {
			id = c.id
		}
		return nil
	})
	stop := func() bool { return false }
	if id != 0 {
		stop = context.AfterFunc(ctx, func() { s.killQuery(id) })
	}
	bad, err = fn(conn)
	stop()
	if ctx.Err() != nil || isConnErr(err) {
		bad = true
	}
	if !bad {
		// ROLLBACK, never COMMIT: it ends the read-only transaction, and on a
		// writable connection it discards a transaction a call left open.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if _, cerr := conn.ExecContext(cctx, "ROLLBACK"); cerr != nil {
			bad = true
		}
	}
	if err != nil {
		return s.runErr(ctx, err)
	}
	return nil
}

func isConnErr(err error) bool {
	return err != nil && (errors.Is(err, driver.ErrBadConn) || errors.Is(err, gomysql.ErrInvalidConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF))
}

// runStatement runs the caller's statement with the text protocol (one
// statement: multiStatements is off) and encodes rows as they arrive,
// straight from the driver's values.
func (s *Source) runStatement(ctx context.Context, conn *sql.Conn, query string, maxRows int) (res *connectors.Result, bad bool, err error) {
	err = conn.Raw(func(dc any) error {
		q, ok := dc.(driver.QueryerContext)
		if !ok {
			return errors.New("mysql driver connection cannot run queries")
		}
		qctx, cancel := context.WithCancel(ctx)
		defer cancel()
		rows, err := q.QueryContext(qctx, query, nil)
		if err != nil {
			return err
		}
		defer func() { _ = rows.Close() }()
		cols := rows.Columns()
		if len(cols) == 0 {
			if err := rows.Close(); err != nil {
				return err
			}
			n := int64(0)
			if s.writes {
				if n, err = rowCount(qctx, q); err != nil {
					return err
				}
			}
			res = sqlconn.AffectedResult(n)
			return nil
		}
		encs := make([]encodeFunc, len(cols))
		ct, _ := rows.(driver.RowsColumnTypeDatabaseTypeName)
		for i := range cols {
			if ct != nil {
				encs[i] = encoderFor(ct.ColumnTypeDatabaseTypeName(i))
			} else {
				encs[i] = encodeAny
			}
		}
		w := sqlconn.NewRowWriter(cols)
		defer w.Release()
		vals := make([]driver.Value, len(cols))
		truncated := false
		for {
			err := rows.Next(vals)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if w.Rows() >= maxRows {
				truncated = true
				break
			}
			size := 16 * len(vals)
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					size += len(b) * 4 / 3
				}
			}
			if !sqlconn.AppendRow(w, vals, isNull, encs, size+2) {
				truncated = true
				break
			}
		}
		if truncated && !s.writes {
			// Read on a little in case the result ends soon; otherwise
			// close the connection rather than stream rows nobody reads.
			// Writes are drained instead: cutting a write off would abort it.
			bad = true
			for range drainBudget {
				if err := rows.Next(vals); err != nil {
					bad = !errors.Is(err, io.EOF)
					break
				}
			}
			if bad {
				cancel()
			}
		}
		if err := rows.Close(); err != nil && !truncated {
			return err
		}
		n := w.Rows()
		res = &connectors.Result{Body: w.Finish(), RowCount: n, Rows: true, Truncated: truncated}
		return nil
	})
	return res, bad, err
}

// rowCount asks for the rows the previous statement affected.
func rowCount(ctx context.Context, q driver.QueryerContext) (int64, error) {
	rows, err := q.QueryContext(ctx, "SELECT ROW_COUNT()", nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = rows.Close() }()
	v := make([]driver.Value, 1)
	if err := rows.Next(v); err != nil {
		return 0, err
	}
	n, _ := v[0].(int64)
	return max(n, 0), nil
}

// timeoutErrors are server errors of a statement stopped by a time limit.
var timeoutErrors = map[uint16]bool{
	1317: true, // query execution was interrupted
	1969: true, // MariaDB max_statement_time exceeded
	3024: true, // MySQL max_execution_time exceeded
	1205: true, // lock wait timeout exceeded
}

// runErr classifies an error of a tool call.
func (s *Source) runErr(ctx context.Context, err error) error {
	var ce *connectors.Error
	if errors.As(err, &ce) {
		return err
	}
	var me *gomysql.MySQLError
	if errors.As(err, &me) {
		msg := sqlconn.Scrub(me.Error(), s.password)
		switch {
		case timeoutErrors[me.Number]:
			return &connectors.Error{Kind: connectors.KindTimeout, Err: err,
				Msg: "query cancelled: it ran past the statement time limit (" + msg + ")"}
		case me.Number == 1040 || me.Number == 1053 || me.Number == 1203:
			return &connectors.Error{Kind: connectors.KindUnavailable, Msg: msg, Err: err}
		case me.Number == 1045 || me.Number == 1049:
			return &connectors.Error{Kind: connectors.KindAuth, Msg: msg, Err: err}
		}
		return &connectors.Error{Kind: connectors.KindQuery, Msg: msg, Err: err}
	}
	if isConnErr(err) && s.tooLarge.Swap(false) {
		err = errReplyTooLarge
	}
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &connectors.Error{Kind: connectors.KindTimeout, Err: err,
			Msg: "query cancelled: it ran past the time limit of this call"}
	}
	return connectErr(err, s.password)
}

// isNull reports a NULL column.
func isNull(v driver.Value) bool { return v == nil }
