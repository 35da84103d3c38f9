// Package budget holds the fleet-wide connection budget of each user
// database: at most MCP_DB_MAX_CONNECTIONS connections, whatever the number
// of worker processes. A connection takes a lease (a key in a NATS KV
// bucket, created atomically) before it is dialled and gives it back when it
// closes; a worker that dies loses its leases when they expire, and its
// connections died with it.
package budget
