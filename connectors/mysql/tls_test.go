package mysql_test

import (
	"testing"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/connectors/tlstest"
)

// ssl on means TLS with the server's certificate verified against the
// system roots or ssl_ca. The fake server offers CLIENT_SSL in its
// handshake, reads the client's SSLRequest, then runs the TLS handshake.
func TestSSLVerifiesCertificate(t *testing.T) {
	t.Parallel()
	tlstest.CheckVerified(t, driver(t), greet, func(srv *tlstest.Server) connectors.Params {
		return connectors.Params{Host: srv.Host, Port: srv.Port, Database: "test", Username: "u", Password: "pw-never-shown"}
	})
}
