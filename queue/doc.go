// Package queue sets up the JetStream job stream, its durable consumers and
// the job-status bucket, and carries jobs from the API node to the workers
// and their replies back by request-reply.
package queue
