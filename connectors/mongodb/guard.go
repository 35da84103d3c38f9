package mongodb

import (
	"encoding/binary"
	"net"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// maxWireMessage is MongoDB's maxMessageSizeBytes (48,000,000 bytes). The
// driver checks a reply's declared length against the maxMessageSizeBytes
// the server announced in its hello reply, which a hostile server may set to
// 2^31, and allocates the declared length before reading the message.
const maxWireMessage = 48_000_000

// Wire protocol layout: a 16-byte header (messageLength, requestID,
// responseTo, opCode); OP_COMPRESSED adds originalOpcode, uncompressedSize
// and compressorId.
const (
	headerLen       = 16
	compressedLen   = headerLen + 9
	opCompressed    = 2012
	offsetOpCode    = 12
	offsetUncompLen = 20
)

// wireGuard scans a plaintext connection to MongoDB (connectors.ScanConn) and
// fails a read before
// the driver sees a message whose declared length is below 16 or above
// maxWireMessage, or an OP_COMPRESSED message that declares more than
// maxWireMessage uncompressed bytes (the driver allocates that much before
// decompressing).
type wireGuard struct {
	head [compressedLen]byte
	n    int   // header bytes of the current message seen
	size int64 // the current message's declared length
	left int64 // bytes of the current message past its inspected header
}

func guardWire(c net.Conn) net.Conn { return connectors.ScanConn(c, (&wireGuard{}).scan) }

func (g *wireGuard) scan(b []byte) error {
	for len(b) > 0 {
		if g.left > 0 {
			k := min(g.left, int64(len(b)))
			g.left -= k
			b = b[k:]
			continue
		}
		g.head[g.n] = b[0]
		g.n++
		b = b[1:]
		switch g.n {
		case 4:
			g.size = int64(int32(binary.LittleEndian.Uint32(g.head[:4])))
			if g.size < headerLen || g.size > maxWireMessage {
				return wireErr("message length %d is outside %d to %d bytes", g.size, headerLen, maxWireMessage)
			}
		case headerLen:
			if binary.LittleEndian.Uint32(g.head[offsetOpCode:]) != opCompressed {
				g.n, g.left = 0, g.size-headerLen
			} else if g.size < compressedLen {
				return wireErr("compressed message length %d is too short", g.size)
			}
		case compressedLen:
			u := int64(int32(binary.LittleEndian.Uint32(g.head[offsetUncompLen:])))
			if u < 0 || u > maxWireMessage {
				return wireErr("uncompressed length %d is outside 0 to %d bytes", u, maxWireMessage)
			}
			g.n, g.left = 0, g.size-compressedLen
		}
	}
	return nil
}

func wireErr(format string, args ...any) error {
	return connectors.Errorf(connectors.KindUnavailable, "MongoDB sent a malformed reply: "+format, args...)
}
