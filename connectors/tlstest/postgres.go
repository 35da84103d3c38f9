package tlstest

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
)

// sslRequestCode is PostgreSQL's SSLRequest code.
const sslRequestCode = 80877103

// PostgresAcceptSSL is a PostgreSQL server's preamble: it reads the client's
// SSLRequest and answers 'S' (TLS follows).
func PostgresAcceptSSL(c net.Conn) error {
	var msg [8]byte
	if _, err := io.ReadFull(c, msg[:]); err != nil {
		return err
	}
	if binary.BigEndian.Uint32(msg[4:]) != sslRequestCode {
		return errors.New("not an SSLRequest")
	}
	_, err := c.Write([]byte{'S'})
	return err
}

// PostgresRefuseLogin reads the client's startup message and refuses the
// password (SQLSTATE 28P01), so a client sees that TLS got through.
func PostgresRefuseLogin(c net.Conn) error {
	var n [4]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return err
	}
	if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(n[:]))-4); err != nil {
		return err
	}
	fields := "SFATAL\x00VFATAL\x00C28P01\x00Mpassword authentication failed (fake server)\x00\x00"
	msg := binary.BigEndian.AppendUint32([]byte{'E'}, uint32(4+len(fields)))
	_, err := c.Write(append(msg, fields...))
	return err
}
