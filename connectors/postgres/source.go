package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/connectors/sqlconn"
)

// Source is a pool of connections to one PostgreSQL database.
type Source struct {
	pool        *pgxpool.Pool
	writes      bool
	stmtTimeout time.Duration
	password    string
}

// Ping checks the database answers.
func (s *Source) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return connectErr(err, s.password)
	}
	return nil
}

// OpenConns reports the connections the pool holds, busy or idle.
func (s *Source) OpenConns() int { return int(s.pool.Stat().TotalConns()) }

// Close closes every connection.
func (s *Source) Close() { s.pool.Close() }

// Run executes one tool.
func (s *Source) Run(ctx context.Context, tool string, params json.RawMessage, lim connectors.Limits) (*connectors.Result, error) {
	return sqlconn.Run(ctx, engine{s}, sqlconn.Postgres, s.writes, tool, params, lim)
}

// engine adapts a Source to sqlconn.Engine.
type engine struct{ s *Source }

// CheckReadOnly is this dialect's read-only statement guard.
func (engine) CheckReadOnly(stmt string) error { return checkReadOnly(stmt) }

func (e engine) Query(ctx context.Context, stmt string, maxRows int) (*connectors.Result, error) {
	var res *connectors.Result
	err := e.s.withConn(ctx, !e.s.writes, func(c *pgconn.PgConn) error {
		if !e.s.writes {
			if err := lexedAsGuarded(c); err != nil {
				return err
			}
		}
		var err error
		res, err = e.s.runStatement(ctx, c, stmt, maxRows)
		return err
	})
	return res, err
}

func (e engine) ListTables(ctx context.Context, p sqlconn.ListParams, maxRows int) (*connectors.Result, error) {
	return e.s.listTables(ctx, p, maxRows)
}

func (e engine) Describe(ctx context.Context, p sqlconn.DescribeParams) (*connectors.Result, error) {
	return e.s.describe(ctx, p)
}

// lexedAsGuarded checks that the session reads statements as the read-only
// guard lexed them: UTF-8, standard conforming strings. The connector asks
// for both at startup and a read-only call cannot change them, so this only
// fails on a server that ignores the request.
func lexedAsGuarded(c *pgconn.PgConn) error {
	if c.ParameterStatus("client_encoding") != "UTF8" || c.ParameterStatus("standard_conforming_strings") != "on" {
		return connectors.Errorf(connectors.KindQuery,
			"this connection is read-only, and the server does not use UTF8 and standard_conforming_strings=on, which the read-only guard needs")
	}
	return nil
}

// serverTimeout is the statement_timeout in milliseconds for one call: the
// configured statement timeout, lowered to just under the call's deadline so
// that the server, not the client, usually ends a slow statement and the
// connection survives. 0 means no limit.
func (s *Source) serverTimeout(ctx context.Context) int64 {
	ms := s.stmtTimeout.Milliseconds()
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		left -= min(left/10, 100*time.Millisecond)
		if l := max(left.Milliseconds(), 1); ms <= 0 || l < ms {
			ms = l
		}
	}
	return max(ms, 0)
}

// withConn runs fn on a pooled connection. Read-only calls run inside
// BEGIN READ ONLY … ROLLBACK; the transaction's first statement takes a
// snapshot (SELECT set_config), after which PostgreSQL refuses SET
// TRANSACTION READ WRITE. Write calls run in autocommit mode and end with
// RESET ALL, so no session setting leaks into the next call; a write call
// that leaves a transaction open loses its connection (pgxpool discards it),
// which rolls the transaction back. Session-level advisory locks are
// released after every call. A connection whose state is unknown afterwards
// is closed, so the pool discards it.
func (s *Source) withConn(ctx context.Context, readOnly bool, fn func(*pgconn.PgConn) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return s.runErr(ctx, err)
	}
	defer conn.Release() // destroys a closed, busy or in-transaction connection
	pc := conn.Conn().PgConn()

	ms := strconv.FormatInt(s.serverTimeout(ctx), 10)
	var setup string
	if readOnly {
		setup = "BEGIN TRANSACTION READ ONLY; SELECT set_config('statement_timeout', '" + ms + "', true)"
	} else {
		setup = "SET statement_timeout = " + ms
	}
	if _, err := pc.Exec(ctx, setup).ReadAll(); err != nil {
		closeConn(pc)
		return s.runErr(ctx, err)
	}
	err = fn(pc)
	if ctx.Err() != nil {
		// The call's deadline passed or it was cancelled mid-statement: the
		// connection's state is unknown, so it is closed, never reused.
		closeConn(pc)
	}
	if pc.IsClosed() {
		return err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	// ROLLBACK, never COMMIT, even after a successful read.
	cleanup := "ROLLBACK; SELECT pg_advisory_unlock_all()"
	if !readOnly {
		if pc.TxStatus() != 'I' {
			closeConn(pc) // BEGIN without COMMIT: never committed
			return err
		}
		cleanup = "RESET ALL; SELECT pg_advisory_unlock_all()"
	}
	if _, cerr := pc.Exec(cctx, cleanup).ReadAll(); cerr != nil {
		closeConn(pc)
	}
	return err
}

