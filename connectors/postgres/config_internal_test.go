package postgres

import (
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// Values that would break a connection string stay exactly what they are:
// the password never enters the string, and the rest is quoted.
func TestPoolConfigQuoting(t *testing.T) {
	p := connectors.Params{Host: "db.example.com", Port: 6543, Database: `we'ird \db name`, Username: `u' password='x`,
		Password: `p' host='evil.example.com`, SSL: true}
	cfg, err := poolConfig(p, connectors.Options{MaxOpen: 4, IdleTimeout: time.Minute, StatementTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cc := cfg.ConnConfig
	if cc.Host != p.Host || cc.Port != 6543 || cc.Database != p.Database || cc.User != p.Username || cc.Password != p.Password {
		t.Fatalf("config = host %q port %d db %q user %q", cc.Host, cc.Port, cc.Database, cc.User)
	}
	if cc.TLSConfig == nil || len(cc.Fallbacks) != 0 || cc.TLSConfig.InsecureSkipVerify || cc.TLSConfig.ServerName != p.Host {
		t.Fatalf("ssl: TLS %v, %d fallbacks (want verified TLS, no plaintext fallback)", cc.TLSConfig, len(cc.Fallbacks))
	}
	if cfg.MaxConns != 4 || cfg.MaxConnIdleTime != time.Minute || cc.RuntimeParams["statement_timeout"] != "2000" {
		t.Fatalf("pool: max %d idle %v params %v", cfg.MaxConns, cfg.MaxConnIdleTime, cc.RuntimeParams)
	}
	if cc.RuntimeParams["standard_conforming_strings"] != "on" || cc.RuntimeParams["client_encoding"] != "UTF8" {
		t.Fatalf("the read-only guard's lexing settings are not requested: %v", cc.RuntimeParams)
	}
	p.SSL = false
	cfg, err = poolConfig(p, connectors.Options{})
	if err != nil || cfg.ConnConfig.TLSConfig != nil || cfg.MaxConns != 1 {
		t.Fatalf("no ssl: %v %v", err, cfg.ConnConfig.TLSConfig)
	}
}
