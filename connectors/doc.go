// Package connectors defines what a user-database connector is, and keeps the
// registry that every connector adds itself to from its init function.
//
// A Driver describes one database type (form fields, tools, validation) and
// opens a Source: a live, pooled connection for one set of credentials. Tools
// depend only on the small Source interface, never on a concrete driver.
package connectors
