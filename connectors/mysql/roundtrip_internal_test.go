package mysql

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/internal/testservices"
)

// flushCounter dials the server and counts the writes the client makes on
// every connection: each is one flush of the client's buffer, and every
// command of the text protocol waits for its reply before the next.
type flushCounter struct{ n atomic.Int64 }

func (f *flushCounter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, n: &f.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(b)
}

// threadID is the server thread of the pool's only connection, as its
// idConn knows it (no statement runs outside a call's setup and cleanup).
func threadID(t *testing.T, s *Source) int64 {
	t.Helper()
	conn, err := s.db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	var id int64
	_ = conn.Raw(func(dc any) error {
		if c, ok := dc.(*idConn); ok {
			id = c.id
		}
		return nil
	})
	if id == 0 {
		t.Fatal("no thread id")
	}
	return id
}

// TestRoundTrips counts the client's flushes per call on a warm pool: on
// MariaDB a read, failed or not, is three round trips (one SET for the
// session and its read-only transaction, the statement, ROLLBACK; four
// before the SET took in START TRANSACTION READ ONLY), and so is a write
// returning rows.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	host, port := testservices.Need(t, testservices.MySQL)
	for _, writes := range []bool{false, true} {
		f := &flushCounter{}
		p := connectors.Params{Host: host, Port: port, Database: "test", Username: "root", AllowWrites: writes}
		src, err := Driver{}.Open(context.Background(), p, connectors.Options{MaxOpen: 1, StatementTimeout: 2 * time.Second, Dial: f.dial})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(src.Close)
		s := src.(*Source)
		id := threadID(t, s)
		cases := []struct {
			query string
			kind  connectors.Kind
			want  int64
		}{
			{"SELECT 1 AS one", 0, 3},
			{"SELECT seq FROM seq_1_to_500", 0, 3},
			{"SELECT no_such_function_rt()", connectors.KindQuery, 3},
			{"SELECT * FROM no_such_table_rt", connectors.KindQuery, 3},
			{"SELECT SLEEP(5) FROM seq_1_to_2", connectors.KindTimeout, 3}, // max_statement_time
		}
		for _, c := range cases {
			before := f.n.Load()
			res, err := s.Run(context.Background(), "DB_QUERY", json.RawMessage(`{"query":`+quoteJSON(c.query)+`}`),
				connectors.Limits{MaxRows: 1000, Timeout: 30 * time.Second})
			flushes := f.n.Load() - before
			if kind(err) != c.kind || c.kind == 0 && !res.Rows {
				t.Fatalf("writes=%v %s: got %v, want kind %d", writes, c.query, err, c.kind)
			}
			if flushes != c.want {
				t.Errorf("writes=%v %s: %d round trips, want %d", writes, c.query, flushes, c.want)
			}
			if got := threadID(t, s); got != id {
				t.Fatalf("writes=%v %s: connection replaced (thread %d, then %d)", writes, c.query, id, got)
			}
		}
	}
}

func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// kind is the error's kind, 0 for no error.
func kind(err error) connectors.Kind {
	if err == nil {
		return 0
	}
	return connectors.KindOf(err)
}

// TestWriteAfterRead runs a write on the connection a read-only discovery
// call just used (tx_read_only on, autocommit off): the write's setup turns
// both back, so the row is written and committed.
func TestWriteAfterRead(t *testing.T) {
	t.Parallel()
	host, port := testservices.Need(t, testservices.MySQL)
	p := connectors.Params{Host: host, Port: port, Database: "test", Username: "root", AllowWrites: true}
	src, err := Driver{}.Open(context.Background(), p, connectors.Options{MaxOpen: 1, StatementTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	s := src.(*Source)
	tbl := "rt_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	lim := connectors.Limits{MaxRows: 100, Timeout: 10 * time.Second}
	call := func(tool, params string) {
		t.Helper()
		if _, err := s.Run(context.Background(), tool, json.RawMessage(params), lim); err != nil {
			t.Fatalf("%s %s: %v", tool, params, err)
		}
	}
	call("DB_QUERY", `{"query": "CREATE TABLE `+tbl+` (v INT) ENGINE=InnoDB"}`)
	t.Cleanup(func() { call("DB_QUERY", `{"query": "DROP TABLE `+tbl+`"}`) })
	id := threadID(t, s)
	call("DB_LIST_TABLES", `{}`)
	call("DB_QUERY", `{"query": "INSERT INTO `+tbl+` VALUES (1)"}`)
	if got := threadID(t, s); got != id {
		t.Fatalf("connection replaced (thread %d, then %d)", id, got)
	}
	var n int
	if err := s.db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM "+tbl).Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows = %d (%v), want 1 committed", n, err)
	}
}
