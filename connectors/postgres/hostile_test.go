package postgres_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// hostileServer is a fake PostgreSQL server on loopback. It accepts the
// startup message and then declares a message of length declared: at once
// when early, else after a normal startup, in answer to the first query
// that is not the pool's ping. It sends no body: a driver that trusts the
// length allocates it and waits.
func hostileServer(t *testing.T, declared uint32, early bool) (host string, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveHostile(c, declared, early)
		}
	}()
	addr := ln.Addr().(*net.TCPAddr)
	return addr.IP.String(), addr.Port
}

func serveHostile(c net.Conn, declared uint32, early bool) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	be := pgproto3.NewBackend(c, c)
	for {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return
		}
		switch msg.(type) {
		case *pgproto3.StartupMessage:
		case *pgproto3.CancelRequest:
			return // as a server does: hang up
		default:
			if _, err := c.Write([]byte("N")); err != nil { // no SSL, no GSS
				return
			}
			continue
		}
		break
	}
	header := make([]byte, 5)
	header[0] = 'D'
	binary.BigEndian.PutUint32(header[1:], declared)
	if early {
		header[0] = 'R'
		hold(be, c, header)
		return
	}
	be.Send(&pgproto3.AuthenticationOk{})
	be.Send(&pgproto3.ParameterStatus{Name: "client_encoding", Value: "UTF8"})
	be.Send(&pgproto3.ParameterStatus{Name: "standard_conforming_strings", Value: "on"})
	be.Send(&pgproto3.BackendKeyData{ProcessID: 1, SecretKey: []byte{0, 0, 0, 1}})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if be.Flush() != nil {
		return
	}
	for {
		msg, err := be.Receive()
		if err != nil {
			return
		}
		if _, ok := msg.(*pgproto3.Parse); ok {
			// A statement in the extended protocol (a pipelined read):
			// answer with the huge message.
			hold(be, c, header)
			return
		}
		q, ok := msg.(*pgproto3.Query)
		if !ok {
			continue
		}
		if strings.HasPrefix(q.String, "-- ping") {
			be.Send(&pgproto3.EmptyQueryResponse{})
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
			if be.Flush() != nil {
				return
			}
			continue
		}
		hold(be, c, header)
		return
	}
}

// hold writes the header, then sends nothing more until the client says
// Terminate or hangs up.
func hold(be *pgproto3.Backend, c net.Conn, header []byte) {
	if _, err := c.Write(header); err != nil {
		return
	}
	for {
		if msg, err := be.Receive(); err != nil {
			return
		} else if _, ok := msg.(*pgproto3.Terminate); ok {
			return
		}
	}
}

// A server declaring a huge message is refused by its declared length,
// before the driver allocates it: at startup (Open fails, naming the limit)
// and in answer to a query (the call fails, or Open when the query is the
// read-only setup the pool prepares as it connects; pgconn reports that
// case only as a closed connection). 512 MiB is under the driver's own 1 GiB default
// limit, so only the connector's cap stops it.
func TestHostileServerMessageLength(t *testing.T) {
	// Not parallel: it measures the process's allocations.
	for _, declared := range []uint32{512<<20 + 5, 0x7fffffff} {
		for _, early := range []bool{true, false} {
			host, port := hostileServer(t, declared, early)
			p := connectors.Params{Host: host, Port: port, Database: "test", Username: "u"}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			src, err := driver(t).Open(ctx, p, opts())
			if err == nil {
				_, err = src.Run(ctx, "DB_QUERY", []byte(`{"query": "SELECT 1"}`), lim)
				src.Close()
			}
			cancel()
			runtime.ReadMemStats(&after)
			var tooBig *pgproto3.ExceededMaxBodyLenErr
			named := errors.As(err, &tooBig) && strings.Contains(err.Error(), "64 MiB")
			if kindOf(err) != connectors.KindUnavailable || early && !named {
				t.Fatalf("declared %d (early %v): got %v (kind %d), want KindUnavailable naming the 64 MiB limit", declared, early, err, kindOf(err))
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
				t.Fatalf("declared %d (early %v): %d MiB allocated", declared, early, grew>>20)
			}
		}
	}
}
