package redis

import (
	"net"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// Bounds on what a server may declare, checked by respGuard before go-redis
// sees the bytes. go-redis allocates from a declared length (make([]byte, n)
// for a bulk string, make([]any, n) for an array), so a hostile server
// could otherwise make the worker allocate terabytes with a 20-byte reply.
const (
	// maxBulk: one string can never be returned whole when it is longer
	// than the result cap, so it is not read at all.
	maxBulk = connectors.MaxResultBytes
	// maxReplyElems bounds the elements declared by one reply, nested
	// aggregates included (a map's entry counts twice).
	maxReplyElems = 1 << 20
	// maxReplyBytes bounds the bytes of one reply.
	maxReplyBytes = 64 << 20
	// maxLine bounds a header or simple-string line.
	maxLine = 64 << 10
	// maxNesting bounds aggregate depth.
	maxNesting = 64
)

// respGuard wraps a connection to Redis and fails a read as soon as the
// RESP2/RESP3 stream declares more than the bounds above, or is not RESP. It
// follows the framing of every reply (including the payloads of bulk
// strings, which may hold any bytes) without keeping them.
type respGuard struct {
	inLine  bool    // inside a header line (type byte seen, no '\n' yet)
	typ     byte    // the line's type byte
	num     int64   // the line's number so far, for length-carrying types
	neg     bool    // the number has a leading '-'
	digits  int     // digits seen
	bad     bool    // the number is not a plain integer
	lineLen int     // bytes of the line so far
	skip    int64   // payload bytes (plus CRLF) still to pass through
	stack   []frame // open aggregates of the current reply
	elems   int64   // elements declared by the current reply
	bytes   int64   // bytes of the current reply
}

// frame is one open aggregate: how many values it still holds.
type frame struct {
	left int64
	attr bool // an attribute, which its parent does not count as a value
}

func guardRESP(c net.Conn) net.Conn { return connectors.ScanConn(c, (&respGuard{}).scan) }

func (g *respGuard) scan(b []byte) error {
	for len(b) > 0 {
		if g.skip > 0 {
			k := min(g.skip, int64(len(b)))
			g.skip -= k
			g.bytes += k
			b = b[k:]
			if g.bytes > maxReplyBytes {
				return errReplyBytes()
			}
			if g.skip == 0 {
				g.valueDone()
			}
			continue
		}
		c := b[0]
		b = b[1:]
		g.bytes++
		if !g.inLine {
			g.inLine, g.typ, g.num, g.neg, g.digits, g.bad, g.lineLen = true, c, 0, false, 0, false, 1
			continue
		}
		g.lineLen++
		if g.lineLen > maxLine {
			return malformed("a reply line is longer than 64 KiB")
		}
		switch {
		case c == '\n':
			g.inLine = false
			if err := g.header(); err != nil {
				return err
			}
		case c == '\r':
		case c == '-' && g.digits == 0 && !g.neg:
			g.neg = true
		case c >= '0' && c <= '9' && g.digits < 19:
			g.num = g.num*10 + int64(c-'0')
			g.digits++
		default:
			g.bad = true
		}
	}
	return nil
}

// header acts on a complete header line.
func (g *respGuard) header() error {
	if g.bytes > maxReplyBytes {
		return errReplyBytes()
	}
	switch g.typ {
	case '+', '-', ':', ',', '#', '_', '(':
		// A whole value on one line.
		g.valueDone()
		return nil
	case '$', '!', '=', '*', '~', '>', '%', '|':
	default:
		return malformed("unknown reply type")
	}
	if g.bad || g.digits == 0 {
		return malformed("bad length")
	}
	if g.neg {
		if g.num != 1 {
			return malformed("bad length")
		}
		g.valueDone() // -1: a RESP2 null
		return nil
	}
	n := g.num
	switch g.typ {
	case '$', '!', '=':
		if n > maxBulk {
			return errTooLarge(n)
		}
		g.skip = n + 2
		return nil
	case '%', '|':
		n *= 2
	}
	g.elems += n
	if g.elems > maxReplyElems {
		return connectors.Errorf(connectors.KindQuery,
			"the reply has more than %d elements; ask for fewer, e.g. LRANGE key 0 999 or SCAN", maxReplyElems)
	}
	if n == 0 {
		g.valueDone()
		return nil
	}
	if len(g.stack) >= maxNesting {
		return malformed("replies nested too deep")
	}
	g.stack = append(g.stack, frame{left: n, attr: g.typ == '|'})
	return nil
}

// valueDone counts a finished value against the open aggregates; when the
// outermost one is complete, the next reply starts with fresh budgets.
func (g *respGuard) valueDone() {
	for len(g.stack) > 0 {
		top := &g.stack[len(g.stack)-1]
		top.left--
		if top.left > 0 {
			return
		}
		attr := top.attr
		g.stack = g.stack[:len(g.stack)-1]
		if attr {
			return // the value the attribute describes follows
		}
	}
	g.elems, g.bytes = 0, 0
}

func errReplyBytes() error {
	return connectors.Errorf(connectors.KindQuery,
		"the reply is larger than %d MiB; ask for less, e.g. LRANGE key 0 999 or SCAN", maxReplyBytes>>20)
}

func malformed(why string) error {
	return connectors.Errorf(connectors.KindUnavailable, "redis sent a malformed reply: %s", why)
}