func closeConn(pc *pgconn.PgConn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = pc.Close(ctx)
}

// runStatement runs the caller's statement with the extended protocol, which
// takes exactly one statement, and encodes the rows as they arrive.
func (s *Source) runStatement(ctx context.Context, pc *pgconn.PgConn, sql string, maxRows int) (*connectors.Result, error) {
	rr := pc.ExecParams(ctx, sql, nil, nil, nil, nil)
	fds := rr.FieldDescriptions()
	if len(fds) == 0 {
		tag, err := rr.Close()
		if err != nil {
			return nil, s.runErr(ctx, err)
		}
		return sqlconn.AffectedResult(tag.RowsAffected()), nil
	}
	names := make([]string, len(fds))
	encs := make([]encodeFunc, len(fds))
	for i, fd := range fds {
		names[i] = fd.Name
		encs[i] = encoderFor(fd.DataTypeOID)
	}
	w := sqlconn.NewRowWriter(names)
	defer w.Release()
	truncated := false
	for rr.NextRow() {
		if w.Rows() >= maxRows {
			truncated = true
			break
		}
		vals := rr.Values()
		size := 0
		for _, v := range vals {
			size += len(v)
		}
		if !sqlconn.AppendRow(w, vals, isNull, encs, size*4/3+16*len(vals)+2) {
			truncated = true
			break
		}
	}
	if truncated && !s.writes {
		// Stop the server from streaming rows nobody reads. Only a read can
		// be cancelled safely: cancelling a write with RETURNING would roll
		// it back, so writes drain the rest instead.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_ = pc.CancelRequest(cctx)
		cancel()
	}
	_, err := rr.Close()
	if err != nil && !truncated {
		return nil, s.runErr(ctx, err)
	}
	n := w.Rows()
	return &connectors.Result{Body: w.Finish(), RowCount: n, Rows: true, Truncated: truncated}, nil
}

// runErr classifies an error of a tool call.
func (s *Source) runErr(ctx context.Context, err error) error {
	var ce *connectors.Error
	if errors.As(err, &ce) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		msg := sqlconn.Scrub(pe.Error(), s.password)
		switch {
		case pe.Code == "57014":
			return &connectors.Error{Kind: connectors.KindTimeout, Err: err,
				Msg: "query cancelled: it ran past the statement time limit (" + msg + ")"}
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", strings.HasPrefix(pe.Code, "08") && pe.Code != "08P01", strings.HasPrefix(pe.Code, "53"):
			return &connectors.Error{Kind: connectors.KindUnavailable, Msg: msg, Err: err}
		case strings.HasPrefix(pe.Code, "28"):
			return &connectors.Error{Kind: connectors.KindAuth, Msg: msg, Err: err}
		}
		return &connectors.Error{Kind: connectors.KindQuery, Msg: msg, Err: err}
	}
	if tooLarge(err) {
		return &connectors.Error{Kind: connectors.KindUnavailable, Err: err, Msg: tooLargeMsg}
	}
	if ctx.Err() != nil || pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) {
		return &connectors.Error{Kind: connectors.KindTimeout, Err: err,
			Msg: "query cancelled: it ran past the time limit of this call"}
	}
	var cerr *pgconn.ConnectError
	if errors.As(err, &cerr) {
		return connectErr(err, s.password)
	}
	return &connectors.Error{Kind: connectors.KindUnavailable, Msg: "PostgreSQL connection failed: " + sqlconn.Scrub(err.Error(), s.password), Err: err}
}

// isNull reports a NULL column: pgconn gives it as a nil slice.
func isNull(v []byte) bool { return v == nil }
