package mysql

import (
	"errors"
	"net"
	"sync/atomic"
)

// maxAllowedPacket bounds the packets the driver writes (MaxAllowedPacket
// in go-sql-driver limits only what it sends) and, being set, spares a
// max_allowed_packet query on every new connection.
const maxAllowedPacket = 16 << 20

// maxReplyBytes bounds what the server may send in reply to one command
// before the client writes again. The driver joins a multi-packet row into
// one buffer however long the server says it is, so without this a hostile
// or broken server could make it allocate without limit. Results are cut
// at 4 MiB, and a call reads only a little past the cut, so a legitimate
// reply stops well before this unless a single value is this large.
const maxReplyBytes = 32 << 20

var errReplyTooLarge = errors.New("the server sent a reply larger than 32 MiB; connection closed")

// cappedConn fails reads once the server has sent maxReplyBytes since the
// client last wrote. It counts bytes on the wire, so it works below TLS.
// The driver reports any read error as "invalid connection", so the cap
// also sets tripped, which its Source turns into a clear message.
type cappedConn struct {
	net.Conn
	read    int64
	tripped *atomic.Bool
}

func (c *cappedConn) Read(b []byte) (int, error) {
	if c.read >= maxReplyBytes {
		c.tripped.Store(true)
		return 0, errReplyTooLarge
	}
	if left := maxReplyBytes - c.read; int64(len(b)) > left {
		b = b[:left]
	}
	n, err := c.Conn.Read(b)
	c.read += int64(n)
	return n, err
}

func (c *cappedConn) Write(b []byte) (int, error) {
	c.read = 0
	return c.Conn.Write(b)
}
