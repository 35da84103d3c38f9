package connectors

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
)

// CAField is the optional ssl_ca input of a connection form.
var CAField = Field{Name: "ssl_ca", Label: "CA Certificate (PEM, optional; for a server certificate from a private CA)", Type: "textarea"}

// MaxCABytes bounds the PEM text of Params.SSLCA.
const MaxCABytes = 64 << 10

// ParseCA checks the PEM text of a CA bundle (Params.SSLCA): at most
// MaxCABytes, one or more CERTIFICATE blocks and nothing but them, each a
// parsable certificate. Its error is short and safe to show.
func ParseCA(text string) ([]*x509.Certificate, error) {
	if len(text) > MaxCABytes {
		return nil, Errorf(KindInput, "ssl_ca is larger than 64 KiB")
	}
	var certs []*x509.Certificate
	rest := []byte(text)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, Errorf(KindInput, "ssl_ca may hold only CERTIFICATE blocks, not %.40s", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, Errorf(KindInput, "ssl_ca certificate %d does not parse", len(certs)+1)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, Errorf(KindInput, "ssl_ca must be PEM text of one or more CA certificates (-----BEGIN CERTIFICATE-----)")
	}
	return certs, nil
}

// TLSConfig is the client TLS configuration of a connection to a user
// database: TLS 1.2 or later, the server's certificate verified against the
// system roots plus the CA certificates of p.SSLCA, for serverName (the host
// the user gave; empty lets a driver that dials several hosts fill it in for
// each). Verification is never turned off.
func TLSConfig(p Params, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: strings.Trim(serverName, "[]")}
	if p.SSLCA == "" {
		return cfg, nil // nil RootCAs: the system roots
	}
	certs, err := ParseCA(p.SSLCA)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool() // no system roots on this machine: the CA alone
	}
	for _, c := range certs {
		pool.AddCert(c)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// maxCertMsg bounds the verifier's text in a certificate error: a hostile
// server may present a certificate with thousands of names.
const maxCertMsg = 200

// CertError returns a short KindAuth error naming the certificate problem
// when err comes from verifying the server's certificate, and nil otherwise.
// engine names the database, e.g. "PostgreSQL".
func CertError(err error, engine string) *Error {
	var (
		cve *tls.CertificateVerificationError
		uae x509.UnknownAuthorityError
		he  x509.HostnameError
		cie x509.CertificateInvalidError
		sre x509.SystemRootsError
	)
	var cause error
	switch {
	case errors.As(err, &cve):
		cause = cve.Err
	case errors.As(err, &uae):
		cause = uae
	case errors.As(err, &he):
		cause = he
	case errors.As(err, &cie):
		cause = cie
	case errors.As(err, &sre):
		cause = sre
	default:
		return nil
	}
	msg := cause.Error()
	if len(msg) > maxCertMsg {
		msg = strings.ToValidUTF8(msg[:maxCertMsg], "") + "…"
	}
	hint := ""
	if errors.As(err, &uae) {
		hint = " (give the server's CA certificate in ssl_ca)"
	}
	return &Error{Kind: KindAuth, Err: err,
		Msg: "cannot connect to " + engine + ": server certificate not trusted: " + msg + hint}
}
