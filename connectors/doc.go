// Package connectors defines what a user-database connector is, and keeps the
// registry that every connector adds itself to from its init function.
//
// A Driver describes one database type (form fields, tools, validation) and
// opens a Source: a live, pooled connection for one set of credentials. Tools
// depend only on the small Source interface, never on a concrete driver.
//
// Every connector's TLS comes from TLSConfig: TLS 1.2 or later, the server's
// certificate always verified for the host, against the system roots plus
// the PEM CA certificates of the form's ssl_ca. A certificate that does not
// verify is a short KindAuth error (CertError).
package connectors
