package mysql

import (
	"testing"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/connectors/tlstest"
)

// Cleartext passwords (mysql_clear_password) are allowed only with ssl, whose
// TLS always verifies the server's certificate.
func TestConfigTLS(t *testing.T) {
	t.Parallel()
	p := connectors.Params{Host: "db.example.com", Port: 3306, Database: "d", Username: "u", Password: "pw"}
	cfg, err := config(p, connectors.Options{})
	if err != nil || cfg.TLS != nil || cfg.AllowCleartextPasswords {
		t.Fatalf("no ssl: %v, TLS %v, cleartext %t", err, cfg.TLS, cfg.AllowCleartextPasswords)
	}
	p.SSL, p.SSLCA = true, tlstest.NewCert(t).PEM
	cfg, err = config(p, connectors.Options{})
	if err != nil || cfg.TLS == nil || cfg.TLS.InsecureSkipVerify || cfg.TLS.ServerName != p.Host ||
		cfg.TLS.RootCAs == nil || !cfg.AllowCleartextPasswords {
		t.Fatalf("ssl: %v, TLS %+v, cleartext %t", err, cfg.TLS, cfg.AllowCleartextPasswords)
	}
	p.SSLCA = "not PEM"
	if _, err := config(p, connectors.Options{}); connectors.KindOf(err) != connectors.KindInput {
		t.Fatalf("bad ssl_ca: %v", err)
	}
}
