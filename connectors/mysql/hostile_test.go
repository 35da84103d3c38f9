package mysql_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// hostileServer accepts one connection, greets it (see greet), then hands
// the connection to attack.
func hostileServer(t *testing.T, attack func(net.Conn)) connectors.Params {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer func() { _ = c.Close() }()
		if greet(c) == nil {
			attack(c)
		}
	}()
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	n, _ := strconv.Atoi(port)
	return connectors.Params{Host: host, Port: n, Database: "test", Username: "root"}
}

// greet sends a MySQL v10 handshake offering TLS and reads the client's
// answer: its login, or its SSLRequest when it asks for TLS.
func greet(c net.Conn) error {
	body := []byte{10}
	body = append(body, "5.7.99-hostile\x00"...)
	body = append(body, 1, 0, 0, 0)                    // connection id
	body = append(body, "abcdefgh"...)                 // auth data, part 1
	body = append(body, 0, 0x00, 0xaa, 33, 2, 0, 8, 0) // filler, caps low (with CLIENT_SSL), charset, status, caps high
	body = append(body, 21)
	body = append(body, make([]byte, 10)...)
	body = append(body, "ijklmnopqrst\x00"...)
	body = append(body, "mysql_native_password\x00"...)
	if err := writePacket(c, 0, body); err != nil {
		return err
	}
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return err
	}
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	_, err := io.CopyN(io.Discard, c, int64(n))
	return err
}

func writePacket(c net.Conn, seq byte, body []byte) error {
	hdr := make([]byte, 4)
	binary.LittleEndian.PutUint32(hdr, uint32(len(body)))
	hdr[3] = seq
	_, err := c.Write(append(hdr, body...))
	return err
}

// A server that answers the login with a row of endless 16 MiB packets:
// the driver would join them into one ever-growing buffer. Open fails
// quickly, says why, and allocates a bounded amount. Not parallel, so the
// allocation count is this test's own.
func TestHostileEndlessPacket(t *testing.T) {
	p := hostileServer(t, func(c net.Conn) {
		chunk := make([]byte, 4+0xffffff)
		chunk[0], chunk[1], chunk[2] = 0xff, 0xff, 0xff
		for seq := byte(2); ; seq++ {
			chunk[3] = seq
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, err := driver(t).Open(ctx, p, connectors.Options{MaxOpen: 1, ConnectTimeout: 10 * time.Second})
	runtime.ReadMemStats(&after)
	if err == nil {
		src.Close()
		t.Fatal("Open succeeded against a hostile server")
	}
	if kindOf(err) != connectors.KindUnavailable || !strings.Contains(err.Error(), "32 MiB") {
		t.Fatalf("got %v (kind %d), want KindUnavailable about the reply size", err, kindOf(err))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<20 {
		t.Fatalf("allocated %d MiB", alloc>>20)
	}
}

// A server that declares a 16 MiB packet and then stalls: Open gives up
// at its connect timeout with a clear error, without a panic.
func TestHostileStall(t *testing.T) {
	t.Parallel()
	p := hostileServer(t, func(c net.Conn) {
		_, _ = c.Write([]byte{0xff, 0xff, 0xff, 2, 0})
		_, _ = io.Copy(io.Discard, c) // until the client hangs up
	})
	start := time.Now()
	src, err := driver(t).Open(context.Background(), p, connectors.Options{MaxOpen: 1, ConnectTimeout: time.Second})
	if err == nil {
		src.Close()
		t.Fatal("Open succeeded against a stalling server")
	}
	if kindOf(err) != connectors.KindUnavailable || !strings.HasPrefix(err.Error(), "cannot reach MySQL") {
		t.Fatalf("got %v (kind %d)", err, kindOf(err))
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("took %v", d)
	}
}
