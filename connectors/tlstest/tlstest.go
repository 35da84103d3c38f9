package tlstest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// Cert is a self-signed certificate, its own CA.
type Cert struct {
	PEM    string      // the certificate: the CA a client must trust
	Server *tls.Config // a server configuration presenting it
}

// NewCert makes a self-signed certificate valid for the given DNS names and
// IP addresses (127.0.0.1 and localhost when none are given).
func NewCert(t testing.TB, names ...string) Cert {
	t.Helper()
	if len(names) == 0 {
		names = []string{"127.0.0.1", "localhost"}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "tlstest " + names[0]},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return Cert{
		PEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		Server: &tls.Config{MinVersion: tls.VersionTLS12,
			Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
	}
}

// Server is a fake database server on 127.0.0.1.
type Server struct {
	Host       string
	Port       int
	handshakes chan error
}

// Serve accepts connections until the test ends. On each it runs pre (the
// engine's plaintext preamble before TLS; nil for none), then the server side
// of a TLS handshake presenting cert, reports the handshake's error (nil when
// it succeeded), runs post on the TLS connection after a successful
// handshake (nil for none) and closes the connection.
func Serve(t testing.TB, cert Cert, pre, post func(net.Conn) error) *Server {
	t.Helper()
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	s := &Server{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, handshakes: make(chan error, 64)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.handle(c, cert, pre, post)
		}
	}()
	return s
}

func (s *Server) handle(c net.Conn, cert Cert, pre, post func(net.Conn) error) {
	defer func() { _ = c.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if pre != nil {
		if err := pre(c); err != nil {
			return
		}
	}
	tc := tls.Server(c, cert.Server)
	err := tc.HandshakeContext(ctx)
	select {
	case s.handshakes <- err:
	default: // nobody is counting this many
	}
	if err == nil && post != nil {
		_ = post(tc)
	}
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Handshake waits up to 10 s for the outcome of the next server-side TLS
// handshake: nil when it succeeded.
func (s *Server) Handshake(t testing.TB) error {
	t.Helper()
	select {
	case err := <-s.handshakes:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no TLS handshake reached the fake server")
		return nil
	}
}

// CheckVerified shows that driver d verifies the server's certificate. It
// starts two fake servers with a fresh self-signed certificate (pre is the
// engine's preamble) and opens a Source with ssl on against each, with the
// Params that params gives for it. Without ssl_ca, Open must fail with a
// KindAuth certificate error, and the handshake must fail; with the
// certificate as ssl_ca the handshake must succeed (Open then fails as the
// fake hangs up, but not on the certificate). The password never shows.
func CheckVerified(t *testing.T, d connectors.Driver, pre func(net.Conn) error, params func(srv *Server) connectors.Params) {
	t.Helper()
	cert := NewCert(t)
	open := func(ca string) (*Server, error) {
		srv := Serve(t, cert, pre, nil)
		p := params(srv)
		p.SSL, p.SSLCA = true, ca
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		src, err := d.Open(ctx, p, connectors.Options{MaxOpen: 1, ConnectTimeout: 3 * time.Second})
		if err == nil {
			src.Close()
			t.Fatal("Open succeeded against a fake server")
		}
		if p.Password != "" && strings.Contains(err.Error(), p.Password) {
			t.Fatalf("the error shows the password: %v", err)
		}
		return srv, err
	}
	srv, err := open("")
	if connectors.KindOf(err) != connectors.KindAuth || !strings.Contains(err.Error(), "server certificate not trusted: x509: ") {
		t.Fatalf("without ssl_ca: %v, want a KindAuth certificate error", err)
	}
	if srv.Handshake(t) == nil {
		t.Fatal("without ssl_ca the fake server's handshake succeeded")
	}
	srv, err = open(cert.PEM)
	if strings.Contains(err.Error(), "certificate") {
		t.Fatalf("with ssl_ca: %v, want an error that is not about the certificate", err)
	}
	if hs := srv.Handshake(t); hs != nil {
		t.Fatalf("with ssl_ca the fake server's handshake failed: %v", hs)
	}
}
