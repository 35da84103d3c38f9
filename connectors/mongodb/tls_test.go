package mongodb

import (
	"strings"
	"testing"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/connectors/tlstest"
)

// ssl on (or tls=true in the connection string) means TLS with the server's
// certificate verified against the system roots or ssl_ca.
func TestSSLVerifiesCertificate(t *testing.T) {
	t.Parallel()
	tlstest.CheckVerified(t, Driver{}, nil, func(srv *tlstest.Server) connectors.Params {
		return connectors.Params{ConnectionString: "mongodb://app:pw-never-shown@" + srv.Addr() + "/shop"}
	})
}

// TLS is on with the form's ssl, tls=true or ssl=true, and mongodb+srv://
// unless tls=false.
func TestTLSOn(t *testing.T) {
	t.Parallel()
	cases := []struct {
		uri  string
		ssl  bool
		want bool
	}{
		{"mongodb://h/db", false, false},
		{"mongodb://h/db", true, true},
		{"mongodb://h/db?tls=true", false, true},
		{"mongodb://h/db?ssl=true", false, true},
		{"mongodb://h/db?tls=false", true, true},
		{"mongodb+srv://c.example.net/db", false, true},
		{"mongodb+srv://c.example.net/db?tls=false", false, false},
	}
	for _, c := range cases {
		tg, err := parseTarget(connectors.Params{ConnectionString: c.uri, SSL: c.ssl})
		if err != nil || tg.tls != c.want {
			t.Errorf("%s ssl %t: %v, tls %t, want %t", c.uri, c.ssl, err, tg != nil && tg.tls, c.want)
		}
	}
}

// Connection string options that weaken verification are refused, and
// PLAIN, which sends the password in clear, needs TLS.
func TestWeakTLSOptionsRefused(t *testing.T) {
	t.Parallel()
	for _, o := range append(weakTLSOptions, "TLSINSECURE") {
		for _, v := range []string{"true", "false"} {
			uri := "mongodb://app:pw@h/db?tls=true&" + o + "=" + v
			err := (Driver{}).Validate(connectors.Params{ConnectionString: uri})
			if connectors.KindOf(err) != connectors.KindInput || !strings.Contains(err.Error(), "not allowed") {
				t.Errorf("%s=%s: %v", o, v, err)
			}
		}
	}
	plain := "mongodb://app:pw@h/db?authMechanism=PLAIN"
	if err := (Driver{}).Validate(connectors.Params{ConnectionString: plain}); err == nil || !strings.Contains(err.Error(), "in clear") {
		t.Errorf("PLAIN without TLS: %v", err)
	}
	for _, p := range []connectors.Params{
		{ConnectionString: plain + "&tls=true"},
		{ConnectionString: plain, SSL: true},
		{ConnectionString: "mongodb+srv://app:pw@cluster0.example.net/db?authMechanism=PLAIN"},
	} {
		if err := (Driver{}).Validate(p); err != nil {
			t.Errorf("%s (ssl %t): %v", p.ConnectionString, p.SSL, err)
		}
	}
	bad := connectors.Params{ConnectionString: "mongodb://h/db", SSLCA: "-----BEGIN CERTIFICATE-----\nxx"}
	if err := (Driver{}).Validate(bad); connectors.KindOf(err) != connectors.KindInput {
		t.Errorf("bad ssl_ca: %v", err)
	}
}
