package postgres_test

import (
	"testing"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/connectors/tlstest"
)

// ssl on means verify-full: the server's certificate must chain to the
// system roots or ssl_ca.
func TestSSLVerifiesCertificate(t *testing.T) {
	t.Parallel()
	tlstest.CheckVerified(t, driver(t), tlstest.PostgresAcceptSSL, func(srv *tlstest.Server) connectors.Params {
		return connectors.Params{Host: srv.Host, Port: srv.Port, Database: "test", Username: "u", Password: "pw-never-shown"}
	})
}
