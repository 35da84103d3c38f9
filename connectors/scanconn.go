package connectors

import "net"

// ScanConn wraps a connection so that every byte the server sends passes
// scan before the driver reads it: the guard below a driver against a
// server declaring huge lengths. The first error scan returns fails that
// read and every later one, so the driver drops the connection.
func ScanConn(c net.Conn, scan func([]byte) error) net.Conn {
	return &scanConn{Conn: c, scan: scan}
}

type scanConn struct {
	net.Conn
	scan func([]byte) error
	err  error
}

// Read passes the bytes through once they have been checked.
func (s *scanConn) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.Conn.Read(p)
	if cerr := s.scan(p[:n]); cerr != nil {
		s.err = cerr
		return 0, cerr
	}
	return n, err
}
