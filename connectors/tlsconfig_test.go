package connectors_test

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/connectors/tlstest"
)

func TestParseCARefuses(t *testing.T) {
	t.Parallel()
	good := tlstest.NewCert(t).PEM
	key := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}))
	broken := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")}))
	cases := map[string]string{
		"":                                    "one or more CA certificates",
		"just text":                           "one or more CA certificates",
		strings.TrimSpace(good[:len(good)/2]): "one or more CA certificates",
		good + key:                            "only CERTIFICATE blocks, not PRIVATE KEY",
		good + broken:                         "certificate 2 does not parse",
		good + strings.Repeat("x", connectors.MaxCABytes): "larger than 64 KiB",
	}
	for text, want := range cases {
		_, err := connectors.ParseCA(text)
		if err == nil || !strings.Contains(err.Error(), want) || connectors.KindOf(err) != connectors.KindInput {
			t.Errorf("ParseCA(%.30q) = %v, want KindInput about %q", text, err, want)
		}
		if err != nil && len(err.Error()) > 120 {
			t.Errorf("message too long: %q", err)
		}
		if _, err := connectors.TLSConfig(connectors.Params{SSLCA: text}, "h"); err == nil && text != "" {
			t.Errorf("TLSConfig accepted ssl_ca %.30q", text)
		}
	}
	other := tlstest.NewCert(t, "db.example.com").PEM
	certs, err := connectors.ParseCA("bundle:\n" + good + "\n" + other)
	if err != nil || len(certs) != 2 {
		t.Fatalf("bundle of two: %d certs, %v", len(certs), err)
	}
}

func TestTLSConfigFields(t *testing.T) {
	t.Parallel()
	cfg, err := connectors.TLSConfig(connectors.Params{SSL: true}, "[::1]")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ServerName != "::1" || cfg.MinVersion != tls.VersionTLS12 || cfg.InsecureSkipVerify || cfg.RootCAs != nil {
		t.Fatalf("without CA: name %q min %x insecure %t roots %v", cfg.ServerName, cfg.MinVersion, cfg.InsecureSkipVerify, cfg.RootCAs)
	}
	cfg, err = connectors.TLSConfig(connectors.Params{SSLCA: tlstest.NewCert(t).PEM}, "db.example.com")
	if err != nil || cfg.RootCAs == nil || cfg.ServerName != "db.example.com" || cfg.InsecureSkipVerify {
		t.Fatalf("with CA: %v, roots %v, name %q", err, cfg.RootCAs, cfg.ServerName)
	}
}

// handshake runs a client handshake with TLSConfig(p, serverName) against
// srv and returns the client's error and the server's.
func handshake(t *testing.T, srv *tlstest.Server, p connectors.Params, serverName string) (client, server error) {
	t.Helper()
	cfg, err := connectors.TLSConfig(p, serverName)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.DialTimeout("tcp", srv.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, cfg)
	defer func() { _ = c.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client = c.HandshakeContext(ctx)
	return client, srv.Handshake(t)
}

// The CA of ssl_ca is trusted (besides the system roots, which do not know
// it), for the host name given; nothing else is.
func TestTLSConfigVerifies(t *testing.T) {
	t.Parallel()
	cert := tlstest.NewCert(t)
	srv := tlstest.Serve(t, cert, nil, nil)

	if c, s := handshake(t, srv, connectors.Params{SSLCA: cert.PEM}, "127.0.0.1"); c != nil || s != nil {
		t.Fatalf("with the CA: client %v, server %v", c, s)
	}
	c, s := handshake(t, srv, connectors.Params{}, "127.0.0.1")
	ce := connectors.CertError(c, "PostgreSQL")
	if ce == nil || s == nil || ce.Kind != connectors.KindAuth ||
		!strings.HasPrefix(ce.Msg, "cannot connect to PostgreSQL: server certificate not trusted: x509: ") ||
		!strings.Contains(ce.Msg, "ssl_ca") {
		t.Fatalf("without the CA: client %v, server %v, classified %v", c, s, ce)
	}
	other := tlstest.NewCert(t).PEM // another CA, same names
	if c, _ := handshake(t, srv, connectors.Params{SSLCA: other}, "127.0.0.1"); connectors.CertError(c, "x") == nil {
		t.Fatalf("another CA: %v", c)
	}
	c, _ = handshake(t, srv, connectors.Params{SSLCA: cert.PEM}, "db.example.com")
	if ce := connectors.CertError(c, "MySQL"); ce == nil || !strings.Contains(ce.Msg, "not db.example.com") {
		t.Fatalf("wrong host name: %v, classified %v", c, ce)
	}
}

func TestCertErrorShort(t *testing.T) {
	t.Parallel()
	if connectors.CertError(fmt.Errorf("dial: %w", net.ErrClosed), "x") != nil {
		t.Fatal("a network error classified as a certificate error")
	}
	names := make([]string, 500)
	for i := range names {
		names[i] = fmt.Sprintf("n%d.example.com", i)
	}
	cert := tlstest.NewCert(t, names...)
	srv := tlstest.Serve(t, cert, nil, nil)
	c, _ := handshake(t, srv, connectors.Params{SSLCA: cert.PEM}, "other.example.com")
	ce := connectors.CertError(c, "redis")
	if ce == nil || len(ce.Msg) > 300 || strings.Contains(ce.Msg, "n499.") {
		t.Fatalf("certificate with 500 names: %v", ce)
	}
}

func TestParamsStringHidesCA(t *testing.T) {
	t.Parallel()
	p := connectors.Params{Host: "h", SSL: true, SSLCA: tlstest.NewCert(t).PEM}
	for _, s := range []string{p.String(), fmt.Sprintf("%v %+v %#v", p, p, p)} {
		if !strings.Contains(s, "ca=yes") || strings.Contains(s, "BEGIN") {
			t.Fatalf("Params print as %q", s)
		}
	}
	if s := (connectors.Params{}).String(); !strings.Contains(s, "ca=no") {
		t.Fatalf("Params print as %q", s)
	}
}
