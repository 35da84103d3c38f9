package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
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
	surplus     func() bool // connectors.Options.Surplus
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
	return sqlconn.Run(ctx, engine{s}, s.writes, tool, params, lim)
}

// engine adapts a Source to sqlconn.Engine.
type engine struct{ s *Source }

// CheckReadOnly is this dialect's read-only statement guard.
func (engine) CheckReadOnly(stmt string) error { return checkReadOnly(stmt) }

// Query runs the caller's statement; see query.
func (e engine) Query(ctx context.Context, stmt string, maxRows int) (*connectors.Result, error) {
	return e.s.query(ctx, stmt, maxRows)
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

// Statements around a call. A read runs in a read-only transaction whose
// first statement (set_config) takes the snapshot, after which PostgreSQL
// refuses SET TRANSACTION READ WRITE; it ends with ROLLBACK, never COMMIT,
// even after a successful read. A write runs in autocommit mode and ends
// with RESET ALL, so no session setting leaks into the next call.
// Session-level advisory locks are released after every call.
const (
	beginReadOnly = "BEGIN TRANSACTION READ ONLY"
	localTimeout  = "SELECT set_config('statement_timeout', $1, true)"
	unlockAll     = "SELECT pg_advisory_unlock_all()"
)

func cleanupSQL(readOnly bool) string {
	if readOnly {
		return "ROLLBACK"
	}
	return "RESET ALL"
}

// acquire runs fn on a pooled connection. On release pgxpool destroys a
// closed, busy or in-transaction connection; a surplus one (Options.Surplus)
// leaves the pool at once and is closed. (Not in pgxpool's AfterRelease: that
// runs after Release returns, and a call starting meanwhile would find no
// idle connection and dial one more.)
func (s *Source) acquire(ctx context.Context, fn func(*pgconn.PgConn) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return s.runErr(ctx, err)
	}
	defer s.release(conn)
	return fn(conn.Conn().PgConn())
}

func (s *Source) release(conn *pgxpool.Conn) {
	if s.surplus == nil || !s.surplus() {
		conn.Release()
		return
	}
	c := conn.Hijack()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = c.Close(ctx)
	}()
}

// withConn runs fn, which may run several statements, between the setup and
// the cleanup of a call, each a round trip of its own.
func (s *Source) withConn(ctx context.Context, readOnly bool, fn func(*pgconn.PgConn) error) error {
	return s.acquire(ctx, func(pc *pgconn.PgConn) error {
		if err := s.setup(ctx, pc, readOnly); err != nil {
			return err
		}
		err := fn(pc)
		s.finish(ctx, pc, readOnly, false)
		return err
	})
}

// query runs the caller's statement. A read sends its setup, the statement
// and its cleanup together (see pipeline): one round trip. A write first
// sets its statement_timeout in a round trip of its own, so that the
// statement never runs without it, then pipelines the statement and its
// cleanup: two round trips.
func (s *Source) query(ctx context.Context, stmt string, maxRows int) (*connectors.Result, error) {
	readOnly := !s.writes
	var res *connectors.Result
	err := s.acquire(ctx, func(pc *pgconn.PgConn) error {
		if readOnly {
			if err := lexedAsGuarded(pc); err != nil {
				return err
			}
		} else if err := s.setup(ctx, pc, false); err != nil {
			return err
		}
		read := func(rr *pgconn.ResultReader) error {
			var err error
			res, err = s.readRows(ctx, pc, rr, maxRows)
			return err
		}
		clean, err := s.pipeline(ctx, pc, stmt, readOnly, read)
		if errors.Is(err, errUnprepared) {
			s.finish(ctx, pc, readOnly, clean)
			if pc.IsClosed() {
				return errors.New("PostgreSQL connection lost")
			}
			clean, err = s.pipeline(ctx, pc, stmt, readOnly, read)
		}
		s.finish(ctx, pc, readOnly, clean)
		if err == nil && res == nil {
			err = errors.New("PostgreSQL sent no result for the statement")
		}
		return err
	})
	if err != nil {
		return nil, s.runErr(ctx, err)
	}
	return res, nil
}

// setup starts a call in a round trip of its own (simple protocol): the
// read-only transaction with the call's statement_timeout, or for a write
// that timeout alone.
func (s *Source) setup(ctx context.Context, pc *pgconn.PgConn, readOnly bool) error {
	ms := strconv.FormatInt(s.serverTimeout(ctx), 10)
	setup := "SET statement_timeout = " + ms
	if readOnly {
		setup = beginReadOnly + "; SELECT set_config('statement_timeout', '" + ms + "', true)"
	}
	if _, err := pc.Exec(ctx, setup).ReadAll(); err != nil {
		closeConn(pc)
		return s.runErr(ctx, err)
	}
	return nil
}

