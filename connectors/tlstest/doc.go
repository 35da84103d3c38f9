// Package tlstest makes throwaway self-signed certificates and fake TLS
// servers for the connectors' tests: a server speaks an engine's plaintext
// preamble, runs the TLS handshake, reports its outcome and hangs up.
package tlstest
