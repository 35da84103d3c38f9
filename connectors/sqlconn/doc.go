// Package sqlconn holds what the SQL connectors share: the connection form,
// tool specs, parameter decoding, the tool dispatch (Run) and the
// hand-written JSON row encoder. Each connector owns its read-only guard.
package sqlconn
