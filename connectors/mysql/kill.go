package mysql

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"strconv"
	"time"
)

// killTimeout bounds the side connection that stops a statement.
const killTimeout = 5 * time.Second

// idConnector opens connections that know their server thread id, so a call
// past its deadline can be stopped with KILL QUERY from a side connection.
// Closing a client socket alone leaves the statement running on the
// server, and a statement can lift its own max_execution_time with an
// optimizer hint (or SET STATEMENT on MariaDB).
type idConnector struct{ driver.Connector }

// Connect opens a connection and asks for its thread id once.
func (c idConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	id, err := connectionID(ctx, dc)
	if err != nil {
		_ = dc.Close()
		return nil, err
	}
	return &idConn{Conn: dc, id: id}, nil
}

func connectionID(ctx context.Context, dc driver.Conn) (int64, error) {
	q, ok := dc.(driver.QueryerContext)
	if !ok {
		return 0, errors.New("mysql driver connection cannot run queries")
	}
	rows, err := q.QueryContext(ctx, "SELECT CONNECTION_ID()", nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = rows.Close() }()
	v := make([]driver.Value, 1)
	if err := rows.Next(v); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("no CONNECTION_ID() from the server")
		}
		return 0, err
	}
	switch id := v[0].(type) {
	case int64:
		return id, nil
	case []byte:
		return strconv.ParseInt(string(id), 10, 64)
	}
	return 0, errors.New("unexpected CONNECTION_ID() type")
}

// killQuery stops the statement running on thread id, over a connection of
// its own (the pool may be full, and the thread's own socket is busy).
func (s *Source) killQuery(id int64) {
	ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
	defer cancel()
	dc, err := s.connector.Connector.Connect(ctx)
	if err != nil {
		return // the server is unreachable: its own limit stops the statement
	}
	defer func() { _ = dc.Close() }()
	if ex, ok := dc.(driver.ExecerContext); ok {
		_, _ = ex.ExecContext(ctx, "KILL QUERY "+strconv.FormatInt(id, 10), nil)
	}
}

// idConn is a driver connection with its server thread id. It passes on
// every optional interface database/sql and this package use.
type idConn struct {
	driver.Conn
	id int64
}

func (c *idConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	if qc, ok := c.Conn.(driver.QueryerContext); ok {
		return qc.QueryContext(ctx, q, args)
	}
	return nil, driver.ErrSkip
}

func (c *idConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	if ec, ok := c.Conn.(driver.ExecerContext); ok {
		return ec.ExecContext(ctx, q, args)
	}
	return nil, driver.ErrSkip
}

func (c *idConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	if pc, ok := c.Conn.(driver.ConnPrepareContext); ok {
		return pc.PrepareContext(ctx, q)
	}
	return c.Prepare(q)
}

func (c *idConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if bc, ok := c.Conn.(driver.ConnBeginTx); ok {
		return bc.BeginTx(ctx, opts)
	}
	return nil, errors.New("mysql driver connection cannot begin transactions")
}

func (c *idConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *idConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *idConn) IsValid() bool {
	v, ok := c.Conn.(driver.Validator)
	return !ok || v.IsValid()
}

func (c *idConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}
