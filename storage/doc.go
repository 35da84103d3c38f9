// Package storage keeps all of the service's records (connected databases,
// OAuth integrations, MCP token hashes, the audit log) in MongoDB through
// mongo-driver v2, using only features that both MongoDB and the embedded
// FerretDB support. Every query is filtered by user_id, so one user's record
// answers another user exactly like a missing one.
package storage
