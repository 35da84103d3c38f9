// Package metrics defines the service's Prometheus metrics (HTTP requests,
// jobs, redeliveries, in-flight work, pools, JetStream backlog) and serves them
// at /metrics.
package metrics
