// Package worker consumes jobs from the JetStream durable consumers shared by
// every worker process, runs them (database queries, connection tests, OAuth
// callbacks) with a typed handler per job kind, and replies to the waiting API
// node before acknowledging the job.
package worker
