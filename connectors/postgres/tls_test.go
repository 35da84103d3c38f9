package postgres_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/connectors/tlstest"
)

// sslRequest is PostgreSQL's SSLRequest code.
const sslRequest = 80877103

// acceptSSL answers a client's SSLRequest with 'S', as a server with TLS on.
func acceptSSL(c net.Conn) error {
	var msg [8]byte
	if _, err := io.ReadFull(c, msg[:]); err != nil {
		return err
	}
	if binary.BigEndian.Uint32(msg[4:]) != sslRequest {
		return errors.New("not an SSLRequest")
	}
	_, err := c.Write([]byte{'S'})
	return err
}

// ssl on means verify-full: the server's certificate must chain to the
// system roots or ssl_ca.
func TestSSLVerifiesCertificate(t *testing.T) {
	t.Parallel()
	tlstest.CheckVerified(t, driver(t), acceptSSL, func(srv *tlstest.Server) connectors.Params {
		return connectors.Params{Host: srv.Host, Port: srv.Port, Database: "test", Username: "u", Password: "pw-never-shown"}
	})
}