// finish hands the connection back idle, or closes it so that the pool
// discards it. A call whose deadline passed or that was cancelled
// mid-statement leaves the connection in an unknown state: it is closed,
// never reused. Unless the call's cleanup already ran (clean) and left the
// connection idle, the cleanup runs here, in an extra round trip; a write
// that left a transaction open loses its connection instead, so the
// transaction is never committed.
func (s *Source) finish(ctx context.Context, pc *pgconn.PgConn, readOnly, clean bool) {
	if ctx.Err() != nil {
		closeConn(pc)
	}
	if pc.IsClosed() || clean && pc.TxStatus() == 'I' {
		return
	}
	if !readOnly && pc.TxStatus() != 'I' {
		closeConn(pc)
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if _, err := pc.Exec(cctx, cleanupSQL(readOnly)+"; "+unlockAll).ReadAll(); err != nil || pc.TxStatus() != 'I' {
		closeConn(pc)
	}
}

func closeConn(pc *pgconn.PgConn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = pc.Close(ctx)
}

// pipeline writes, at once, a call's statements and reads their results in
// order, handing the statement's to read. The statement goes with the
// extended protocol, which takes exactly one statement. Errors are returned
// raw, for the caller to classify; clean reports that the cleanup ran and
// succeeded.
//
// A read is one segment: BEGIN READ ONLY, its statement_timeout, the
// statement, ROLLBACK, the unlock, then a Sync. The server flushes its
// answer once, at the Sync. An error skips the rest of the segment, so the
// statement never runs without its setup; the cleanup is then not run
// (clean is false) and finish runs it in a round trip of its own. On a
// connection that prepared them (prepareSetup), the setup and cleanup go
// as named prepared statements: no parsing or planning on the server.
//
// A write is two segments: the statement and a Sync, then RESET ALL and the
// unlock and a Sync, so that the statement commits as it would alone
// (autocommit) and the cleanup runs even when it fails.
func (s *Source) pipeline(ctx context.Context, pc *pgconn.PgConn, stmt string, readOnly bool, read func(*pgconn.ResultReader) error) (clean bool, err error) {
	p := pc.StartPipeline(ctx)
	setup, segments := 0, 2
	prepared := readOnly && isPrepared(pc)
	if readOnly {
		ms := strconv.AppendInt(nil, s.serverTimeout(ctx), 10)
		if prepared {
			p.SendQueryPrepared(stmtBegin, nil, nil, nil)
			p.SendQueryPrepared(stmtTimeout, [][]byte{ms}, nil, nil)
		} else {
			p.SendQueryParams(beginReadOnly, nil, nil, nil, nil)
			p.SendQueryParams(localTimeout, [][]byte{ms}, nil, nil, nil)
		}
		setup, segments = 2, 1
	}
	// at is the statement's result among the segment's: after the setup
	// and, when the statement is prepared now, after its Prepare.
	at := setup
	name, fresh := "", false
	if prepared {
		name, fresh = userStatement(pc, stmt)
	}
	switch {
	case name == "":
		p.SendQueryParams(stmt, nil, nil, nil, nil)
	case fresh:
		p.SendPrepare(name, stmt, nil)
		p.SendQueryPrepared(name, nil, nil, nil)
		at++
	default:
		p.SendQueryPrepared(name, nil, nil, nil)
	}
	if !readOnly {
		p.SendPipelineSync()
	}
	if prepared {
		p.SendQueryPrepared(stmtRollback, nil, nil, nil)
		p.SendQueryPrepared(stmtUnlock, nil, nil, nil)
	} else {
		p.SendQueryParams(cleanupSQL(readOnly), nil, nil, nil, nil)
		p.SendQueryParams(unlockAll, nil, nil, nil, nil)
	}
	p.SendPipelineSync()
	if err := p.Flush(); err != nil {
		return false, err // the pipeline closed the connection
	}
	var stmtErr error
	clean = true
	// seg counts the Syncs reached, n the results seen since the last one.
	for seg, n := 0, 0; seg < segments; n++ {
		r, err := p.GetResults()
		switch r := r.(type) {
		case *pgconn.PipelineSync:
			seg, n = seg+1, -1
			continue
		case *pgconn.ResultReader:
			if seg == 0 && n == at {
				err = read(r)
			} else {
				_, err = r.Close()
			}
		case *pgconn.StatementDescription: // the statement is prepared now
			if err == nil {
				keepStatement(pc, stmt, name)
			}
		case nil:
			if err == nil {
				err = errors.New("PostgreSQL ended the pipeline early")
			}
		}
		var pe *pgconn.PgError
		switch {
		case err == nil:
		case !errors.As(err, &pe):
			// The connection broke: close its socket at once, so that
			// Close returns without waiting for results that never come.
			_ = pc.Conn().Close()
			_ = p.Close()
			return false, errors.Join(stmtErr, err)
		case prepared && pe.Code == pgerrcode.InvalidSQLStatementName:
			// Our prepared statements are gone (a pooler that moved the
			// session): use them no more on this connection. Missing from
			// the setup, the statement did not run: the call runs again.
			forgetPrepared(pc)
			clean = false
			if n < setup || n == at && name != "" {
				stmtErr = errUnprepared
			}
		case !fresh && name != "" && n == at && pe.Code == pgerrcode.FeatureNotSupported:
			// "cached plan must not change result type": a table the
			// statement reads changed. Its name is used no more; the call
			// runs again and prepares it anew.
			dropStatement(pc, stmt)
			stmtErr, clean = errUnprepared, false
		case seg == 0 && n <= at:
			stmtErr, clean = err, !readOnly
		default:
			clean = false
		}
	}
	if p.Close() != nil {
		clean = false
	}
	return clean, stmtErr
}

// errUnprepared: the setup's prepared statements were missing; the call
// runs again without them.
var errUnprepared = errors.New("postgres: prepared setup statements missing")

// Names of the setup and cleanup statements a read-only connection prepares
// once (prepareSetup). A read-only call cannot drop them: DEALLOCATE is not
// among the statements the guard lets through.
const (
	stmtBegin    = "mcp_begin_ro"
	stmtTimeout  = "mcp_timeout"
	stmtRollback = "mcp_rollback"
	stmtUnlock   = "mcp_unlock"
	preparedKey  = "mcp.prepared"
)

// prepareSetup prepares a read-only connection's setup and cleanup
// statements in one round trip, as the pool opens it. A server that refuses
// them (a pooler in transaction mode, say) leaves the connection usable:
// calls then send the statements in full.
func prepareSetup(ctx context.Context, conn *pgx.Conn) error {
	pc := conn.PgConn()
	p := pc.StartPipeline(ctx)
	for _, st := range [][2]string{{stmtBegin, beginReadOnly}, {stmtTimeout, localTimeout},
		{stmtRollback, "ROLLBACK"}, {stmtUnlock, unlockAll}} {
		p.SendPrepare(st[0], st[1], nil)
	}
	p.SendPipelineSync()
	err := p.Flush()
	for err == nil {
		var r any
		if r, err = p.GetResults(); err == nil && r == nil {
			err = errors.New("PostgreSQL ended the pipeline early")
		}
		if _, done := r.(*pgconn.PipelineSync); done {
			break
		}
	}
	if cerr := p.Close(); err == nil {
		err = cerr
	}
	switch {
	case err == nil:
		pc.CustomData()[preparedKey] = true
	case pc.IsClosed():
		return fmt.Errorf("postgres: preparing the read-only setup: %w", err)
	}
	return nil
}

func isPrepared(pc *pgconn.PgConn) bool {
	v, _ := pc.CustomData()[preparedKey].(bool)
	return v
}

func forgetPrepared(pc *pgconn.PgConn) {
	delete(pc.CustomData(), preparedKey)
	delete(pc.CustomData(), statementsKey)
}

// A read-only connection also prepares the callers' statements, as MCP
// Toolbox's pgx does: a statement run again on the connection is neither
// parsed nor planned again (about 10 µs of PostgreSQL's CPU for SELECT 1, 20
// for a 100-row select). Each connection prepares at most maxStatements,
// under names it never reuses (mcp_q1, mcp_q2, …), then runs further
// statements unprepared; the set goes with the connection, which the pool
// replaces after a minute under the fleet budget (the default), an hour at
// most. The statements stay those the guard let through: what runs is the
// same text, in the same read-only transaction.
const (
	statementsKey   = "mcp.statements"
	maxStatements   = 32
	maxStatementLen = 4 << 10
)

type statements struct {
	names map[string]string // statement text -> its prepared name
	given int               // names given so far, the dropped included
}

func statementsOf(pc *pgconn.PgConn) *statements {
	st, _ := pc.CustomData()[statementsKey].(*statements)
	if st == nil {
		st = &statements{names: map[string]string{}}
		pc.CustomData()[statementsKey] = st
	}
	return st
}

// userStatement names stmt's prepared statement on pc: fresh when it is to
// be prepared in this call, "" when it goes unprepared.
func userStatement(pc *pgconn.PgConn, stmt string) (name string, fresh bool) {
	if len(stmt) > maxStatementLen {
		return "", false
	}
	st := statementsOf(pc)
	if n, ok := st.names[stmt]; ok {
		return n, false
	}
	if st.given >= maxStatements {
		return "", false
	}
	return "mcp_q" + strconv.Itoa(st.given+1), true
}

// keepStatement records that name is prepared on pc for stmt.
func keepStatement(pc *pgconn.PgConn, stmt, name string) {
	st := statementsOf(pc)
	st.given++
	st.names[stmt] = name
}

// dropStatement stops using stmt's prepared statement; its name is not
// given again.
func dropStatement(pc *pgconn.PgConn, stmt string) { delete(statementsOf(pc).names, stmt) }

// readRows encodes the statement's rows as they arrive, up to maxRows rows
// and the byte cap of the result.
func (s *Source) readRows(ctx context.Context, pc *pgconn.PgConn, rr *pgconn.ResultReader, maxRows int) (*connectors.Result, error) {
	fds := rr.FieldDescriptions()
	if len(fds) == 0 {
		tag, err := rr.Close()
		if err != nil {
			return nil, err
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
		// it back, so writes drain the rest instead. CancelRequest returns
		// once the server has signalled the backend, so the cancel stops
		// this statement or, if it has just ended, at worst a statement of
		// this pipeline's cleanup, which finish then runs again; it never
		// reaches a later call.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_ = pc.CancelRequest(cctx)
		cancel()
	}
	_, err := rr.Close()
	if err != nil && !truncated {
		return nil, err
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
