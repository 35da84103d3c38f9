package redis

import (
	"testing"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/connectors/tlstest"
)

// ssl on means TLS with the server's certificate verified against the
// system roots or ssl_ca.
func TestSSLVerifiesCertificate(t *testing.T) {
	t.Parallel()
	tlstest.CheckVerified(t, Driver{}, nil, func(srv *tlstest.Server) connectors.Params {
		return connectors.Params{Host: srv.Host, Port: srv.Port, Password: "pw-never-shown"}
	})
}
